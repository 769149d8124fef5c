"""Errors of the card layer.

Exception tree::

    CardError
    ├── ApduFormatError            a command or response APDU that cannot be encoded or parsed
    │   └── MalformedResponseError the card (or a transport) answered something unparseable
    ├── PinFormatError             a PIN rejected before it reaches the card (no try spent)
    ├── CardStatusError            the card answered a status word other than 9000 (``sw``)
    │   ├── WrongPinError          63Cx: ``tries_left`` = x (x > 0)
    │   ├── PinBlockedError        6984, or the 63C0 that answers the try that blocks the PIN
    │   ├── SecurityStatusError    6982: the key or file needs a PIN that is not verified
    │   ├── CardFileNotFoundError     6A82: no such application or file
    │   ├── WrongLengthError       6700 / 6Cxx
    │   ├── WrongParametersError   6A86 / 6B00 / 6A80
    │   ├── ConditionsNotSatisfiedError 6985
    │   ├── InstructionNotSupportedError 6D00 / 6E00
    │   └── UnexpectedStatusError  any other status word
    ├── TransportError             the path to the card failed
    │   ├── PcscUnavailableError   no PC/SC daemon
    │   ├── NoReaderError          no such reader
    │   ├── NoCardError            no card in the reader
    │   ├── CardRemovedError       the card went away (possibly mid-command)
    │   ├── CardBusyError          another program holds the card exclusively
    │   └── ScriptMismatchError    a replayed APDU script did not expect this command
    └── CardContentError           the card's files are not what a JPKI card holds

Status words map to errors through ``STATUS_ERRORS`` (a table, not an if-chain); data lives in
attributes, messages are fixed text plus the status word in hex.
"""

from __future__ import annotations

from enum import IntEnum


class StatusWord(IntEnum):
    """ISO 7816-4 / JICSAP status words a JPKI card answers."""

    OK = 0x9000
    VERIFY_FAILED_NO_RETRY_LIMIT = 0x6300
    WRONG_LENGTH = 0x6700
    SECURITY_STATUS_NOT_SATISFIED = 0x6982
    AUTH_METHOD_BLOCKED = 0x6983
    REFERENCED_DATA_BLOCKED = 0x6984
    CONDITIONS_NOT_SATISFIED = 0x6985
    COMMAND_NOT_ALLOWED = 0x6986
    WRONG_DATA = 0x6A80
    FUNCTION_NOT_SUPPORTED = 0x6A81
    FILE_NOT_FOUND = 0x6A82
    INCORRECT_P1P2 = 0x6A86
    WRONG_P1P2 = 0x6B00
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    NO_PRECISE_DIAGNOSIS = 0x6F00


def describe_sw(sw: int) -> str:
    """``SW=0x6982 (SECURITY_STATUS_NOT_SATISFIED)``-style text for logs and messages."""
    try:
        name = StatusWord(sw).name
    except ValueError:
        if sw & 0xFFF0 == 0x63C0:
            name = f"VERIFY_FAILED_{sw & 0x0F}_TRIES_LEFT"
        elif sw >> 8 == 0x61:
            name = "MORE_DATA_AVAILABLE"
        elif sw >> 8 == 0x6C:
            name = "WRONG_LE"
        else:
            name = "UNKNOWN"
    return f"SW=0x{sw:04X} ({name})"


class CardError(Exception):
    """Base of every error raised by ``idp.card``."""


class ApduFormatError(CardError, ValueError):
    """A command or response APDU that cannot be encoded or parsed."""


class MalformedResponseError(ApduFormatError):
    """The card or a transport answered bytes that are not a response APDU or not what was asked."""


class PinFormatError(CardError, ValueError):
    """A PIN of the wrong length or alphabet, refused before it could cost a try on the card."""


class CardContentError(CardError):
    """A file on the card does not hold what a JPKI card holds (e.g. not a DER certificate)."""


class CardStatusError(CardError):
    """The card answered a status word other than 9000."""

    def __init__(self, sw: int, message: str | None = None) -> None:
        self.sw = sw
        super().__init__(f"{message or self.__class__.__doc__ or 'card error'} {describe_sw(sw)}")


class WrongPinError(CardStatusError):
    """Wrong PIN."""

    def __init__(self, sw: int, message: str | None = None) -> None:
        self.tries_left = sw & 0x0F
        super().__init__(sw, message or f"Wrong PIN, {self.tries_left} tries left.")


class PinBlockedError(CardStatusError):
    """The PIN is blocked."""


class SecurityStatusError(CardStatusError):
    """Security status not satisfied: the PIN for this key or file is not verified."""


class CardFileNotFoundError(CardStatusError):
    """No such application or file on the card."""


class WrongLengthError(CardStatusError):
    """Wrong length."""


class WrongParametersError(CardStatusError):
    """Wrong parameters P1-P2 or data."""


class ConditionsNotSatisfiedError(CardStatusError):
    """Conditions of use not satisfied."""


class InstructionNotSupportedError(CardStatusError):
    """Instruction or class not supported."""


class UnexpectedStatusError(CardStatusError):
    """Unexpected status word."""


STATUS_ERRORS: dict[int, type[CardStatusError]] = {
    StatusWord.REFERENCED_DATA_BLOCKED: PinBlockedError,
    StatusWord.AUTH_METHOD_BLOCKED: PinBlockedError,
    0x63C0: PinBlockedError,
    StatusWord.SECURITY_STATUS_NOT_SATISFIED: SecurityStatusError,
    StatusWord.FILE_NOT_FOUND: CardFileNotFoundError,
    StatusWord.WRONG_LENGTH: WrongLengthError,
    StatusWord.INCORRECT_P1P2: WrongParametersError,
    StatusWord.WRONG_P1P2: WrongParametersError,
    StatusWord.WRONG_DATA: WrongParametersError,
    StatusWord.CONDITIONS_NOT_SATISFIED: ConditionsNotSatisfiedError,
    StatusWord.COMMAND_NOT_ALLOWED: ConditionsNotSatisfiedError,
    StatusWord.INS_NOT_SUPPORTED: InstructionNotSupportedError,
    StatusWord.CLA_NOT_SUPPORTED: InstructionNotSupportedError,
    StatusWord.FUNCTION_NOT_SUPPORTED: InstructionNotSupportedError,
}
"""Status word -> error class. 63C1..63CF and 6Cxx are families, looked up by mask below."""

STATUS_FAMILIES: dict[tuple[int, int], type[CardStatusError]] = {
    (0xFFF0, 0x63C0): WrongPinError,  # 63C1..63CF (63C0 is in STATUS_ERRORS)
    (0xFF00, 0x6C00): WrongLengthError,
}


def error_for_status(sw: int) -> CardStatusError:
    """The typed error for a non-9000 status word."""
    cls = STATUS_ERRORS.get(sw)
    if cls is None:
        for (mask, value), family in STATUS_FAMILIES.items():
            if sw & mask == value:
                cls = family
                break
        else:
            cls = UnexpectedStatusError
    return cls(sw)


def check_status(sw: int) -> None:
    """Raise the typed error for ``sw`` unless it is 9000."""
    if sw != StatusWord.OK:
        raise error_for_status(sw)


class TransportError(CardError):
    """The path to the card failed."""


class PcscUnavailableError(TransportError):
    """The PC/SC daemon (pcscd) is not running or not reachable."""


class NoReaderError(TransportError):
    """No (such) card reader."""


class NoCardError(TransportError):
    """No card in the reader."""


class CardRemovedError(TransportError):
    """The card was removed or reset, possibly in the middle of a command."""


class CardBusyError(TransportError):
    """Another program holds the card; try again when it has finished."""


class ScriptMismatchError(TransportError):
    """A replayed APDU script received a command it did not expect."""
