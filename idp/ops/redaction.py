"""What must never reach a log, and the filter that removes it.

A log line may name a request, an endpoint, a status, an error code. It must never carry a PIN
or password, a certificate or signature, a token, code, assertion or secret, or personal data
(name, address, birthdate, gender, the My Number). :func:`redact` rewrites text so that:

- PEM blocks, JWTs/JWS/JWE, ``Bearer``/``Basic`` credentials, long hex strings (DER, hashes)
  and long base64/base64url strings (certificates, signatures, codes, tokens, nonces, secrets)
  become ``[redacted]``;
- the value after a sensitive key (``pin=``, ``"code": ``, ``access_token=``,
  ``birthdate=datetime.date(...)``, ``Authorization:`` ...) becomes ``[redacted]``;
- a VERIFY command APDU (``00 20 00 ..`` with its data) becomes ``[redacted]``;
- any twelve-digit number (the shape of a My Number) becomes ``[redacted]``;
- Japanese text (kana, kanji, full-width forms: names and addresses) becomes ``[redacted]``.

Log messages are English and name things by code, so what is lost is never what an operator
needs. :class:`RedactingFilter` applies :func:`redact` to a record's message, arguments and
traceback; :mod:`idp.ops.logs` applies it to every record the process creates.
"""

from __future__ import annotations

import logging
import re
from typing import Final

__all__ = ["MASK", "SENSITIVE_KEYS", "RedactingFilter", "redact", "redact_record"]

MASK: Final = "[redacted]"

#: Keys whose values are never logged (matched case-insensitively as whole words).
SENSITIVE_KEYS: Final = (
    "pin",
    "pin1",
    "pin2",
    "password",
    "passwd",
    "sign_password",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "code",
    "code_verifier",
    "assertion",
    "client_assertion",
    "signature",
    "signingsignature",
    "certificate",
    "unverifiedcertificate",
    "signingcertificate",
    "nonce",
    "state",
    "qr",
    "sub",
    "name",
    "given_name",
    "family_name",
    "address",
    "birthdate",
    "gender",
    "sex",
    "sex_code",
    "email",
    "phone_number",
    "authorization",
    "cookie",
    "set-cookie",
    "my_number",
    "mynumber",
)

_PEM: Final = re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?(?:-----END [A-Z0-9 ]+-----|\Z)", re.S)
_JWT: Final = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,3}")
# An HTTP credential: at least 8 characters, not all lowercase (so not an English word).
_SCHEME_CREDENTIALS: Final = re.compile(
    r"\b((?i:Bearer|Basic|DPoP))\s+(?=[a-z._~+/=-]*[A-Z0-9])[A-Za-z0-9._~+/=-]{8,}"
)
_VALUE: Final = r"""(?:'[^']*'|"[^"]*"|[\w.]+\([^)]*\)|[^\s,;&)}\]]+)"""
_KEYED: Final = re.compile(
    r"""(?P<key>["']?\b(?:"""
    + "|".join(re.escape(k) for k in SENSITIVE_KEYS)
    + r""")\b["']?)(?P<sep>\s*[=:]\s*)"""
    + _VALUE,
    re.I,
)
_VERIFY_APDU: Final = re.compile(
    r"\b00\s?20\s?00\s?[0-9A-Fa-f]{2}\s?[0-9A-Fa-f]{2}(?:\s?[0-9A-Fa-f]{2})+\b"
)
_HEX: Final = re.compile(r"(?<![0-9A-Za-z])(?:[0-9A-Fa-f]{2}[\s:]?){24,}(?![0-9A-Za-z])")
_RUN: Final = re.compile(r"[A-Za-z0-9+/_-]{32,}={0,2}")
_MY_NUMBER: Final = re.compile(r"(?<!\d)\d{4}[\s-]?\d{4}[\s-]?\d{4}(?!\d)")
# Hiragana, katakana, CJK ideographs (and extension A), full-width forms, ideographic space.
_JAPANESE: Final = re.compile(
    r"[\u3000-\u303f\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
    r"\uff00-\uffef]+(?:[\s\u3000]*[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef0-9]+)*"
)


def _run(match: re.Match[str]) -> str:
    text = match.group(0)
    has_digit = any(c.isdigit() for c in text)
    has_upper = any(c.isupper() for c in text)
    has_lower = any(c.islower() for c in text)
    if "/" in text:
        # A file path has slashes too; a base64 body of this length has every kind of char.
        secret = has_digit and has_upper and has_lower
    else:
        secret = has_digit or (has_upper and has_lower)
    return MASK if secret else text


def redact(text: str) -> str:
    """``text`` with everything that must not be logged replaced by ``[redacted]``."""
    if not text:
        return text
    text = _PEM.sub(MASK, text)
    text = _JWT.sub(MASK, text)
    text = _SCHEME_CREDENTIALS.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _KEYED.sub(lambda m: f"{m.group('key')}{m.group('sep')}{MASK}", text)
    text = _VERIFY_APDU.sub(MASK, text)
    text = _HEX.sub(MASK, text)
    text = _RUN.sub(_run, text)
    text = _MY_NUMBER.sub(MASK, text)
    return _JAPANESE.sub(MASK, text)


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact ``record`` in place: message (with its arguments), traceback and stack."""
    if getattr(record, "myna_redacted", False):
        return record
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # a broken format string: keep only the template
        message = str(record.msg)
    record.msg = redact(message)
    record.args = None
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record.myna_redacted = True
    return record


class RedactingFilter(logging.Filter):
    """A filter (for a handler or a logger) that redacts every record it passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True
