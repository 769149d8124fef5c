"""Load: two provider instances on one PostgreSQL and one Redis, 500 complete card logins in
flight at once, zero errors, one release record per login (the audit chain intact), every code
redeemed exactly once.

Two gunicorn processes (``idp.ops.gunicorn_conf`` as it is: two gthread workers of 250 threads
each on this machine, on different free loopback ports) share the issuer, the database and the
Redis namespace, as instances behind a load balancer do; the test plays the balancer by choosing
the instance per request. Each flow
is the whole login over HTTP: ``/authorize`` and the login page, the device API with the
resident's software card key (the real validation path: chain to the test CA, validity, key
usage, policy, CRL, RS256 over the challenge, nonce, resident lookup), status, continue (code
and release row), ``/token`` (``private_key_jwt``, PKCE) and ``/userinfo``. Half the flows
start on one instance and finish on the other.

Every request opens a new connection: a client of 500 threads in one Python process can stall
for seconds between two requests, and a kept-alive connection that the server closes after its
5 s keep-alive timeout at the moment the next request goes out loses that request ("Remote end
closed connection"), a race of the client, not of the provider.

All 500 flows are in flight together: each waits at a barrier after its login page until all
500 login transactions exist, then finishes. Bounded: 500 flows, a 180 s barrier, 60 s per
request; no timed assertion (the speed is in bench/ and docs/benchmarks.md).
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from joserfc import jwt
from joserfc.jwk import KeySet
from login_support import Browser, FlaskHttp, LoginPki, dispose, make_login_app, software_token
from provider_support import RelyingParty
from sqlalchemy import create_engine, func, select

from idp.app import create_app
from idp.card.testpki import RESIDENTS, ResidentCredentials, TestPki
from idp.extensions import close_connections
from idp.storage.audit import ChainReport, Release, verify_chain
from idp.storage.base import db

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from support import (
    BenchClient,
    FlowError,
    FlowResult,
    Gunicorn,
    app_config,
    card_login,
    free_port,
    prepare_database,
    provider_env,
    write_pki,
)

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

FLOWS = 500
# Residents whose cards can enroll (the signature certificate needs 15 years of age).
RESIDENT_KEYS = ("yamada", "suzuki", "tanaka", "takahashi", "ito")
BARRIER_SECONDS = 180.0


@dataclass
class Cluster:
    issuer: str
    instances: list[Gunicorn]
    client: BenchClient
    credentials: dict[str, ResidentCredentials]
    database_url: str
    env: dict[str, str]

    def releases(self) -> int:
        engine = create_engine(self.database_url, pool_size=1, max_overflow=0)
        try:
            with engine.connect() as connection:
                return int(connection.scalar(select(func.count()).select_from(Release)) or 0)
        finally:
            engine.dispose()

    def audit_chain(self) -> ChainReport:
        """``verify_chain`` over the shared database (what ``idp audit verify`` runs)."""
        app = create_app(app_config(self.env))
        try:
            with app.app_context():
                return verify_chain()
        finally:
            close_connections(app)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    database_url: str,
    redis_url: str,
    shared_pki: TestPki,
) -> Iterator[Cluster]:
    directory = tmp_path_factory.mktemp("load")
    pki, trust = write_pki(directory / "pki", shared_pki)
    ports = [free_port(), free_port()]
    issuer = f"http://127.0.0.1:{ports[0]}"  # one issuer: the balancer's address
    client = BenchClient(audience=f"{issuer}/token")
    # 250 threads per worker (the config's): the Redis pool must allow them all.
    separator = "&" if "?" in redis_url else "?"
    env = provider_env(
        issuer,
        database_url=database_url,
        redis_url=f"{redis_url}{separator}max_connections=300",
        IDP_REDIS_PREFIX=f"test:load:{uuid.uuid4().hex}:",
        **trust,
    )
    prepare_database(env, client_jwks=client.jwks())
    instances: list[Gunicorn] = []
    try:
        for index, port in enumerate(ports):
            instances.append(Gunicorn(env, port=port, log=directory / f"gunicorn-{index}.log"))
        for instance in instances:
            instance.wait_ready()
        yield Cluster(
            issuer=issuer,
            instances=instances,
            client=client,
            credentials={key: pki.issue(RESIDENTS[key]) for key in RESIDENT_KEYS},
            database_url=database_url,
            env=env,
        )
    finally:
        for instance in instances:
            instance.stop(timeout=30)


def _no_server_errors(cluster: Cluster) -> None:
    for instance in cluster.instances:
        lines = [json.loads(x) for x in instance.output().splitlines() if x.startswith("{")]
        failures = [x for x in lines if x.get("level") in ("ERROR", "CRITICAL")]
        assert not failures, failures[:3]
        assert not [x for x in lines if x.get("logger") == "idp.access" and x["status"] >= 500]


def test_500_concurrent_logins_on_two_instances(cluster: Cluster) -> None:
    a, b = (instance.url for instance in cluster.instances)
    # Each card enrolls and each resident consents once (alternately on each instance).
    names: dict[str, Any] = {}
    for index, (key, creds) in enumerate(cluster.credentials.items()):
        route = (a, b) if index % 2 == 0 else (b, a)
        first = card_login(
            cluster.issuer, creds, cluster.client, start=route[0], finish=route[1], consent=True
        )
        names[key] = first.userinfo["name"]
    before = cluster.releases()

    barrier = threading.Barrier(FLOWS, timeout=BARRIER_SECONDS)
    keys = list(cluster.credentials)
    # Four routes in turn: A->A, B->B, A->B, B->A: half the flows cross instances.
    routes = [(a, a), (b, b), (a, b), (b, a)]

    def flow(index: int) -> tuple[str, FlowResult]:
        key = keys[index % len(keys)]
        start, finish = routes[index % len(routes)]
        try:
            return key, card_login(
                cluster.issuer,
                cluster.credentials[key],
                cluster.client,
                start=start,
                finish=finish,
                started=barrier.wait,
                max_idle=0,  # see below
            )
        except BaseException:
            barrier.abort()  # the others stop waiting for this one
            raise

    outcomes: list[tuple[str, FlowResult]] = []
    errors: list[BaseException] = []
    with ThreadPoolExecutor(max_workers=FLOWS) as pool:
        futures = [pool.submit(flow, index) for index in range(FLOWS)]
        for future in futures:
            try:
                outcomes.append(future.result())
            except (FlowError, requests.RequestException, threading.BrokenBarrierError) as exc:
                errors.append(exc)
    first_errors = [e for e in errors if not isinstance(e, threading.BrokenBarrierError)]
    assert not errors, f"{len(errors)} failed flows, e.g. {(first_errors or errors)[:3]}"
    assert len(outcomes) == FLOWS

    # One release record per login, on the shared database.
    assert cluster.releases() - before == FLOWS
    # Every code distinct; every flow's ID token signed by a key both instances publish, for
    # the right nonce and client; userinfo for the right resident.
    codes = [result.code for _, result in outcomes]
    assert len(set(codes)) == FLOWS
    jwks = [requests.get(f"{url}/jwks.json", timeout=10).json() for url in (a, b)]
    assert jwks[0] == jwks[1]
    keyset = KeySet.import_key_set(jwks[0])
    subjects: dict[str, set[str]] = {key: set() for key in keys}
    for key, result in outcomes:
        claims = jwt.decode(result.tokens["id_token"], keyset).claims
        assert claims["iss"] == cluster.issuer and claims["aud"] == "bench"
        assert claims["nonce"] == result.nonce
        assert result.userinfo["sub"] == claims["sub"]
        assert result.userinfo["name"] == names[key]
        subjects[key].add(claims["sub"])
    assert all(len(subject) == 1 for subject in subjects.values()), subjects  # one sub each
    assert Counter(result.bases for _, result in outcomes) == Counter(
        {route: FLOWS // 4 for route in routes}
    )

    # Each code was redeemed once: a second redemption, on the other instance, is refused.
    def replay(result: FlowResult) -> tuple[int, str]:
        other = b if result.bases[1] == a else a
        response = requests.post(
            f"{other}/token",
            data=cluster.client.token_form(result.code, result.verifier),
            timeout=60,
        )
        return response.status_code, response.json().get("error", "")

    with ThreadPoolExecutor(max_workers=32) as pool:
        replays = Counter(pool.map(replay, [result for _, result in outcomes]))
    assert replays == Counter({(400, "invalid_grant"): FLOWS}), replays
    assert cluster.releases() - before == FLOWS  # the refused replays released nothing
    # 500 records appended at once by two instances: the hash chain holds, without a gap.
    chain = cluster.audit_chain()
    assert chain.ok, chain.broken
    assert chain.records == cluster.releases()
    _no_server_errors(cluster)


# -- what a worker answers when its database pool is exhausted --------------------------------


@contextmanager
def exhausted_pool(app: Flask, wait: float = 0.2) -> Iterator[None]:
    """Every connection the worker's pool may open is checked out; a request waits ``wait``
    seconds for one (the pool's own timeout, shortened: QueuePool's ``_timeout``)."""
    with app.app_context():
        engine = db.engine
        pool = engine.pool
        saved = pool._timeout  # type: ignore[attr-defined]
        pool._timeout = wait  # type: ignore[attr-defined]
        held = [engine.connect() for _ in range(pool.size() + pool._max_overflow)]  # type: ignore[attr-defined]
        try:
            yield
        finally:
            for connection in held:
                connection.close()
            pool._timeout = saved  # type: ignore[attr-defined]


def test_an_exhausted_database_pool_is_503_not_500(
    database_url: str, redis_url: str, login_pki: LoginPki
) -> None:
    """Under the load above a request can wait for a database connection past the pool's
    timeout: the device API and the OAuth endpoints answer temporarily_unavailable (503),
    never a 500 nor a misleading client error."""
    app = make_login_app(database_url, redis_url, login_pki)
    try:
        rp = RelyingParty(app)
        started = Browser(rp).start(rp.authorization_request())
        device = FlaskHttp(app)
        status, document = device.get(started.handoff_url)
        assert status == 200, document
        token = software_token(login_pki.credentials("yamada"), document)
        with exhausted_pool(app):
            status, body = device.post(started.handoff_url + "/response", token)
            assert (status, body["error"]) == (503, "temporarily_unavailable"), body
            answer = rp.token_request("some-code", "some-verifier")
            assert answer.status_code == 503, answer.get_data(as_text=True)
            assert answer.get_json()["error"] == "temporarily_unavailable"
        # The refused response had spent its challenge, so the login was ended at once with a
        # retryable reason (not left waiting until it expires): sent again it is refused, cleanly.
        status, body = device.post(started.handoff_url + "/response", token)
        assert (status, body["error"]) == (409, "transaction_closed"), body
        # The OAuth side answers again once connections are free.
        answer = rp.token_request("some-code", "some-verifier")
        assert answer.status_code == 400 and answer.get_json()["error"] == "invalid_grant"
    finally:
        dispose(app)
