"""The cards the simulated phone can read: one :class:`VirtualCard` per test resident.

A card is made on first use from the test PKI (the same certificates and keys the demo trusts
and enrolls) and then kept for the simulator's lifetime, so PIN counters behave as on a real
card: three wrong PINs block it until :meth:`Wallet.replace` issues a fresh one (a visit to the
municipal office). Only one login at a time can hold a card (:meth:`Wallet.hold`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from idp.card.errors import CardError
from idp.card.jpki import JpkiClient
from idp.card.pin import PinKind
from idp.card.testpki import RESIDENTS, Resident, TestPki
from idp.card.transport import InProcessTransport
from idp.card.virtual import TEST_PIN, TEST_SIGN_PASSWORD, VirtualCard

__all__ = ["CardBusyError", "CardTries", "Wallet"]


class CardBusyError(Exception):
    """Another login on this phone is using the card right now."""


@dataclass(frozen=True)
class CardTries:
    """What the card says about its secrets (None: not read, e.g. the card is busy)."""

    pin: int | None
    password: int | None


class Wallet:
    """Virtual cards of the test residents, made on first use, kept with their PIN state."""

    def __init__(
        self, pki: TestPki, *, pin: str = TEST_PIN, sign_password: str = TEST_SIGN_PASSWORD
    ) -> None:
        self.pki = pki
        self._pin = pin
        self._sign_password = sign_password
        self._cards: dict[str, VirtualCard] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @staticmethod
    def residents() -> list[Resident]:
        return list(RESIDENTS.values())

    def card(self, resident: str) -> VirtualCard:
        if resident not in RESIDENTS:
            raise KeyError(resident)
        with self._guard:
            card = self._cards.get(resident)
            if card is None:
                credentials = self.pki.issue(RESIDENTS[resident])
                card = VirtualCard.from_credentials(
                    credentials, self.pki, pin=self._pin, sign_password=self._sign_password
                )
                self._cards[resident] = card
                self._locks.setdefault(resident, threading.Lock())
            return card

    def replace(self, resident: str) -> None:
        """A fresh card for ``resident`` (same certificates, counters reset)."""
        with self._guard:
            self._cards.pop(resident, None)
        self.card(resident)

    def loaded(self, resident: str) -> bool:
        """Whether ``resident``'s card has been used on this phone yet."""
        with self._guard:
            return resident in self._cards

    def busy(self, resident: str) -> bool:
        """Whether a login is using ``resident``'s card now."""
        self.card(resident)
        return self._locks[resident].locked()

    @contextmanager
    def hold(self, resident: str) -> Iterator[JpkiClient]:
        """Hold ``resident``'s card to the phone: a JPKI client over an in-process transport.

        The card is reset first (a new tap: nothing is verified or selected) and powered off
        afterwards. Raises :class:`CardBusyError` when another login holds it.
        """
        card = self.card(resident)
        lock = self._locks[resident]
        if not lock.acquire(blocking=False):
            raise CardBusyError(resident)
        try:
            card.reset()
            card.log.clear()  # keep the exchanges of the current tap only
            yield JpkiClient(InProcessTransport(card))
        finally:
            card.power_off()
            lock.release()

    def tries(self, resident: str) -> CardTries:
        """The PIN's and the password's tries left (an empty VERIFY each; costs no try)."""
        try:
            with self.hold(resident) as client:
                return CardTries(client.pin_tries(PinKind.AUTH), client.pin_tries(PinKind.SIGN))
        except (CardBusyError, CardError):
            return CardTries(None, None)
