"""Consent: which basic-4 items a resident agreed to release to a relying party.

A consent is remembered per resident and client (:mod:`idp.storage.consents`). The consent page
is skipped when the remembered consent already covers every item asked for, unless the request
says ``prompt=consent``. A request for no basic-4 item (``scope=openid`` only) releases nothing
but the pairwise ``sub`` and needs no consent page unless ``prompt=consent``. Approving stores
the union of what was consented before and what is consented now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from idp.account.texts import text
from idp.extensions import get_settings
from idp.i18n import format_birthdate
from idp.oidc.claims import claim_value, japan_today, resident_of
from idp.storage.consents import get_consent, put_consent
from idp.storage.residents import Resident

__all__ = ["ConsentItem", "consent_items", "consent_required", "remember_consent"]

ITEM_ORDER = (
    "name",
    "address",
    "birthdate",
    "gender",
    "age_over_18",
    "age_over_65",
    "resident_of",
    "offline_access",
    "sign",
)

#: Items never remembered: consent to a signature is given per transaction.
PER_REQUEST_ITEMS = frozenset({"sign"})


@dataclass(frozen=True)
class ConsentItem:
    """One line of the consent page: the scope, its label and the value to be released."""

    scope: str
    label: str
    value: str


def consent_required(
    resident_id: str, client_id: str, items: Sequence[str], prompt: Sequence[str]
) -> bool:
    """Whether the resident must see the consent page for ``items``."""
    if "consent" in prompt or PER_REQUEST_ITEMS & set(items):
        return True
    if not items:
        return False
    consent = get_consent(resident_id, client_id)
    return consent is None or not set(items) <= set(consent.scopes)


def remember_consent(resident_id: str, client_id: str, items: Sequence[str]) -> None:
    """Record the consent to ``items`` (added to what was already consented)."""
    consent = get_consent(resident_id, client_id)
    previous = set(consent.scopes) if consent is not None else set()
    put_consent(resident_id, client_id, sorted(previous | (set(items) - PER_REQUEST_ITEMS)))


def consent_items(
    resident: Resident, items: Sequence[str], locale: str, *, sign_text: str | None = None
) -> list[ConsentItem]:
    """The lines of the consent page: exactly ``items``, in a fixed order, with their values
    (``sign``: the text the relying party registered, ``sign_text``)."""
    wanted = set(items)
    return [
        ConsentItem(
            scope,
            text(locale, f"item_{scope}"),
            sign_text or "" if scope == "sign" else _value(resident, scope, locale),
        )
        for scope in ITEM_ORDER
        if scope in wanted
    ]


def _value(resident: Resident, scope: str, locale: str) -> str:
    if scope == "name":
        return resident.name
    if scope == "address":
        return resident.address
    if scope == "birthdate":
        return format_birthdate(resident.birthdate, locale)
    if scope == "gender":
        return (
            text(locale, f"gender_{resident.gender}")
            if resident.gender
            in (
                "male",
                "female",
                "other",
            )
            else resident.gender
        )
    if scope in ("age_over_18", "age_over_65"):
        over = claim_value(resident, scope, municipalities=(), today=japan_today())
        return text(locale, "value_yes" if over else "value_no")
    if scope == "resident_of":
        place = resident_of(resident.address, get_settings().municipalities)
        return place["name"] if place else text(locale, "value_no_municipality")
    if scope == "offline_access":
        return text(locale, "value_offline_access")
    raise ValueError(f"not a consent item: {scope}")
