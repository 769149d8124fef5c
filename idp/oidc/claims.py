"""Scopes, the claims each releases and their formats, and the authentication context values.

One scope per basic-4 item, as the Digital Agency's authentication app does:

========== ==================================================================================
scope      claims (userinfo)
========== ==================================================================================
name       ``name`` (as on the card, family and given name separated by U+3000), plus
           ``family_name`` / ``given_name`` when the name splits at exactly one U+3000
address    ``address``: ``{"formatted": <as on the card>, "country": "JP"}``
birthdate  ``birthdate``: ``"YYYY-MM-DD"`` (Gregorian)
gender     ``gender``: ``"male"``, ``"female"`` or ``"other"`` (card code 3, unknown)
========== ==================================================================================

Basic-4 claims are released at userinfo only; the ID token carries the authentication facts
(``sub``, ``auth_time``, ``acr``, ``amr``, ``nonce``) and nothing personal.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from idp.storage.residents import Resident

__all__ = [
    "ACR_CARD_PIN",
    "AMR_CARD_PIN",
    "BASIC4_SCOPES",
    "CLAIMS_BY_SCOPE",
    "OFFLINE_ACCESS",
    "SUPPORTED_SCOPES",
    "userinfo_claims",
]

#: ``acr`` of a login with the card's authentication key after PIN1 (documented in
#: docs/integrators.md): possession of the card + knowledge of the PIN, the key never leaves
#: the card's chip.
ACR_CARD_PIN = "urn:myna-idp:acr:jpki-card-pin"

#: RFC 8176 ``amr`` for card + PIN: hardware key, smart card, PIN, multi-factor.
AMR_CARD_PIN: tuple[str, ...] = ("hwk", "sc", "pin", "mfa")

BASIC4_SCOPES: tuple[str, ...] = ("name", "address", "birthdate", "gender")

#: Asks for refresh tokens (OpenID Connect Core section 11); a consent item like the others.
OFFLINE_ACCESS = "offline_access"

SUPPORTED_SCOPES: tuple[str, ...] = ("openid", *BASIC4_SCOPES, OFFLINE_ACCESS)

CLAIMS_BY_SCOPE: dict[str, tuple[str, ...]] = {
    "name": ("name", "family_name", "given_name"),
    "address": ("address",),
    "birthdate": ("birthdate",),
    "gender": ("gender",),
}

_NAME_SEPARATOR = "\u3000"


def userinfo_claims(resident: Resident, *, sub: str, scopes: Iterable[str]) -> dict[str, Any]:
    """The userinfo body: ``sub`` plus the claims of the granted ``scopes``."""
    granted = set(scopes)
    claims: dict[str, Any] = {"sub": sub}
    if "name" in granted:
        claims["name"] = resident.name
        parts = resident.name.split(_NAME_SEPARATOR)
        if len(parts) == 2 and all(parts):
            claims["family_name"], claims["given_name"] = parts
    if "address" in granted:
        claims["address"] = {"formatted": resident.address, "country": "JP"}
    if "birthdate" in granted:
        claims["birthdate"] = resident.birthdate.isoformat()
    if "gender" in granted:
        claims["gender"] = resident.gender
    return claims
