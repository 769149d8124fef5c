"""Fixtures for the enrollment and consent tests (defined in tests/login_support.py)."""

from login_support import app, login_pki, rp, shared_pki

__all__ = ["app", "login_pki", "rp", "shared_pki"]
