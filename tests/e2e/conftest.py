"""Fixtures for the end-to-end login tests (defined in tests/login_support.py)."""

from login_support import app, live, login_pki, rp, shared_pki

__all__ = ["app", "live", "login_pki", "rp", "shared_pki"]
