"""Command and response APDUs (ISO 7816-4), short and extended encodings.

``CommandApdu.to_bytes()`` chooses the short encoding when the data and Le fit, the extended one
otherwise (or when asked); ``CommandApdu.parse()`` reads either, and rejects anything else with
``ApduFormatError``. ``le`` is the number of bytes expected (``None`` = no Le field); 256 is
encoded as ``00`` in short form and 65536 as ``00 00`` in extended form.
"""

from __future__ import annotations

from dataclasses import dataclass

from idp.card.errors import ApduFormatError, MalformedResponseError, StatusWord

SHORT_MAX_DATA = 255
SHORT_MAX_LE = 256
EXTENDED_MAX_DATA = 65535
EXTENDED_MAX_LE = 65536


@dataclass(frozen=True, slots=True)
class CommandApdu:
    """One command APDU. ``data`` may be empty; ``le`` is None when no response data is asked."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            value = getattr(self, name)
            if not 0 <= value <= 0xFF:
                raise ApduFormatError(f"{name} must be one byte")
        if len(self.data) > EXTENDED_MAX_DATA:
            raise ApduFormatError("command data longer than 65535 bytes")
        if self.le is not None and not 1 <= self.le <= EXTENDED_MAX_LE:
            raise ApduFormatError("Le must be between 1 and 65536")

    @property
    def is_extended(self) -> bool:
        """True when the short encoding cannot carry this command."""
        return len(self.data) > SHORT_MAX_DATA or (self.le is not None and self.le > SHORT_MAX_LE)

    def to_bytes(self, *, extended: bool = False) -> bytes:
        """Encode; extended form when ``extended`` is set or required by the sizes."""
        header = bytes((self.cla, self.ins, self.p1, self.p2))
        if not (extended or self.is_extended):
            body = b""
            if self.data:
                body += bytes((len(self.data),)) + self.data
            if self.le is not None:
                body += bytes((self.le % 256,))
            return header + body
        body = b""
        if self.data:
            body += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
        if self.le is not None:
            le = (self.le % 65536).to_bytes(2, "big")
            body += le if self.data else b"\x00" + le
        return header + body

    @classmethod
    def parse(cls, raw: bytes) -> CommandApdu:
        """Decode a short or extended command APDU (ISO 7816-4 cases 1-4)."""
        if len(raw) < 4:
            raise ApduFormatError("command APDU shorter than its 4-byte header")
        cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
        body = raw[4:]
        n = len(body)
        if n == 0:  # case 1
            return cls(cla, ins, p1, p2)
        if n == 1:  # case 2 short
            return cls(cla, ins, p1, p2, b"", body[0] or 256)
        if body[0] != 0:  # short case 3 or 4
            lc = body[0]
            if n == 1 + lc:
                return cls(cla, ins, p1, p2, bytes(body[1:]))
            if n == 2 + lc:
                return cls(cla, ins, p1, p2, bytes(body[1 : 1 + lc]), body[-1] or 256)
            raise ApduFormatError("Lc does not match the command length")
        # body[0] == 0 and n >= 2: extended forms
        if n == 3:  # case 2 extended
            le = int.from_bytes(body[1:3], "big")
            return cls(cla, ins, p1, p2, b"", le or 65536)
        if n < 3:
            raise ApduFormatError("truncated extended length")
        lc = int.from_bytes(body[1:3], "big")
        if lc == 0:
            raise ApduFormatError("extended Lc of zero")
        if n == 3 + lc:
            return cls(cla, ins, p1, p2, bytes(body[3:]))
        if n == 5 + lc:
            le = int.from_bytes(body[-2:], "big")
            return cls(cla, ins, p1, p2, bytes(body[3 : 3 + lc]), le or 65536)
        raise ApduFormatError("extended Lc does not match the command length")


@dataclass(frozen=True, slots=True)
class ResponseApdu:
    """A response APDU: data followed by the two status bytes."""

    data: bytes
    sw: int

    @property
    def ok(self) -> bool:
        return self.sw == StatusWord.OK

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    def to_bytes(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    @classmethod
    def parse(cls, raw: bytes) -> ResponseApdu:
        if len(raw) < 2:
            raise MalformedResponseError("response APDU shorter than its status word")
        if len(raw) > EXTENDED_MAX_LE + 2:
            raise MalformedResponseError("response APDU longer than 65538 bytes")
        return cls(bytes(raw[:-2]), int.from_bytes(raw[-2:], "big"))
