"""An APDU-exact software My Number card (JPKI-AP), for tests, the demo and pcscd via vpcd.

``VirtualCard.process(raw) -> raw`` answers one command APDU the way the real card does as far
as the published facts go (docs/card.md, and the sources behind it), and never raises: malformed
commands get ``6700``, unknown classes ``6E00``, unknown instructions ``6D00``, unknown AIDs and
files ``6A82``.

Commands (short APDUs; P2=0C SELECTs return no FCI):

====================  =============================================================
``00 A4 04 0C``       SELECT application by AID (clears every verified PIN)
``00 A4 02 0C``       SELECT EF by FID under the current application
``00 B0``             READ BINARY, 15-bit offset, Le 1-256; past EOF 6B00
``00 20 00 80``       VERIFY the PIN of the current EF; empty: ask for tries (63Cx)
``00 24 01 80``       CHANGE REFERENCE DATA of the verified PIN of the current EF
``80 2A 00 80``       COMPUTE DIGITAL SIGNATURE with the current key EF (PKCS#1 v1.5)
``00 84 00 00``       GET CHALLENGE
====================  =============================================================

Besides the JPKI-AP the card has stub 券面事項入力補助AP, 券面AP, 住基AP and the fifth DF: they
answer SELECT, SELECT of their PIN EFs and the empty VERIFY (tries query) only. Every other
file in them is ``6A82``: the My Number is not on this card in any form.

PIN counters survive ``reset()`` / ``power_off()`` / ``power_on()``; the verified state and the
selection do not. ``log`` keeps every (command, response) exchange, for tests.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric import rsa

from idp.card.apdu import SHORT_MAX_LE, CommandApdu
from idp.card.errors import ApduFormatError, PinFormatError, StatusWord
from idp.card.jpki_ap import (
    COMMON_AP_AID,
    EF_AUTH_CA,
    EF_AUTH_CERT,
    EF_AUTH_KEY,
    EF_AUTH_PIN,
    EF_CERT_AVAILABILITY,
    EF_SIGN_CA,
    EF_SIGN_CERT,
    EF_SIGN_KEY,
    EF_SIGN_PIN,
    EF_TOKEN_INFO,
    JPKI_AID,
    JUKI_AP_AID,
    TEXT_AP_AID,
    VISUAL_AP_AID,
    TokenKind,
)
from idp.card.pin import (
    AUTH_PIN_MAX_TRIES,
    SIGN_PASSWORD_MAX_TRIES,
    PinKind,
    encode_auth_pin,
    encode_pin,
    encode_sign_password,
)
from idp.card.virtual_files import (
    MAX_SIGN_INPUT,
    RSA_MODULUS_BYTES,
    Application,
    BinaryFile,
    ElementaryFile,
    KeyFile,
    Pin,
    PinFile,
    Response,
    certificate_availability,
    certificate_der,
    check_key_matches,
    status,
    stub_application,
    token_info,
)

if TYPE_CHECKING:
    from idp.card.testpki import ResidentCredentials, TestPki

JPKI_ATR = bytes.fromhex("3BE000FF8131FE4514")

SW_OK = StatusWord.OK
SW_WRONG_LENGTH = StatusWord.WRONG_LENGTH
SW_FILE_INCOMPATIBLE = 0x6981  # command incompatible with the file structure
SW_SECURITY = StatusWord.SECURITY_STATUS_NOT_SATISFIED
SW_BLOCKED = StatusWord.REFERENCED_DATA_BLOCKED
SW_CONDITIONS = StatusWord.CONDITIONS_NOT_SATISFIED
SW_NO_CURRENT_EF = StatusWord.COMMAND_NOT_ALLOWED
SW_WRONG_DATA = StatusWord.WRONG_DATA
SW_NOT_FOUND = StatusWord.FILE_NOT_FOUND
SW_BAD_P1P2 = StatusWord.INCORRECT_P1P2
SW_OFFSET = StatusWord.WRONG_P1P2
SW_BAD_INS = StatusWord.INS_NOT_SUPPORTED
SW_BAD_CLA = StatusWord.CLA_NOT_SUPPORTED
SW_POWERED_OFF = StatusWord.NO_PRECISE_DIAGNOSIS

TEST_PIN = "1234"
TEST_SIGN_PASSWORD = "ABC123"  # noqa: S105
CARD_TOKEN_LABEL = TokenKind.CARD.value


class VirtualCard:
    """A My Number card in software. See the module docstring for what it answers."""

    atr = JPKI_ATR

    def __init__(
        self,
        *,
        auth_certificate_der: bytes,
        auth_key: rsa.RSAPrivateKey,
        auth_ca_der: bytes,
        sign_ca_der: bytes,
        sign_certificate_der: bytes | None,
        sign_key: rsa.RSAPrivateKey | None,
        pin: str = TEST_PIN,
        sign_password: str = TEST_SIGN_PASSWORD,
        token_label: str = CARD_TOKEN_LABEL,
    ) -> None:
        auth_secret = encode_auth_pin(pin)
        sign_secret = encode_sign_password(sign_password)
        if sign_secret != sign_password.encode("ascii"):
            raise PinFormatError("The card stores the signature password in upper case.")
        if (sign_certificate_der is None) != (sign_key is None):
            raise ValueError("give both the signature certificate and key, or neither")
        check_key_matches(auth_certificate_der, auth_key, "authentication")
        if sign_certificate_der is not None and sign_key is not None:
            check_key_matches(sign_certificate_der, sign_key, "signature")

        has_sign = sign_certificate_der is not None
        jpki_files: dict[int, ElementaryFile] = {
            EF_SIGN_CA: BinaryFile(sign_ca_der),
            EF_TOKEN_INFO: BinaryFile(token_info(token_label)),
            EF_CERT_AVAILABILITY: BinaryFile(
                certificate_availability(has_sign_certificate=has_sign)
            ),
            EF_AUTH_CERT: BinaryFile(auth_certificate_der),
            EF_AUTH_CA: BinaryFile(auth_ca_der),
            EF_AUTH_KEY: KeyFile(auth_key, pin_fid=EF_AUTH_PIN),
            EF_AUTH_PIN: PinFile(Pin(auth_secret, AUTH_PIN_MAX_TRIES, PinKind.AUTH)),
            # Kept without a signature certificate too, so that tries queries still answer 63Cx.
            EF_SIGN_PIN: PinFile(Pin(sign_secret, SIGN_PASSWORD_MAX_TRIES, PinKind.SIGN)),
        }
        if sign_certificate_der is not None and sign_key is not None:
            jpki_files[EF_SIGN_CERT] = BinaryFile(sign_certificate_der, read_pin=EF_SIGN_PIN)
            jpki_files[EF_SIGN_KEY] = KeyFile(sign_key, pin_fid=EF_SIGN_PIN)

        self.applications: dict[bytes, Application] = {
            JPKI_AID: Application("JPKI-AP", JPKI_AID, jpki_files),
            TEXT_AP_AID: stub_application("券面事項入力補助AP", TEXT_AP_AID, (0x11, 0x14, 0x15)),
            VISUAL_AP_AID: stub_application("券面AP", VISUAL_AP_AID, (0x13, 0x12)),
            JUKI_AP_AID: stub_application("住基AP", JUKI_AP_AID, (0x1C,)),
            COMMON_AP_AID: stub_application("共通AP", COMMON_AP_AID, ()),
        }
        self.log: list[tuple[bytes, bytes]] = []
        self.powered = True
        self._current_df: Application | None = None
        self._current_fid: int | None = None
        self._lock = threading.Lock()
        self._handlers: dict[tuple[int, int], Callable[[CommandApdu], Response]] = {
            (0x00, 0xA4): self._select,
            (0x00, 0xB0): self._read_binary,
            (0x00, 0x20): self._verify,
            (0x00, 0x24): self._change_reference_data,
            (0x00, 0x84): self._get_challenge,
            (0x80, 0x2A): self._compute_digital_signature,
        }

    @classmethod
    def from_credentials(
        cls,
        creds: ResidentCredentials,
        pki: TestPki,
        *,
        pin: str = TEST_PIN,
        sign_password: str = TEST_SIGN_PASSWORD,
    ) -> VirtualCard:
        """A card holding ``creds`` (issued by ``pki``); no EF 0001/001A when there is no
        signature certificate (a card holder under 15)."""
        return cls(
            auth_certificate_der=certificate_der(creds.auth_certificate),
            auth_key=creds.auth_key,
            auth_ca_der=certificate_der(pki.auth_ca.certificate),
            sign_ca_der=certificate_der(pki.sign_ca.certificate),
            sign_certificate_der=(
                None if creds.sign_certificate is None else certificate_der(creds.sign_certificate)
            ),
            sign_key=creds.sign_key,
            pin=pin,
            sign_password=sign_password,
        )

    # -- power and state ------------------------------------------------------------------

    def _clear_volatile_state(self) -> None:
        self._current_df = None
        self._current_fid = None
        for application in self.applications.values():
            for pin in application.pins():
                pin.verified = False

    def power_on(self) -> None:
        with self._lock:
            self._clear_volatile_state()
            self.powered = True

    def power_off(self) -> None:
        with self._lock:
            self._clear_volatile_state()
            self.powered = False

    def reset(self) -> None:
        with self._lock:
            self._clear_volatile_state()
            self.powered = True

    @property
    def commands(self) -> list[bytes]:
        """Every command APDU received, in order."""
        return [command for command, _ in self.log]

    def pin_tries(self, fid: int, aid: bytes = JPKI_AID) -> int:
        """Tries left on a PIN (for tests and the CLI; does not go through APDUs)."""
        ef = self.applications[aid].files[fid]
        if not isinstance(ef, PinFile):
            raise ValueError(f"EF {fid:04X} is not a PIN")
        return ef.pin.tries_left

    # -- APDU processing ------------------------------------------------------------------

    def process(self, raw: bytes) -> bytes:
        """Answer one command APDU (data + SW1 SW2). Never raises."""
        with self._lock:
            response = self._dispatch(bytes(raw)).to_bytes()
            self.log.append((bytes(raw), response))
            return response

    def _dispatch(self, raw: bytes) -> Response:
        if not self.powered:
            return status(SW_POWERED_OFF)
        if len(raw) < 4:
            return status(SW_WRONG_LENGTH)
        cla, ins = raw[0], raw[1]
        if cla not in (0x00, 0x80):
            return status(SW_BAD_CLA)
        handler = self._handlers.get((cla, ins))
        if handler is None:
            return status(SW_BAD_INS)
        try:
            command = CommandApdu.parse(raw)
        except ApduFormatError:
            return status(SW_WRONG_LENGTH)
        if command.is_extended:
            return status(SW_WRONG_LENGTH)  # this card takes short APDUs for these commands
        return handler(command)

    def _current_file(self) -> ElementaryFile | None:
        if self._current_df is None or self._current_fid is None:
            return None
        return self._current_df.files.get(self._current_fid)

    def _pin_by_fid(self, fid: int) -> Pin | None:
        if self._current_df is None:
            return None
        ef = self._current_df.files.get(fid)
        return ef.pin if isinstance(ef, PinFile) else None

    def _select(self, command: CommandApdu) -> Response:
        if command.p2 != 0x0C:
            return status(SW_BAD_P1P2)  # no FCI/FCP on this card
        if command.p1 == 0x04:
            if not 1 <= len(command.data) <= 16:
                return status(SW_WRONG_LENGTH)
            application = self.applications.get(command.data)
            if application is None:
                return status(SW_NOT_FOUND)
            self._clear_volatile_state()
            self._current_df = application
            return status(SW_OK)
        if command.p1 == 0x02:
            if len(command.data) != 2:
                return status(SW_WRONG_LENGTH)
            fid = int.from_bytes(command.data, "big")
            if self._current_df is None or fid not in self._current_df.files:
                return status(SW_NOT_FOUND)
            self._current_fid = fid
            return status(SW_OK)
        if command.p1 == 0x00 and not command.data and self._current_df is not None:
            return status(SW_OK)  # "select MF" changes nothing while a DF is selected
        return status(SW_BAD_P1P2)

    def _read_binary(self, command: CommandApdu) -> Response:
        if command.p1 & 0x80:
            return status(SW_BAD_P1P2)  # short-EF-identifier form: not offered
        if command.data or command.le is None or command.le > SHORT_MAX_LE:
            return status(SW_WRONG_LENGTH)
        ef = self._current_file()
        if ef is None:
            return status(SW_NO_CURRENT_EF)
        if not isinstance(ef, BinaryFile):
            return status(SW_FILE_INCOMPATIBLE)
        if ef.read_pin is not None:
            pin = self._pin_by_fid(ef.read_pin)
            if pin is None or not pin.verified:
                return status(SW_SECURITY)
        offset = (command.p1 << 8) | command.p2
        if offset >= len(ef.data):
            return status(SW_OFFSET)
        return Response(ef.data[offset : offset + command.le], SW_OK)

    def _verify(self, command: CommandApdu) -> Response:
        if command.p1 != 0x00 or command.p2 != 0x80:
            return status(SW_BAD_P1P2)
        if command.le is not None:
            return status(SW_WRONG_LENGTH)
        ef = self._current_file()
        if ef is None:
            return status(SW_NO_CURRENT_EF)
        if not isinstance(ef, PinFile):
            return status(SW_FILE_INCOMPATIBLE)
        pin = ef.pin
        if not command.data:  # tries query: never spends a try, never 9000
            return status(0x63C0 | pin.tries_left)
        if pin.blocked:
            return status(SW_BLOCKED)
        if pin.secret is None:
            return status(SW_CONDITIONS)  # stub applications verify nothing
        if secrets.compare_digest(command.data, pin.secret):
            pin.tries_left = pin.max_tries
            pin.verified = True
            return status(SW_OK)
        pin.tries_left -= 1
        pin.verified = False
        return status(0x63C0 | pin.tries_left)

    def _change_reference_data(self, command: CommandApdu) -> Response:
        if command.p1 != 0x01 or command.p2 != 0x80:
            return status(SW_BAD_P1P2)
        if not command.data or command.le is not None:
            return status(SW_WRONG_LENGTH)
        ef = self._current_file()
        if ef is None:
            return status(SW_NO_CURRENT_EF)
        if not isinstance(ef, PinFile):
            return status(SW_FILE_INCOMPATIBLE)
        pin = ef.pin
        if pin.blocked:
            return status(SW_BLOCKED)
        if pin.secret is None or pin.kind is None or not pin.verified:
            return status(SW_SECURITY)
        try:
            new = encode_pin(pin.kind, command.data.decode("ascii"))
        except (UnicodeDecodeError, PinFormatError):
            return status(SW_WRONG_DATA)
        if new != command.data:
            return status(SW_WRONG_DATA)  # lower case is not folded by the card
        pin.secret = new
        pin.tries_left = pin.max_tries
        return status(SW_OK)

    def _get_challenge(self, command: CommandApdu) -> Response:
        if command.p1 != 0x00 or command.p2 != 0x00:
            return status(SW_BAD_P1P2)
        if command.data or command.le is None:
            return status(SW_WRONG_LENGTH)
        return Response(secrets.token_bytes(command.le), SW_OK)

    def _compute_digital_signature(self, command: CommandApdu) -> Response:
        if command.p1 != 0x00 or command.p2 != 0x80:
            return status(SW_BAD_P1P2)
        if not 1 <= len(command.data) <= MAX_SIGN_INPUT or command.le != RSA_MODULUS_BYTES:
            return status(SW_WRONG_LENGTH)
        ef = self._current_file()
        if ef is None:
            return status(SW_NO_CURRENT_EF)
        if not isinstance(ef, KeyFile):
            return status(SW_FILE_INCOMPATIBLE)
        pin = self._pin_by_fid(ef.pin_fid)
        if pin is None or not pin.verified:
            return status(SW_SECURITY)
        return Response(ef.sign_raw(command.data), SW_OK)
