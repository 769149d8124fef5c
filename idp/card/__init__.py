"""The card layer: JPKI over any APDU transport, a virtual card, certificates and validation.

This package is pure: it imports nothing from Flask, Redis, SQLAlchemy, Authlib or the rest of
``idp``, and never reads the environment (checked by import-linter and ruff in CI). Only
``idp.card.pcsc`` imports pyscard.
"""
