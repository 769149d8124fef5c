"""Test support for operations: Prometheus samples, free loopback ports, child processes.

Importable from any test (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

from prometheus_client import REGISTRY


def sample(name: str, **labels: str) -> float:
    """The current value of a metric sample in this process (0 before it was first counted)."""
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def free_port() -> int:
    """A loopback TCP port nobody listens on (at the time of the call)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def listening(port: int) -> bool:
    """True if something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def stop_process(process: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """TERM the process (this one only, by its pid), KILL it if it ignores that, reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
