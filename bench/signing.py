"""APDUs per electronic signature and the time from "sign" to a verified CMS (flow E).

    set -a; . var/services.env; set +a
    .venv/bin/python bench/signing.py --redis-url "$MYNA_TEST_REDIS_URL" [--runs 20]

In one process: the provider (Flask test client, a fresh SQLite file, Redis from
``--redis-url``), the virtual card
(:class:`~idp.card.virtual.VirtualCard` over an ``InProcessTransport``) driven by the shared
device client, and the relying party. The resident is enrolled once; each timed run registers a
sign transaction, starts the authorization (scope ``sign``), logs in with PIN1 and signs, and
counts:

- APDUs of the signing round alone (from the moment the device shows the text to be signed to
  the signature: the password's tries, VERIFY, reading the signature certificate, SELECT, the
  signature), and of the whole login + signature;
- the time from the start of the signing round to a CMS that ``openssl cms -verify`` accepted
  (device round, IdP checks and CMS assembly, consent, the RP's result fetch, openssl).

The virtual card signs in about a millisecond; a real card's RSA-2048 signature takes about
half a second, and every APDU over NFC some milliseconds more.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from login_support import Browser, LoginPki, device_login, full_login, make_login_app
from provider_support import RelyingParty

from idp.card.jpki import JpkiClient
from idp.card.transport import InProcessTransport
from idp.card.virtual import VirtualCard
from idp.handoff.device_client import DeviceChallenge, FixedPrompts

DOCUMENT = "人間ドック助成金申請（ベンチマーク）".encode()


class TimedPrompts(FixedPrompts):
    """Fixed answers that note when the signing round starts and the APDUs so far."""

    def __init__(self, transport: InProcessTransport) -> None:
        super().__init__()
        self.transport = transport
        self.sign_started = 0.0
        self.apdus_before_sign = 0

    def show_signature(self, challenge: DeviceChallenge) -> bool:
        self.sign_started = time.perf_counter()
        self.apdus_before_sign = self.transport.stats.round_trips
        return super().show_signature(challenge)


def run_once(rp: RelyingParty, card: VirtualCard, ca: Path, work: Path) -> dict[str, Any]:
    auth = {
        "Authorization": "Basic "
        + base64.b64encode(f"{rp.client_id}:{rp.client_secret}".encode()).decode()
    }
    digest = base64.urlsafe_b64encode(hashlib.sha256(DOCUMENT).digest()).rstrip(b"=").decode()
    created = rp.http.post(
        "/api/sign-transactions",
        json={"digest": digest, "digest_algorithm": "sha-256", "text": "ベンチマークの申請"},
        headers=auth,
    ).get_json()
    transaction_id = created["sign_transaction_id"]
    transport = InProcessTransport(card)
    prompts = TimedPrompts(transport)
    browser = Browser(rp)
    started = browser.start(
        rp.authorization_request(scope="openid name sign", sign_transaction_id=transaction_id)
    )
    device_login(rp.app, started.handoff_url, JpkiClient(transport), prompts)
    sign_apdus = transport.stats.round_trips - prompts.apdus_before_sign
    page = browser.proceed(started)
    assert browser.consent(started, page.get_data(as_text=True)).status_code == 302
    body = rp.http.get(f"/api/sign-transactions/{transaction_id}/result", headers=auth).get_json()
    (work / "sig.der").write_bytes(base64.b64decode(body["cms"]))
    (work / "doc").write_bytes(DOCUMENT)
    subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            str(work / "sig.der"),
            "-content",
            str(work / "doc"),
            "-CAfile",
            str(ca),
            "-purpose",
            "any",
            "-out",
            os.devnull,
        ],
        check=True,
        capture_output=True,
    )
    elapsed = time.perf_counter() - prompts.sign_started
    return {
        "sign_apdus": sign_apdus,
        "total_apdus": transport.stats.round_trips,
        "ms": elapsed * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    redis_url = args.redis_url
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        login_pki = LoginPki.create(work / "pki")
        app = make_login_app(f"sqlite:///{work / 'idp.sqlite3'}", redis_url, login_pki)
        rp = RelyingParty(
            app,
            auth_method="client_secret_basic",
            scopes=("name", "address", "birthdate", "gender", "sign"),
        )
        creds = login_pki.credentials("yamada")
        card = VirtualCard.from_credentials(creds, login_pki.pki)
        full_login(rp, JpkiClient(InProcessTransport(card)))  # enrol once
        results = [run_once(rp, card, login_pki.sign_anchor, work) for _ in range(args.runs)]
    times = sorted(r["ms"] for r in results)
    print(f"runs: {len(results)}")
    print(f"APDUs in the signing round: {sorted({r['sign_apdus'] for r in results})}")
    print(f"APDUs for login + signature: {sorted({r['total_apdus'] for r in results})}")
    print(
        f"'sign' to verified CMS: median {statistics.median(times):.1f} ms, "
        f"min {times[0]:.1f} ms, max {times[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
