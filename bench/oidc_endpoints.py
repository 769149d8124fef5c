"""Throughput and latency of the OpenID provider's endpoints under gunicorn.

    .venv/bin/python bench/oidc_endpoints.py --redis-url redis://127.0.0.1:6390/0 \
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5440/idp_bench] \
        [--workers 2] [--requests 400] [--concurrency 1,4,16]

Starts gunicorn with ``idp.ops.gunicorn_conf`` (gthread) and ``--workers WORKERS`` on a free
loopback port (``bench/support.py``) against the given Redis and database (default: a fresh
SQLite file; the login rate limits lifted), seeds one ``private_key_jwt`` client and one
resident, and measures, at each concurrency (threads, one HTTP connection per request):

- ``GET /.well-known/openid-configuration`` and ``GET /jwks.json``;
- ``GET /authorize`` with a valid request (the real login starter: a login transaction in Redis
  and the login page);
- ``POST /token``: ``private_key_jwt`` (ES256 assertion, pre-signed), PKCE S256, code redeemed
  with GETDEL, ES256 ID token signed; codes are minted beforehand by ``finish_authorization``
  in this process (the card login is measured elsewhere);
- ``GET /userinfo`` with the access tokens from the token step.

Prints requests/s and p50/p99 latency in ms per endpoint and concurrency. Client-side JWT signing
and code minting are outside the timed sections.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from support import (
    REDIRECT_URI,
    SCOPE,
    BenchClient,
    Gunicorn,
    free_port,
    percentile,
    pkce,
    prepare_database,
    provider_env,
)

from idp.extensions import close_connections
from idp.oidc.authorize import AuthorizationContext, finish_authorization
from idp.oidc.claims import ACR_CARD_PIN, AMR_CARD_PIN
from idp.storage.residents import Basic4Record, CertificateFacts, enroll_resident


def measure(
    name: str, calls: list[Callable[[], int]], concurrency: int
) -> tuple[str, int, float, float, float]:
    latencies: list[float] = []

    def run(call: Callable[[], int]) -> None:
        start = time.perf_counter()
        status = call()
        latencies.append(time.perf_counter() - start)
        if status >= 400:
            raise RuntimeError(f"{name}: HTTP {status}")

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(run, calls))
    elapsed = time.perf_counter() - began
    p50 = statistics.median(latencies) * 1000
    return name, concurrency, len(calls) / elapsed, p50, percentile(latencies, 0.99) * 1000


def seed_resident(_: Any) -> str:
    facts = CertificateFacts(
        sha256_hex=secrets.token_hex(32),
        issuer="C=JP, O=JPKI-TEST",
        serial_hex="01",
        not_after=datetime(2035, 1, 1, tzinfo=UTC),
        policy_oid="1.2.392.200149.8.5.1.1.20",
    )
    return enroll_resident(
        basic4=Basic4Record(
            name="山田\u3000太郎",
            address="石川県加賀市大聖寺南町ニ４１番地",
            birthdate=date(1985, 4, 1),
            gender="male",
            sex_code="1",
        ),
        auth_certificate=facts,
        sign_certificate=replace(facts, sha256_hex=secrets.token_hex(32)),
        verified_at=datetime.now(UTC),
    ).id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", default="1,4,16")
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]

    workdir = Path(tempfile.mkdtemp(prefix="myna-bench-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'idp.sqlite3'}"
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = provider_env(issuer, database_url=database_url, redis_url=args.redis_url)
    client = BenchClient(audience=f"{issuer}/token")
    seeded: list[str] = []
    app = prepare_database(
        env, client_jwks=client.jwks(), seed=lambda app: seeded.append(seed_resident(app))
    )
    resident_id = seeded[0]

    server = Gunicorn(env, port=port, workers=args.workers, log=workdir / "gunicorn.log")
    try:
        server.wait_ready()

        results = []
        for level in levels:
            n = args.requests

            def get(url: str) -> Callable[[], int]:
                return lambda: requests.get(url, timeout=30, allow_redirects=False).status_code

            results.append(
                measure("discovery", [get(f"{issuer}/.well-known/openid-configuration")] * n, level)
            )
            results.append(measure("jwks", [get(f"{issuer}/jwks.json")] * n, level))

            authorize_urls = []
            for _ in range(n):
                _, challenge = pkce()
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
                authorize_urls.append(get(f"{issuer}/authorize?{query}"))
            results.append(measure("authorize", authorize_urls, level))

            # mint codes (untimed), then redeem them
            forms = []
            with app.app_context():
                for _ in range(n):
                    verifier, challenge = pkce()
                    ctx = AuthorizationContext(
                        client_id="bench",
                        client_name="ベンチマーク",
                        redirect_uri=REDIRECT_URI,
                        scopes=tuple(SCOPE.split()),
                        state=secrets.token_urlsafe(12),
                        nonce=secrets.token_urlsafe(12),
                        code_challenge=challenge,
                        code_challenge_method="S256",
                    )
                    with app.test_request_context():
                        location = finish_authorization(
                            ctx,
                            resident_id=resident_id,
                            granted_scopes=ctx.scopes,
                            auth_time=int(time.time()),
                            amr=AMR_CARD_PIN,
                            acr=ACR_CARD_PIN,
                        ).headers["Location"]
                    code = parse_qs(urlsplit(location).query)["code"][0]
                    forms.append(client.token_form(code, verifier))
            tokens: list[str] = []

            def redeem(form: dict[str, str], tokens: list[str] = tokens) -> Callable[[], int]:
                def call() -> int:
                    response = requests.post(f"{issuer}/token", data=form, timeout=30)
                    if response.ok:
                        tokens.append(response.json()["access_token"])
                    return response.status_code

                return call

            results.append(measure("token", [redeem(form) for form in forms], level))

            def userinfo(token: str) -> Callable[[], int]:
                return lambda: (
                    requests.get(
                        f"{issuer}/userinfo",
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=30,
                    ).status_code
                )

            results.append(measure("userinfo", [userinfo(token) for token in tokens], level))

        print(
            f"gunicorn workers={args.workers} requests/level={args.requests} "
            f"database={database_url.split(':')[0]} cpus={os.cpu_count()}"
        )
        print(f"{'endpoint':<10} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
        for name, level, rate, p50, p99 in results:
            print(f"{name:<10} {level:>4} {rate:>8.1f} {p50:>8.2f} {p99:>8.2f}")
    finally:
        server.stop()
        close_connections(app)


if __name__ == "__main__":
    main()
