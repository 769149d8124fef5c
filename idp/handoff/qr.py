"""The rotating QR code: frames, their verification and the verification code.

A login transaction carries a ``qr_token`` (128 random bits, base64url: which QR this is; not
the transaction id, not the handoff id), a ``qr_secret`` (256 random bits, hex; it never leaves
the server) and ``qr_start`` (epoch seconds when the QR was first shown). Each second the page
shows a new **frame**, an https URL of the provider so that a phone camera opens it::

    {issuer}/m/{qr_token}?t={t}&c={code}

    t    = whole seconds since qr_start (decimal, no leading zeros)
    code = lowercase hex HMAC-SHA256(key = qr_secret bytes, msg = ASCII str(t)), first 32 chars

It is Sweden's BankID animated-QR construction (the HMAC of the elapsed seconds) carried in a URL.
A frame is accepted while ``0 - SKEW <= now - (qr_start + t) <= window``: a screenshot relayed to
someone else's phone dies within seconds.

The **verification code** is four digits derived from the same secret; the desktop page and the
phone both show it, so the person can check that the phone holds *this* computer's login.

This module is pure (no Flask, no Redis); errors are :class:`QrError` with a device API code.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "CODE_HEX",
    "MAX_FRAME_URL",
    "SKEW",
    "Frame",
    "QrError",
    "check_frame",
    "check_fresh",
    "check_mac",
    "frame_at",
    "frame_code",
    "frame_mac",
    "new_qr_secret",
    "new_qr_token",
    "parse_frame",
    "verification_code",
]

QR_TOKEN_BYTES: Final = 16
QR_SECRET_BYTES: Final = 32
CODE_HEX: Final = 32
"""Hex characters of the HMAC kept in a frame (128 bits)."""
SKEW: Final = 1
"""Seconds a frame may seem to come from the future (clock skew between instances)."""
MAX_FRAME_URL: Final = 512

_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")
_T = re.compile(r"0|[1-9][0-9]{0,6}")
_CODE = re.compile(r"[0-9a-f]{32}")


class QrError(Exception):
    """A frame that cannot be accepted; ``code`` is the device API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def new_qr_token() -> str:
    """A fresh QR token (128 bits, base64url, 22 characters)."""
    return secrets.token_urlsafe(QR_TOKEN_BYTES)


def new_qr_secret() -> str:
    """A fresh QR secret (256 bits, hex)."""
    return secrets.token_hex(QR_SECRET_BYTES)


def frame_mac(secret: bytes, t: int) -> str:
    """The full lowercase hex HMAC-SHA256 of ``str(t)`` under ``secret`` (BankID's qrAuthCode)."""
    return hmac.new(secret, str(t).encode("ascii"), hashlib.sha256).hexdigest()


def frame_code(secret: bytes, t: int) -> str:
    """The code carried in frame ``t``: the first :data:`CODE_HEX` hex characters of the MAC."""
    return frame_mac(secret, t)[:CODE_HEX]


def verification_code(secret: bytes) -> str:
    """Four digits derived from the transaction's QR secret (shown on both screens)."""
    digest = hmac.new(secret, b"myna verification code", hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 10_000:04d}"


@dataclass(frozen=True)
class Frame:
    """One QR frame: which QR, which second, and the code for that second."""

    token: str
    t: int
    code: str

    def url(self, issuer: str) -> str:
        """The frame content: ``{issuer}/m/{token}?t={t}&c={code}``."""
        return f"{issuer.rstrip('/')}/m/{self.token}?t={self.t}&c={self.code}"


def frame_at(token: str, secret: bytes, start: int, now: float) -> Frame:
    """The frame to show at ``now`` for a QR first shown at ``start``."""
    t = max(0, int(now - start))
    return Frame(token=token, t=t, code=frame_code(secret, t))


def parse_frame(content: object, issuer: str) -> Frame:
    """Parse frame content (a URL string) issued by ``issuer``; ``qr_malformed`` otherwise."""
    if not isinstance(content, str) or not content or len(content) > MAX_FRAME_URL:
        raise QrError("qr_malformed", "'qr' must be the QR code's URL.")
    prefix = f"{issuer.rstrip('/')}/m/"
    try:
        parts = urlsplit(content)
    except ValueError as exc:
        raise QrError("qr_malformed", "'qr' is not a URL.") from exc
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    if not base.startswith(prefix) or parts.fragment:
        raise QrError("qr_malformed", "'qr' is not a QR code of this provider.")
    token = base[len(prefix) :]
    if not _TOKEN.fullmatch(token):
        raise QrError("qr_malformed", "The QR code's token is malformed.")
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise QrError("qr_malformed", "The QR code's query is malformed.") from exc
    fields = dict(pairs)
    if len(pairs) != 2 or set(fields) != {"t", "c"}:
        raise QrError("qr_malformed", "The QR code must carry exactly 't' and 'c'.")
    if not _T.fullmatch(fields["t"]) or not _CODE.fullmatch(fields["c"]):
        raise QrError("qr_malformed", "The QR code's 't' or 'c' is malformed.")
    return Frame(token=token, t=int(fields["t"]), code=fields["c"])


def check_mac(frame: Frame, *, secret: bytes) -> None:
    """Raise ``qr_forged`` unless the frame's code is the HMAC of its ``t`` (constant time)."""
    if not hmac.compare_digest(frame_code(secret, frame.t), frame.code):
        raise QrError("qr_forged", "The QR code's check value is wrong.")


def check_fresh(frame: Frame, *, start: int | None, now: float, window: int) -> None:
    """Raise ``qr_stale`` unless ``0 - SKEW <= now - (start + t) <= window``."""
    if start is None:
        raise QrError("qr_stale", "This QR code has not been shown yet.")
    age = now - (start + frame.t)
    if age > window or age < -SKEW:
        raise QrError("qr_stale", "This QR code frame is too old; scan the code again.")


def check_frame(frame: Frame, *, secret: bytes, start: int | None, now: float, window: int) -> None:
    """Accept ``frame`` or raise ``qr_forged`` (wrong HMAC) / ``qr_stale`` (outside the window).

    The HMAC is checked first, so a forged frame is reported as forged whatever its ``t``.
    """
    check_mac(frame, secret=secret)
    check_fresh(frame, start=start, now=now, window=window)
