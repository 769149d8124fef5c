"""myna-idp: an OpenID Connect provider backed by the My Number card (JPKI)."""

__version__ = "0.1.0"
