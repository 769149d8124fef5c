"""Command/response APDU encoding and DER headers: round trips and robustness on any bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idp.card.apdu import CommandApdu, ResponseApdu
from idp.card.der import MAX_CERTIFICATE_LENGTH, TlvHeader, certificate_length, read_header
from idp.card.errors import ApduFormatError, CardContentError, MalformedResponseError

byte = st.integers(0, 255)


@st.composite
def commands(draw: st.DrawFn) -> CommandApdu:
    data = draw(st.one_of(st.binary(max_size=255), st.binary(min_size=256, max_size=700)))
    le = draw(st.one_of(st.none(), st.integers(1, 256), st.integers(257, 65536)))
    return CommandApdu(draw(byte), draw(byte), draw(byte), draw(byte), data, le)


# -- command APDUs ---------------------------------------------------------------------------------


@given(commands())
def test_command_round_trip(command: CommandApdu) -> None:
    assert CommandApdu.parse(command.to_bytes()) == command


@given(commands())
def test_command_round_trip_extended(command: CommandApdu) -> None:
    assert CommandApdu.parse(command.to_bytes(extended=True)) == command


@given(st.binary(max_size=600))
def test_command_parse_of_any_bytes_is_an_apdu_or_apdu_format_error(raw: bytes) -> None:
    try:
        command = CommandApdu.parse(raw)
    except ApduFormatError:
        return
    # What parses re-encodes to a command that parses back the same.
    assert CommandApdu.parse(command.to_bytes()) == command


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "00A4040C0AD392F000260100000001",
            CommandApdu(0, 0xA4, 4, 0x0C, bytes.fromhex("D392F000260100000001")),
        ),
        ("00B0000000", CommandApdu(0, 0xB0, 0, 0, le=256)),
        ("00B0010004", CommandApdu(0, 0xB0, 1, 0, le=4)),
        ("00200080", CommandApdu(0, 0x20, 0, 0x80)),
        ("002000800431323334", CommandApdu(0, 0x20, 0, 0x80, b"1234")),
        ("802A008003AABBCC00", CommandApdu(0x80, 0x2A, 0, 0x80, b"\xaa\xbb\xcc", 256)),
    ],
)
def test_known_encodings(raw: str, expected: CommandApdu) -> None:
    assert CommandApdu.parse(bytes.fromhex(raw)) == expected
    assert expected.to_bytes() == bytes.fromhex(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "00",
        "00A404",
        "00A4040C0AD392",
        "00A4040C01AABB00CC",
        "00A4040C000003AA",
        "00B0000000AA",
    ],
)
def test_malformed_commands(raw: str) -> None:
    with pytest.raises(ApduFormatError):
        CommandApdu.parse(bytes.fromhex(raw))


@pytest.mark.parametrize(
    "kwargs",
    [{"cla": 256}, {"ins": -1}, {"le": 0}, {"le": 65537}, {"data": bytes(65536)}],
)
def test_command_construction_refuses_impossible_fields(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"cla": 0, "ins": 0xB0, "p1": 0, "p2": 0, **kwargs}
    with pytest.raises(ApduFormatError):
        CommandApdu(**fields)  # type: ignore[arg-type]


# -- response APDUs --------------------------------------------------------------------------------


@given(st.binary(max_size=1000), st.integers(0, 0xFFFF))
def test_response_round_trip(data: bytes, sw: int) -> None:
    response = ResponseApdu(data, sw)
    assert ResponseApdu.parse(response.to_bytes()) == response
    assert response.ok == (sw == 0x9000)
    assert (response.sw1, response.sw2) == (sw >> 8, sw & 0xFF)


@given(st.binary(max_size=300))
def test_response_parse_of_any_bytes(raw: bytes) -> None:
    try:
        response = ResponseApdu.parse(raw)
    except MalformedResponseError:
        assert len(raw) < 2
        return
    assert response.to_bytes() == raw


def test_oversized_response_is_malformed() -> None:
    with pytest.raises(MalformedResponseError):
        ResponseApdu.parse(bytes(65539))


# -- DER headers -----------------------------------------------------------------------------------


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes((length,))
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


@given(st.integers(0, 2**32 - 1), st.binary(max_size=8))
def test_header_round_trip(length: int, tail: bytes) -> None:
    encoded = b"\x30" + encode_length(length)
    header = read_header(encoded + tail)
    assert header == TlvHeader(tag=0x30, header_length=len(encoded), length=length)


@pytest.mark.parametrize(
    ("raw", "tag", "header_length", "length"),
    [
        ("3082052F", 0x30, 4, 0x52F),  # what OpenSC expects from a certificate
        ("30820100", 0x30, 4, 256),
        ("3081FF", 0x30, 3, 255),
        ("307F", 0x30, 2, 127),
        ("0400", 0x04, 2, 0),
        ("5F5103", 0x5F51, 3, 3),  # two-octet tag
        ("FF2081C8", 0xFF20, 4, 200),  # the 券面事項入力補助AP's 基本4情報 tag, for the record
        ("3084000004D2", 0x30, 6, 1234),  # non-minimal BER length still decodes
    ],
)
def test_known_headers(raw: str, tag: int, header_length: int, length: int) -> None:
    assert read_header(bytes.fromhex(raw)) == TlvHeader(tag, header_length, length)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "truncated"),
        ("30", "truncated"),
        ("3082", "truncated"),
        ("308205", "truncated"),
        ("1F", "truncated"),
        ("1F81", "truncated"),
        ("1F81818181", "longer than 4"),
        ("3080", "indefinite"),
        ("3085FFFFFFFFFF", "too large"),
    ],
)
def test_bad_headers(raw: str, message: str) -> None:
    with pytest.raises(CardContentError, match=message):
        read_header(bytes.fromhex(raw))


def test_length_cap() -> None:
    assert read_header(bytes.fromhex("30823FFC"), max_total_length=16384).total_length == 16384
    with pytest.raises(CardContentError, match="more than"):
        read_header(bytes.fromhex("30823FFD"), max_total_length=16384)


def test_certificate_length() -> None:
    assert certificate_length(bytes.fromhex("3082052F3082")) == 0x52F + 4
    assert MAX_CERTIFICATE_LENGTH == 16 * 1024
    with pytest.raises(CardContentError, match="SEQUENCE"):
        certificate_length(bytes.fromhex("FF100C"))  # e.g. a My Number object: never a cert
    with pytest.raises(CardContentError, match="empty"):
        certificate_length(bytes.fromhex("3000"))
    with pytest.raises(CardContentError, match="more than"):
        certificate_length(bytes.fromhex("3082FFFF"))
    with pytest.raises(CardContentError, match="more than"):
        certificate_length(bytes.fromhex("30820100"), max_length=256)


@given(st.binary(max_size=16))
def test_any_prefix_gives_a_header_or_card_content_error(prefix: bytes) -> None:
    try:
        header = read_header(prefix, max_total_length=MAX_CERTIFICATE_LENGTH)
    except CardContentError:
        return
    assert header.header_length <= len(prefix)
    assert header.total_length <= MAX_CERTIFICATE_LENGTH
