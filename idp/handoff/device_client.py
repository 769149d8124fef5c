"""The device side of the device API: fetch the challenge, drive the card, post the response.

One code path for every device: the desktop agent (``idp card login``, a card in a PC/SC
reader), the demo and the tests (a :class:`~idp.card.virtual.VirtualCard` over an
``InProcessTransport`` — the same APDUs, the same :class:`~idp.card.jpki.JpkiClient`), and the
phone simulator of the QR flow. Nothing here imports Flask; HTTP goes through a small
:class:`DeviceHttp` protocol (:class:`RequestsHttp` over the network).

:func:`run_device_login`:

1. ``GET`` the handoff URL: the challenge (who is asking, purpose, nonce, expiry). Its
   ``origin`` must be the origin of the handoff URL itself, so a challenge relayed from
   another provider is refused before the card is touched.
2. Show who is asking (the prompts may decline: the transaction is cancelled).
3. Read the PIN's tries left first; never spend the last try without an explicit confirmation;
   ask PIN1 (the prompts hide it), VERIFY, sign ``Challenge.digest_info()`` with the
   authentication key, ``POST`` the token.
4. If the provider answers ``enroll_needed`` (unknown card or stale record), sign the new
   challenge with the authentication key again (PIN1 is still verified on the card) and, after
   the signature password, with the signature key, and ``POST`` both certificates.
5. If the provider answers ``sign_needed`` (the relying party asked for an electronic
   signature), show the text to be signed (the prompts may decline), ask the signature password
   (tries shown, never the last try without a confirmation), sign
   ``DigestInfo(SHA-256(to_be_signed))`` with the signature key and ``POST`` the signature
   certificate with that signature.

The PIN and the password only ever go to the card; they are not logged or kept beyond the call.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlsplit

from idp.card.challenge import SHA256_DIGEST_INFO_PREFIX, Challenge, ChallengeFormatError
from idp.card.errors import (
    CardError,
    CardFileNotFoundError,
    PinBlockedError,
    PinFormatError,
    SecurityStatusError,
    WrongPinError,
)
from idp.card.jpki import JpkiClient
from idp.card.pin import PinKind

__all__ = [
    "FORMAT",
    "DeviceApiError",
    "DeviceChallenge",
    "DeviceClient",
    "DeviceHttp",
    "DeviceOutcome",
    "DevicePrompts",
    "DeviceProtocolError",
    "EnrollmentUnavailableError",
    "FixedPrompts",
    "LoginAbortedError",
    "RequestsHttp",
    "SignRequest",
    "build_token",
    "run_device_login",
]

FORMAT: Final = "myna:1"
ALGORITHM: Final = "RS256"
MAX_ROUNDS: Final = 3
MAX_FORMAT_ERRORS: Final = 3


class DeviceApiError(Exception):
    """The provider answered with an error ``{"error": code, "message": ...}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class DeviceProtocolError(Exception):
    """The provider's answer is not what the device API promises (or it is unreachable)."""


class LoginAbortedError(Exception):
    """The person stopped the login (declined the request or the last PIN try)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class EnrollmentUnavailableError(CardError):
    """The card has no signature certificate (holders under 15), so it cannot enroll."""


class DeviceHttp(Protocol):
    """JSON over HTTP: ``(status, decoded body)``; raise DeviceProtocolError if unreachable."""

    def get(self, url: str) -> tuple[int, Any]: ...

    def post(self, url: str, body: Mapping[str, Any]) -> tuple[int, Any]: ...


class RequestsHttp:
    """:class:`DeviceHttp` over ``requests`` (TLS verification on, short timeouts)."""

    def __init__(self, *, timeout: float = 15.0, user_agent: str = "myna-idp-device") -> None:
        import requests

        self._requests = requests
        self._session = requests.Session()
        self._session.headers["User-Agent"] = user_agent
        self._session.headers["Accept"] = "application/json"
        self._timeout = timeout

    def _decode(self, response: Any) -> tuple[int, Any]:
        try:
            return int(response.status_code), response.json()
        except ValueError as exc:
            raise DeviceProtocolError(
                f"the provider answered HTTP {response.status_code} without JSON"
            ) from exc

    def get(self, url: str) -> tuple[int, Any]:
        try:
            return self._decode(self._session.get(url, timeout=self._timeout))
        except self._requests.RequestException as exc:
            raise DeviceProtocolError(f"cannot reach the provider: {type(exc).__name__}") from exc

    def post(self, url: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        try:
            return self._decode(self._session.post(url, json=dict(body), timeout=self._timeout))
        except self._requests.RequestException as exc:
            raise DeviceProtocolError(f"cannot reach the provider: {type(exc).__name__}") from exc

    def close(self) -> None:
        self._session.close()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@dataclass(frozen=True)
class SignRequest:
    """What a ``sign`` round asks the signature key to sign."""

    text: str
    digest: str
    to_be_signed: bytes

    @classmethod
    def from_document(cls, document: Any) -> SignRequest:
        if not isinstance(document, dict):
            raise TypeError("sign must be an object")
        try:
            to_be_signed = base64.b64decode(_str(document, "to_be_signed"), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("sign.to_be_signed is not base64") from exc
        digest = _str(document, "digest")
        raw = base64.urlsafe_b64decode(digest + "=" * (-len(digest) % 4))
        if len(raw) != 32 or raw not in to_be_signed:
            raise ValueError("sign.to_be_signed does not carry the document digest")
        return cls(text=_str(document, "text"), digest=digest, to_be_signed=to_be_signed)

    def digest_info(self) -> bytes:
        """What the card signs: DigestInfo(SHA-256(to_be_signed))."""
        return SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(self.to_be_signed).digest()


@dataclass(frozen=True)
class DeviceChallenge:
    """The challenge as fetched from the provider."""

    transaction_id: str
    nonce: str
    origin: str
    purpose: str
    client_name: str
    client_name_en: str | None
    requested_items: tuple[str, ...]
    expires_at: str
    expires_in: int
    response_url: str
    sign: SignRequest | None = None

    @classmethod
    def from_document(cls, document: Any) -> DeviceChallenge:
        if not isinstance(document, dict):
            raise DeviceProtocolError("the challenge is not a JSON object")
        try:
            items = document.get("requested_items") or []
            name_en = document.get("client_name_en")
            challenge = cls(
                transaction_id=_str(document, "transaction_id"),
                nonce=_str(document, "nonce"),
                origin=_str(document, "origin"),
                purpose=_str(document, "purpose"),
                client_name=_str(document, "client_name"),
                client_name_en=name_en if isinstance(name_en, str) else None,
                requested_items=tuple(str(item) for item in items),
                expires_at=_str(document, "expires_at"),
                expires_in=int(document.get("expires_in", 0)),
                response_url=_str(document, "response_url"),
                sign=SignRequest.from_document(document["sign"])
                if document.get("purpose") == "sign"
                else None,
            )
            challenge.challenge()  # field formats
        except (KeyError, TypeError, ValueError, ChallengeFormatError) as exc:
            raise DeviceProtocolError(f"the challenge is malformed: {exc}") from exc
        return challenge

    def challenge(self) -> Challenge:
        return Challenge(
            origin=self.origin,
            nonce=self.nonce,
            transaction_id=self.transaction_id,
            purpose=self.purpose,
        )


def _str(document: Mapping[str, Any], name: str) -> str:
    value = document[name]
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty string")
    return value


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def build_token(
    *,
    certificate: bytes,
    signature: bytes,
    app_version: str,
    signing_certificate: bytes | None = None,
    signing_signature: bytes | None = None,
) -> dict[str, str]:
    """The card response in the device API's (Web-eID-shaped) format."""
    token = {
        "unverifiedCertificate": _b64(certificate),
        "algorithm": ALGORITHM,
        "signature": _b64(signature),
        "format": FORMAT,
        "appVersion": app_version,
    }
    if signing_certificate is not None and signing_signature is not None:
        token["signingCertificate"] = _b64(signing_certificate)
        token["signingSignature"] = _b64(signing_signature)
    return token


class DeviceClient:
    """One handoff URL on the provider's device API."""

    def __init__(self, http: DeviceHttp, handoff_url: str, *, app_version: str) -> None:
        parts = urlsplit(handoff_url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise DeviceProtocolError("the handoff URL must be an http(s) URL")
        self.http = http
        self.handoff_url = handoff_url
        self.origin = _origin(handoff_url)
        self.app_version = app_version

    def _answer(self, status: int, body: Any) -> Any:
        if status >= 400:
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                raise DeviceApiError(status, body["error"], str(body.get("message") or ""))
            raise DeviceProtocolError(f"the provider answered HTTP {status}")
        return body

    def _checked(self, challenge: DeviceChallenge) -> DeviceChallenge:
        if challenge.origin.lower() != self.origin:
            raise DeviceProtocolError(
                f"the challenge is for {challenge.origin}, not {self.origin}: refusing to sign"
            )
        if _origin(challenge.response_url) != self.origin:
            raise DeviceProtocolError("the response URL is on another origin: refusing")
        return challenge

    def fetch(self) -> DeviceChallenge:
        """GET the challenge."""
        body = self._answer(*self.http.get(self.handoff_url))
        return self._checked(DeviceChallenge.from_document(body))

    def respond(
        self, challenge: DeviceChallenge, token: Mapping[str, str]
    ) -> tuple[str, DeviceChallenge | None]:
        """POST a card response; ``("verified", None)``, or ``("enroll_needed", next)`` /
        ``("sign_needed", next)``."""
        body = self._answer(*self.http.post(challenge.response_url, token))
        status = body.get("status") if isinstance(body, dict) else None
        if status == "verified":
            return "verified", None
        if status in ("enroll_needed", "sign_needed"):
            return status, self._checked(DeviceChallenge.from_document(body["challenge"]))
        raise DeviceProtocolError(f"unexpected answer status {status!r}")

    def cancel(self, reason: str) -> None:
        """Tell the provider this device gives up (the browser page then says so)."""
        url = self.handoff_url.rstrip("/") + "/cancel"
        try:
            self._answer(*self.http.post(url, {"reason": reason}))
        except (DeviceApiError, DeviceProtocolError):
            pass  # best effort: the transaction expires anyway


class DevicePrompts(Protocol):
    """The person in front of the device. Secrets are returned, never stored or printed."""

    def show_request(self, challenge: DeviceChallenge) -> bool:
        """Show who is asking and what for; False to decline."""

    def enrollment_needed(self, challenge: DeviceChallenge) -> None:
        """Explain that the signature password is needed this time."""

    def show_signature(self, challenge: DeviceChallenge) -> bool:
        """Show the text to be signed (``challenge.sign.text``) and who asks; False to decline."""

    def ask_secret(self, kind: PinKind, tries_left: int) -> str:
        """PIN1 (``PinKind.AUTH``) or the signature password (``PinKind.SIGN``)."""

    def confirm_last_try(self, kind: PinKind) -> bool:
        """Only one try is left: True to use it anyway."""

    def wrong_secret(self, kind: PinKind, tries_left: int) -> None:
        """The card refused the secret."""

    def bad_format(self, kind: PinKind, message: str) -> None:
        """The secret has the wrong shape (nothing was sent to the card)."""


@dataclass
class FixedPrompts:
    """Prompts with fixed answers, for the demo and tests (records what was asked)."""

    pin: str = "1234"
    sign_password: str = "ABC123"  # noqa: S105 (the test card's default)
    accept: bool = True
    use_last_try: bool = False
    asked: list[str] = field(default_factory=list)

    def show_request(self, challenge: DeviceChallenge) -> bool:
        self.asked.append(f"request:{challenge.purpose}")
        return self.accept

    def enrollment_needed(self, challenge: DeviceChallenge) -> None:
        self.asked.append("enrollment")

    def show_signature(self, challenge: DeviceChallenge) -> bool:
        self.asked.append("signature")
        return self.accept

    def ask_secret(self, kind: PinKind, tries_left: int) -> str:
        self.asked.append(f"secret:{kind.value}:{tries_left}")
        return self.pin if kind is PinKind.AUTH else self.sign_password

    def confirm_last_try(self, kind: PinKind) -> bool:
        self.asked.append(f"last-try:{kind.value}")
        return self.use_last_try

    def wrong_secret(self, kind: PinKind, tries_left: int) -> None:
        self.asked.append(f"wrong:{kind.value}:{tries_left}")
        raise WrongPinError(0x63C0 | tries_left)  # fixed answers: asking again cannot help

    def bad_format(self, kind: PinKind, message: str) -> None:
        self.asked.append(f"format:{kind.value}")
        raise PinFormatError(message)


@dataclass(frozen=True)
class DeviceOutcome:
    """How the login went on the device side."""

    status: Literal["verified"]
    rounds: int
    enrolled: bool
    client_name: str
    signed: bool = False


def _verify_secret(card: JpkiClient, kind: PinKind, prompts: DevicePrompts) -> None:
    """Ask for ``kind`` and VERIFY it, reading the tries left first each time."""
    format_errors = 0
    while True:
        tries = card.pin_tries(kind)
        if tries == 0:
            raise PinBlockedError(0x63C0)
        if tries == 1 and not prompts.confirm_last_try(kind):
            raise LoginAbortedError("last_try_declined")
        secret = prompts.ask_secret(kind, tries)
        try:
            card.verify_pin(kind, secret)
            return
        except PinFormatError as exc:
            format_errors += 1
            if format_errors >= MAX_FORMAT_ERRORS:
                raise
            prompts.bad_format(kind, str(exc))
        except WrongPinError as exc:
            if exc.tries_left == 0:
                raise PinBlockedError(exc.sw) from exc
            prompts.wrong_secret(kind, exc.tries_left)


def _sign_with_auth(card: JpkiClient, digest_info: bytes, prompts: DevicePrompts) -> bytes:
    try:
        return card.sign(PinKind.AUTH, digest_info)
    except SecurityStatusError:
        _verify_secret(card, PinKind.AUTH, prompts)
        return card.sign(PinKind.AUTH, digest_info)


def _probe_sign_certificate(card: JpkiClient) -> None:
    """Raise EnrollmentUnavailableError if the card has no signature certificate (no PIN used)."""
    try:
        card.read_sign_certificate()
    except SecurityStatusError:
        return  # it exists; reading it needs the password
    except CardFileNotFoundError as exc:
        raise EnrollmentUnavailableError("this card has no signature certificate") from exc


def _sign_round(
    client: DeviceClient, card: JpkiClient, prompts: DevicePrompts, current: DeviceChallenge
) -> dict[str, str]:
    """The signing round: show the text, the signature password, the signature key."""
    request = current.sign
    if request is None:
        raise DeviceProtocolError("a sign round without 'sign'")
    if not prompts.show_signature(current):
        client.cancel("user_cancelled")
        raise LoginAbortedError("declined")
    try:
        _probe_sign_certificate(card)
        _verify_secret(card, PinKind.SIGN, prompts)
        certificate = card.read_sign_certificate()
        signature = card.sign(PinKind.SIGN, request.digest_info())
    except EnrollmentUnavailableError:
        client.cancel("enrollment_unavailable")
        raise
    except PinBlockedError:
        client.cancel("pin_blocked")
        raise
    except LoginAbortedError:
        client.cancel("user_cancelled")
        raise
    return build_token(certificate=certificate, signature=signature, app_version=client.app_version)


def run_device_login(
    client: DeviceClient,
    card: JpkiClient,
    prompts: DevicePrompts,
    *,
    challenge: DeviceChallenge | None = None,
) -> DeviceOutcome:
    """Do the whole device side of one login (see the module docstring)."""
    current = challenge or client.fetch()
    if not prompts.show_request(current):
        client.cancel("user_cancelled")
        raise LoginAbortedError("declined")
    enrolled = False
    signed = False
    auth_verified = False
    for round_number in range(1, MAX_ROUNDS + 1):
        if current.purpose == "sign":
            token = _sign_round(client, card, prompts, current)
            status, following = client.respond(current, token)
            signed = True
            if status == "verified":
                return DeviceOutcome(
                    "verified", round_number, enrolled, current.client_name, signed
                )
            raise DeviceProtocolError("the provider asked for another round after signing")
        digest_info = current.challenge().digest_info()
        try:
            certificate = card.read_auth_certificate()
            if not auth_verified:
                if current.purpose == "enroll":
                    prompts.enrollment_needed(current)
                    _probe_sign_certificate(card)
                _verify_secret(card, PinKind.AUTH, prompts)
                auth_verified = True
            signature = _sign_with_auth(card, digest_info, prompts)
            signing_certificate: bytes | None = None
            signing_signature: bytes | None = None
            if current.purpose == "enroll":
                if round_number > 1:
                    prompts.enrollment_needed(current)
                    _probe_sign_certificate(card)
                _verify_secret(card, PinKind.SIGN, prompts)
                signing_certificate = card.read_sign_certificate()
                signing_signature = card.sign(PinKind.SIGN, digest_info)
                enrolled = True
        except EnrollmentUnavailableError:
            client.cancel("enrollment_unavailable")
            raise
        except PinBlockedError:
            client.cancel("pin_blocked")
            raise
        except LoginAbortedError:
            client.cancel("user_cancelled")
            raise
        token = build_token(
            certificate=certificate,
            signature=signature,
            app_version=client.app_version,
            signing_certificate=signing_certificate,
            signing_signature=signing_signature,
        )
        status, following = client.respond(current, token)
        if status == "verified":
            return DeviceOutcome("verified", round_number, enrolled, current.client_name, signed)
        assert following is not None
        current = following
    raise DeviceProtocolError("the provider asked for too many rounds")
