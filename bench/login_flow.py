"""Full card-login flows per second, and p50/p99 latency of each endpoint on the way.

    .venv/bin/python bench/login_flow.py --redis-url redis://127.0.0.1:6390/0 \
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5440/idp_bench] \
        [--workers 4] [--flows 200] [--concurrency 1,4,16]

Starts gunicorn with ``idp.ops.gunicorn_conf`` (gthread) and ``--workers WORKERS`` on a free
loopback port (``bench/support.py``; Redis from ``--redis-url``, a fresh SQLite file unless
``--database-url``; the login rate limits lifted: one address starts every login), trusting a
test PKI generated into a temporary directory (anchors and CRLs, so revocation is checked). One
resident's card is enrolled first through the real enrollment round and consents once; then
every timed flow is:

==================  ==============================================================================
authorize           ``GET /authorize`` (PKCE S256, state, nonce) -> 303 + binding cookie
login_page          ``GET /login/<id>`` (the page a browser shows)
device_challenge    ``GET /device/v1/transactions/<handoff>`` (the device fetches the challenge)
device_response     ``POST .../response``: the card response, signed with the resident's software
                    key from the test PKI and verified on the real path (chain, validity, policy,
                    CRL, RS256 signature over the challenge, nonce GETDEL, resident lookup)
status              ``GET /login/<id>/status`` (one poll: card_verified)
continue            ``GET /login/<id>/continue`` -> 302 with the code (consent remembered)
token               ``POST /token`` (private_key_jwt, ES256 assertion signed in the flow, PKCE)
userinfo            ``GET /userinfo``
==================  ==============================================================================

Prints flows/s per concurrency (threads; each flow is sequential) and, per endpoint, requests
and p50/p99 ms. The RS256 signature of the challenge is computed inside the flow (as a card
would, but in ~1 ms instead of the card's ~0.5 s).
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from support import (
    CARD_STEPS,
    BenchClient,
    Gunicorn,
    Timings,
    card_login,
    free_port,
    prepare_database,
    provider_env,
    summary,
    write_pki,
)

from idp.card.testpki import RESIDENTS


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
    pki, trust = write_pki(workdir / "pki")
    creds = pki.issue(RESIDENTS["yamada"])
    database_url = args.database_url or f"sqlite:///{workdir / 'idp.sqlite3'}"
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    client = BenchClient(audience=f"{issuer}/token")
    env = provider_env(
        issuer,
        database_url=database_url,
        redis_url=args.redis_url,
        IDP_REDIS_PREFIX=f"bench:{secrets.token_hex(4)}:",
        **trust,
    )
    prepare_database(env, client_jwks=client.jwks())
    server = Gunicorn(env, port=port, workers=args.workers, log=workdir / "gunicorn.log")
    try:
        server.wait_ready()
        # warm-up: the card enrolls (signature certificate round) and the resident consents
        info = card_login(issuer, creds, client, consent=True).userinfo
        assert info["name"] == "山田\u3000太郎", info

        rows = []
        for level in levels:
            timings = Timings()
            began = time.perf_counter()

            def one(_: int, timings: Timings = timings) -> None:
                card_login(issuer, creds, client, timings=timings)

            with ThreadPoolExecutor(max_workers=level) as pool:
                list(pool.map(one, range(args.flows)))
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
            for step in CARD_STEPS:
                p50, p99 = summary(timings[step])
                print(f"{step:<17} {level:>4} {p50:>8.2f} {p99:>8.2f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
