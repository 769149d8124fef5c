"""Pairwise subject identifiers (OpenID Connect Core section 8.1).

``sub = base64url(HMAC-SHA256(pairwise secret, sector + "|" + resident id))`` without padding.
The sector is the client's registered ``sector_identifier`` or, without one, the host of its
redirect URIs (registration refuses clients whose redirect URIs span hosts without a sector).
The same resident gets the same ``sub`` at every client of one sector and unlinkable ones
across sectors; a new card keeps the resident id, so ``sub`` survives card renewal.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import urlsplit

__all__ = ["SectorError", "pairwise_sub", "sector_for"]


class SectorError(ValueError):
    """The client's sector cannot be determined (redirect URIs on several hosts)."""


def sector_for(*, sector_identifier: str | None, redirect_uris: Sequence[str]) -> str:
    """The sector of a client."""
    if sector_identifier:
        return sector_identifier
    hosts = {urlsplit(uri).hostname or "" for uri in redirect_uris}
    if len(hosts) != 1 or "" in hosts:
        raise SectorError("redirect URIs on several hosts need a sector identifier")
    return hosts.pop()


def pairwise_sub(secret: bytes, *, sector: str, resident_id: str) -> str:
    """The pairwise ``sub`` of ``resident_id`` in ``sector``."""
    digest = hmac.new(secret, f"{sector}|{resident_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
