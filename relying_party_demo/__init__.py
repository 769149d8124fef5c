"""A demo relying party: a municipal online-application form that signs residents in with the
myna-idp provider over plain OpenID Connect (Authlib's Flask client).

It never imports ``idp``: everything it knows about the provider comes from the discovery
document, the JWKS and the HTTP answers, as for any municipal service. See ``docs/demo.md``.
"""

from relying_party_demo.app import create_app

__all__ = ["create_app"]
