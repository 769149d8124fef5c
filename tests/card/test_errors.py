"""Typed errors: status words, bad responses, bad card content, removed cards, bad PINs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idp.card.errors import (
    ApduFormatError,
    CardContentError,
    CardFileNotFoundError,
    CardRemovedError,
    CardStatusError,
    ConditionsNotSatisfiedError,
    InstructionNotSupportedError,
    MalformedResponseError,
    PinBlockedError,
    PinFormatError,
    SecurityStatusError,
    UnexpectedStatusError,
    WrongLengthError,
    WrongParametersError,
    WrongPinError,
    describe_sw,
    error_for_status,
)
from idp.card.jpki import JpkiClient, PinKind
from idp.card.jpki_ap import EF_AUTH_CERT, JPKI_AID
from idp.card.pin import encode_auth_pin, encode_pin, encode_sign_password
from idp.card.transport import InProcessTransport, ScriptTransport, Transport
from idp.card.virtual import VirtualCard
from idp.card.virtual_files import BinaryFile

DIGEST_INFO = (
    bytes.fromhex("3031300D060960864801650304020105000420") + hashlib.sha256(b"m").digest()
)
SELECT_JPKI = "00A4040C0AD392F000260100000001"
OK = "9000"


def script(*pairs: tuple[str, str]) -> ScriptTransport:
    return ScriptTransport.from_hex(pairs)


# -- status words ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sw", "error"),
    [
        (0x63C2, WrongPinError),
        (0x63C1, WrongPinError),
        (0x63C0, PinBlockedError),
        (0x6984, PinBlockedError),
        (0x6982, SecurityStatusError),
        (0x6A82, CardFileNotFoundError),
        (0x6700, WrongLengthError),
        (0x6C10, WrongLengthError),
        (0x6A86, WrongParametersError),
        (0x6B00, WrongParametersError),
        (0x6985, ConditionsNotSatisfiedError),
        (0x6D00, InstructionNotSupportedError),
        (0x6E00, InstructionNotSupportedError),
        (0x6F00, UnexpectedStatusError),
        (0x6300, UnexpectedStatusError),
        (0x9000, UnexpectedStatusError),
    ],
)
def test_status_words_map_to_typed_errors(sw: int, error: type[CardStatusError]) -> None:
    raised = error_for_status(sw)
    assert type(raised) is error and raised.sw == sw
    assert f"SW=0x{sw:04X}" in str(raised)


def test_wrong_pin_error_carries_tries_left() -> None:
    error = error_for_status(0x63C2)
    assert isinstance(error, WrongPinError) and error.tries_left == 2
    assert describe_sw(0x63C2) == "SW=0x63C2 (VERIFY_FAILED_2_TRIES_LEFT)"


@given(st.integers(0, 0xFFFF))
def test_every_status_word_has_a_card_status_error(sw: int) -> None:
    assert isinstance(error_for_status(sw), CardStatusError)


# -- malformed and unexpected responses ------------------------------------------------------------


def test_truncated_response_is_malformed() -> None:
    client = JpkiClient(script((SELECT_JPKI, "90")))
    with pytest.raises(MalformedResponseError):
        client.select_ap()


def test_read_returning_more_than_asked_is_malformed() -> None:
    client = JpkiClient(
        script((SELECT_JPKI, OK), ("00A4020C020006", OK), ("00B0000020", "00" * 33 + OK))
    )
    with pytest.raises(MalformedResponseError, match="33 bytes, 32"):
        client.read_token_info()


def test_short_signature_is_malformed() -> None:
    client = JpkiClient(
        script(
            (SELECT_JPKI, OK),
            ("00A4020C020017", OK),
            ("802A008033" + DIGEST_INFO.hex() + "00", "AB" * 255 + OK),
        )
    )
    with pytest.raises(MalformedResponseError, match="255 bytes"):
        client.sign(PinKind.AUTH, DIGEST_INFO)


@pytest.mark.parametrize(
    ("sw", "error"),
    [
        ("9000", UnexpectedStatusError),
        ("6300", UnexpectedStatusError),
        ("6982", SecurityStatusError),
    ],
)
def test_pin_tries_demands_63cx(sw: str, error: type[CardStatusError]) -> None:
    client = JpkiClient(script((SELECT_JPKI, OK), ("00A4020C020018", OK), ("00200080", sw)))
    with pytest.raises(error):
        client.pin_tries(PinKind.AUTH)


def test_pin_tries_of_a_blocked_pin_is_zero() -> None:
    client = JpkiClient(script((SELECT_JPKI, OK), ("00A4020C02001B", OK), ("00200080", "63C0")))
    assert client.pin_tries(PinKind.SIGN) == 0


def test_select_failure_is_typed_and_forgets_the_ef() -> None:
    transport = script(
        (SELECT_JPKI, OK),
        ("00A4020C02000A", "6A82"),
        ("00A4020C02000A", OK),  # selected again, not assumed
        ("00B0000000", "3003020100" + OK),
    )
    client = JpkiClient(transport)
    with pytest.raises(CardFileNotFoundError):
        client.read_auth_certificate()
    assert client.read_auth_certificate() == bytes.fromhex("3003020100")
    assert transport.finished


def test_wrong_le_is_retried_once_with_the_right_le() -> None:
    transport = script(
        (SELECT_JPKI, OK),
        ("00A4020C020006", OK),
        ("00B0000020", "6C20"),
        ("00B0000020", "4A504B494150494343544F4B454E32" + "20" * 17 + OK),
    )
    assert JpkiClient(transport).read_token_info().label == "JPKIAPICCTOKEN2"
    assert transport.finished


def test_read_binary_argument_checks() -> None:
    client = JpkiClient(script())
    for offset, length in ((-1, 1), (0x8000, 1), (0, 0), (0, 257)):
        with pytest.raises(ValueError):
            client.read_binary(offset, length)


@pytest.mark.parametrize(
    "label",
    ["4A504B49" + "FF" * 28, "4A504B49"],  # not ASCII; shorter than a label
)
def test_bad_token_label(label: str) -> None:
    client = JpkiClient(
        script((SELECT_JPKI, OK), ("00A4020C020006", OK), ("00B0000020", label + OK))
    )
    with pytest.raises(CardContentError):
        client.read_token_info()


# -- garbage in the certificate EF -----------------------------------------------------------------


@pytest.fixture
def garbage_card(card: VirtualCard) -> Callable[[bytes], JpkiClient]:
    def with_auth_ef(content: bytes) -> JpkiClient:
        card.applications[JPKI_AID].files[EF_AUTH_CERT] = BinaryFile(content)
        return JpkiClient(InProcessTransport(card))

    return with_auth_ef


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff" * 300, "tag longer"),
        (b"\x02" * 300, "SEQUENCE"),
        (bytes.fromhex("FF100C") + b"123456789012", "SEQUENCE"),  # not a cert, whatever it is
        (bytes.fromhex("3080") + bytes(300), "indefinite"),
        (bytes.fromhex("30830100") + bytes(300), "more than"),  # claims 64 KiB
        (bytes.fromhex("3085") + bytes(300), "too large"),
        (bytes.fromhex("3082"), "truncated"),
        (bytes.fromhex("30820400") + bytes(252), "ends before"),  # EF of 256 of 1028 bytes
        (bytes.fromhex("30820400") + bytes(600), "ends before"),  # 6B00 in the middle
        (bytes.fromhex("30820400") + bytes(100), "ends before"),  # first read already short
    ],
)
def test_garbage_certificate(
    garbage_card: Callable[[bytes], JpkiClient], content: bytes, message: str
) -> None:
    client = garbage_card(content)
    with pytest.raises(CardContentError, match=message):
        client.read_auth_certificate()


def test_certificate_shorter_than_one_read(garbage_card: Callable[[bytes], JpkiClient]) -> None:
    # A DER object of 100 bytes followed by filler: only the object comes back.
    content = bytes.fromhex("3062") + bytes(98) + b"\xff" * 500
    assert garbage_card(content).read_auth_certificate() == content[:100]


def test_filler_after_the_certificate_is_never_read(
    garbage_card: Callable[[bytes], JpkiClient],
) -> None:
    content = bytes.fromhex("30820300") + bytes(0x300) + b"\xee" * 1000
    client = garbage_card(content)
    assert client.read_auth_certificate() == content[:0x304]
    reads = [c for c in client.transport.stats.commands if c[:2] == b"\x00\xb0"]
    assert [c.hex().upper() for c in reads] == [
        "00B0000000",
        "00B0010000",
        "00B0020000",
        "00B0030004",
    ]


# -- the card goes away ----------------------------------------------------------------------------


class RemovedAfter(Transport):
    """Passes ``count`` APDUs to the card, then the card is gone."""

    def __init__(self, card: VirtualCard, count: int) -> None:
        super().__init__()
        self.card = card
        self.remaining = count

    def _exchange(self, raw: bytes) -> bytes:
        if self.remaining == 0:
            raise CardRemovedError("card removed")
        self.remaining -= 1
        return self.card.process(raw)


@pytest.mark.parametrize("count", range(0, 6))
def test_card_removed_mid_read(card: VirtualCard, count: int) -> None:
    transport = RemovedAfter(card, count)
    client = JpkiClient(transport)
    with pytest.raises(CardRemovedError):
        client.read_auth_certificate()
    # Reinserted: the client selects everything again instead of trusting stale state.
    card.reset()
    transport.remaining = 100
    before = len(card.commands)
    assert client.read_auth_certificate()[:1] == b"\x30"
    assert card.commands[before] == bytes.fromhex(SELECT_JPKI)


def test_card_removed_before_signing(card: VirtualCard) -> None:
    client = JpkiClient(RemovedAfter(card, 4))
    with pytest.raises(CardRemovedError):
        client.authenticate(DIGEST_INFO, "1234")
    assert card.commands[-1] == bytes.fromhex("00A4020C020017")


# -- PINs of the wrong shape never reach the card --------------------------------------------------

BAD_PINS = ["", "123", "12345", "12a4", "１２３４", "12 4", "1234\n", "٤٣٢١", "+123"]
BAD_PASSWORDS = [
    "",
    "ABC12",  # too short
    "ABCDEFGHIJ1234567",  # too long
    "ABCDEF",  # no digit
    "123456",  # no letter
    "ABC-123",
    "ABC 123",
    "ＡＢＣ１２３",  # full-width
    "abcſ12",  # ſ upper-cases to S: refused, not folded
    "ABC123\n",
]


@pytest.mark.parametrize("pin", BAD_PINS)
def test_bad_auth_pins_send_nothing(card: VirtualCard, client: JpkiClient, pin: str) -> None:
    for call in (
        lambda: client.verify_pin(PinKind.AUTH, pin),
        lambda: client.authenticate(DIGEST_INFO, pin),
        lambda: client.login(DIGEST_INFO, pin),
    ):
        with pytest.raises(PinFormatError):
            call()
    assert card.log == [] and client.transport.stats.round_trips == 0


@pytest.mark.parametrize("password", BAD_PASSWORDS)
def test_bad_sign_passwords_send_nothing(
    card: VirtualCard, client: JpkiClient, password: str
) -> None:
    for call in (
        lambda: client.verify_pin(PinKind.SIGN, password),
        lambda: client.enroll(DIGEST_INFO, password),
    ):
        with pytest.raises(PinFormatError):
            call()
    assert card.log == []


def test_pin_format_messages_do_not_echo_the_value() -> None:
    with pytest.raises(PinFormatError) as caught:
        encode_auth_pin("98765")
    assert "98765" not in str(caught.value)
    with pytest.raises(PinFormatError) as caught:
        encode_sign_password("SECRETPASSWORD")
    assert "SECRETPASSWORD" not in str(caught.value)


def test_pin_encodings() -> None:
    assert encode_auth_pin("0123") == b"0123"
    assert encode_sign_password("abc123") == b"ABC123"
    assert encode_sign_password("A1B2C3D4E5F6G7H8") == b"A1B2C3D4E5F6G7H8"
    assert encode_pin(PinKind.SIGN, "xyz789") == b"XYZ789"
    with pytest.raises(TypeError):
        encode_auth_pin(1234)  # type: ignore[arg-type]


@given(st.text(max_size=20))
def test_any_text_is_a_pin_or_pin_format_error(text: str) -> None:
    for kind in PinKind:
        try:
            encoded = encode_pin(kind, text)
        except PinFormatError:
            continue
        assert encoded.isascii() and encoded.isalnum()
        assert len(encoded) == 4 if kind is PinKind.AUTH else 6 <= len(encoded) <= 16


@pytest.mark.parametrize("data", [b"", bytes(246)])
def test_bad_signature_input_sends_nothing(
    card: VirtualCard, client: JpkiClient, data: bytes
) -> None:
    for call in (
        lambda: client.sign(PinKind.AUTH, data),
        lambda: client.authenticate(data, "1234"),
        lambda: client.enroll(data, "ABC123"),
    ):
        with pytest.raises(ApduFormatError):
            call()
    assert card.log == []
