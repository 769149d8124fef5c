"""Card readers through PC/SC (pyscard) — the only module that imports ``smartcard``.

pyscard's exceptions and PC/SC return codes are mapped here, once, to the card layer's transport
errors (``raise ... from exc``); nothing outside this module sees a pyscard type::

    TransportError
    ├── PcscUnavailableError  no pcscd (SCARD_E_NO_SERVICE 8010001D, service stopped), or the
    │                         connection to it broke while waiting for a card (SCARD_F_COMM_ERROR
    │                         80100013 from SCardGetStatusChange: pcscd stopped or restarted)
    ├── NoReaderError         no reader at all, no reader of that name, reader gone
    ├── NoCardError           no card in the reader (SCARD_E_NO_SMARTCARD 8010000C), or none
    │                         arrived within ``wait_seconds``
    └── CardRemovedError      the card was removed or reset while connected
                              (SCARD_W_REMOVED_CARD, SCARD_W_RESET_CARD, a failed transmit, or
                              a "successful" transmit without a status word: lost mid-command)

``PcscTransport`` connects in exclusive mode by default, T=1 preferred (T=0 only when the card
refuses T=1), and powers the card down on ``close()`` so that no verified PIN state outlives the
session. Exclusive matters: in shared mode another program could select a different application
between our SELECT of the JPKI AP and our SELECT of an EF, and we would read that application's
file instead (for the 券面事項入力補助AP that file is the My Number). A card held by another
program answers ``CardBusyError``.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any, NoReturn

from smartcard.CardConnection import CardConnection
from smartcard.Exceptions import (
    CardServiceNotFoundException,
    CardServiceStoppedException,
    NoCardException,
    SmartcardException,
)
from smartcard.pcsc.PCSCExceptions import BaseSCardException
from smartcard.pcsc.PCSCReader import PCSCReader
from smartcard.scard import (
    SCARD_E_NO_READERS_AVAILABLE,
    SCARD_E_NO_SERVICE,
    SCARD_E_NO_SMARTCARD,
    SCARD_E_NOT_TRANSACTED,
    SCARD_E_PROTO_MISMATCH,
    SCARD_E_READER_UNAVAILABLE,
    SCARD_E_SERVICE_STOPPED,
    SCARD_E_SHARING_VIOLATION,
    SCARD_E_TIMEOUT,
    SCARD_E_UNKNOWN_READER,
    SCARD_F_COMM_ERROR,
    SCARD_S_SUCCESS,
    SCARD_SCOPE_USER,
    SCARD_SHARE_EXCLUSIVE,
    SCARD_SHARE_SHARED,
    SCARD_STATE_PRESENT,
    SCARD_STATE_UNAWARE,
    SCARD_W_REMOVED_CARD,
    SCARD_W_RESET_CARD,
    SCARD_W_UNPOWERED_CARD,
    SCARD_W_UNRESPONSIVE_CARD,
    SCardEstablishContext,
    SCardGetStatusChange,
    SCardReleaseContext,
)
from smartcard.System import readers as _pyscard_readers

from idp.card.errors import (
    CardBusyError,
    CardRemovedError,
    NoCardError,
    NoReaderError,
    PcscUnavailableError,
    TransportError,
)
from idp.card.transport import Transport

__all__ = ["PcscTransport", "card_events", "card_present", "list_readers", "wait_for_card"]

_PYSCARD_ERRORS = (SmartcardException, BaseSCardException)


def _u32(value: int) -> int:
    return value & 0xFFFFFFFF


_UNAVAILABLE = {_u32(SCARD_E_NO_SERVICE), _u32(SCARD_E_SERVICE_STOPPED)}
#: The client library's socket to pcscd failed. Without a card connection that can only mean
#: pcscd went away (stopped or restarted); during a transmit it is counted as a lost card.
_DAEMON_LOST = {_u32(SCARD_F_COMM_ERROR)}
_NO_READER = {
    _u32(SCARD_E_NO_READERS_AVAILABLE),
    _u32(SCARD_E_UNKNOWN_READER),
    _u32(SCARD_E_READER_UNAVAILABLE),
}
_NO_CARD = {_u32(SCARD_E_NO_SMARTCARD)}
_REMOVED = {
    _u32(SCARD_W_REMOVED_CARD),
    _u32(SCARD_W_RESET_CARD),
    _u32(SCARD_W_UNPOWERED_CARD),
    _u32(SCARD_W_UNRESPONSIVE_CARD),
    _u32(SCARD_E_NOT_TRANSACTED),
    _u32(SCARD_F_COMM_ERROR),
}


def _error(code: int, *, reader: str | None, connected: bool, detail: str = "") -> TransportError:
    """The card-layer error for a PC/SC return code (-1 when pyscard gave none)."""
    where = f" ({reader})" if reader else ""
    if code in _UNAVAILABLE:
        return PcscUnavailableError("the PC/SC service (pcscd) is not running")
    if code in _DAEMON_LOST and not connected:
        return PcscUnavailableError("lost the connection to the PC/SC service (pcscd)")
    if code in _NO_READER:
        return NoReaderError(f"card reader not available{where}")
    if code in _REMOVED or (connected and code in _NO_CARD):
        return CardRemovedError(f"the card was removed or reset{where}")
    if connected and code == _u32(SCARD_S_SUCCESS):
        # pcscd reported success with no status word: the reader lost the card mid-command
        # (vpcd does this when the card side disconnects while working).
        return CardRemovedError(f"the card stopped answering mid-command{where}")
    if code in _NO_CARD:
        return NoCardError(f"no card in the reader{where}")
    if code == _u32(SCARD_E_SHARING_VIOLATION):
        return CardBusyError(f"another program is using the card{where}")
    return TransportError(f"PC/SC error{where}: {detail or f'0x{code:08X}'}")


def _raise_mapped(exc: BaseException, *, reader: str | None, connected: bool) -> NoReturn:
    """Raise the card-layer error for a pyscard exception, chained ``from exc``."""
    hresult = getattr(exc, "hresult", -1)
    code = _u32(hresult) if isinstance(hresult, int) and hresult != -1 else -1
    if isinstance(exc, CardServiceNotFoundException | CardServiceStoppedException):
        code = _u32(SCARD_E_NO_SERVICE)
    elif isinstance(exc, NoCardException) and code == -1:
        code = _u32(SCARD_E_NO_SMARTCARD)
    raise _error(code, reader=reader, connected=connected, detail=str(exc)) from exc


def list_readers() -> list[str]:
    """Names of the PC/SC readers pcscd knows, in pcscd's order (may be empty)."""
    try:
        return [str(reader) for reader in _pyscard_readers()]
    except _PYSCARD_ERRORS as exc:
        _raise_mapped(exc, reader=None, connected=False)


def _resolve_reader(name: str) -> str:
    """A reader's full name from its full name or a unique part of it."""
    names = list_readers()
    if not names:
        raise NoReaderError("no card reader is connected")
    if name in names:
        return name
    matches = [candidate for candidate in names if name in candidate]
    if len(matches) == 1:
        return matches[0]
    raise NoReaderError(f"no single reader matches {name!r}")


def _event_count(state: int) -> int:
    """pcscd's insertion/removal count, kept in the upper 16 bits of an event state."""
    return (state >> 16) & 0xFFFF


def _reached(state: int, *, present: bool, since: int | None) -> bool:
    """Whether a reader's event state shows ``present``, counted after ``since`` if given."""
    if bool(state & SCARD_STATE_PRESENT) != present:
        return False
    return since is None or _event_count(state) != since


def _reader_states(
    readers: list[str], *, present: bool | None, timeout: float, since: int | None = None
) -> dict[str, int]:
    """Reader event states, after waiting up to ``timeout`` s for one reader to reach ``present``
    (and, with ``since``, for its event count to differ from ``since``).

    ``present=None`` only reads the current states. Uses SCardGetStatusChange directly: no
    polling and no helper threads. Each call passes back the states (event count included) of
    the previous answer, so pcscd wakes it for a state change and for a new count alike.
    """
    hresult, context = SCardEstablishContext(SCARD_SCOPE_USER)
    if hresult != SCARD_S_SUCCESS:
        raise _error(_u32(hresult), reader=None, connected=False)
    try:
        known = [(reader, SCARD_STATE_UNAWARE) for reader in readers]
        deadline = time.monotonic() + timeout
        wait_ms = 0
        while True:
            hresult, new_states = SCardGetStatusChange(context, wait_ms, known)
            if hresult == SCARD_E_TIMEOUT:
                return {reader: state for reader, state in known}
            if hresult != SCARD_S_SUCCESS:
                raise _error(_u32(hresult), reader=readers[0] if readers else None, connected=False)
            states = {reader: state for reader, state, _atr in new_states}
            if present is None or any(
                _reached(state, present=present, since=since) for state in states.values()
            ):
                return states
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return states
            wait_ms = max(1, int(remaining * 1000))
            known = list(states.items())
    finally:
        SCardReleaseContext(context)


def card_present(reader: str) -> bool:
    """Whether ``reader`` holds a card right now."""
    states = _reader_states([reader], present=None, timeout=0)
    return bool(states.get(reader, 0) & SCARD_STATE_PRESENT)


def card_events(reader: str) -> int:
    """How many card insertions and removals pcscd's monitor of ``reader`` has counted (mod 2**16).

    Take it once a card is seen, and pass it as ``since`` to :func:`wait_for_card` to wait for
    the next event the monitor itself counts.
    """
    states = _reader_states([reader], present=None, timeout=0)
    return _event_count(states.get(reader, 0))


def wait_for_card(
    reader: str, *, timeout: float, present: bool = True, since: int | None = None
) -> bool:
    """Wait up to ``timeout`` s for a card to be in (or, ``present=False``, out of) ``reader``.

    With ``since`` (a :func:`card_events` value), the state only counts once pcscd's reader
    monitor has counted an insertion or removal after that value. The difference matters when
    a card is lost while a program still holds a connection to it: that program's disconnect
    (or reset, or reconnect) finds the card gone and marks the reader empty on the spot, before
    the monitor, which polls the reader, has noticed. A card put into the reader before the
    monitor's next poll then looks to the monitor like the card it already knew: pcscd never
    powers it up and keeps reporting an empty reader until that card leaves again. Waiting for
    the monitor's own count of the removal (``present=False, since=...``) rules that out.

    Returns whether the reader reached that state. Event-driven, never a fixed sleep.
    """
    states = _reader_states([reader], present=present, timeout=timeout, since=since)
    return _reached(states.get(reader, 0), present=present, since=since)


class PcscTransport(Transport):
    """A card in a PC/SC reader.

    ``reader_name`` is a reader's full name or a unique part of it; ``None`` takes the first
    reader that holds a card. With ``wait_seconds`` > 0 the constructor waits that long for a
    card to be inserted before giving up with ``NoCardError``.
    """

    def __init__(
        self, reader_name: str | None = None, *, wait_seconds: float = 0.0, exclusive: bool = True
    ) -> None:
        super().__init__()
        self.reader = self._pick_reader(reader_name, wait_seconds)
        self._connection: Any = None
        self._connection = self._connect(self.reader, exclusive=exclusive)
        self.atr: bytes = self._read_atr()

    @staticmethod
    def _pick_reader(reader_name: str | None, wait_seconds: float) -> str:
        if reader_name is not None:
            readers = [_resolve_reader(reader_name)]
        else:
            readers = list_readers()
            if not readers:
                raise NoReaderError("no card reader is connected")
        states = _reader_states(readers, present=True, timeout=wait_seconds)
        with_card = [reader for reader in readers if states.get(reader, 0) & SCARD_STATE_PRESENT]
        if not with_card:
            where = f" ({readers[0]})" if reader_name is not None else ""
            waited = f" within {wait_seconds:g} s" if wait_seconds > 0 else ""
            raise NoCardError(f"no card in the reader{where}{waited}")
        return with_card[0]

    @staticmethod
    def _connect(reader: str, *, exclusive: bool) -> Any:
        connection = PCSCReader(reader).createConnection()
        mode = SCARD_SHARE_EXCLUSIVE if exclusive else SCARD_SHARE_SHARED
        try:
            try:
                connection.connect(CardConnection.T1_protocol, mode=mode)
            except SmartcardException as exc:
                if _u32(getattr(exc, "hresult", -1)) != _u32(SCARD_E_PROTO_MISMATCH):
                    raise
                connection.connect(CardConnection.T0_protocol, mode=mode)
        except _PYSCARD_ERRORS as exc:
            _release_quietly(connection)
            _raise_mapped(exc, reader=reader, connected=False)
        return connection

    def _read_atr(self) -> bytes:
        try:
            return bytes(self._connection.getATR())
        except _PYSCARD_ERRORS as exc:
            self.close()
            _raise_mapped(exc, reader=self.reader, connected=True)

    def _exchange(self, raw: bytes) -> bytes:
        if self._connection is None:
            raise TransportError("the PC/SC connection is closed")
        try:
            data, sw1, sw2 = self._connection.transmit(list(raw))
        except _PYSCARD_ERRORS as exc:
            _raise_mapped(exc, reader=self.reader, connected=True)
        return bytes(data) + bytes((sw1, sw2))

    def close(self) -> None:
        """Disconnect, powering the card down (clears any verified PIN state)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            _release_quietly(connection)

    def __enter__(self) -> PcscTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _release_quietly(connection: Any) -> None:
    try:
        connection.release()
    except _PYSCARD_ERRORS:
        pass  # the card or pcscd is already gone: nothing is left to release
