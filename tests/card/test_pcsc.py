"""PcscTransport through real pcscd and vpcd, with a VirtualCard served by the vpcd bridge."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from idp.card import pcsc
from idp.card.apdu import CommandApdu
from idp.card.challenge import Challenge
from idp.card.errors import (
    CardBusyError,
    CardError,
    CardRemovedError,
    NoCardError,
    NoReaderError,
    PcscUnavailableError,
    PinBlockedError,
    WrongPinError,
)
from idp.card.jpki import JpkiClient
from idp.card.pin import PinKind
from idp.card.virtual import JPKI_ATR, VirtualCard

pytestmark = pytest.mark.pcsc

Insert = Callable[..., Any]  # the ``emulated_card`` factory (tests/conftest.py)
VPCD_READER = "Virtual PCD 00 00"
SECOND_READER = "Virtual PCD 00 01"


def test_pyscard_sees_the_reader_and_the_card(emulated_card: Insert) -> None:
    from smartcard.CardRequest import CardRequest

    emulated_card()
    assert VPCD_READER in pcsc.list_readers()
    service = CardRequest(timeout=5, readers=[VPCD_READER]).waitforcard()
    try:
        service.connection.connect()
        assert bytes(service.connection.getATR()) == JPKI_ATR
    finally:
        service.connection.release()


def test_connects_with_t1_and_reports_the_atr(emulated_card: Insert) -> None:
    emulated_card()
    with pcsc.PcscTransport(VPCD_READER) as transport:
        assert transport.reader == VPCD_READER
        assert transport.atr == JPKI_ATR
        response = transport.transmit(CommandApdu(0x00, 0xA4, 0x04, 0x0C, bytes(10)))
        assert response.sw == 0x6A82  # an unknown AID fails, as on a real card
    assert pcsc.card_present(VPCD_READER)


def test_the_card_is_held_exclusively_while_we_use_it(emulated_card: Insert) -> None:
    # Shared access would let another program switch applications between our SELECTs.
    emulated_card()
    with pcsc.PcscTransport(VPCD_READER) as transport:
        with pytest.raises(CardBusyError):
            pcsc.PcscTransport(VPCD_READER)
        assert transport.transmit(CommandApdu(0x00, 0xA4, 0x04, 0x0C, bytes(10))).sw == 0x6A82
    with pcsc.PcscTransport(VPCD_READER, exclusive=False) as first:
        with pcsc.PcscTransport(VPCD_READER, exclusive=False) as second:
            assert first.atr == second.atr == JPKI_ATR


def test_no_reader_name_picks_the_reader_with_the_card(emulated_card: Insert) -> None:
    emulated_card()
    with pcsc.PcscTransport() as transport:
        assert transport.reader == VPCD_READER


def test_reader_by_unique_part_of_its_name(emulated_card: Insert) -> None:
    emulated_card()
    with pcsc.PcscTransport("PCD 00 00") as transport:
        assert transport.reader == VPCD_READER


def test_jpki_client_reads_certificates_and_pin_tries(emulated_card: Insert) -> None:
    emulated = emulated_card()
    with pcsc.PcscTransport(VPCD_READER) as transport:
        client = JpkiClient(transport)
        client.select_ap()
        certificate = client.read_auth_certificate()
        assert certificate == emulated.credentials.auth_certificate.public_bytes(Encoding.DER)
        ca = x509.load_der_x509_certificate(client.read_auth_ca())
        assert ca == emulated.pki.auth_ca.certificate
        assert client.pin_tries(PinKind.AUTH) == 3
        assert client.pin_tries(PinKind.SIGN) == 5


def test_authenticates_with_pin1_and_the_signature_verifies(emulated_card: Insert) -> None:
    emulated = emulated_card()
    challenge = Challenge(
        origin="https://idp.example.jp", nonce="bm9uY2U", transaction_id="tx-1", purpose="login"
    )
    with pcsc.PcscTransport(VPCD_READER) as transport:
        client = JpkiClient(transport)
        signed = client.login(challenge.digest_info(), "1234")
    certificate = x509.load_der_x509_certificate(signed.certificate)
    assert certificate == emulated.credentials.auth_certificate
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(
        signed.signature, challenge.to_be_signed(), padding.PKCS1v15(), hashes.SHA256()
    )


def test_wrong_pin_then_blocked_is_typed(emulated_card: Insert) -> None:
    emulated_card()
    with pcsc.PcscTransport(VPCD_READER) as transport:
        client = JpkiClient(transport)
        with pytest.raises(WrongPinError) as first:
            client.verify_pin(PinKind.AUTH, "9999")
        assert first.value.tries_left == 2
        with pytest.raises(WrongPinError):
            client.verify_pin(PinKind.AUTH, "9999")
        with pytest.raises(PinBlockedError):
            client.verify_pin(PinKind.AUTH, "9999")
        assert client.pin_tries(PinKind.AUTH) == 0
        with pytest.raises(PinBlockedError):
            client.verify_pin(PinKind.AUTH, "1234")


def test_pin_counters_survive_reconnecting(emulated_card: Insert) -> None:
    emulated_card()
    with pcsc.PcscTransport(VPCD_READER) as transport, pytest.raises(WrongPinError):
        JpkiClient(transport).verify_pin(PinKind.AUTH, "0000")
    with pcsc.PcscTransport(VPCD_READER) as transport:
        assert JpkiClient(transport).pin_tries(PinKind.AUTH) == 2


def test_card_removed_mid_session(emulated_card: Insert) -> None:
    emulated = emulated_card()
    with pcsc.PcscTransport(VPCD_READER) as transport:
        client = JpkiClient(transport)
        client.select_ap()
        emulated.remove()
        with pytest.raises(CardRemovedError):
            client.read_auth_certificate()


def test_card_removed_then_reinserted_needs_a_new_connection(emulated_card: Insert) -> None:
    emulated_card()
    with pcsc.PcscTransport(VPCD_READER) as transport:
        JpkiClient(transport).select_ap()
        emulated_card()  # removes the first card, inserts a fresh one
        with pytest.raises(CardRemovedError):
            JpkiClient(transport).select_ap()
    with pcsc.PcscTransport(VPCD_READER) as transport:
        JpkiClient(transport).select_ap()


def test_no_card() -> None:
    assert not pcsc.card_present(SECOND_READER)
    with pytest.raises(NoCardError):
        pcsc.PcscTransport(SECOND_READER)


def test_waiting_for_a_card_gives_up(emulated_card: Insert) -> None:
    with pytest.raises(NoCardError, match="within"):
        pcsc.PcscTransport(SECOND_READER, wait_seconds=0.2)


def test_no_such_reader() -> None:
    with pytest.raises(NoReaderError):
        pcsc.PcscTransport("No Such Reader 99")


class StallingCard:
    """A real ``VirtualCard`` that stalls on READ BINARY until ``release`` is set."""

    def __init__(self, inner: VirtualCard) -> None:
        self.inner = inner
        self.stalled = threading.Event()
        self.release = threading.Event()

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    def process(self, raw: bytes) -> bytes:
        if raw[1] == 0xB0:
            self.stalled.set()
            self.release.wait(10)
        return self.inner.process(raw)

    def power_on(self) -> None:
        self.inner.power_on()

    def power_off(self) -> None:
        self.inner.power_off()

    def reset(self) -> None:
        self.inner.reset()


def test_card_removed_mid_command(emulated_card: Insert) -> None:
    emulated = emulated_card(serve=StallingCard)
    card = emulated.slot
    try:
        with pcsc.PcscTransport(VPCD_READER) as transport:
            client = JpkiClient(transport)
            client.select_ap()
            outcome: list[CardError] = []

            def read() -> None:
                try:
                    client.read_auth_certificate()
                except CardError as exc:  # handed to the test thread
                    outcome.append(exc)

            reader = threading.Thread(target=read)
            reader.start()
            assert card.stalled.wait(5)
            # Pulled out while the card works.
            stopper = threading.Thread(target=emulated.bridge.stop)
            stopper.start()
            card.release.set()
            stopper.join(5)
            reader.join(5)
        assert len(outcome) == 1
        assert isinstance(outcome[0], CardRemovedError)
    finally:
        card.release.set()
    # Closing the connection to the lost card marked the reader empty before pcscd's reader
    # monitor had seen the card go; a card inserted in that gap used to be ignored by pcscd.
    assert not pcsc.card_present(VPCD_READER)
    emulated_card()  # waits for the monitor's count of the removal, then for the new card
    with pcsc.PcscTransport(VPCD_READER) as transport:
        assert JpkiClient(transport).pin_tries(PinKind.AUTH) == 3


def test_card_events_count_each_insertion_and_removal(emulated_card: Insert) -> None:
    before = pcsc.card_events(VPCD_READER)
    emulated = emulated_card()
    assert pcsc.card_events(VPCD_READER) == (before + 1) & 0xFFFF
    emulated.remove()
    assert pcsc.card_events(VPCD_READER) == (before + 2) & 0xFFFF
    assert pcsc.wait_for_card(VPCD_READER, timeout=0, present=False, since=(before + 1) & 0xFFFF)
    assert not pcsc.wait_for_card(
        VPCD_READER, timeout=0.2, present=False, since=(before + 2) & 0xFFFF
    )


@pytest.mark.parametrize(
    ("code", "connected", "error"),
    [
        (0x8010001D, False, PcscUnavailableError),  # SCARD_E_NO_SERVICE
        (0x80100013, False, PcscUnavailableError),  # SCARD_F_COMM_ERROR: pcscd went away
        (0x80100013, True, CardRemovedError),  # ... during a transmit: the session is lost
        (0x80100069, True, CardRemovedError),  # SCARD_W_REMOVED_CARD
        (0x8010000C, False, NoCardError),  # SCARD_E_NO_SMARTCARD
        (0x80100009, False, NoReaderError),  # SCARD_E_UNKNOWN_READER
        (0x8010000B, False, CardBusyError),  # SCARD_E_SHARING_VIOLATION
    ],
)
def test_pcsc_return_codes_map_to_typed_errors(
    code: int, connected: bool, error: type[CardError]
) -> None:
    mapped = pcsc._error(code, reader=VPCD_READER, connected=connected)
    assert type(mapped) is error
