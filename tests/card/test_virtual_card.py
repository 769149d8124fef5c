"""The virtual card at the APDU level: every command written out in hex, as on the wire."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp.card.errors import PinFormatError
from idp.card.testpki import ResidentCredentials, TestPki
from idp.card.virtual import JPKI_ATR, VirtualCard

CardFactory = Callable[..., VirtualCard]

SELECT_JPKI = "00A4040C0AD392F000260100000001"
SELECT_TEXT = "00A4040C0AD3921000310001010408"
SELECT_VISUAL = "00A4040C0AD3921000310001010402"
SELECT_JUKI = "00A4040C0AD3921000310001010401"
SELECT_COMMON = "00A4040C0AD3921000310001010100"
SHA256_PREFIX = "3031300D060960864801650304020105000420"
MESSAGE = b"challenge bytes the server chose"


def select_ef(fid: str) -> str:
    return "00A4020C02" + fid


def send(card: VirtualCard, command: str) -> tuple[bytes, int]:
    raw = card.process(bytes.fromhex(command.replace(" ", "")))
    assert len(raw) >= 2
    return raw[:-2], int.from_bytes(raw[-2:], "big")


def sw(card: VirtualCard, *commands: str) -> list[int]:
    """Send each command; the status words in order."""
    return [send(card, c)[1] for c in commands]


def verify(secret: str) -> str:
    data = secret.encode("ascii")
    return f"00200080{len(data):02X}{data.hex()}"


def sign_apdu(data: bytes) -> str:
    return f"802A0080{len(data):02X}{data.hex()}00"


def digest_info(message: bytes) -> bytes:
    return bytes.fromhex(SHA256_PREFIX) + hashlib.sha256(message).digest()


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


# -- ATR, SELECT, unknown commands -----------------------------------------------------------------


def test_atr_is_the_contact_jpki_atr(card: VirtualCard) -> None:
    assert card.atr == JPKI_ATR == bytes.fromhex("3BE000FF8131FE4514")


def test_select_jpki_ap_answers_bare_9000(card: VirtualCard) -> None:
    assert send(card, SELECT_JPKI) == (b"", 0x9000)


@pytest.mark.parametrize(
    "fid", ["0001", "0002", "0006", "0008", "000A", "000B", "0017", "0018", "001A", "001B"]
)
def test_every_jpki_ef_is_selectable_without_fci(card: VirtualCard, fid: str) -> None:
    send(card, SELECT_JPKI)
    assert send(card, select_ef(fid)) == (b"", 0x9000)


@pytest.mark.parametrize("fid", ["3F00", "0000", "0003", "0005", "0009", "0016", "FFFF"])
def test_unknown_efs_are_6a82(card: VirtualCard, fid: str) -> None:
    send(card, SELECT_JPKI)
    assert sw(card, select_ef(fid)) == [0x6A82]


@pytest.mark.parametrize(
    "aid",
    [
        "A000000308000010000100",  # PIV
        "A0000000030000",  # GlobalPlatform-ish
        "D276000124010304",  # OpenPGP
        "D392F0002601",  # a prefix of the JPKI AID: no prefix matching here
        "D392F00026010000000100",  # longer than the JPKI AID
    ],
)
def test_unknown_aids_are_6a82(card: VirtualCard, aid: str) -> None:
    length = len(aid) // 2
    assert sw(card, f"00A4040C{length:02X}{aid}") == [0x6A82]


def test_select_with_fci_requested_is_6a86(card: VirtualCard) -> None:
    assert sw(card, "00A404000AD392F000260100000001", "00A404040AD392F000260100000001") == [
        0x6A86,
        0x6A86,
    ]
    send(card, SELECT_JPKI)
    assert sw(card, "00A4020002000A", "00A4020402000A", "00A4090C02000A") == [0x6A86] * 3


def test_select_ef_before_any_application_is_6a82(card: VirtualCard) -> None:
    assert sw(card, select_ef("000A")) == [0x6A82]


def test_select_mf_form(card: VirtualCard) -> None:
    # After a reset nothing is selected: 6A86. With a DF selected: 9000 that changes nothing.
    assert sw(card, "00A4000C") == [0x6A86]
    send(card, SELECT_JPKI)
    send(card, select_ef("000A"))
    assert sw(card, "00A4000C", "00B0000001") == [0x9000, 0x9000]


@pytest.mark.parametrize("command", ["00CA5F5100", "00C0000010", "00B2010C00", "0088000000"])
def test_unknown_instructions_are_6d00(card: VirtualCard, command: str) -> None:
    assert sw(card, command) == [0x6D00]


@pytest.mark.parametrize("command", ["A0A4040C02000A", "0CB0000004", "FF20008000", "84B0000004"])
def test_unknown_classes_are_6e00(card: VirtualCard, command: str) -> None:
    assert sw(card, command) == [0x6E00]


def test_proprietary_class_only_knows_compute_digital_signature(card: VirtualCard) -> None:
    assert sw(card, "80A4040C0AD392F000260100000001", "80FC0000") == [0x6D00, 0x6D00]


@pytest.mark.parametrize(
    "command",
    [
        "",
        "00",
        "00A4",
        "00A404",
        "00A4040C0AD392F0",  # Lc says 10, 4 bytes follow
        "00A4040C03D392F000260100",  # Lc 3, 8 bytes follow
        "00A4040C00",  # no AID (a case-2 APDU)
        "00A4020C0100",  # FID of one byte
        "00A4020C03000A00",  # FID of three bytes
        "00B00000",  # READ BINARY without Le
        "00B00000020000",  # READ BINARY with data
        "002000800431323334FF",  # VERIFY with Le
        "00A4040C0000",  # extended Lc of zero
    ],
)
def test_malformed_commands_are_6700(card: VirtualCard, command: str) -> None:
    if not command.startswith("00A4040C"):
        send(card, SELECT_JPKI)
        send(card, select_ef("0018" if command.startswith("0020") else "000A"))
    assert sw(card, command) == [0x6700]


def test_the_card_logs_every_command(card: VirtualCard) -> None:
    commands = [SELECT_JPKI, select_ef("000A"), "00B0000004", "FFFF"]
    for c in commands:
        send(card, c)
    assert card.commands == [bytes.fromhex(c) for c in commands]
    assert [response[-2:] for _, response in card.log] == [
        b"\x90\x00",
        b"\x90\x00",
        b"\x90\x00",
        b"\x67\x00",
    ]


def test_powered_off_card_answers_nothing_useful(card: VirtualCard) -> None:
    card.power_off()
    assert sw(card, SELECT_JPKI) == [0x6F00]
    card.power_on()
    assert sw(card, SELECT_JPKI) == [0x9000]


# -- READ BINARY -----------------------------------------------------------------------------------


@pytest.mark.parametrize("le", [4, 7, 8, 0x20, *range(1, 256), 256])
def test_read_binary_any_length_from_offset_zero(
    card: VirtualCard, le: int, yamada: ResidentCredentials
) -> None:
    cert = der(yamada.auth_certificate)
    send(card, SELECT_JPKI)
    send(card, select_ef("000A"))
    assert send(card, f"00B00000{le % 256:02X}") == (cert[:le], 0x9000)


@pytest.mark.parametrize("offset", [1, 4, 7, 0xFF, 0x100, 0x101, 0x2FF, 0x300])
def test_read_binary_at_offsets(
    card: VirtualCard, yamada: ResidentCredentials, offset: int
) -> None:
    cert = der(yamada.auth_certificate)
    send(card, SELECT_JPKI)
    send(card, select_ef("000A"))
    for le in (1, 0x20, 256):
        data, status = send(card, f"00B0{offset:04X}{le % 256:02X}")
        assert (data, status) == (cert[offset : offset + le], 0x9000)


def test_read_binary_crossing_eof_returns_what_exists(
    card: VirtualCard, yamada: ResidentCredentials
) -> None:
    cert = der(yamada.auth_certificate)
    send(card, SELECT_JPKI)
    send(card, select_ef("000A"))
    offset = len(cert) - 10
    assert send(card, f"00B0{offset:04X}00") == (cert[-10:], 0x9000)


def test_read_binary_at_or_past_eof_is_6b00(card: VirtualCard, yamada: ResidentCredentials) -> None:
    size = len(der(yamada.auth_certificate))
    send(card, SELECT_JPKI)
    send(card, select_ef("000A"))
    assert sw(card, f"00B0{size:04X}01", f"00B0{size + 1:04X}10", "00B07FFF01") == [0x6B00] * 3


def test_read_binary_edge_cases(card: VirtualCard) -> None:
    send(card, SELECT_JPKI)
    assert sw(card, "00B0000004") == [0x6986]  # no current EF
    send(card, select_ef("0017"))
    assert sw(card, "00B0000004") == [0x6981]  # a key is not readable
    send(card, select_ef("0018"))
    assert sw(card, "00B0000004") == [0x6981]  # nor a PIN
    assert sw(card, "00B08A0000") == [0x6A86]  # short-EF-identifier form not offered


@pytest.mark.parametrize(
    ("fid", "attribute"),
    [("000A", "auth_certificate"), ("000B", "auth_ca"), ("0002", "sign_ca")],
)
def test_certificate_efs_hold_exact_der(
    card: VirtualCard, pki: TestPki, yamada: ResidentCredentials, fid: str, attribute: str
) -> None:
    expected = {
        "auth_certificate": der(yamada.auth_certificate),
        "auth_ca": der(pki.auth_ca.certificate),
        "sign_ca": der(pki.sign_ca.certificate),
    }[attribute]
    send(card, SELECT_JPKI)
    send(card, select_ef(fid))
    content = b""
    while True:
        data, status = send(card, f"00B0{len(content):04X}00")
        if status == 0x6B00:
            break
        assert status == 0x9000
        content += data
    assert content == expected


# -- token information and certificate availability ------------------------------------------------


def test_token_info_layout(card: VirtualCard) -> None:
    send(card, SELECT_JPKI)
    send(card, select_ef("0006"))
    info, status = send(card, "00B00000A0")
    assert status == 0x9000
    assert len(info) == 160
    assert info[:32] == b"JPKIAPICCTOKEN2" + b" " * 17
    assert send(card, "00B0000020") == (info[:32], 0x9000)  # what myna-go reads
    assert sw(card, "00B000A001") == [0x6B00]  # exactly 160 bytes
    for start, end in ((32, 64), (64, 80), (80, 96), (144, 160)):  # text, space-padded
        field = info[start:end]
        assert field.isascii() and b"\x00" not in field
    max_pin, min_pin = struct.unpack(">LL", info[116:124])
    assert (max_pin, min_pin) == (16, 4)


@pytest.mark.parametrize("label", ["JPKIAPGPSETOKEN", "JPKIAPIOSTOKEN", "JPKIAPICCTOKEN"])
def test_token_label_variants(pki: TestPki, yamada: ResidentCredentials, label: str) -> None:
    assert yamada.sign_certificate is not None
    card = VirtualCard(
        auth_certificate_der=der(yamada.auth_certificate),
        auth_key=yamada.auth_key,
        auth_ca_der=der(pki.auth_ca.certificate),
        sign_ca_der=der(pki.sign_ca.certificate),
        sign_certificate_der=der(yamada.sign_certificate),
        sign_key=yamada.sign_key,
        token_label=label,
    )
    send(card, SELECT_JPKI)
    send(card, select_ef("0006"))
    assert send(card, "00B0000020")[0] == label.encode().ljust(32, b" ")


def test_certificate_availability(
    card: VirtualCard, make_card: CardFactory, kobayashi: ResidentCredentials
) -> None:
    send(card, SELECT_JPKI)
    send(card, select_ef("0008"))
    assert send(card, "00B0000003") == (bytes.fromhex("8F8F00"), 0x9000)
    minor = make_card(kobayashi)
    send(minor, SELECT_JPKI)
    send(minor, select_ef("0008"))
    data, status = send(minor, "00B0000003")
    assert status == 0x9000 and len(data) == 3 and data[0] != 0x8F and data[1:] == b"\x8f\x00"


def test_card_without_signature_certificate(
    make_card: CardFactory, kobayashi: ResidentCredentials
) -> None:
    minor = make_card(kobayashi)
    send(minor, SELECT_JPKI)
    assert sw(minor, select_ef("0001"), select_ef("001A")) == [0x6A82, 0x6A82]
    # The password EF stays, so a tries query (OpenSC's bind) still gets 63Cx.
    assert sw(minor, select_ef("001B"), "00200080") == [0x9000, 0x63C5]
    assert sw(minor, select_ef("000A"), "00B0000004") == [0x9000, 0x9000]


# -- PIN semantics ---------------------------------------------------------------------------------


def test_empty_verify_reports_tries_even_after_success(card: VirtualCard) -> None:
    send(card, SELECT_JPKI)
    send(card, select_ef("0018"))
    assert sw(card, "00200080", verify("1234"), "00200080", verify("1234"), "00200080") == [
        0x63C3,
        0x9000,
        0x63C3,  # never 9000: OpenSC's PKCS#11 breaks on that
        0x9000,  # a second VERIFY of a verified PIN is fine
        0x63C3,
    ]


def test_auth_pin_blocking_sequence_survives_reset(card: VirtualCard) -> None:
    send(card, SELECT_JPKI)
    send(card, select_ef("0018"))
    assert sw(card, verify("0000"), verify("1111"), "00200080", verify("2222")) == [
        0x63C2,
        0x63C1,
        0x63C1,
        0x63C0,
    ]
    assert sw(card, verify("1234"), verify("0000"), "00200080") == [0x6984, 0x6984, 0x63C0]
    for power_cycle in ([card.reset], [card.power_off, card.power_on], [card.power_on]):
        for step in power_cycle:
            step()
        send(card, SELECT_JPKI)
        assert sw(card, select_ef("0018"), "00200080", verify("1234")) == [0x9000, 0x63C0, 0x6984]
    assert card.pin_tries(0x0018) == 0


def test_sign_password_has_five_tries(card: VirtualCard) -> None:
    send(card, SELECT_JPKI)
    send(card, select_ef("001B"))
    assert sw(card, "00200080") == [0x63C5]
    assert sw(card, *(verify("WRONG1") for _ in range(5))) == [
        0x63C4,
        0x63C3,
        0x63C2,
        0x63C1,
        0x63C0,
    ]
    assert sw(card, verify("ABC123"), "00200080") == [0x6984, 0x63C0]


def test_right_pin_restores_the_counter(card: VirtualCard) -> None:
    send(card, SELECT_JPKI)
    send(card, select_ef("0018"))
    assert sw(card, verify("9999"), verify("9998"), verify("1234"), "00200080") == [
        0x63C2,
        0x63C1,
        0x9000,
        0x63C3,
    ]


def test_the_card_compares_the_password_bytes_exactly(card: VirtualCard) -> None:
    send(card, SELECT_JPKI)
    send(card, select_ef("001B"))
    assert sw(card, verify("abc123"), verify("ABC123")) == [0x63C4, 0x9000]


def test_verify_needs_a_pin_ef(card: VirtualCard) -> None:
    send(card, SELECT_JPKI)
    assert sw(card, verify("1234"), "00200080") == [0x6986, 0x6986]
    send(card, select_ef("000A"))
    assert sw(card, verify("1234"), "00200080") == [0x6981, 0x6981]
    send(card, select_ef("0018"))
    assert sw(card, "0020009804" + b"1234".hex(), "0020018004" + b"1234".hex()) == [0x6A86] * 2
    assert card.pin_tries(0x0018) == 3


def test_verified_state_is_volatile(card: VirtualCard) -> None:
    command = sign_apdu(digest_info(MESSAGE))

    def login() -> None:
        assert sw(card, SELECT_JPKI, select_ef("0018"), verify("1234")) == [0x9000] * 3

    def can_sign() -> bool:
        return sw(card, select_ef("0017"), command)[1] == 0x9000

    login()
    assert can_sign()
    send(card, select_ef("000A"))  # survives SELECT of other EFs and several signatures
    assert can_sign() and can_sign()

    for clear in (card.reset, card.power_on):
        login()
        clear()
        send(card, SELECT_JPKI)
        assert not can_sign()
    login()
    card.power_off()
    card.power_on()
    send(card, SELECT_JPKI)
    assert not can_sign()
    login()
    send(card, SELECT_JPKI)  # re-SELECT of the AP: OpenSC's logout
    assert not can_sign()
    login()
    send(card, SELECT_VISUAL)
    send(card, SELECT_JPKI)
    assert not can_sign()
    assert card.pin_tries(0x0018) == 3


def test_wrong_verify_clears_the_verified_state(card: VirtualCard) -> None:
    send(card, SELECT_JPKI)
    send(card, select_ef("0018"))
    assert sw(card, verify("1234"), verify("0000")) == [0x9000, 0x63C2]
    assert sw(card, select_ef("0017"), sign_apdu(digest_info(MESSAGE))) == [0x9000, 0x6982]


def test_change_reference_data(card: VirtualCard) -> None:
    send(card, SELECT_JPKI)
    send(card, select_ef("0018"))
    new = "0024018004" + b"5678".hex()
    assert sw(card, new) == [0x6982]  # old PIN not verified
    assert sw(card, verify("1234"), "00240180041234AB3D", "0024018003" + b"567".hex()) == [
        0x9000,
        0x6A80,
        0x6A80,
    ]
    assert sw(card, "0024008004" + b"5678".hex()) == [0x6A86]
    assert sw(card, new, verify("1234"), verify("5678")) == [0x9000, 0x63C2, 0x9000]
    send(card, select_ef("001B"))
    assert sw(card, verify("ABC123"), "0024018006" + b"xyz789".hex()) == [0x9000, 0x6A80]
    assert sw(card, "0024018006" + b"XYZ789".hex(), verify("XYZ789")) == [0x9000, 0x9000]


# -- access control and signing --------------------------------------------------------------------


def test_signature_certificate_needs_the_signature_password(
    card: VirtualCard, yamada: ResidentCredentials
) -> None:
    assert yamada.sign_certificate is not None
    send(card, SELECT_JPKI)
    send(card, select_ef("0018"))
    send(card, verify("1234"))  # PIN1 does not open EF 0001
    assert sw(card, select_ef("0001"), "00B0000004") == [0x9000, 0x6982]
    send(card, select_ef("001B"))
    send(card, verify("ABC123"))
    send(card, select_ef("0001"))
    assert send(card, "00B0000004") == (der(yamada.sign_certificate)[:4], 0x9000)


@pytest.mark.parametrize(
    ("key_ef", "pin_ef", "other_pin_ef", "secret", "other_secret"),
    [("0017", "0018", "001B", "1234", "ABC123"), ("001A", "001B", "0018", "ABC123", "1234")],
)
def test_keys_need_their_own_pin(
    card: VirtualCard,
    key_ef: str,
    pin_ef: str,
    other_pin_ef: str,
    secret: str,
    other_secret: str,
) -> None:
    command = sign_apdu(digest_info(MESSAGE))
    send(card, SELECT_JPKI)
    assert sw(card, select_ef(key_ef), command) == [0x9000, 0x6982]
    assert sw(card, select_ef(other_pin_ef), verify(other_secret)) == [0x9000, 0x9000]
    assert sw(card, select_ef(key_ef), command) == [0x9000, 0x6982]
    assert sw(card, select_ef(pin_ef), verify(secret)) == [0x9000, 0x9000]
    assert sw(card, select_ef(key_ef), command) == [0x9000, 0x9000]


@pytest.mark.parametrize(
    ("key_ef", "pin_ef", "secret"), [("0017", "0018", "1234"), ("001A", "001B", "ABC123")]
)
def test_signature_verifies_with_the_certificate(
    card: VirtualCard, yamada: ResidentCredentials, key_ef: str, pin_ef: str, secret: str
) -> None:
    certificate = yamada.auth_certificate if key_ef == "0017" else yamada.sign_certificate
    assert certificate is not None
    send(card, SELECT_JPKI)
    send(card, select_ef(pin_ef))
    send(card, verify(secret))
    send(card, select_ef(key_ef))
    signature, status = send(card, sign_apdu(digest_info(MESSAGE)))
    assert status == 0x9000 and len(signature) == 256
    public_key = certificate.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    # Deterministic, as PKCS#1 v1.5 is.
    assert send(card, sign_apdu(digest_info(MESSAGE)))[0] == signature


@pytest.mark.parametrize("length", [1, 20, 51, 83, 245])
def test_signature_is_type1_padding_over_the_given_bytes(
    card: VirtualCard, yamada: ResidentCredentials, length: int
) -> None:
    data = bytes(range(1, length + 1))
    send(card, SELECT_JPKI)
    send(card, select_ef("0018"))
    send(card, verify("1234"))
    send(card, select_ef("0017"))
    signature, status = send(card, sign_apdu(data))
    assert status == 0x9000
    numbers = yamada.auth_key.public_key().public_numbers()
    recovered = pow(int.from_bytes(signature, "big"), numbers.e, numbers.n).to_bytes(256, "big")
    assert recovered == b"\x00\x01" + b"\xff" * (253 - length) + b"\x00" + data


def test_signing_input_and_parameter_errors(card: VirtualCard) -> None:
    send(card, SELECT_JPKI)
    send(card, select_ef("0018"))
    send(card, verify("1234"))
    send(card, select_ef("0017"))
    too_long = bytes(246)
    assert sw(
        card,
        sign_apdu(too_long),  # 246 bytes: more than k - 11
        "802A008000",  # no data
        "802A008003010203",  # no Le
        "802A00800301020310",  # Le 16
        "802A01800301020300",  # P1=01 (card-side hashing) not offered
        "802A00000301020300",
    ) == [0x6700, 0x6700, 0x6700, 0x6700, 0x6A86, 0x6A86]
    send(card, select_ef("000A"))
    assert sw(card, "802A00800301020300") == [0x6981]


def test_get_challenge(card: VirtualCard) -> None:
    first, status = send(card, "0084000008")
    assert status == 0x9000 and len(first) == 8
    assert send(card, "0084000008")[0] != first
    assert len(send(card, "0084000000")[0]) == 256
    assert sw(card, "00840000", "0084010008") == [0x6700, 0x6A86]


# -- the other applications: PIN status only, never the My Number ----------------------------------


@pytest.mark.parametrize(
    ("select", "pin_efs"),
    [
        (SELECT_TEXT, ["0011", "0014", "0015"]),
        (SELECT_VISUAL, ["0013", "0012"]),
        (SELECT_JUKI, ["001C"]),
        (SELECT_COMMON, []),
    ],
)
def test_stub_applications_answer_pin_status_only(
    card: VirtualCard, select: str, pin_efs: list[str]
) -> None:
    assert sw(card, select) == [0x9000]
    for fid in pin_efs:
        assert sw(card, select_ef(fid), "00200080") == [0x9000, 0x63C3]
        # They verify nothing and spend nothing, and hold nothing readable.
        assert sw(card, verify("1234"), "00200080", "00B0000001") == [0x6985, 0x63C3, 0x6981]
    for fid in ["0001", "0002", "0003", "0004", "0005", "0006", "0007", "000A", "0017"]:
        assert sw(card, select_ef(fid)) == [0x6A82]


def test_no_file_of_the_text_ap_but_its_pins_exists(card: VirtualCard) -> None:
    send(card, SELECT_TEXT)
    found = [fid for fid in range(0x10000) if send(card, f"00A4020C02{fid:04X}")[1] != 0x6A82]
    assert found == [0x0011, 0x0014, 0x0015]


def test_pin_tries_query_of_other_applications_matches_myna_pin_status(card: VirtualCard) -> None:
    # The APDUs `myna pin status` sends, in its order.
    script = [
        SELECT_TEXT, select_ef("0011"), "00200080", select_ef("0014"), "00200080",
        select_ef("0015"), "00200080", SELECT_VISUAL, select_ef("0013"), "00200080",
        select_ef("0012"), "00200080", SELECT_JPKI, select_ef("0018"), "00200080",
        select_ef("001B"), "00200080",
    ]  # fmt: skip
    assert [s >> 8 for s in sw(card, *script)] == [0x90 if "A4" in c[:4] else 0x63 for c in script]


# -- construction ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pin", "sign_password"),
    [
        ("123", "ABC123"),
        ("12345", "ABC123"),
        ("12a4", "ABC123"),
        ("１２３４", "ABC123"),
        ("1234", "abc123"),  # the card stores upper case
        ("1234", "ABCDEF"),
        ("1234", "123456"),
        ("1234", "A1"),
        ("1234", "ABCDEFGHIJ1234567"),
        ("1234", "ABC-123"),
    ],
)
def test_card_refuses_bad_secrets(make_card: CardFactory, pin: str, sign_password: str) -> None:
    with pytest.raises(PinFormatError):
        make_card(pin=pin, sign_password=sign_password)


def test_card_refuses_mismatched_keys(pki: TestPki, yamada: ResidentCredentials) -> None:
    assert yamada.sign_certificate is not None and yamada.sign_key is not None
    common = {
        "auth_ca_der": der(pki.auth_ca.certificate),
        "sign_ca_der": der(pki.sign_ca.certificate),
    }
    with pytest.raises(ValueError, match="does not belong"):
        VirtualCard(
            auth_certificate_der=der(yamada.auth_certificate),
            auth_key=yamada.sign_key,
            sign_certificate_der=None,
            sign_key=None,
            **common,
        )
    with pytest.raises(ValueError, match="both"):
        VirtualCard(
            auth_certificate_der=der(yamada.auth_certificate),
            auth_key=yamada.auth_key,
            sign_certificate_der=der(yamada.sign_certificate),
            sign_key=None,
            **common,
        )
    with pytest.raises(ValueError, match="not DER"):
        VirtualCard(
            auth_certificate_der=b"\x30\x03\x02\x01\x00",
            auth_key=yamada.auth_key,
            sign_certificate_der=None,
            sign_key=None,
            **common,
        )
    with pytest.raises(ValueError, match="label"):
        VirtualCard(
            auth_certificate_der=der(yamada.auth_certificate),
            auth_key=yamada.auth_key,
            sign_certificate_der=None,
            sign_key=None,
            token_label="X" * 33,
            **common,
        )


# -- robustness: process() never raises ------------------------------------------------------------

SETUPS = [
    [],
    [SELECT_JPKI],
    [SELECT_JPKI, select_ef("000A")],
    [SELECT_JPKI, select_ef("0018"), verify("1234"), select_ef("0017")],
    [SELECT_JPKI, select_ef("001B")],
    [SELECT_TEXT, select_ef("0011")],
]

KNOWN_HEADERS = st.sampled_from(
    [b"\x00\xa4", b"\x00\xb0", b"\x00\x20", b"\x00\x24", b"\x00\x84", b"\x80\x2a"]
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(setup=st.sampled_from(SETUPS), raw=st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(card: VirtualCard, setup: list[str], raw: bytes) -> None:
    card.reset()
    for command in setup:
        send(card, command)
    response = card.process(raw)
    assert len(response) >= 2


@settings(max_examples=500, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    setup=st.sampled_from(SETUPS),
    header=KNOWN_HEADERS,
    p1p2=st.binary(min_size=2, max_size=2),
    body=st.binary(max_size=270),
)
def test_arbitrary_known_commands_never_raise(
    card: VirtualCard, setup: list[str], header: bytes, p1p2: bytes, body: bytes
) -> None:
    card.reset()
    for command in setup:
        send(card, command)
    response = card.process(header + p1p2 + body)
    assert len(response) >= 2
    # Whatever happened, the My Number EF was never reachable.
    assert sw(card, SELECT_TEXT, select_ef("0001")) == [0x9000, 0x6A82]
