"""APDU round trips through real pcscd: pyscard -> pcscd -> vpcd -> VpcdBridge -> VirtualCard.

    make services                      # or any pcscd with vsmartcard-vpcd
    .venv/bin/python bench/pcsc_roundtrip.py [--apdus 200] [--logins 20]

Prints, with and without TCP_QUICKACK on the card side of the vpcd socket: the median time of
one SELECT round trip, of a whole login (read the authentication certificate, VERIFY PIN1,
sign), and of OpenSC's `pkcs15-tool --list-certificates` (a fresh process each time).
Needs the reader "Virtual PCD 00 00" to be free.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable

from idp.card import pcsc
from idp.card.apdu import CommandApdu
from idp.card.jpki import JpkiClient
from idp.card.jpki_ap import JPKI_AID
from idp.card.testpki import RESIDENTS, TestPki
from idp.card.virtual import VirtualCard
from idp.card.vpcd import VpcdBridge

READER = "Virtual PCD 00 00"
DIGEST_INFO = (
    bytes.fromhex("3031300D060960864801650304020105000420") + hashlib.sha256(b"bench").digest()
)


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.2f} ms"


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


def run(pki: TestPki, *, quickack: bool, apdus: int, logins: int) -> None:
    card = VirtualCard.from_credentials(pki.issue(RESIDENTS["yamada"]), pki)
    bridge = VpcdBridge(card, quickack=quickack).start()
    try:
        if not (bridge.wait_connected(5) and pcsc.wait_for_card(READER, timeout=5)):
            raise SystemExit("vpcd did not take the card: is pcscd with vsmartcard-vpcd running?")
        with pcsc.PcscTransport(READER) as transport:
            select = CommandApdu(0x00, 0xA4, 0x04, 0x0C, JPKI_AID)
            select_times = timed(lambda: transport.transmit(select), apdus)

            def login() -> None:
                JpkiClient(transport).login(DIGEST_INFO, "1234")

            transport.stats.reset()
            login()
            login_apdus = transport.stats.round_trips
            login_times = timed(login, logins)
        tool_times: list[float] = []
        if shutil.which("pkcs15-tool"):
            command = ["pkcs15-tool", "--reader", READER, "--list-certificates"]
            tool_times = timed(lambda: subprocess.run(command, capture_output=True, check=True), 5)
    finally:
        bridge.stop()
        pcsc.wait_for_card(READER, timeout=5, present=False)
    label = "with TCP_QUICKACK   " if quickack else "without TCP_QUICKACK"
    print(
        f"{label}  SELECT {median_ms(select_times)}   login ({login_apdus} APDUs) "
        f"{median_ms(login_times)}",
        end="",
    )
    print(f"   pkcs15-tool --list-certificates {median_ms(tool_times)}" if tool_times else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apdus", type=int, default=200)
    parser.add_argument("--logins", type=int, default=20)
    args = parser.parse_args()
    pki = TestPki.generate()
    for quickack in (True, False):
        run(pki, quickack=quickack, apdus=args.apdus, logins=args.logins)


if __name__ == "__main__":
    main()
