"""What the account portal shows: the verified data and its evidence, releases, consents.

Plain data for the templates, built from storage: nothing here writes. Dates are shown in the
page's language through ``idp.i18n`` (a Japanese birthdate with the era as well,
``昭和60年4月1日（1985年4月1日）``), times in Japan time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from idp.i18n import format_birthdate, format_day, format_moment
from idp.storage.audit import list_releases
from idp.storage.clients import Client, get_client
from idp.storage.consents import list_consents
from idp.storage.residents import CardCredential, Resident

__all__ = [
    "ConsentRow",
    "CredentialRow",
    "ReleaseRow",
    "client_label",
    "consent_rows",
    "credential_rows",
    "format_birthdate",
    "format_time",
    "item_labels",
    "release_rows",
]

JAPAN: Final = ZoneInfo("Asia/Tokyo")

#: The consent items a resident may see in the portal, in display order.
ITEM_LABELS: Final = {
    "name": _l("Name"),
    "address": _l("Address"),
    "birthdate": _l("Date of birth"),
    "gender": _l("Gender"),
    "age_over_18": _l("Whether you are 18 or older"),
    "age_over_65": _l("Whether you are 65 or older"),
    "resident_of": _l("Your municipality of residence"),
    "offline_access": _l("Access while you are signed out"),
    "sign": _l("Electronic signature"),
}

GENDERS: Final = {"male": _l("Male"), "female": _l("Female"), "other": _l("Other / unknown")}


def format_time(moment: datetime | None, locale: str) -> str:
    """A time in Japan time (``idp.i18n.format_moment``); a dash when there is none."""
    return "—" if moment is None else format_moment(moment, locale)


def gender_label(value: str) -> str:
    label = GENDERS.get(value)
    return str(label) if label is not None else value


def item_labels(items: Iterable[str]) -> list[str]:
    """The labels of ``items`` in display order (unknown items by their name)."""
    wanted = set(items)
    labels = [str(label) for scope, label in ITEM_LABELS.items() if scope in wanted]
    return labels + sorted(wanted - set(ITEM_LABELS) - {"openid"})


def client_label(client: Client | None, client_id: str, locale: str) -> str:
    """A client's display name in ``locale``; a removed client by its id."""
    if client is None:
        return str(_("A service no longer registered (%(client_id)s)", client_id=client_id))
    if locale == "en" and client.name_en:
        return client.name_en
    return client.name


class _Names:
    """Client names looked up once per page."""

    def __init__(self, locale: str) -> None:
        self.locale = locale
        self.cache: dict[str, str] = {}

    def __call__(self, client_id: str) -> str:
        if client_id not in self.cache:
            self.cache[client_id] = client_label(get_client(client_id), client_id, self.locale)
        return self.cache[client_id]


@dataclass(frozen=True)
class CredentialRow:
    """A card certificate linked to the account (never its body or subject)."""

    kind: str
    kind_label: str
    issuer: str
    serial_hex: str
    valid_until: str
    linked_at: str
    last_used_at: str


def credential_rows(resident: Resident, locale: str) -> list[CredentialRow]:
    labels = {
        "sign": _("Signature certificate"),
        "auth": _("User authentication certificate"),
    }
    ordered: Sequence[CardCredential] = sorted(
        resident.credentials, key=lambda c: (c.kind != "sign", -c.created_at.timestamp())
    )
    return [
        CredentialRow(
            kind=credential.kind,
            kind_label=labels.get(credential.kind, credential.kind),
            issuer=credential.issuer,
            serial_hex=credential.serial_hex.upper(),
            valid_until=format_day(credential.not_after.astimezone(JAPAN).date(), locale),
            linked_at=format_time(credential.created_at, locale),
            last_used_at=format_time(credential.last_used_at, locale),
        )
        for credential in ordered
    ]


def evidence_of(resident: Resident) -> dict[str, Any]:
    evidence = resident.evidence if isinstance(resident.evidence, dict) else {}
    return {
        "issuer": evidence.get("issuer", "—"),
        "serial_hex": str(evidence.get("serial_hex", "—")).upper(),
        "policy_oid": evidence.get("policy_oid", "—"),
        "refresh_requested": bool(evidence.get("refresh_requested")),
    }


@dataclass(frozen=True)
class ReleaseRow:
    """One release: when, to which service, which items."""

    when: str
    client: str
    items: list[str]


def release_rows(resident_id: str, locale: str, *, hidden: Iterable[str] = ()) -> list[ReleaseRow]:
    """The resident's releases, newest first, without the clients in ``hidden`` (the portal)."""
    names = _Names(locale)
    skip = set(hidden)
    return [
        ReleaseRow(
            when=format_time(release.released_at, locale),
            client=names(release.client_id),
            items=item_labels(release.items) or [_("Only that it was you (no details)")],
        )
        for release in list_releases(resident_id, limit=200)
        if release.client_id not in skip
    ]


@dataclass(frozen=True)
class ConsentRow:
    """A remembered consent for one service."""

    client_id: str
    client: str
    items: list[str]
    granted_at: str


def consent_rows(resident_id: str, locale: str, *, hidden: Iterable[str] = ()) -> list[ConsentRow]:
    names = _Names(locale)
    skip = set(hidden)
    return [
        ConsentRow(
            client_id=consent.client_id,
            client=names(consent.client_id),
            items=item_labels(consent.scopes) or [_("Only that it was you (no details)")],
            granted_at=format_time(consent.granted_at, locale),
        )
        for consent in list_consents(resident_id)
        if consent.client_id not in skip
    ]
