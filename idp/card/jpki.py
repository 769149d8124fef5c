"""JPKI-AP client: select, read certificates, PIN status, verify, sign — over any ``Transport``.

The client speaks the dialect every JPKI reader uses (OpenSC, jpki/myna): short APDUs, SELECT
with P2=0C, READ BINARY in chunks of at most 256 bytes with an exact last chunk, VERIFY of the
PIN EF selected just before, COMPUTE DIGITAL SIGNATURE (``80 2A 00 80``) over a DER DigestInfo.

It remembers what it selected last, so a sequence of calls on one client sends no redundant
SELECT; any error from the transport forgets that state (the next call selects again).
``select_ap()`` always sends the SELECT (and so clears the card's verified PINs).

Errors: every status word other than 9000 becomes the typed error from ``errors.check_status``;
PINs of the wrong shape raise ``PinFormatError`` before any APDU is sent; card content that is
not what a JPKI card holds is ``CardContentError``. Two more errors live here:

- ``ForbiddenSelectionError``: the client refuses to select the 券面事項入力補助AP (or any AID
  prefix that could reach it) and the EFs that hold the My Number. No APDU is sent.
- ``UnsupportedTokenError``: raised by ``TokenInfo.check_supported()`` for an old 住基カード.
"""

from __future__ import annotations

from dataclasses import dataclass

from idp.card.apdu import SHORT_MAX_LE, CommandApdu, ResponseApdu
from idp.card.der import certificate_length
from idp.card.errors import (
    ApduFormatError,
    CardContentError,
    CardError,
    MalformedResponseError,
    StatusWord,
    WrongParametersError,
    check_status,
    error_for_status,
)
from idp.card.jpki_ap import (
    EF_AUTH_CA,
    EF_AUTH_CERT,
    EF_SIGN_CA,
    EF_SIGN_CERT,
    EF_TOKEN_INFO,
    FORBIDDEN_APPLICATIONS,
    JPKI_AID,
    KEY_EF,
    PIN_EF,
    PROTECTED_FILES,
    TOKEN_LABEL_LENGTH,
    TokenKind,
)
from idp.card.pin import PinKind, encode_pin
from idp.card.transport import Transport

__all__ = [
    "ForbiddenSelectionError",
    "JpkiClient",
    "PinKind",
    "PinStatus",
    "SignedChallenge",
    "TokenInfo",
    "TokenKind",
    "UnsupportedTokenError",
    "check_selection_allowed",
]

SIGNATURE_LENGTH = 256
MAX_SIGN_INPUT = SIGNATURE_LENGTH - 11
MAX_OFFSET = 0x7FFF


class ForbiddenSelectionError(CardError):
    """The client refused to select an application or EF that holds the My Number."""


class UnsupportedTokenError(CardContentError):
    """The token is not a JPKI token this project accepts (e.g. an old 住基カード)."""


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """The token label from EF 0006 and what kind of token it names."""

    label: str
    kind: TokenKind

    def check_supported(self) -> None:
        """Refuse the old 住基カード (its certificates are from another, retired CA)."""
        if self.kind is TokenKind.JUKI:
            raise UnsupportedTokenError("This is an old 住基カード, not a My Number card.")


@dataclass(frozen=True, slots=True)
class PinStatus:
    """Tries left on both JPKI secrets (0 = blocked)."""

    auth_tries: int
    sign_tries: int


@dataclass(frozen=True, slots=True)
class SignedChallenge:
    """A certificate (DER) and the card's signature made with that certificate's key."""

    certificate: bytes
    signature: bytes


def check_selection_allowed(application: bytes | None, fid: int | None = None) -> None:
    """Raise ``ForbiddenSelectionError`` if selecting ``application`` (then EF ``fid``) could
    reach the My Number. An AID prefix counts as the application it may select (JICSAP)."""
    if application is None:
        if fid is not None:
            raise ForbiddenSelectionError("refusing to select an EF before an application")
        return
    for forbidden in FORBIDDEN_APPLICATIONS:
        if forbidden.startswith(application):
            raise ForbiddenSelectionError("refusing to select the 券面事項入力補助AP")
    if fid is not None:
        for aid, protected_fid in PROTECTED_FILES:
            if fid == protected_fid and aid.startswith(application):
                raise ForbiddenSelectionError(f"refusing to select EF {fid:04X} of this AP")


def _check_sign_input(digest_info: bytes) -> None:
    if not 1 <= len(digest_info) <= MAX_SIGN_INPUT:
        raise ApduFormatError(f"the card signs 1-{MAX_SIGN_INPUT} bytes (a DER DigestInfo)")


class JpkiClient:
    """The JPKI-AP of one card, reached through ``transport``."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._application: bytes | None = None
        self._ef: int | None = None

    # -- plumbing -------------------------------------------------------------------------

    def forget_selection(self) -> None:
        """Assume nothing is selected (after a reset, or when another program used the card)."""
        self._application = None
        self._ef = None

    def _transmit(self, command: CommandApdu) -> ResponseApdu:
        try:
            return self.transport.transmit(command)
        except CardError:
            self.forget_selection()
            raise

    def _select_application(self, aid: bytes) -> None:
        check_selection_allowed(aid)
        self.forget_selection()
        response = self._transmit(CommandApdu(0x00, 0xA4, 0x04, 0x0C, aid))
        check_status(response.sw)
        self._application = aid

    def _select_ef(self, fid: int) -> None:
        check_selection_allowed(self._application, fid)
        self._ef = None
        response = self._transmit(CommandApdu(0x00, 0xA4, 0x02, 0x0C, fid.to_bytes(2, "big")))
        check_status(response.sw)
        self._ef = fid

    def _ensure_ef(self, fid: int) -> None:
        if self._application != JPKI_AID:
            self.select_ap()
        if self._ef != fid:
            self._select_ef(fid)

    def select_ap(self) -> None:
        """SELECT the JPKI-AP (always sent: it also clears verified PINs on the card)."""
        self._select_application(JPKI_AID)

    def read_binary(self, offset: int, length: int) -> bytes:
        """READ BINARY of the current EF; ``length`` 1-256. A ``6Cxx`` answer is retried once
        with Le=xx. Returns at most ``length`` bytes (fewer at the end of the file)."""
        if not 0 <= offset <= MAX_OFFSET or not 1 <= length <= SHORT_MAX_LE:
            raise ValueError("READ BINARY offset must be 0-32767 and length 1-256")
        p1, p2 = offset >> 8, offset & 0xFF
        response = self._transmit(CommandApdu(0x00, 0xB0, p1, p2, le=length))
        if response.sw1 == 0x6C:
            response = self._transmit(CommandApdu(0x00, 0xB0, p1, p2, le=response.sw2 or 256))
        check_status(response.sw)
        if len(response.data) > length:
            raise MalformedResponseError(
                f"READ BINARY returned {len(response.data)} bytes, {length} were asked"
            )
        return response.data

    # -- reading --------------------------------------------------------------------------

    def _read_der(self, fid: int) -> bytes:
        """Read the DER object in EF ``fid``: one 256-byte READ learns the length, then
        256-byte chunks and an exact last one. Filler after the object is never read."""
        self._ensure_ef(fid)
        first = self.read_binary(0, SHORT_MAX_LE)
        total = certificate_length(first)
        if len(first) >= total:
            return first[:total]
        if len(first) < SHORT_MAX_LE:
            raise CardContentError(f"EF {fid:04X} ends before the length its DER object claims")
        parts = [first]
        offset = len(first)
        while offset < total:
            want = min(SHORT_MAX_LE, total - offset)
            try:
                chunk = self.read_binary(offset, want)
            except WrongParametersError as exc:
                if exc.sw != StatusWord.WRONG_P1P2:
                    raise
                raise CardContentError(
                    f"EF {fid:04X} ends before the length its DER object claims"
                ) from exc
            if len(chunk) != want:
                raise CardContentError(f"EF {fid:04X} ends before the length its DER object claims")
            parts.append(chunk)
            offset += want
        return b"".join(parts)

    def read_auth_certificate(self) -> bytes:
        """The 利用者証明用 certificate (EF 000A), DER. Free to read on a card."""
        return self._read_der(EF_AUTH_CERT)

    def read_auth_ca(self) -> bytes:
        """The authentication CA certificate (EF 000B), DER."""
        return self._read_der(EF_AUTH_CA)

    def read_sign_ca(self) -> bytes:
        """The signature CA certificate (EF 0002), DER."""
        return self._read_der(EF_SIGN_CA)

    def read_sign_certificate(self) -> bytes:
        """The 署名用 certificate (EF 0001), DER: verify the signature password first."""
        return self._read_der(EF_SIGN_CERT)

    def read_token_info(self) -> TokenInfo:
        """The token label (first 32 bytes of EF 0006) and the kind of token it names."""
        self._ensure_ef(EF_TOKEN_INFO)
        data = self.read_binary(0, TOKEN_LABEL_LENGTH)
        if len(data) < TOKEN_LABEL_LENGTH:
            raise CardContentError("the token information EF is shorter than a label")
        try:
            label = data.rstrip(b" \x00").decode("ascii")
        except UnicodeDecodeError as exc:
            raise CardContentError("the token label is not ASCII") from exc
        return TokenInfo(label=label, kind=TokenKind.from_label(label))

    # -- PINs -----------------------------------------------------------------------------

    def pin_tries(self, kind: PinKind) -> int:
        """Tries left on ``kind`` via the empty VERIFY (spends nothing). 0 = blocked."""
        self._ensure_ef(PIN_EF[kind])
        response = self._transmit(CommandApdu(0x00, 0x20, 0x00, 0x80))
        if response.sw & 0xFFF0 != 0x63C0:
            raise error_for_status(response.sw)
        return response.sw & 0x0F

    def pin_status(self) -> PinStatus:
        """Tries left on both secrets (5 APDUs from a fresh client)."""
        return PinStatus(
            auth_tries=self.pin_tries(PinKind.AUTH), sign_tries=self.pin_tries(PinKind.SIGN)
        )

    def verify_pin(self, kind: PinKind, pin: str) -> None:
        """VERIFY ``pin``; its format is checked first (``PinFormatError``, no APDU sent).

        Wrong: ``WrongPinError`` (``tries_left``); the try that blocks it or any try on a
        blocked PIN: ``PinBlockedError``.
        """
        data = encode_pin(kind, pin)
        self._ensure_ef(PIN_EF[kind])
        response = self._transmit(CommandApdu(0x00, 0x20, 0x00, 0x80, data))
        check_status(response.sw)

    # -- signing --------------------------------------------------------------------------

    def sign(self, kind: PinKind, digest_info: bytes) -> bytes:
        """Sign ``digest_info`` (a DER DigestInfo, 1-245 bytes) with the key of ``kind``;
        returns the 256-byte PKCS#1 v1.5 signature. The PIN must be verified."""
        _check_sign_input(digest_info)
        self._ensure_ef(KEY_EF[kind])
        command = CommandApdu(0x80, 0x2A, 0x00, 0x80, digest_info, le=SIGNATURE_LENGTH)
        response = self._transmit(command)
        check_status(response.sw)
        if len(response.data) != SIGNATURE_LENGTH:
            raise MalformedResponseError(
                f"signature of {len(response.data)} bytes, expected {SIGNATURE_LENGTH}"
            )
        return response.data

    def authenticate(self, digest_info: bytes, pin: str) -> bytes:
        """Verify PIN1 and sign with the authentication key: SELECT AP, SELECT 0018, VERIFY,
        SELECT 0017, SIGN (fewer if this client already selected some of it)."""
        encode_pin(PinKind.AUTH, pin)
        _check_sign_input(digest_info)
        self.verify_pin(PinKind.AUTH, pin)
        return self.sign(PinKind.AUTH, digest_info)

    def login(self, digest_info: bytes, pin: str) -> SignedChallenge:
        """Read the authentication certificate, then ``authenticate``."""
        encode_pin(PinKind.AUTH, pin)
        _check_sign_input(digest_info)
        certificate = self.read_auth_certificate()
        return SignedChallenge(certificate, self.authenticate(digest_info, pin))

    def enroll(self, digest_info: bytes, sign_password: str) -> SignedChallenge:
        """Verify the signature password, read the signature certificate and sign with the
        signature key (the basic 4 information comes from that certificate)."""
        encode_pin(PinKind.SIGN, sign_password)
        _check_sign_input(digest_info)
        self.verify_pin(PinKind.SIGN, sign_password)
        certificate = self.read_sign_certificate()
        return SignedChallenge(certificate, self.sign(PinKind.SIGN, digest_info))
