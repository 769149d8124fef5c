"""What the virtual card holds: its applications, elementary files and PIN counters.

Three kinds of EF, as on the real JPKI-AP:

- ``BinaryFile``: transparent data read with READ BINARY, optionally behind a PIN (EF 0001).
- ``PinFile``: a PIN (key reference) answered by VERIFY / CHANGE REFERENCE DATA.
- ``KeyFile``: an RSA private key used by COMPUTE DIGITAL SIGNATURE behind a PIN.

``Pin`` keeps the persistent part (secret, tries left) apart from the volatile verified flag,
which the card clears on reset, power and re-selection of the application.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from idp.card.pin import PinKind

STUB_PIN_TRIES = 3
RSA_MODULUS_BYTES = 256
PKCS1_OVERHEAD = 11
MAX_SIGN_INPUT = RSA_MODULUS_BYTES - PKCS1_OVERHEAD  # 245


@dataclass
class Pin:
    """A PIN: the secret and its retry counter persist; ``verified`` is volatile."""

    secret: bytes | None
    """None for the stub applications' PINs: they answer the tries query and nothing else."""
    max_tries: int
    kind: PinKind | None = None
    """Format of the secret (for CHANGE REFERENCE DATA); None for the stubs."""
    tries_left: int = -1
    verified: bool = False

    def __post_init__(self) -> None:
        if self.tries_left < 0:
            self.tries_left = self.max_tries

    @property
    def blocked(self) -> bool:
        return self.tries_left == 0


@dataclass
class BinaryFile:
    data: bytes
    read_pin: int | None = None
    """FID of the PIN that must be verified before READ BINARY (None: free)."""


@dataclass
class PinFile:
    pin: Pin


@dataclass
class KeyFile:
    key: rsa.RSAPrivateKey
    pin_fid: int
    _numbers: rsa.RSAPrivateNumbers = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.key.key_size != RSA_MODULUS_BYTES * 8:
            raise ValueError("the virtual card holds RSA-2048 keys only")
        self._numbers = self.key.private_numbers()

    def sign_raw(self, data: bytes) -> bytes:
        """PKCS#1 v1.5 type-1 padding over ``data`` (1-245 bytes), then the raw RSA operation."""
        if not 1 <= len(data) <= MAX_SIGN_INPUT:
            raise ValueError("signature input must be 1-245 bytes")
        padded = b"\x00\x01" + b"\xff" * (RSA_MODULUS_BYTES - 3 - len(data)) + b"\x00" + data
        m = int.from_bytes(padded, "big")
        n = self._numbers
        # Chinese remainder theorem, as a card does it.
        s1 = pow(m, n.dmp1, n.p)
        s2 = pow(m, n.dmq1, n.q)
        h = (n.iqmp * (s1 - s2)) % n.p
        s = s2 + h * n.q
        return s.to_bytes(RSA_MODULUS_BYTES, "big")


ElementaryFile = BinaryFile | PinFile | KeyFile


@dataclass
class Application:
    """A DF selected by AID: its EFs by FID."""

    name: str
    aid: bytes
    files: dict[int, ElementaryFile]

    def pins(self) -> list[Pin]:
        return [ef.pin for ef in self.files.values() if isinstance(ef, PinFile)]


def token_info(label: str, *, serial: str = "VIRTUAL0000000001") -> bytes:
    """EF 0006: a 160-byte PKCS#11 CK_TOKEN_INFO, big-endian ULONGs, text space-padded."""
    raw_label = label.encode("ascii")
    if not 1 <= len(raw_label) <= 32:
        raise ValueError("the token label must be 1-32 ASCII characters")

    def text(value: str, size: int) -> bytes:
        return value.encode("ascii")[:size].ljust(size, b" ")

    flags = 0x0000040D  # RNG | LOGIN_REQUIRED | USER_PIN_INITIALIZED | TOKEN_INITIALIZED
    ulongs = struct.pack(
        ">11L",
        flags,
        1,  # ulMaxSessionCount
        0,  # ulSessionCount
        1,  # ulMaxRwSessionCount
        0,  # ulRwSessionCount
        16,  # ulMaxPinLen
        4,  # ulMinPinLen
        0xFFFFFFFF,  # ulTotalPublicMemory (unavailable)
        0xFFFFFFFF,  # ulFreePublicMemory
        0xFFFFFFFF,  # ulTotalPrivateMemory
        0xFFFFFFFF,  # ulFreePrivateMemory
    )
    info = (
        text(label, 32)
        + text("JPKI-TEST virtual card", 32)
        + text("myna-idp", 16)
        + text(serial, 16)
        + ulongs
        + b"03"  # hardwareVersion, stored as ASCII as real cards do
        + b"01"  # firmwareVersion
        + b" " * 16  # utcTime: no clock
    )
    assert len(info) == 160
    return info


def certificate_availability(*, has_sign_certificate: bool) -> bytes:
    """EF 0008: ``8F 8F 00`` with both certificates; byte 0 differs without a signature one.

    The value used for a card without a signature certificate (``00``) is a guess: only the
    fact that it differs from ``8F`` is documented.
    """
    return bytes((0x8F if has_sign_certificate else 0x00, 0x8F, 0x00))


@dataclass(frozen=True, slots=True)
class Response:
    """A response APDU as the card builds it."""

    data: bytes
    sw: int

    def to_bytes(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")


def status(sw: int) -> Response:
    """A response that is a bare status word."""
    return Response(b"", sw)


def stub_application(name: str, aid: bytes, pin_fids: tuple[int, ...]) -> Application:
    files: dict[int, ElementaryFile] = {
        fid: PinFile(Pin(secret=None, max_tries=STUB_PIN_TRIES)) for fid in pin_fids
    }
    return Application(name, aid, files)


def certificate_der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(Encoding.DER)


def check_key_matches(certificate_der: bytes, key: rsa.RSAPrivateKey, what: str) -> None:
    try:
        certificate = x509.load_der_x509_certificate(certificate_der)
    except ValueError as exc:
        raise ValueError(f"the {what} certificate is not DER X.509") from exc
    public = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if (
        certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        != public
    ):
        raise ValueError(f"the {what} key does not belong to the {what} certificate")
