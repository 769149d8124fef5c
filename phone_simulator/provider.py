"""The phone's side of the public device API over HTTP (``requests``), nothing else.

- :class:`PhoneHttp` is the device client's :class:`~idp.handoff.device_client.DeviceHttp` over
  a ``requests`` session the app owns (so a test can route it, like a load balancer would).
- :func:`pickup` is ``POST /device/v1/pickup`` with the scanned frame: it answers the handoff
  URL, the verification code and who is asking, or raises :class:`PickupError` with the
  provider's error code (``qr_stale``, ``already_picked_up``, ``rate_limited``...).

After the pickup the login continues at the handoff URL with the shared device code
(:func:`idp.handoff.device_client.run_device_login`), exactly like the desktop agent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import requests

from idp.handoff.device_client import DeviceProtocolError
from phone_simulator.qr import ScannedQr, origin_of

__all__ = ["PICKUP_PATH", "PhoneHttp", "Pickup", "PickupError", "pickup"]

PICKUP_PATH: Final = "/device/v1/pickup"
USER_AGENT: Final = "myna-phone-simulator/1"


class PhoneHttp:
    """JSON over HTTP for the device client (TLS verification on, short timeouts)."""

    def __init__(
        self,
        session_factory: Callable[[], requests.Session] = requests.Session,
        *,
        timeout: float = 15.0,
    ) -> None:
        self.session = session_factory()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        self.timeout = timeout

    def _send(self, method: str, url: str, body: Mapping[str, Any] | None) -> requests.Response:
        try:
            return self.session.request(
                method, url, json=None if body is None else dict(body), timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise DeviceProtocolError(f"cannot reach the provider: {type(exc).__name__}") from exc

    @staticmethod
    def _decode(response: requests.Response) -> tuple[int, Any]:
        try:
            return response.status_code, response.json()
        except ValueError as exc:
            raise DeviceProtocolError(
                f"the provider answered HTTP {response.status_code} without JSON"
            ) from exc

    def get(self, url: str) -> tuple[int, Any]:
        return self._decode(self._send("GET", url, None))

    def post(self, url: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        return self._decode(self._send("POST", url, body))

    def post_raw(self, url: str, body: Mapping[str, Any]) -> requests.Response:
        return self._send("POST", url, body)

    def close(self) -> None:
        self.session.close()


class PickupError(Exception):
    """The provider refused the pickup: ``code`` from the device API, or one of ours
    (``provider_unreachable``, ``provider_mismatch``, ``bad_answer``)."""

    def __init__(self, code: str, message: str = "", *, retry_after: int | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Pickup:
    """What ``POST /device/v1/pickup`` answered."""

    handoff_url: str
    verification_code: str
    client_name: str
    client_name_en: str | None
    origin: str
    challenge: Mapping[str, Any]


def _retry_after(response: requests.Response) -> int | None:
    value = response.headers.get("Retry-After", "")
    return int(value) if value.isdigit() else None


def pickup(http: PhoneHttp, scanned: ScannedQr) -> Pickup:
    """Take the login shown by ``scanned`` (single use) or raise :class:`PickupError`."""
    try:
        response = http.post_raw(scanned.origin + PICKUP_PATH, {"qr": scanned.frame_url})
    except DeviceProtocolError as exc:
        raise PickupError("provider_unreachable", str(exc)) from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            raise PickupError(
                body["error"], str(body.get("message") or ""), retry_after=_retry_after(response)
            )
        raise PickupError("bad_answer", f"HTTP {response.status_code}")
    if response.status_code != 200 or not isinstance(body, dict):
        raise PickupError("bad_answer", f"HTTP {response.status_code}")
    try:
        name_en = body.get("client_name_en")
        found = Pickup(
            handoff_url=_text(body, "handoff_url"),
            verification_code=_text(body, "verification_code"),
            client_name=_text(body, "client_name"),
            client_name_en=name_en if isinstance(name_en, str) and name_en else None,
            origin=_text(body, "origin"),
            challenge=body["challenge"] if isinstance(body.get("challenge"), dict) else {},
        )
    except (KeyError, TypeError) as exc:
        raise PickupError("bad_answer", str(exc)) from exc
    # Everything must come from the provider whose QR was scanned.
    if origin_of(found.handoff_url) != scanned.origin or found.origin.lower() != scanned.origin:
        raise PickupError("provider_mismatch", "the answer names another provider")
    if not (len(found.verification_code) == 4 and found.verification_code.isdigit()):
        raise PickupError("bad_answer", "the verification code is not 4 digits")
    return found


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty string")
    return value
