"""One login on the phone, as a real app runs it: a card thread behind the screens.

:class:`Phone` is the app without its screens (the Flask UI in :mod:`phone_simulator.app`
draws them; a test may drive it directly): :meth:`Phone.scan` reads the QR text, calls
``POST /device/v1/pickup`` and starts a :class:`PhoneFlow`. The flow runs the shared device
code (:func:`idp.handoff.device_client.run_device_login`) in its own thread, with the card
held to the phone (:meth:`~phone_simulator.wallet.Wallet.hold`). Every question the device
code asks (who is asking, PIN1, the last try, the signature password) becomes a
:class:`Screen`; the thread waits until the person answers it (:meth:`PhoneFlow.answer`), they
cancel, or the login would have expired anyway.

Each screen has a sequence number: an answer for an older screen (a double tap, a reloaded
form) is ignored, so a PIN is never sent to the card twice by accident. A secret is handed to
the card thread and dropped; it is never logged, stored in the flow, or sent anywhere else.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

import requests

from idp.card.errors import CardError, PinBlockedError
from idp.card.pin import PinKind
from idp.handoff.device_client import (
    DeviceApiError,
    DeviceChallenge,
    DeviceClient,
    DeviceOutcome,
    DeviceProtocolError,
    EnrollmentUnavailableError,
    LoginAbortedError,
    run_device_login,
)
from phone_simulator.provider import PhoneHttp, Pickup, PickupError, pickup
from phone_simulator.qr import ScannedQr, read_scan
from phone_simulator.wallet import CardBusyError, Wallet

__all__ = [
    "APP_VERSION",
    "FINAL_STEPS",
    "Phone",
    "PhoneFlow",
    "Screen",
    "Step",
]

log = logging.getLogger(__name__)

APP_VERSION: Final = "myna-phone-simulator/1"
ANSWER_TIMEOUT: Final = 300.0
"""Longest wait for the person on one screen (the provider's login lasts 300 s by default)."""
FLOW_LIFETIME: Final = 900.0
"""Finished flows are forgotten this long after they started."""


class Step(StrEnum):
    """Which screen the phone shows."""

    CONFIRM = "confirm"  # who is asking + the verification code
    PIN = "pin"  # PIN1 on the PIN pad
    LAST_TRY = "last_try"  # one try left: use it only on an explicit yes
    PASSWORD = "password"  # noqa: S105 (a screen name: the signature password)
    WORKING = "working"  # talking to the card and the provider
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STEPS: Final = frozenset({Step.DONE, Step.FAILED, Step.CANCELLED})


@dataclass(frozen=True)
class Screen:
    """What the phone shows now. ``notice``: ``wrong_secret`` / ``bad_format`` (after a
    refused secret), ``enrollment`` (the password is needed this time); ``error``: why the flow
    failed or was cancelled."""

    step: Step
    seq: int
    kind: PinKind | None = None
    tries_left: int | None = None
    notice: str | None = None
    error: str | None = None
    detail: str = ""
    retry_after: int | None = None
    enrolled: bool = False


class _Cancelled(Exception):
    pass


@dataclass
class PhoneFlow:
    """One picked-up login on the phone (see the module docstring)."""

    id: str
    resident: str
    scanned: ScannedQr
    found: Pickup
    wallet: Wallet
    http: PhoneHttp
    answer_timeout: float = ANSWER_TIMEOUT
    started: float = field(default_factory=time.monotonic)
    challenge: DeviceChallenge | None = None
    outcome: DeviceOutcome | None = None

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self._screen = Screen(Step.WORKING, 0)
        self._answer: str | None = None
        self._cancel = False
        self._notice: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"phone-{self.id[:6]}", daemon=True)

    # -- the screens' side ----------------------------------------------------------------

    def start(self) -> PhoneFlow:
        self._thread.start()
        return self

    def screen(self) -> Screen:
        with self._cond:
            return self._screen

    def answer(self, seq: int, value: str) -> bool:
        """Answer the screen numbered ``seq``; False (ignored) if that screen is gone."""
        with self._cond:
            if seq != self._screen.seq or self._screen.step in FINAL_STEPS:
                return False
            if self._screen.step is Step.WORKING:
                return False
            self._answer = value
            self._screen = Screen(Step.WORKING, self._screen.seq + 1)
            self._cond.notify_all()
            return True

    def cancel(self) -> None:
        """The person pressed cancel (any screen)."""
        with self._cond:
            self._cancel = True
            self._cond.notify_all()

    def wait_settled(self, timeout: float) -> Screen:
        """The screen once the card thread waits for the person again (or has finished)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._screen.step is Step.WORKING:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self._screen

    def wait_final(self, timeout: float) -> Screen:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._screen.step not in FINAL_STEPS:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return self._screen

    @property
    def client_name(self) -> str:
        return self.found.client_name

    @property
    def verification_code(self) -> str:
        return self.found.verification_code

    # -- the card thread's side (DevicePrompts) ----------------------------------------------

    def _ask(self, step: Step, kind: PinKind | None = None, tries: int | None = None) -> str:
        with self._cond:
            notice, self._notice = self._notice, None
            if step is Step.PASSWORD and notice is None:
                notice = "enrollment"
            self._screen = Screen(
                step, self._screen.seq + 1, kind=kind, tries_left=tries, notice=notice
            )
            self._cond.notify_all()
            deadline = time.monotonic() + self.answer_timeout
            while self._answer is None and not self._cancel:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LoginAbortedError("timeout")
                self._cond.wait(left)
            if self._cancel:
                raise _Cancelled
            value, self._answer = self._answer, None
            assert value is not None
            return value

    def show_request(self, challenge: DeviceChallenge) -> bool:
        self.challenge = challenge
        try:
            return self._ask(Step.CONFIRM) == "continue"
        except _Cancelled:
            return False

    def enrollment_needed(self, challenge: DeviceChallenge) -> None:
        self.challenge = challenge
        with self._cond:
            self._notice = "enrollment"

    def show_signature(self, challenge: DeviceChallenge) -> bool:
        """The password screen shows the text to be signed; entering the password signs."""
        self.challenge = challenge
        with self._cond:
            self._notice = "signature"
        return True

    def ask_secret(self, kind: PinKind, tries_left: int) -> str:
        step = Step.PIN if kind is PinKind.AUTH else Step.PASSWORD
        try:
            return self._ask(step, kind, tries_left)
        except _Cancelled:
            raise LoginAbortedError("user_cancelled") from None

    def confirm_last_try(self, kind: PinKind) -> bool:
        try:
            return self._ask(Step.LAST_TRY, kind, 1) == "use_last_try"
        except _Cancelled:
            return False

    def wrong_secret(self, kind: PinKind, tries_left: int) -> None:
        with self._cond:
            self._notice = "wrong_secret"

    def bad_format(self, kind: PinKind, message: str) -> None:
        with self._cond:
            self._notice = "bad_format"

    # -- the card thread ----------------------------------------------------------------------

    def _finish(self, step: Step, error: str | None = None, detail: str = "") -> None:
        with self._cond:
            self._screen = Screen(
                step,
                self._screen.seq + 1,
                error=error,
                detail=detail,
                enrolled=bool(self.outcome and self.outcome.enrolled),
            )
            self._cond.notify_all()

    def _run(self) -> None:
        client = DeviceClient(self.http, self.found.handoff_url, app_version=APP_VERSION)
        try:
            with self.wallet.hold(self.resident) as card:
                self.outcome = run_device_login(client, card, self)
        except LoginAbortedError as exc:
            self._finish(Step.CANCELLED, exc.reason)
        except CardBusyError:
            client.cancel("card_unusable")
            self._finish(Step.FAILED, "card_busy")
        except PinBlockedError:
            self._finish(Step.FAILED, "pin_blocked")
        except EnrollmentUnavailableError:
            self._finish(Step.FAILED, "enrollment_unavailable")
        except CardError as exc:
            client.cancel("card_unusable")
            self._finish(Step.FAILED, "card_error", type(exc).__name__)
        except DeviceApiError as exc:
            self._finish(Step.FAILED, exc.code, exc.message)
        except DeviceProtocolError as exc:
            self._finish(Step.FAILED, "provider_error", str(exc))
        except Exception as exc:  # the phone must always end on a screen
            log.exception("phone flow %s failed", self.id[:6])
            self._finish(Step.FAILED, "internal_error", type(exc).__name__)
        else:
            self._finish(Step.DONE)
        finally:
            self.http.close()


class Phone:
    """The simulated phone app: its cards, the providers it knows, its running logins."""

    def __init__(
        self,
        wallet: Wallet,
        providers: Iterable[str],
        *,
        session_factory: Callable[[], requests.Session] = requests.Session,
        answer_timeout: float = ANSWER_TIMEOUT,
    ) -> None:
        self.wallet = wallet
        self.providers = tuple(p.rstrip("/").lower() for p in providers)
        self.session_factory = session_factory
        self.answer_timeout = answer_timeout
        self._flows: dict[str, PhoneFlow] = {}
        self._lock = threading.Lock()

    def read(self, text: str) -> ScannedQr:
        """The scanned text as a frame of a known provider (or ScanError)."""
        return read_scan(text, self.providers)

    def scan(self, text: str, resident: str) -> PhoneFlow:
        """Read ``text`` (frame URL or app link), pick the login up, start the card thread.

        Raises ScanError (nothing was sent), PickupError (the provider refused), KeyError (no
        such resident) or CardBusyError (before the pickup, so the login stays available).
        """
        scanned = self.read(text)
        if self.wallet.busy(resident):  # KeyError for an unknown resident
            raise CardBusyError(resident)
        http = PhoneHttp(self.session_factory)
        try:
            found = pickup(http, scanned)
        except PickupError:
            http.close()
            raise
        flow = PhoneFlow(
            id=secrets.token_urlsafe(16),
            resident=resident,
            scanned=scanned,
            found=found,
            wallet=self.wallet,
            http=http,
            answer_timeout=self.answer_timeout,
        )
        with self._lock:
            self._forget_old()
            self._flows[flow.id] = flow
        return flow.start()

    def flow(self, flow_id: str) -> PhoneFlow | None:
        with self._lock:
            return self._flows.get(flow_id)

    def _forget_old(self) -> None:
        now = time.monotonic()
        for key, flow in list(self._flows.items()):
            if now - flow.started > FLOW_LIFETIME and flow.screen().step in FINAL_STEPS:
                del self._flows[key]
