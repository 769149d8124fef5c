"""How APDUs reach a card.

``Transport`` is the seam every card user talks to: ``transmit(command) -> ResponseApdu``. Each
concrete transport implements only ``_exchange(raw) -> raw`` and inherits the bookkeeping: round
trips and bytes in both directions (``stats``) and an optional log of every exchange.

Transports here:

- ``InProcessTransport`` — wired straight to a ``VirtualCard`` object (no PC/SC).
- ``ScriptTransport`` — replays a recorded list of (command, response) pairs and fails with
  ``ScriptMismatchError`` on any deviation; ``RecordingTransport`` wraps another transport and
  records such a script.
- ``idp.card.pcsc.PcscTransport`` — a reader through pyscard (the only pyscard importer).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from idp.card.apdu import CommandApdu, ResponseApdu
from idp.card.errors import ScriptMismatchError


@dataclass
class TransportStats:
    """What crossed the transport: round trips and bytes each way."""

    round_trips: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    commands: list[bytes] = field(default_factory=list)

    def reset(self) -> None:
        self.round_trips = self.bytes_sent = self.bytes_received = 0
        self.commands.clear()


class Transport(ABC):
    """A channel to one card. Subclasses implement ``_exchange``."""

    def __init__(self) -> None:
        self.stats = TransportStats()

    @abstractmethod
    def _exchange(self, raw: bytes) -> bytes:
        """Send one encoded command APDU, return the raw response (data + SW1 SW2)."""

    def transmit(self, command: CommandApdu) -> ResponseApdu:
        raw = command.to_bytes()
        response_raw = self._exchange(raw)
        response = ResponseApdu.parse(response_raw)
        self.stats.round_trips += 1
        self.stats.bytes_sent += len(raw)
        self.stats.bytes_received += len(response_raw)
        self.stats.commands.append(raw)
        return response

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the channel (no-op unless the transport holds a resource)."""


class ApduProcessor(Protocol):
    """Anything that answers raw command APDUs, e.g. ``VirtualCard``."""

    def process(self, raw: bytes) -> bytes: ...


class InProcessTransport(Transport):
    """A transport wired straight to an in-process card (no PC/SC, no sockets)."""

    def __init__(self, card: ApduProcessor) -> None:
        super().__init__()
        self.card = card

    def _exchange(self, raw: bytes) -> bytes:
        return self.card.process(raw)


class ScriptTransport(Transport):
    """Replays recorded (command, response) pairs; any deviation is a ``ScriptMismatchError``."""

    def __init__(self, script: Iterable[tuple[bytes, bytes]]) -> None:
        super().__init__()
        self._script = list(script)
        self._position = 0

    @classmethod
    def from_hex(cls, lines: Iterable[tuple[str, str]]) -> ScriptTransport:
        return cls((bytes.fromhex(c), bytes.fromhex(r)) for c, r in lines)

    @property
    def finished(self) -> bool:
        return self._position == len(self._script)

    def _exchange(self, raw: bytes) -> bytes:
        if self._position >= len(self._script):
            raise ScriptMismatchError(f"unexpected extra command {raw.hex()}")
        expected, response = self._script[self._position]
        if raw != expected:
            raise ScriptMismatchError(
                f"command {self._position}: expected {expected.hex()}, got {raw.hex()}"
            )
        self._position += 1
        return response


class RecordingTransport(Transport):
    """Wraps another transport and records every exchange as a replayable script."""

    def __init__(self, inner: Transport) -> None:
        super().__init__()
        self.inner = inner
        self.script: list[tuple[bytes, bytes]] = []

    def _exchange(self, raw: bytes) -> bytes:
        response = self.inner._exchange(raw)
        self.script.append((raw, response))
        return response

    def close(self) -> None:
        self.inner.close()
