"""Scopes (consent items), the claims each releases and their formats, authentication context.

Every scope but ``openid`` is a consent item: the resident sees it on the consent page and it
is released only if granted. One scope per basic-4 item, as the Digital Agency's app does,
plus derived claims that answer a question without releasing the data behind it:

============== ==================================================================================
scope          claims
============== ==================================================================================
name           ``name`` (as on the card, family and given name separated by U+3000), plus
               ``family_name`` / ``given_name`` when the name splits at exactly one U+3000
address        ``address``: ``{"formatted": <as on the card>, "country": "JP"}``
birthdate      ``birthdate``: ``"YYYY-MM-DD"`` (Gregorian)
gender         ``gender``: ``"male"``, ``"female"`` or ``"other"`` (card code 3, unknown)
age_over_18    ``age_over_18``: true / false, computed from the birthdate when released
age_over_65    ``age_over_65``: true / false, likewise
resident_of    ``resident_of``: ``{"code": <local government code>, "name": <municipality>}`` of
               the configured municipality (``IDP_MUNICIPALITIES``) whose name starts the address;
               absent if none does. Offered only when municipalities are configured.
offline_access refresh tokens (no claim)
============== ==================================================================================

By default (scope only) the claims are released at userinfo; the ``claims`` request parameter
(:mod:`idp.oidc.claims_request`) can ask for single claims, in the ID token too, and for
``verified_claims`` (:mod:`idp.oidc.assurance`). The ID token otherwise carries the
authentication facts (``sub``, ``auth_time``, ``acr``, ``amr``, ``nonce``) and nothing personal.

Ages follow Japanese law (年齢計算ニ関スル法律): a person born on 29 February reaches an age on
1 March in common years. "Today" is the date in Japan at the moment of release.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from idp.storage.residents import Resident

__all__ = [
    "ACR_CARD_PIN",
    "AMR_CARD_PIN",
    "BASIC4_SCOPES",
    "CLAIMS_BY_SCOPE",
    "DERIVED_SCOPES",
    "OFFLINE_ACCESS",
    "RESIDENT_OF",
    "SIGN",
    "SUPPORTED_SCOPES",
    "age_at_least",
    "claim_value",
    "item_of",
    "japan_today",
    "offered_scopes",
    "resident_of",
    "scope_claims",
]

#: ``acr`` of a login with the card's authentication key after PIN1 (documented in
#: docs/integrators.md): possession of the card + knowledge of the PIN, the key never leaves
#: the card's chip.
ACR_CARD_PIN = "urn:myna-idp:acr:jpki-card-pin"

#: RFC 8176 ``amr`` for card + PIN: hardware key, smart card, PIN, multi-factor.
AMR_CARD_PIN: tuple[str, ...] = ("hwk", "sc", "pin", "mfa")

BASIC4_SCOPES: tuple[str, ...] = ("name", "address", "birthdate", "gender")

#: The scope (and claim) of the municipality of residence; offered only when configured.
RESIDENT_OF = "resident_of"

#: Derived claims for data minimisation: each its own scope and consent item.
DERIVED_SCOPES: tuple[str, ...] = ("age_over_18", "age_over_65", RESIDENT_OF)

#: Asks for refresh tokens (OpenID Connect Core section 11); a consent item like the others.
OFFLINE_ACCESS = "offline_access"

#: Asks for an electronic signature of a registered signature transaction (flow E).
SIGN = "sign"

SUPPORTED_SCOPES: tuple[str, ...] = (
    "openid",
    *BASIC4_SCOPES,
    *DERIVED_SCOPES,
    OFFLINE_ACCESS,
    SIGN,
)

CLAIMS_BY_SCOPE: dict[str, tuple[str, ...]] = {
    "name": ("name", "family_name", "given_name"),
    "address": ("address",),
    "birthdate": ("birthdate",),
    "gender": ("gender",),
    "age_over_18": ("age_over_18",),
    "age_over_65": ("age_over_65",),
    RESIDENT_OF: (RESIDENT_OF,),
}

_ITEM_OF_CLAIM = {claim: scope for scope, claims in CLAIMS_BY_SCOPE.items() for claim in claims}
_AGE_THRESHOLDS = {"age_over_18": 18, "age_over_65": 65}
_NAME_SEPARATOR = "\u3000"
_JST = timezone(timedelta(hours=9), "JST")

Municipalities = Sequence[tuple[str, str]]


def offered_scopes(municipalities: Municipalities) -> tuple[str, ...]:
    """The scopes this deployment offers (``resident_of`` only with municipalities)."""
    return tuple(s for s in SUPPORTED_SCOPES if s != RESIDENT_OF or municipalities)


def item_of(claim: str) -> str | None:
    """The scope (consent item) that releases ``claim``; None for claims no item releases."""
    return _ITEM_OF_CLAIM.get(claim)


def japan_today(now: datetime | None = None) -> date:
    """The date in Japan at ``now`` (default: now)."""
    return (now or datetime.now(UTC)).astimezone(_JST).date()


def age_at_least(birthdate: date, years: int, *, today: date) -> bool:
    """True if a person born on ``birthdate`` is at least ``years`` old on ``today``."""
    year = birthdate.year + years
    try:
        reached = birthdate.replace(year=year)
    except ValueError:  # 29 February in a common year: the age is reached on 1 March
        reached = date(year, 3, 1)
    return today >= reached


def resident_of(address: str, municipalities: Municipalities) -> dict[str, str] | None:
    """``{"code", "name"}`` of the municipality whose name starts ``address``, or None.

    The longest matching name wins (a ward of a designated city, configured on its own, beats
    the city).
    """
    matches = [(code, name) for code, name in municipalities if name and address.startswith(name)]
    if not matches:
        return None
    code, name = max(matches, key=lambda match: len(match[1]))
    return {"code": code, "name": name}


def claim_value(
    resident: Resident, claim: str, *, municipalities: Municipalities, today: date
) -> Any:
    """The value of ``claim`` for ``resident``, or None if there is none to release."""
    if claim == "name":
        return resident.name
    if claim in ("family_name", "given_name"):
        parts = resident.name.split(_NAME_SEPARATOR)
        if len(parts) != 2 or not all(parts):
            return None
        return parts[0] if claim == "family_name" else parts[1]
    if claim == "address":
        return {"formatted": resident.address, "country": "JP"}
    if claim == "birthdate":
        return resident.birthdate.isoformat()
    if claim == "gender":
        return resident.gender
    if claim in _AGE_THRESHOLDS:
        return age_at_least(resident.birthdate, _AGE_THRESHOLDS[claim], today=today)
    if claim == RESIDENT_OF:
        return resident_of(resident.address, municipalities)
    return None


def scope_claims(scopes: Iterable[str]) -> list[str]:
    """The claims the ``scopes`` release by themselves (at userinfo), in a fixed order."""
    granted = set(scopes)
    return [
        claim for scope, claims in CLAIMS_BY_SCOPE.items() if scope in granted for claim in claims
    ]
