"""The vpcd bridge: its wire protocol against a socket peer playing vpcd, then against real vpcd."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from idp.card.testpki import ResidentCredentials, TestPki
from idp.card.virtual import JPKI_ATR, VirtualCard
from idp.card.vpcd import VpcdBridge

SELECT_JPKI = bytes.fromhex("00A4040C0AD392F000260100000001")
SELECT_AUTH_PIN = bytes.fromhex("00A4020C020018")
SELECT_AUTH_KEY = bytes.fromhex("00A4020C020017")
VERIFY_1234 = bytes.fromhex("0020008004") + b"1234"
TRIES_QUERY = bytes.fromhex("00200080")
DIGEST = bytes(range(32))
DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420") + DIGEST
SIGN = b"\x80\x2a\x00\x80" + bytes((len(DIGEST_INFO),)) + DIGEST_INFO + b"\x00"
TIMEOUT = 5.0


class FakeVpcd:
    """The reader side of vpcd's protocol on an ephemeral loopback port (one card at a time)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(TIMEOUT)
        self.port: int = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self) -> None:
        self.conn, _ = self.server.accept()
        self.conn.settimeout(TIMEOUT)

    def send(self, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(len(payload).to_bytes(2, "big") + payload)

    def receive(self) -> bytes:
        assert self.conn is not None
        header = self._exact(2)
        return self._exact(int.from_bytes(header, "big"))

    def exchange(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.receive()

    def _exact(self, size: int) -> bytes:
        assert self.conn is not None
        data = b""
        while len(data) < size:
            chunk = self.conn.recv(size - len(data))
            if not chunk:
                raise EOFError("bridge closed the connection")
            data += chunk
        return data

    def drop(self) -> None:
        """vpcd goes away (e.g. pcscd restarts): close the card's connection."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def close(self) -> None:
        self.drop()
        self.server.close()


class RecordingCard:
    """A real ``VirtualCard`` that also records the power events the bridge delivers."""

    def __init__(self, inner: VirtualCard) -> None:
        self.inner = inner
        self.events: list[str] = []

    @property
    def atr(self) -> bytes:
        return self.inner.atr

    def process(self, raw: bytes) -> bytes:
        return self.inner.process(raw)

    def power_on(self) -> None:
        self.events.append("on")
        self.inner.power_on()

    def power_off(self) -> None:
        self.events.append("off")
        self.inner.power_off()

    def reset(self) -> None:
        self.events.append("reset")
        self.inner.reset()


class ExplodingCard(RecordingCard):
    def process(self, raw: bytes) -> bytes:
        raise RuntimeError("card bug")


@pytest.fixture
def card(pki: TestPki, yamada: ResidentCredentials) -> RecordingCard:
    return RecordingCard(VirtualCard.from_credentials(yamada, pki))


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


@pytest.fixture
def bridge(card: RecordingCard, vpcd: FakeVpcd) -> Iterator[VpcdBridge]:
    running = VpcdBridge(card, port=vpcd.port, retry_initial=0.01, retry_max=0.05).start()
    yield running
    running.stop()


def test_answers_atr_requests_and_apdus(bridge: VpcdBridge, vpcd: FakeVpcd) -> None:
    vpcd.accept()
    assert bridge.wait_connected(TIMEOUT)
    assert vpcd.exchange(b"\x04") == JPKI_ATR
    vpcd.send(b"\x01")  # power on: no reply
    assert vpcd.exchange(SELECT_JPKI) == b"\x90\x00"
    assert vpcd.exchange(SELECT_AUTH_PIN) == b"\x90\x00"
    assert vpcd.exchange(TRIES_QUERY) == b"\x63\xc3"
    assert bridge.apdus == 3


def test_signs_through_the_bridge(
    bridge: VpcdBridge, vpcd: FakeVpcd, yamada: ResidentCredentials
) -> None:
    vpcd.accept()
    for command in (SELECT_JPKI, SELECT_AUTH_PIN, VERIFY_1234, SELECT_AUTH_KEY):
        assert vpcd.exchange(command) == b"\x90\x00"
    response = vpcd.exchange(SIGN)
    assert response[-2:] == b"\x90\x00"
    public_key = yamada.auth_certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(response[:-2], DIGEST, padding.PKCS1v15(), Prehashed(hashes.SHA256()))


def test_control_codes_reach_the_card(
    bridge: VpcdBridge, vpcd: FakeVpcd, card: RecordingCard
) -> None:
    vpcd.accept()
    for code in (b"\x01", b"\x02", b"\x00"):
        vpcd.send(code)
    assert vpcd.exchange(b"\x04") == JPKI_ATR  # replies are ordered after the control codes
    assert card.events == ["on", "reset", "off"]


def test_reset_clears_the_verified_pin(bridge: VpcdBridge, vpcd: FakeVpcd) -> None:
    vpcd.accept()
    for command in (SELECT_JPKI, SELECT_AUTH_PIN, VERIFY_1234):
        assert vpcd.exchange(command) == b"\x90\x00"
    vpcd.send(b"\x02")
    assert vpcd.exchange(SELECT_JPKI) == b"\x90\x00"
    assert vpcd.exchange(SELECT_AUTH_KEY) == b"\x90\x00"
    assert vpcd.exchange(SIGN) == b"\x69\x82"


def test_waits_for_vpcd_and_reconnects_after_it_goes_away(
    card: RecordingCard, bridge: VpcdBridge, vpcd: FakeVpcd
) -> None:
    vpcd.accept()
    assert vpcd.exchange(b"\x04") == JPKI_ATR
    vpcd.drop()
    vpcd.accept()  # the bridge comes back by itself
    assert vpcd.exchange(b"\x04") == JPKI_ATR
    assert "off" in card.events  # losing vpcd is a power loss for the card


def test_connects_once_vpcd_starts_listening(card: RecordingCard) -> None:
    placeholder = socket.create_server(("127.0.0.1", 0))
    port = placeholder.getsockname()[1]
    placeholder.close()  # nothing listens on ``port`` now
    bridge = VpcdBridge(card, port=port, retry_initial=0.01, retry_max=0.05).start()
    try:
        assert not bridge.wait_connected(0.1)
        server = socket.create_server(("127.0.0.1", port))
        server.settimeout(TIMEOUT)
        with server:
            conn, _ = server.accept()
            with conn:
                assert bridge.wait_connected(TIMEOUT)
    finally:
        bridge.stop()


def test_stop_closes_the_connection(bridge: VpcdBridge, vpcd: FakeVpcd) -> None:
    vpcd.accept()
    assert bridge.wait_connected(TIMEOUT)
    bridge.stop()
    with pytest.raises(EOFError):
        vpcd.receive()
    assert not bridge.connected.is_set()
    assert bridge.stopped


def test_stop_while_waiting_for_vpcd_returns_promptly(card: RecordingCard) -> None:
    placeholder = socket.create_server(("127.0.0.1", 0))
    port = placeholder.getsockname()[1]
    placeholder.close()
    bridge = VpcdBridge(card, port=port, retry_initial=10.0, retry_max=10.0).start()
    stopper = threading.Thread(target=bridge.stop)
    stopper.start()
    stopper.join(TIMEOUT)
    assert not stopper.is_alive()


def test_a_failing_card_answers_6f00_and_keeps_the_reader(
    card: RecordingCard, vpcd: FakeVpcd, caplog: pytest.LogCaptureFixture
) -> None:
    bridge = VpcdBridge(ExplodingCard(card.inner), port=vpcd.port).start()
    try:
        vpcd.accept()
        assert vpcd.exchange(VERIFY_1234) == b"\x6f\x00"
        assert vpcd.exchange(b"\x04") == JPKI_ATR
    finally:
        bridge.stop()
    logged = caplog.text
    assert "INS 20" in logged
    assert "1234" not in logged and b"1234".hex() not in logged  # never the PIN


@pytest.mark.parametrize("host", ["192.0.2.1", "0.0.0.0", "example.org"])
def test_only_loopback(card: RecordingCard, host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        VpcdBridge(card, host=host)


@pytest.mark.pcsc
def test_real_vpcd_sees_the_card(card: RecordingCard) -> None:
    from idp.card import pcsc

    bridge = VpcdBridge(card).start()
    try:
        assert bridge.wait_connected(TIMEOUT)
        assert pcsc.wait_for_card("Virtual PCD 00 00", timeout=TIMEOUT)
        assert "on" in card.events  # pcscd powered the card up
    finally:
        bridge.stop()
    assert pcsc.wait_for_card("Virtual PCD 00 00", timeout=TIMEOUT, present=False)
