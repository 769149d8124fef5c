"""Serve a software card to pcscd through vsmartcard's vpcd reader driver.

vpcd listens on TCP (35963 for reader ``Virtual PCD 00 00``, 35964 for ``... 00 01``); the card
side connects to it. Every message, both ways, is a 2-byte big-endian length and a payload. A
1-byte payload from vpcd is a control code (0 power off, 1 power on, 2 reset: no reply; 4 ATR
request: reply with the ATR); a longer one is a command APDU, answered with the response APDU.

``VpcdBridge`` is that card side. It connects (loopback only), answers until vpcd goes away, then
reconnects with a capped backoff, until ``stop()``. Closing the connection is what pcscd sees
as removing the card. Standard library only; no environment reads.

vpcd writes the length and the payload in two sends without TCP_NODELAY; with Linux delayed
ACKs that costs ≈44 ms per APDU unless this side sets TCP_QUICKACK after every receive (the
flag does not stick, so it is set again each time).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from typing import Protocol

__all__ = ["DEFAULT_PORT", "CardSlot", "VpcdBridge"]

DEFAULT_PORT = 35963
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

POWER_OFF = 0
POWER_ON = 1
RESET = 2
GET_ATR = 4

#: Answer to a command the card object failed on: 6F00, "no precise diagnosis".
_CARD_FAILURE = b"\x6f\x00"

log = logging.getLogger(__name__)


class CardSlot(Protocol):
    """What vpcd needs from a card (``VirtualCard`` has all of it)."""

    @property
    def atr(self) -> bytes: ...

    def process(self, raw: bytes) -> bytes: ...

    def power_on(self) -> None: ...

    def power_off(self) -> None: ...

    def reset(self) -> None: ...


class VpcdBridge:
    """Connects ``card`` to a vpcd reader and answers for it until ``stop()``.

    ``on_connect`` / ``on_disconnect`` are called (from the serving thread) when vpcd accepts the
    card and when the connection ends. ``connected`` is an ``Event`` set while connected.
    ``quickack=False`` is only for measuring what TCP_QUICKACK saves (bench/pcsc_roundtrip.py).
    """

    def __init__(
        self,
        card: CardSlot,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        retry_initial: float = 0.05,
        retry_max: float = 2.0,
        on_connect: Callable[[], None] | None = None,
        on_disconnect: Callable[[], None] | None = None,
        quickack: bool = True,
    ) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError("vpcd is only ever reached on loopback (127.0.0.1, localhost, ::1)")
        if not 0 < port < 65536:
            raise ValueError("port must be between 1 and 65535")
        self.card = card
        self.host = host
        self.port = port
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.quickack = quickack and hasattr(socket, "TCP_QUICKACK")
        self.connected = threading.Event()
        self.apdus = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> VpcdBridge:
        """Serve in a daemon thread; returns self."""
        if self._thread is not None:
            raise RuntimeError("bridge already started")
        self._thread = threading.Thread(
            target=self.serve_forever, name=f"vpcd-bridge-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect (the card leaves the reader) and stop reconnecting. Idempotent."""
        self._stop.set()
        with self._lock:
            sock = self._socket
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked recv in the serving thread
            except OSError:
                pass  # already closed by the peer
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self.connected.wait(timeout)

    def serve_forever(self) -> None:
        """Connect, serve, reconnect with backoff; returns after ``stop()``."""
        delay = self.retry_initial
        while not self._stop.is_set():
            sock = self._connect()
            if sock is None:
                self._stop.wait(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            delay = self.retry_initial
            try:
                self._serve(sock)
            finally:
                with self._lock:
                    self._socket = None
                sock.close()
                self.connected.clear()
                self.card.power_off()
                if self.on_disconnect is not None:
                    self.on_disconnect()

    # -- connection --------------------------------------------------------------------------

    def _connect(self) -> socket.socket | None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=5.0)
        except OSError as exc:
            log.debug("vpcd on %s:%d not reachable: %s", self.host, self.port, exc)
            return None
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._stop.is_set():
                sock.close()
                return None
            self._socket = sock
        self.connected.set()
        log.info("card connected to vpcd on %s:%d", self.host, self.port)
        if self.on_connect is not None:
            self.on_connect()
        return sock

    def _serve(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            message = self._receive(sock)
            if message is None:
                return
            reply = self._handle(message)
            if reply is not None:
                try:
                    sock.sendall(len(reply).to_bytes(2, "big") + reply)
                except OSError:
                    return

    def _receive(self, sock: socket.socket) -> bytes | None:
        header = _recv_exact(sock, 2, quickack=self.quickack)
        if header is None:
            return None
        return _recv_exact(sock, int.from_bytes(header, "big"), quickack=self.quickack)

    def _handle(self, message: bytes) -> bytes | None:
        if len(message) == 1:
            code = message[0]
            if code == GET_ATR:
                return bytes(self.card.atr)
            if code == POWER_OFF:
                self.card.power_off()
            elif code == POWER_ON:
                self.card.power_on()
            elif code == RESET:
                self.card.reset()
            else:
                log.warning("ignoring unknown vpcd control code %d", code)
            return None
        if not message:
            return None
        self.apdus += 1
        try:
            return self.card.process(message)
        except Exception:  # a card bug must not take the reader down
            # Log the instruction byte only: a VERIFY command carries the PIN.
            log.exception("card failed on an APDU with INS %02X", message[1])
            return _CARD_FAILURE


def _recv_exact(sock: socket.socket, size: int, *, quickack: bool) -> bytes | None:
    """``size`` bytes, or None when the connection ends first (closed, reset, shut down).

    With ``quickack`` (Linux), TCP_QUICKACK is set again after every receive."""
    chunks = bytearray()
    while len(chunks) < size:
        try:
            chunk = sock.recv(size - len(chunks))
        except OSError:
            return None
        if quickack:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:
                return None
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)
