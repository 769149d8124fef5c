"""What the card signs: a challenge bound to the IdP's origin, a nonce, a transaction and a purpose.

As in Web eID, the signed data is ``SHA-256(origin) || SHA-256(context)`` (64 bytes), where the
origin is the IdP's own ``https://host[:port]`` (from configuration, never from the request) and
the context is ``nonce + "\\n" + transaction_id + "\\n" + purpose``. A signature made for one
origin, nonce, transaction or purpose is worthless for any other. The card computes an
RSASSA-PKCS1-v1_5 signature with SHA-256 over those 64 bytes: it is handed ``digest_info()``,
the 51-byte DER ``DigestInfo`` of their SHA-256 hash, and pads and signs it. Device API
algorithm name: ``RS256``.

Nonces are ``NONCE_BYTES`` (32, i.e. 256 bits) from ``secrets``, base64url without padding.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Final

from idp.card.errors import CardError

__all__ = [
    "ALGORITHM",
    "NONCE_BYTES",
    "PURPOSES",
    "Challenge",
    "ChallengeFormatError",
    "new_nonce",
]

NONCE_BYTES: Final = 32
ALGORITHM: Final = "RS256"
PURPOSES: Final = frozenset({"login", "enroll", "sign"})

SHA256_DIGEST_INFO_PREFIX: Final = bytes.fromhex("3031300d060960864801650304020105000420")
"""DER of ``DigestInfo { sha256, NULL }`` up to the 32-byte digest (RFC 8017 §9.2 note 1)."""

_ORIGIN: Final = re.compile(
    r"https://(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"|https://\[[0-9a-f:.]+\]"
    r"|http://(?:localhost|127\.0\.0\.1|\[::1\])"
)
_PORT: Final = re.compile(r":(?:[1-9][0-9]{0,4})")
_TOKEN: Final = re.compile(r"[A-Za-z0-9_.~-]{1,256}")


class ChallengeFormatError(CardError, ValueError):
    """A challenge field that cannot be part of a signed challenge."""

    def __init__(self, field: str) -> None:
        super().__init__(f"challenge {field} is not acceptable")
        self.field = field


def new_nonce() -> str:
    """A fresh 256-bit nonce, base64url without padding (43 characters)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(NONCE_BYTES)).rstrip(b"=").decode("ascii")


def _valid_origin(origin: str) -> bool:
    match = _ORIGIN.match(origin)
    if match is None:
        return False
    rest = origin[match.end() :]
    if not rest:
        return True
    if _PORT.fullmatch(rest) is None:
        return False
    return int(rest[1:]) <= 65535


@dataclass(frozen=True)
class Challenge:
    """One challenge for the card. Fields are checked on construction (``ChallengeFormatError``).

    ``origin`` is ``https://host[:port]`` in lower case with no path or trailing slash
    (``http://`` only for localhost, for development); ``nonce`` and ``transaction_id`` are
    URL-safe tokens of 1..256 characters; ``purpose`` is ``login``, ``enroll`` or ``sign``.
    """

    origin: str
    nonce: str
    transaction_id: str
    purpose: str

    def __post_init__(self) -> None:
        if not _valid_origin(self.origin):
            raise ChallengeFormatError("origin")
        if _TOKEN.fullmatch(self.nonce) is None:
            raise ChallengeFormatError("nonce")
        if _TOKEN.fullmatch(self.transaction_id) is None:
            raise ChallengeFormatError("transaction_id")
        if self.purpose not in PURPOSES:
            raise ChallengeFormatError("purpose")

    def to_be_signed(self) -> bytes:
        """``SHA-256(origin) || SHA-256(nonce \\n transaction_id \\n purpose)``: 64 bytes."""
        context = f"{self.nonce}\n{self.transaction_id}\n{self.purpose}"
        return (
            hashlib.sha256(self.origin.encode("utf-8")).digest()
            + hashlib.sha256(context.encode("utf-8")).digest()
        )

    def digest_info(self) -> bytes:
        """The 51-byte DER DigestInfo of ``SHA-256(to_be_signed())`` that the card signs."""
        return SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(self.to_be_signed()).digest()
