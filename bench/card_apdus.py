"""APDUs, round trips and bytes per JPKI operation, through InProcessTransport + VirtualCard.

    .venv/bin/python bench/card_apdus.py [--resident yamada] [--repeat 20]

Each operation runs on a fresh client and a fresh card (nothing selected, as after a reset), so
the counts are what a phone or the desktop agent pays per operation. "minimum" is the physical
card's minimum for the same job with short APDUs (docs/card.md). The time column is in-process
Python only (RSA in pure-Python CRT on the card side); it says nothing about a real card.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from idp.card.jpki import JpkiClient, PinKind
from idp.card.testpki import RESIDENTS, ResidentCredentials, TestPki
from idp.card.transport import InProcessTransport
from idp.card.virtual import VirtualCard

DIGEST_INFO = (
    bytes.fromhex("3031300D060960864801650304020105000420") + hashlib.sha256(b"bench").digest()
)
PIN = "1234"
PASSWORD = "ABC123"


def _chunks(length: int) -> int:
    return -(-length // 256)


@dataclass(frozen=True)
class Operation:
    name: str
    run: Callable[[JpkiClient], object]
    minimum: Callable[[int, int], int]
    """Physical minimum from the auth and sign certificate lengths."""


OPERATIONS = [
    Operation(
        "login, certificate known (authenticate)",
        lambda c: c.authenticate(DIGEST_INFO, PIN),
        lambda auth, sign: 5,
    ),
    Operation(
        "login, reading the certificate (login)",
        lambda c: c.login(DIGEST_INFO, PIN),
        lambda auth, sign: 6 + _chunks(auth),
    ),
    Operation(
        "PIN status, both secrets (pin_status)",
        lambda c: c.pin_status(),
        lambda auth, sign: 5,
    ),
    Operation(
        "PIN1 tries + login, cert known",
        lambda c: (c.pin_tries(PinKind.AUTH), c.authenticate(DIGEST_INFO, PIN)),
        lambda auth, sign: 6,
    ),
    Operation(
        "enrollment: sign cert + signature (enroll)",
        lambda c: c.enroll(DIGEST_INFO, PASSWORD),
        lambda auth, sign: 6 + _chunks(sign),
    ),
    Operation(
        "first login: login + enroll",
        lambda c: (c.login(DIGEST_INFO, PIN), c.enroll(DIGEST_INFO, PASSWORD)),
        lambda auth, sign: 6 + _chunks(auth) + 5 + _chunks(sign),
    ),
    Operation(
        "token label (read_token_info)",
        lambda c: c.read_token_info(),
        lambda auth, sign: 3,
    ),
]


@dataclass(frozen=True)
class Measurement:
    round_trips: int
    bytes_sent: int
    bytes_received: int
    milliseconds: float


def measure(
    operation: Operation, creds: ResidentCredentials, pki: TestPki, repeat: int
) -> Measurement:
    times: list[float] = []
    counts: set[tuple[int, int, int]] = set()
    for _ in range(repeat):
        card = VirtualCard.from_credentials(creds, pki, pin=PIN, sign_password=PASSWORD)
        transport = InProcessTransport(card)
        client = JpkiClient(transport)
        start = time.perf_counter()
        operation.run(client)
        times.append((time.perf_counter() - start) * 1000)
        stats = transport.stats
        counts.add((stats.round_trips, stats.bytes_sent, stats.bytes_received))
    if len(counts) != 1:
        raise RuntimeError(f"{operation.name}: counts vary between runs: {counts}")
    ((round_trips, sent, received),) = counts
    return Measurement(round_trips, sent, received, statistics.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resident", default="yamada", choices=sorted(RESIDENTS))
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    pki = TestPki.generate()
    creds = pki.issue(RESIDENTS[args.resident])
    if creds.sign_certificate is None:
        parser.error(f"{args.resident} has no signature certificate (under 15)")
    auth_length = len(JpkiClient(_fresh(creds, pki)).read_auth_certificate())
    sign_length = len(JpkiClient(_fresh(creds, pki)).enroll(DIGEST_INFO, PASSWORD).certificate)
    print(
        f"resident {args.resident}: auth certificate {auth_length} bytes, "
        f"sign certificate {sign_length} bytes; median of {args.repeat} runs\n"
    )
    header = f"{'operation':<44} {'APDUs':>5} {'minimum':>7} {'sent':>6} {'received':>8} {'ms':>6}"
    print(header)
    print("-" * len(header))
    for operation in OPERATIONS:
        m = measure(operation, creds, pki, args.repeat)
        minimum = operation.minimum(auth_length, sign_length)
        print(
            f"{operation.name:<44} {m.round_trips:>5} {minimum:>7} {m.bytes_sent:>6} "
            f"{m.bytes_received:>8} {m.milliseconds:>6.2f}"
        )


def _fresh(creds: ResidentCredentials, pki: TestPki) -> InProcessTransport:
    return InProcessTransport(
        VirtualCard.from_credentials(creds, pki, pin=PIN, sign_password=PASSWORD)
    )


if __name__ == "__main__":
    main()
