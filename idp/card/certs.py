"""Reading JPKI certificates: the basic 4 items of a signature certificate, and a summary.

The 署名用 (signature) certificate carries the holder's name, address, birthdate and sex, with
the substitution flags for name and address, as ``otherName`` entries of its subjectAltName
(``1.2.392.200149.8.5.5.1``..``.6``, see ``idp.card.oids``), each value a DER ``UTF8String``
inside the otherName's ``[0] EXPLICIT``. The 利用者証明用 (auth) certificate carries none of it.

``parse_basic4`` treats the certificate as hostile: a missing or incomplete SAN, a duplicated
entry, a value that is not a UTF8String, not UTF-8, holds control characters or is absurdly
long, a birthdate whose era code does not fit the date: each gives a typed
``CertificateMalformedError`` subclass (``Basic4MissingError``, ``Basic4MalformedError``,
``BirthdateEraMismatchError``) and never another exception.

OIDC ``gender``: JPKI's sex code is ``1`` male, ``2`` female, ``3`` unknown (不明). OpenID
Connect defines only ``male`` and ``female`` and lets other values be used, so ``3`` is given as
``other``; ``Basic4.sex_code`` keeps the card's own code for anyone who needs the distinction.
"""

from __future__ import annotations

import unicodedata
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from idp.card import oids
from idp.card.eras import era_matches
from idp.card.validation.errors import (
    PARSE_ERRORS,
    Basic4MalformedError,
    Basic4MissingError,
    BirthdateEraMismatchError,
)

__all__ = [
    "GENDER_BY_SEX_CODE",
    "Basic4",
    "CertificateDescription",
    "describe",
    "parse_basic4",
]

GENDER_BY_SEX_CODE: Final = {"1": "male", "2": "female", "3": "other"}


MAX_FIELD_CHARS: Final = 256
"""Longest name, address or flag string accepted (the address is at most 200 characters)."""

_MAX_VALUE_BYTES: Final = 4 * MAX_FIELD_CHARS + 4
_UTF8STRING_TAG: Final = 0x0C
_FIELD_NAMES: Final = {
    oids.BASIC4_NAME: "name",
    oids.BASIC4_NAME_SUBSTITUTION: "name_substitution",
    oids.BASIC4_SEX: "sex",
    oids.BASIC4_BIRTHDATE: "birthdate",
    oids.BASIC4_ADDRESS: "address",
    oids.BASIC4_ADDRESS_SUBSTITUTION: "address_substitution",
}


@dataclass(frozen=True)
class Basic4:
    """The basic 4 items (基本4情報) of a signature certificate, plus substitution flags."""

    name: str
    address: str
    birthdate: date
    birthdate_era: int
    gender: str
    sex_code: str
    name_substitution: str
    address_substitution: str

    @property
    def has_substituted_characters(self) -> bool:
        """Whether the card replaced any character of the name or address (外字)."""
        return "1" in self.name_substitution or "1" in self.address_substitution


def _utf8string(raw: bytes, field: str) -> str:
    """The text of a DER UTF8String (tag, definite minimal length, exact content)."""
    if len(raw) < 2 or len(raw) > _MAX_VALUE_BYTES or raw[0] != _UTF8STRING_TAG:
        raise Basic4MalformedError("basic 4 value is not a DER UTF8String", field=field)
    first = raw[1]
    if first < 0x80:
        length, offset = first, 2
    elif first in (0x81, 0x82) and len(raw) >= 2 + (first & 0x7F):
        size = first & 0x7F
        length, offset = int.from_bytes(raw[2 : 2 + size], "big"), 2 + size
        if length < 0x80 or (size == 2 and length < 0x100):
            raise Basic4MalformedError("basic 4 value length is not minimal DER", field=field)
    else:
        raise Basic4MalformedError("basic 4 value length is not acceptable", field=field)
    if offset + length != len(raw):
        raise Basic4MalformedError("basic 4 value length does not match its content", field=field)
    try:
        return raw[offset:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Basic4MalformedError("basic 4 value is not UTF-8", field=field) from exc


def _text(value: str, field: str, *, allow_empty: bool = False) -> str:
    if not value and not allow_empty:
        raise Basic4MalformedError("basic 4 value is empty", field=field)
    if len(value) > MAX_FIELD_CHARS:
        raise Basic4MalformedError("basic 4 value is too long", field=field)
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cn") for ch in value):
        raise Basic4MalformedError("basic 4 value holds control characters", field=field)
    return value


def _flags(value: str, field: str) -> str:
    _text(value, field, allow_empty=True)
    if value.strip("01"):
        raise Basic4MalformedError("substitution flags are not 0/1", field=field)
    return value


def _birthdate(value: str) -> tuple[date, int]:
    if len(value) != 9 or not value.isascii() or not value.isdigit():
        raise Basic4MalformedError("birthdate is not EYYYYMMDD", field="birthdate")
    era = int(value[0])
    try:
        day = date(int(value[1:5]), int(value[5:7]), int(value[7:9]))
    except ValueError as exc:
        raise Basic4MalformedError("birthdate is not a calendar date", field="birthdate") from exc
    if not era_matches(era, day):
        raise BirthdateEraMismatchError(field="birthdate")
    return day, era


def _san_entries(certificate: x509.Certificate) -> dict[str, bytes]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = list(san)
    except x509.ExtensionNotFound as exc:
        raise Basic4MissingError("certificate has no subjectAltName") from exc
    except PARSE_ERRORS as exc:
        raise Basic4MalformedError("certificate extensions cannot be parsed") from exc
    entries: dict[str, bytes] = {}
    for general_name in names:
        if not isinstance(general_name, x509.OtherName):
            continue
        oid = general_name.type_id.dotted_string
        field = _FIELD_NAMES.get(oid)
        if field is None:
            continue
        if oid in entries:
            raise Basic4MalformedError("basic 4 entry appears twice", field=field)
        entries[oid] = general_name.value
    missing = tuple(_FIELD_NAMES[oid] for oid in oids.BASIC4_ORDER if oid not in entries)
    if missing:
        raise Basic4MissingError(missing=missing)
    return entries


def parse_basic4(certificate: x509.Certificate) -> Basic4:
    """The basic 4 items of a JPKI signature certificate (raises typed errors only)."""
    entries = _san_entries(certificate)
    text = {oid: _utf8string(raw, _FIELD_NAMES[oid]) for oid, raw in entries.items()}
    sex_code = text[oids.BASIC4_SEX]
    gender = GENDER_BY_SEX_CODE.get(sex_code)
    if gender is None:
        raise Basic4MalformedError("sex code is not 1, 2 or 3", field="sex")
    birthdate, era = _birthdate(text[oids.BASIC4_BIRTHDATE])
    return Basic4(
        name=_text(text[oids.BASIC4_NAME], "name"),
        address=_text(text[oids.BASIC4_ADDRESS], "address"),
        birthdate=birthdate,
        birthdate_era=era,
        gender=gender,
        sex_code=sex_code,
        name_substitution=_flags(text[oids.BASIC4_NAME_SUBSTITUTION], "name_substitution"),
        address_substitution=_flags(text[oids.BASIC4_ADDRESS_SUBSTITUTION], "address_substitution"),
    )


@dataclass(frozen=True)
class CertificateDescription:
    """What ``idp card status`` prints about a certificate."""

    subject: str
    issuer: str
    serial_number: str
    not_before: datetime
    not_after: datetime
    purpose: str


_PURPOSE_BY_POLICY: Final = {
    oids.AUTH_POLICY: "authentication",
    oids.SIGN_POLICY: "signature",
    oids.TEST_SIGN_POLICY: "signature (test card)",
}


def _name(certificate: x509.Certificate, which: str) -> str:
    try:
        name: x509.Name = getattr(certificate, which)
        return name.rfc4514_string() or "(empty)"
    except PARSE_ERRORS:
        return "(unreadable name)"


def _purpose(certificate: x509.Certificate) -> str:
    try:
        policies = certificate.extensions.get_extension_for_class(x509.CertificatePolicies).value
    except x509.ExtensionNotFound:
        return "unknown"
    except PARSE_ERRORS:
        return "unreadable"
    for policy in policies:
        purpose = _PURPOSE_BY_POLICY.get(policy.policy_identifier.dotted_string)
        if purpose is not None:
            return purpose
    return "unknown"


def describe(certificate: x509.Certificate) -> CertificateDescription:
    """A short, printable summary (subject, issuer, serial, validity, JPKI purpose).

    Parts of a malformed certificate that cannot be read are shown as such instead of raising.
    """
    try:
        not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    except PARSE_ERRORS:
        not_before = not_after = datetime.min.replace(tzinfo=UTC)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        serial = certificate.serial_number
    return CertificateDescription(
        subject=_name(certificate, "subject"),
        issuer=_name(certificate, "issuer"),
        serial_number=format(serial, "X"),
        not_before=not_before,
        not_after=not_after,
        purpose=_purpose(certificate),
    )
