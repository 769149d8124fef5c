"""Fixtures for the phone simulator tests (defined in tests/login_support.py)."""

from login_support import login_pki, shared_pki

__all__ = ["login_pki", "shared_pki"]
