"""Fixtures for the phone simulator tests (defined in tests/login_support.py)."""

from login_support import db_url, login_pki, shared_pki

__all__ = ["db_url", "login_pki", "shared_pki"]
