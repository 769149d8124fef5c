"""Full card-login flows per second, and p50/p99 latency of each endpoint on the way.

    .venv/bin/python bench/login_flow.py --redis-url redis://127.0.0.1:6390/0 \
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5440/idp_bench] \
        [--workers 4] [--flows 200] [--concurrency 1,4,16]

Starts ``gunicorn -w WORKERS 'idp.app:create_app()'`` on a free loopback port (Redis from
``--redis-url``, a fresh SQLite file unless ``--database-url``), trusting a test PKI generated
into a temporary directory (anchors and CRLs, so revocation is checked). One resident's card is
enrolled first through the real enrollment round and consents once; then every timed flow is:

==================  ==============================================================================
authorize           ``GET /authorize`` (PKCE S256, state, nonce) -> 303 + binding cookie
login_page          ``GET /login/<id>`` (the page a browser shows)
device_challenge    ``GET /device/v1/transactions/<handoff>`` (the device fetches the challenge)
device_response     ``POST .../response``: the card response, signed with the resident's software
                    key from the test PKI and verified on the real path (chain, validity, policy,
                    CRL, RS256 signature over the challenge, nonce GETDEL, resident lookup)
status              ``GET /login/<id>/status`` (one poll: card_verified)
continue            ``GET /login/<id>/continue`` -> 302 with the code (consent remembered)
token               ``POST /token`` (private_key_jwt assertion signed before the run, PKCE)
userinfo            ``GET /userinfo``
==================  ==============================================================================

Prints flows/s per concurrency (threads; each flow is sequential) and, per endpoint, requests
and p50/p99 ms. The RS256 signature of the challenge is computed inside the flow (as a card
would, but in ~1 ms instead of the card's ~0.5 s).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding
from flask_migrate import upgrade
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet

from idp.app import create_app
from idp.card.challenge import Challenge
from idp.card.testpki import RESIDENTS, ResidentCredentials, TestPki
from idp.extensions import MIGRATIONS_DIR
from idp.oidc.clients import new_client
from idp.storage.base import db
from idp.storage.clients import add_client
from idp.storage.models import Base

REDIRECT_URI = "https://forms.bench.example.jp/callback"
SCOPE = "openid name address birthdate gender"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
HANDOFF = re.compile(r"idp card login ([^\s<]+)")
STEPS = (
    "authorize",
    "login_page",
    "device_challenge",
    "device_response",
    "status",
    "continue",
    "token",
    "userinfo",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def der(certificate: Any) -> bytes:
    return bytes(certificate.public_bytes(Encoding.DER))


class Flow:
    """One resident's browser + device, timing each request into ``timings``."""

    def __init__(
        self,
        issuer: str,
        creds: ResidentCredentials,
        assertion: str,
        timings: dict[str, list[float]],
        lock: threading.Lock,
    ) -> None:
        self.issuer = issuer
        self.creds = creds
        self.assertion = assertion
        self.timings = timings
        self.lock = lock
        self.browser = requests.Session()
        self.device = requests.Session()

    def timed(self, step: str, call: Any) -> requests.Response:
        start = time.perf_counter()
        response = call()
        elapsed = time.perf_counter() - start
        with self.lock:
            self.timings[step].append(elapsed)
        return response

    def token(self, document: dict[str, Any], purpose_enroll: bool = False) -> dict[str, str]:
        challenge = Challenge(
            origin=document["origin"],
            nonce=document["nonce"],
            transaction_id=document["transaction_id"],
            purpose=document["purpose"],
        )
        signed = challenge.to_be_signed()
        body = {
            "unverifiedCertificate": b64(der(self.creds.auth_certificate)),
            "algorithm": "RS256",
            "signature": b64(self.creds.auth_key.sign(signed, padding.PKCS1v15(), hashes.SHA256())),
            "format": "myna:1",
            "appVersion": "bench/1",
        }
        if purpose_enroll:
            assert self.creds.sign_certificate is not None and self.creds.sign_key is not None
            body["signingCertificate"] = b64(der(self.creds.sign_certificate))
            body["signingSignature"] = b64(
                self.creds.sign_key.sign(signed, padding.PKCS1v15(), hashes.SHA256())
            )
        return body

    def run(self, *, first: bool = False) -> dict[str, Any]:
        verifier = secrets.token_urlsafe(48)
        challenge = (
            base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            .rstrip(b"=")
            .decode()
        )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": "bench",
                "redirect_uri": REDIRECT_URI,
                "scope": SCOPE,
                "state": secrets.token_urlsafe(12),
                "nonce": secrets.token_urlsafe(12),
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        issuer = self.issuer
        response = self.timed(
            "authorize",
            lambda: self.browser.get(f"{issuer}/authorize?{query}", allow_redirects=False),
        )
        assert response.status_code == 303, response.text
        page_path = response.headers["Location"]
        page = self.timed("login_page", lambda: self.browser.get(issuer + page_path))
        handoff = HANDOFF.search(page.text)
        assert handoff, page.text
        url = handoff.group(1)
        document = self.timed("device_challenge", lambda: self.device.get(url)).json()
        answer = self.timed(
            "device_response",
            lambda: self.device.post(url + "/response", json=self.token(document)),
        )
        assert answer.status_code == 200, answer.text
        if answer.json()["status"] == "enroll_needed":  # only the warm-up flow enrolls
            following = answer.json()["challenge"]
            enrolled = self.device.post(url + "/response", json=self.token(following, True))
            assert enrolled.status_code == 200, enrolled.text
        status = self.timed("status", lambda: self.browser.get(f"{issuer}{page_path}/status"))
        assert status.json()["state"] == "card_verified", status.text
        done = self.timed(
            "continue",
            lambda: self.browser.get(f"{issuer}{page_path}/continue", allow_redirects=False),
        )
        if first and done.status_code == 200:  # consent once; later flows skip the page
            csrf = re.search(r'name="csrf" value="([^"]+)"', done.text)
            assert csrf
            done = self.browser.post(
                f"{issuer}{page_path}/consent",
                data={"csrf": csrf.group(1), "decision": "approve"},
                allow_redirects=False,
            )
        assert done.status_code == 302, done.text
        code = parse_qs(urlsplit(done.headers["Location"]).query)["code"][0]
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion,
        }
        token = self.timed("token", lambda: self.device.post(f"{issuer}/token", data=form))
        assert token.status_code == 200, token.text
        access = token.json()["access_token"]
        info = self.timed(
            "userinfo",
            lambda: self.device.get(
                f"{issuer}/userinfo", headers={"Authorization": f"Bearer {access}"}
            ),
        )
        assert info.status_code == 200, info.text
        self.browser.close()
        self.device.close()
        body = info.json()
        assert isinstance(body, dict)
        return body


def assertion_for(issuer: str, key: ECKey) -> str:
    now = int(time.time())
    return jwt.encode(
        {"alg": "ES256", "kid": "bench"},
        {
            "iss": "bench",
            "sub": "bench",
            "aud": f"{issuer}/token",
            "iat": now,
            "exp": now + 280,
            "jti": secrets.token_urlsafe(16),
        },
        key,
    )


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--concurrency", default="1,4,16")
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]

    workdir = Path(tempfile.mkdtemp(prefix="myna-bench-login-"))
    pki = TestPki.generate()
    pki_dir = workdir / "pki"
    creds = pki.issue(RESIDENTS["yamada"])
    pki.save(pki_dir)
    now = datetime.now(UTC)
    crls = []
    for kind in ("auth", "sign"):
        crl = pki.crl(
            kind, this_update=now - timedelta(minutes=1), next_update=now + timedelta(days=1)
        )
        path = pki_dir / f"{kind}.crl.pem"
        path.write_bytes(crl.public_bytes(Encoding.PEM))
        crls.append(str(path))

    database_url = args.database_url or f"sqlite:///{workdir / 'idp.sqlite3'}"
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = {
        "IDP_ISSUER": issuer,
        "IDP_SECRET_KEY": secrets.token_urlsafe(40),
        "IDP_PAIRWISE_SECRET": secrets.token_urlsafe(40),
        "IDP_DATABASE_URL": database_url,
        "IDP_REDIS_URL": args.redis_url,
        "IDP_REDIS_PREFIX": f"bench:{secrets.token_hex(4)}:",
        "IDP_JPKI_AUTH_ANCHORS": str(pki_dir / "auth-ca.pem"),
        "IDP_JPKI_SIGN_ANCHORS": str(pki_dir / "sign-ca.pem"),
        "IDP_JPKI_CRL_FILES": os.pathsep.join(crls),
    }
    app = create_app({key.removeprefix("IDP_"): value for key, value in env.items()})
    rp_key = ECKey.generate_key("P-256", parameters={"kid": "bench"}, private=True)
    with app.app_context():
        Base.metadata.drop_all(db.engine)
        with db.engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
        upgrade(directory=str(MIGRATIONS_DIR))
        add_client(
            new_client(
                name="ベンチマーク",
                redirect_uris=[REDIRECT_URI],
                auth_method="private_key_jwt",
                jwks=dict(KeySet([rp_key]).as_dict(private=False)),
                client_id="bench",
            ).client
        )
        db.engine.dispose()

    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "--workers",
            str(args.workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "idp.app:create_app()",
        ],
        env={**os.environ, **env},  # noqa: TID251 - settings for the server started here
    )
    lock = threading.Lock()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{issuer}/jwks.json", timeout=2).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        # warm-up: the card enrolls (signature certificate round) and the resident consents
        warm: dict[str, list[float]] = defaultdict(list)
        info = Flow(issuer, creds, assertion_for(issuer, rp_key), warm, lock).run(first=True)
        assert info["name"] == "山田\u3000太郎", info

        rows = []
        for level in levels:
            timings: dict[str, list[float]] = defaultdict(list)
            flows = [
                Flow(issuer, creds, assertion_for(issuer, rp_key), timings, lock)
                for _ in range(args.flows)
            ]
            began = time.perf_counter()
            with ThreadPoolExecutor(max_workers=level) as pool:
                list(pool.map(lambda flow: flow.run(), flows))
            elapsed = time.perf_counter() - began
            rows.append((level, args.flows / elapsed, timings))

        print(
            f"gunicorn workers={args.workers} flows/level={args.flows} "
            f"database={database_url.split(':')[0]} cpus={os.cpu_count()}"
        )
        print(f"{'conc':>4} {'flows/s':>8}")
        for level, rate, _ in rows:
            print(f"{level:>4} {rate:>8.1f}")
        print(f"{'endpoint':<17} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8}")
        for level, _, timings in rows:
            for step in STEPS:
                values = timings[step]
                p50 = statistics.median(values) * 1000
                print(f"{step:<17} {level:>4} {p50:>8.2f} {percentile(values, 0.99) * 1000:>8.2f}")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
