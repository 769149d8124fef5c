"""The JPKI client against the virtual card, and against recorded APDU scripts."""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from idp.card.errors import (
    CardFileNotFoundError,
    PinBlockedError,
    ScriptMismatchError,
    SecurityStatusError,
    WrongPinError,
)
from idp.card.jpki import (
    ForbiddenSelectionError,
    JpkiClient,
    PinKind,
    PinStatus,
    SignedChallenge,
    TokenInfo,
    TokenKind,
    UnsupportedTokenError,
    check_selection_allowed,
)
from idp.card.testpki import ResidentCredentials, TestPki
from idp.card.transport import InProcessTransport, ScriptTransport
from idp.card.virtual import VirtualCard

SCRIPTS = Path(__file__).parent / "scripts"
JPKI_AID = bytes.fromhex("D392F000260100000001")
TEXT_AID = bytes.fromhex("D3921000310001010408")
VISUAL_AID = bytes.fromhex("D3921000310001010402")
MESSAGE = b"what the server asked the card to sign"
DIGEST_INFO = (
    bytes.fromhex("3031300D060960864801650304020105000420") + hashlib.sha256(MESSAGE).digest()
)


def _load_recorder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("card_script_recorder", SCRIPTS / "record.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


recorder = _load_recorder()


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def assert_signed(certificate_der: bytes, signature: bytes, message: bytes) -> None:
    public_key = x509.load_der_x509_certificate(certificate_der).public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())


def select(fid: int) -> bytes:
    return bytes.fromhex("00A4020C02") + fid.to_bytes(2, "big")


SELECT_JPKI = bytes.fromhex("00A4040C0A") + JPKI_AID


# -- recorded scripts ------------------------------------------------------------------------------


def test_every_scenario_has_a_script_and_no_script_is_stale() -> None:
    assert {p.stem for p in SCRIPTS.glob("*.apdu")} == set(recorder.SCENARIOS)


@pytest.mark.parametrize("name", sorted(recorder.SCENARIOS))
def test_replay_recorded_script(name: str) -> None:
    script = recorder.load_script(name)
    transport = ScriptTransport(script)
    result = recorder.SCENARIOS[name].run(JpkiClient(transport))
    assert transport.finished, "the client sent fewer APDUs than recorded"
    message = recorder.MESSAGE
    if isinstance(result, SignedChallenge):
        assert_signed(result.certificate, result.signature, message)
    elif isinstance(result, bytes):  # authenticate: the signature is the last response's data
        assert result == script[-1][1][:-2] and len(result) == 256
    elif name == "pin-status":
        assert result == PinStatus(auth_tries=3, sign_tries=5)
    elif name == "token-info":
        assert result == TokenInfo("JPKIAPICCTOKEN2", TokenKind.CARD)
    elif name == "wrong-pin":
        assert result == 2
    else:
        pytest.fail(f"no check for scenario {name}")


def test_replay_fails_when_the_sequence_changes() -> None:
    script = recorder.load_script("login-known-certificate")
    with pytest.raises(ScriptMismatchError, match="command 1"):
        # SELECT AP matches, then SELECT 0006 is not the recorded SELECT 0018.
        JpkiClient(ScriptTransport(script)).read_token_info()
    shorter = ScriptTransport(script[:-1])
    with pytest.raises(ScriptMismatchError, match="extra"):
        JpkiClient(shorter).authenticate(recorder.DIGEST_INFO, "1234")


def test_recording_today_gives_the_same_commands(make_card: Callable[..., VirtualCard]) -> None:
    """The recorded commands equal what the client sends now (responses differ: keys differ)."""
    for name in recorder.SCENARIOS:
        fresh = recorder.record(name, make_card())
        recorded = recorder.load_script(name)
        assert [c for c, _ in fresh] == [c for c, _ in recorded], name


def test_script_parser_is_strict() -> None:
    assert recorder.parse_script("# c\n> 00B0000004\n< 9000\n") == [
        (bytes.fromhex("00B0000004"), b"\x90\x00")
    ]
    for bad in ("< 9000\n", "> 00\n> 00\n", "> 00B0000004\n"):
        with pytest.raises(ValueError):
            recorder.parse_script(bad)


# -- round trips -----------------------------------------------------------------------------------


def test_authenticate_is_the_five_apdu_minimum(card: VirtualCard, client: JpkiClient) -> None:
    signature = client.authenticate(DIGEST_INFO, "1234")
    assert card.commands == [
        SELECT_JPKI,
        select(0x0018),
        bytes.fromhex("002000800431323334"),
        select(0x0017),
        bytes.fromhex("802A008033") + DIGEST_INFO + b"\x00",
    ]
    assert len(signature) == 256


def test_login_reads_the_certificate_in_exact_chunks(
    card: VirtualCard, client: JpkiClient, yamada: ResidentCredentials
) -> None:
    result = client.login(DIGEST_INFO, "1234")
    certificate = der(yamada.auth_certificate)
    assert result.certificate == certificate
    assert_signed(result.certificate, result.signature, MESSAGE)
    reads = [c for c in card.commands if c[:2] == b"\x00\xb0"]
    offsets = [int.from_bytes(c[2:4], "big") for c in reads]
    lengths = [c[4] or 256 for c in reads]
    assert offsets == list(range(0, len(certificate), 256))
    assert sum(lengths) == len(certificate)
    assert lengths[:-1] == [256] * (len(reads) - 1)
    assert len(card.commands) == 2 + len(reads) + 4


def test_enroll(card: VirtualCard, client: JpkiClient, yamada: ResidentCredentials) -> None:
    assert yamada.sign_certificate is not None
    result = client.enroll(DIGEST_INFO, "abc123")  # typed in lower case: upper-cased
    assert result.certificate == der(yamada.sign_certificate)
    assert_signed(result.certificate, result.signature, MESSAGE)
    assert card.commands[:4] == [
        SELECT_JPKI,
        select(0x001B),
        bytes.fromhex("0020008006") + b"ABC123",
        select(0x0001),
    ]
    assert card.commands[-2] == select(0x001A)


def test_no_redundant_selects(card: VirtualCard, client: JpkiClient) -> None:
    assert client.pin_tries(PinKind.AUTH) == 3
    client.authenticate(DIGEST_INFO, "1234")  # AP and 0018 already selected
    assert len(card.commands) == 6
    client.read_auth_certificate()
    count = len(card.commands)
    client.read_auth_certificate()  # 000A still selected: reads only
    assert all(c[:2] == b"\x00\xb0" for c in card.commands[count:])
    client.select_ap()  # explicit: always sent
    assert card.commands[-1] == SELECT_JPKI


def test_pin_status(card: VirtualCard, client: JpkiClient) -> None:
    assert client.pin_status() == PinStatus(auth_tries=3, sign_tries=5)
    assert len(card.commands) == 5


def test_read_cas(client: JpkiClient, pki: TestPki) -> None:
    assert client.read_auth_ca() == der(pki.auth_ca.certificate)
    assert client.read_sign_ca() == der(pki.sign_ca.certificate)


# -- PIN behaviour through the client --------------------------------------------------------------


def test_wrong_pins_then_blocked(card: VirtualCard, client: JpkiClient) -> None:
    for left in (2, 1):
        with pytest.raises(WrongPinError) as caught:
            client.verify_pin(PinKind.AUTH, "0000")
        assert caught.value.tries_left == left
    with pytest.raises(PinBlockedError) as blocked:
        client.verify_pin(PinKind.AUTH, "0000")
    assert blocked.value.sw == 0x63C0
    with pytest.raises(PinBlockedError) as after:
        client.authenticate(DIGEST_INFO, "1234")
    assert after.value.sw == 0x6984
    assert client.pin_tries(PinKind.AUTH) == 0


def test_security_status_errors(client: JpkiClient) -> None:
    with pytest.raises(SecurityStatusError):
        client.sign(PinKind.AUTH, DIGEST_INFO)
    with pytest.raises(SecurityStatusError):
        client.read_sign_certificate()
    client.verify_pin(PinKind.AUTH, "1234")
    with pytest.raises(SecurityStatusError):
        client.sign(PinKind.SIGN, DIGEST_INFO)


def test_card_without_signature_certificate(
    make_card: Callable[..., VirtualCard], kobayashi: ResidentCredentials
) -> None:
    client = JpkiClient(InProcessTransport(make_card(kobayashi)))
    assert client.pin_tries(PinKind.SIGN) == 5
    client.verify_pin(PinKind.SIGN, "ABC123")
    with pytest.raises(CardFileNotFoundError):
        client.read_sign_certificate()
    with pytest.raises(CardFileNotFoundError):
        client.sign(PinKind.SIGN, DIGEST_INFO)
    assert client.login(DIGEST_INFO, "1234").certificate == der(kobayashi.auth_certificate)


# -- token information -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "kind"),
    [
        ("JPKIAPICCTOKEN2", TokenKind.CARD),
        ("JPKIAPGPSETOKEN", TokenKind.ANDROID),
        ("JPKIAPIOSTOKEN", TokenKind.IPHONE),
        ("JPKIAPICCTOKEN", TokenKind.JUKI),
        ("SOMETHINGELSE", TokenKind.UNKNOWN),
    ],
)
def test_token_kinds(
    pki: TestPki, yamada: ResidentCredentials, label: str, kind: TokenKind
) -> None:
    card = VirtualCard(
        auth_certificate_der=der(yamada.auth_certificate),
        auth_key=yamada.auth_key,
        auth_ca_der=der(pki.auth_ca.certificate),
        sign_ca_der=der(pki.sign_ca.certificate),
        sign_certificate_der=None,
        sign_key=None,
        token_label=label,
    )
    info = JpkiClient(InProcessTransport(card)).read_token_info()
    assert info == TokenInfo(label, kind)
    if kind is TokenKind.JUKI:
        with pytest.raises(UnsupportedTokenError):
            info.check_supported()
    else:
        info.check_supported()


# -- the My Number is never selected ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("aid", "fid"),
    [
        (TEXT_AID, None),
        (TEXT_AID, 0x0001),
        (TEXT_AID, 0x0011),
        (TEXT_AID[:5], None),  # an AID prefix may select the 券面事項入力補助AP
        (TEXT_AID[:9], 0x0001),
        (b"", None),
        (VISUAL_AID, 0x0005),
        (None, 0x0001),  # no application known: the EF could be anywhere
    ],
)
def test_selection_guard_refuses(aid: bytes | None, fid: int | None) -> None:
    with pytest.raises(ForbiddenSelectionError):
        check_selection_allowed(aid, fid)


@pytest.mark.parametrize(
    ("aid", "fid"), [(JPKI_AID, 0x0001), (JPKI_AID, 0x000A), (VISUAL_AID, 0x0013), (None, None)]
)
def test_selection_guard_allows(aid: bytes | None, fid: int | None) -> None:
    check_selection_allowed(aid, fid)


def test_client_refuses_to_send_the_text_ap_select(card: VirtualCard, client: JpkiClient) -> None:
    with pytest.raises(ForbiddenSelectionError):
        client._select_application(TEXT_AID)
    client._application = VISUAL_AID  # as if it were selected
    with pytest.raises(ForbiddenSelectionError):
        client._select_ef(0x0005)
    assert card.log == []


OPERATIONS: dict[str, Callable[[JpkiClient], object]] = {
    "select_ap": lambda c: c.select_ap(),
    "read_binary": lambda c: (c.select_ap(), c._select_ef(0x000A), c.read_binary(7, 9)),
    "read_auth_certificate": lambda c: c.read_auth_certificate(),
    "read_auth_ca": lambda c: c.read_auth_ca(),
    "read_sign_ca": lambda c: c.read_sign_ca(),
    "read_sign_certificate": lambda c: (
        c.verify_pin(PinKind.SIGN, "ABC123"),
        c.read_sign_certificate(),
    ),
    "read_token_info": lambda c: c.read_token_info(),
    "pin_tries": lambda c: (c.pin_tries(PinKind.AUTH), c.pin_tries(PinKind.SIGN)),
    "pin_status": lambda c: c.pin_status(),
    "verify_pin": lambda c: (
        c.verify_pin(PinKind.AUTH, "1234"),
        c.verify_pin(PinKind.SIGN, "ABC123"),
    ),
    "sign": lambda c: (
        c.verify_pin(PinKind.AUTH, "1234"),
        c.sign(PinKind.AUTH, DIGEST_INFO),
        c.verify_pin(PinKind.SIGN, "ABC123"),
        c.sign(PinKind.SIGN, DIGEST_INFO),
    ),
    "authenticate": lambda c: c.authenticate(DIGEST_INFO, "1234"),
    "login": lambda c: c.login(DIGEST_INFO, "1234"),
    "enroll": lambda c: c.enroll(DIGEST_INFO, "ABC123"),
    "forget_selection": lambda c: (c.forget_selection(), c.read_token_info()),
}


def test_operations_cover_every_public_client_method() -> None:
    public = {
        name
        for name, member in inspect.getmembers(JpkiClient, inspect.isfunction)
        if not name.startswith("_")
    }
    assert public == set(OPERATIONS)


def test_no_client_operation_reaches_the_my_number(card: VirtualCard, client: JpkiClient) -> None:
    for operation in OPERATIONS.values():
        operation(client)
        card.reset()
        client.forget_selection()
    assert len(card.commands) > 50
    application: bytes | None = None
    for command in card.commands:
        if command[:4] == bytes.fromhex("00A4040C"):
            application = command[5:]
            assert not TEXT_AID.startswith(application), "券面事項入力補助AP selected"
        elif command[:4] == bytes.fromhex("00A4020C"):
            assert application == JPKI_AID, "EF selected outside the JPKI-AP"
        assert command[:2] != b"\x00\xb2", "READ RECORD sent"
        assert not (command[:2] == b"\x00\xb0" and command[2] & 0x80), "SFI READ BINARY sent"
    assert TEXT_AID not in b"".join(card.commands)
