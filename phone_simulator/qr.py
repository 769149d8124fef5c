"""What the phone's camera (or the paste box) hands the app: a QR frame URL or an app link.

Two shapes are accepted, both from docs/device-api.md:

- the QR frame itself, an https URL of the provider: ``{issuer}/m/{qr_token}?t={t}&c={code}``;
- the same-device app link ``myna-idp://handoff?qr=<frame URL>&return=<login page URL>``.

Everything is checked here, before anything goes over the network: a QR that is not a frame of
a provider this app knows never leaves the phone (a random QR, or a look-alike provider, is
refused with a typed :class:`ScanError`). The ``return`` URL is kept only when it is on the
same provider, so the app never becomes an open redirect.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, urlsplit

__all__ = ["APP_LINK_SCHEME", "MAX_INPUT", "ScanError", "ScannedQr", "origin_of", "read_scan"]

APP_LINK_SCHEME: Final = "myna-idp"
MAX_INPUT: Final = 2048
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{16,64}")
_SECONDS: Final = re.compile(r"0|[1-9][0-9]{0,8}")
_CODE: Final = re.compile(r"[0-9a-f]{32}")


class ScanError(Exception):
    """The scanned or pasted text is not something this app can use (``code`` says why)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class ScannedQr:
    """A QR frame of a known provider, and where to send the person back to (same device)."""

    frame_url: str
    origin: str
    return_url: str | None = None


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` in lower case (no trailing slash)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _frame(text: str, providers: frozenset[str]) -> ScannedQr:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as exc:
        raise ScanError("qr_malformed") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ScanError("qr_malformed")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise ScanError("qr_malformed")
    origin = origin_of(text)
    if origin not in providers:
        raise ScanError("qr_unknown_provider")
    match = re.fullmatch(r"/m/([^/]+)", parts.path)
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    if (
        match is None
        or _TOKEN.fullmatch(match.group(1)) is None
        or sorted(query) != ["c", "t"]
        or len(query["t"]) != 1
        or len(query["c"]) != 1
        or _SECONDS.fullmatch(query["t"][0]) is None
        or _CODE.fullmatch(query["c"][0]) is None
    ):
        raise ScanError("qr_malformed")
    return ScannedQr(frame_url=text, origin=origin)


def _app_link(text: str, providers: frozenset[str]) -> ScannedQr:
    parts = urlsplit(text)
    if parts.netloc != "handoff" or parts.path not in ("", "/") or parts.fragment:
        raise ScanError("qr_malformed")
    query = parse_qs(parts.query, keep_blank_values=True)
    frames = query.get("qr", [])
    returns = query.get("return", [])
    if len(frames) != 1 or len(returns) > 1 or set(query) - {"qr", "return"}:
        raise ScanError("qr_malformed")
    scanned = _frame(frames[0], providers)
    return_url = returns[0] if returns else None
    if return_url is not None:
        if origin_of(return_url) != scanned.origin or not urlsplit(return_url).path.startswith(
            "/login/"
        ):
            return_url = None  # never send the person to another site
    return ScannedQr(scanned.frame_url, scanned.origin, return_url)


def read_scan(text: str, providers: Iterable[str]) -> ScannedQr:
    """The QR frame (and return URL) in ``text``, a frame URL or an app link, or ScanError."""
    known = frozenset(origin.rstrip("/").lower() for origin in providers)
    value = text.strip()
    if not value or len(value) > MAX_INPUT or not value.isprintable() or not value.isascii():
        raise ScanError("qr_malformed")
    if value.lower().startswith(f"{APP_LINK_SCHEME}:"):
        return _app_link(value, known)
    return _frame(value, known)
