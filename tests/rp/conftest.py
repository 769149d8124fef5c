"""Fixtures for the relying-party tests (defined in tests/login_support.py)."""

from login_support import live, login_pki, shared_pki

__all__ = ["live", "login_pki", "shared_pki"]
