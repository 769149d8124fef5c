"""The phone handoff: notification latency, waiting pages per instance, Redis memory per login.

    .venv/bin/python bench/handoff.py [--flows 200] [--poll-flows 40] \
        [--connections 250,500,1000,2000] [--workers 2] [--threads 1000] [--pending 10000] \
        [--parts latency,polling,pages,memory]

Everything runs on loopback and stops by itself. The script starts its own ``redis-server`` (no
persistence, a free port: other users of a shared Redis cannot disturb the memory figures) and
gunicorn with ``idp.ops.gunicorn_conf`` (gthread) and ``--workers W --threads T
--worker-connections 2T`` (``bench/support.py``) trusting a test PKI generated into a temporary
directory (a fresh SQLite database). The server's Redis
URL carries ``?max_connections=`` of the thread count: redis-py 8 allows 100 connections per
pool by default, and a worker with more threads than that fails requests with
``MaxConnectionsError`` under a burst (see docs/handoff.md).

1. **Notification latency (server-sent events).** Each flow: ``GET /authorize``, the login
   page, ``GET /login/<id>/events`` (a streaming client in a thread), ``GET /login/<id>/qr``,
   then the phone's ``POST /device/v1/pickup`` and ``POST .../response`` (a known card, so one
   round). Measured: from just before each POST is sent to the moment the page's stream has
   delivered the resulting ``status`` event (``picked_up``, ``card_verified``).
2. **The polling fallback** (``login.js`` polls ``/status`` every ``POLL_INTERVAL_MS``): the
   same response POST, sent at a random phase of the poller; measured until a poll sees
   ``card_verified``. BankID's guidance (poll every 2 s) is given as the expected figure of a
   2 s poller: uniform over the interval plus one status request.
3. **Waiting pages one instance holds.** For each level N: N logins (one browser cookie owns
   them all), N event streams opened at once by an asyncio client; counted: streams that
   delivered their first event within 30 s. Then every transaction's channel gets a
   ``card_verified`` message straight from Redis: fan-out latency to all N pages (the streams
   then end, freeing their threads). gunicorn's memory (RSS of all its processes) is read while
   the N pages wait.
4. **Redis memory per pending login**: ``INFO memory`` before and after creating ``--pending``
   transactions through ``TransactionStore`` (record, handoff index, QR index, nonce; the QR
   shown once), as ``/authorize`` and the page do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import random
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import redis
import requests
from support import (
    REDIRECT_URI,
    SCOPE,
    Gunicorn,
    RedisServer,
    card_response,
    free_port,
    percentile,
    prepare_database,
    process_tree,
    provider_env,
    write_pki,
)

from idp.card.testpki import RESIDENTS, ResidentCredentials
from idp.extensions import get_store
from idp.handoff.pages import POLL_INTERVAL_MS
from idp.handoff.transaction import BrowserBinding, TransactionStore, new_browser_key
from idp.oidc.authorize import AuthorizationContext
from idp.oidc.clients import new_client
from idp.storage.clients import add_client

COOKIE = "myna-login"
BANKID_POLL_S = 2.0


def ms(values: list[float]) -> str:
    p50, p95 = statistics.median(values) * 1000, percentile(values, 0.95) * 1000
    return f"p50 {p50:7.1f} ms   p95 {p95:7.1f} ms"


# -- services ---------------------------------------------------------------------------------


def gunicorn_rss(pid: int) -> int:
    """Resident memory (bytes) of the gunicorn master and its workers."""
    total = 0
    for each in process_tree(pid):
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


# -- one login, browser and phone ---------------------------------------------------------------


class Stream:
    """A page's event stream read in a thread: (state, time received) in a queue."""

    def __init__(self, session: requests.Session, url: str) -> None:
        self.response = session.get(url, stream=True, timeout=(5, 60))
        assert self.response.status_code == 200, self.response.text
        self.states: queue.Queue[tuple[str | None, float]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.response.iter_lines(chunk_size=None, decode_unicode=True):
                if line.startswith("data:"):
                    self.states.put((json.loads(line[5:])["state"], time.perf_counter()))
        except (requests.RequestException, AttributeError, ValueError, OSError):
            pass

    def wait(self, state: str, timeout: float = 10) -> float:
        deadline = time.monotonic() + timeout
        while True:
            got, at = self.states.get(timeout=max(0.01, deadline - time.monotonic()))
            if got == state:
                return at

    def close(self) -> None:
        self.response.close()


class Login:
    def __init__(self, issuer: str, session: requests.Session | None = None) -> None:
        self.issuer = issuer
        self.browser = session or requests.Session()
        self.phone = requests.Session()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": "bench",
                "redirect_uri": REDIRECT_URI,
                "scope": SCOPE,
                "state": secrets.token_urlsafe(12),
                "nonce": secrets.token_urlsafe(12),
                "code_challenge": secrets.token_urlsafe(32),
                "code_challenge_method": "S256",
            }
        )
        response = self.browser.get(f"{issuer}/authorize?{query}", allow_redirects=False)
        assert response.status_code == 303, response.text
        self.page = issuer + response.headers["Location"]
        self.id = self.page.rsplit("/", 1)[1]

    def show_page(self) -> None:
        assert self.browser.get(self.page).status_code == 200

    def frame(self) -> dict[str, Any]:
        body = self.browser.get(self.page + "/qr").json()
        assert isinstance(body, dict)
        return body

    def pickup(self, content: str) -> dict[str, Any]:
        response = self.phone.post(f"{self.issuer}/device/v1/pickup", json={"qr": content})
        assert response.status_code == 200, response.text
        body = response.json()
        assert isinstance(body, dict)
        return body

    def respond(self, creds: ResidentCredentials, picked: dict[str, Any]) -> dict[str, Any]:
        url = picked["handoff_url"] + "/response"
        answer = self.phone.post(url, json=card_response(creds, picked["challenge"])).json()
        if answer["status"] == "enroll_needed":
            answer = self.phone.post(
                url, json=card_response(creds, answer["challenge"], enroll=True)
            ).json()
        assert answer == {"status": "verified"}, answer
        return dict(answer)

    def close(self) -> None:
        self.browser.close()
        self.phone.close()


# -- 1 and 2: latency ----------------------------------------------------------------------------


def sse_latency(issuer: str, creds: ResidentCredentials, flows: int) -> dict[str, list[float]]:
    result: dict[str, list[float]] = {"pickup": [], "response": [], "qr": []}
    for _ in range(flows):
        login = Login(issuer)
        login.show_page()
        stream = Stream(login.browser, login.page + "/events")
        stream.wait("created")
        began = time.perf_counter()
        content = login.frame()["content"]
        result["qr"].append(time.perf_counter() - began)
        sent = time.perf_counter()
        picked = login.pickup(content)
        result["pickup"].append(stream.wait("picked_up") - sent)
        token = card_response(creds, picked["challenge"])
        sent = time.perf_counter()
        answer = login.phone.post(picked["handoff_url"] + "/response", json=token)
        assert answer.json() == {"status": "verified"}, answer.text
        result["response"].append(stream.wait("card_verified") - sent)
        stream.close()
        login.close()
    return result


def polling_latency(issuer: str, creds: ResidentCredentials, flows: int) -> list[float]:
    interval = POLL_INTERVAL_MS / 1000
    latencies = []
    for _ in range(flows):
        login = Login(issuer)
        login.show_page()
        picked = login.pickup(login.frame()["content"])
        token = card_response(creds, picked["challenge"])
        seen: queue.Queue[float] = queue.Queue()
        stop = threading.Event()

        def poll(
            session: requests.Session = login.browser,
            page: str = login.page,
            stop: threading.Event = stop,
            seen: queue.Queue[float] = seen,
        ) -> None:
            while not stop.is_set():
                if session.get(page + "/status").json()["state"] == "card_verified":
                    seen.put(time.perf_counter())
                    return
                stop.wait(interval)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        time.sleep(random.uniform(0, interval))  # a random phase
        sent = time.perf_counter()
        assert login.phone.post(picked["handoff_url"] + "/response", json=token).ok
        latencies.append(seen.get(timeout=10) - sent)
        stop.set()
        poller.join()
        login.close()
    return latencies


def status_rtt(issuer: str, count: int = 50) -> list[float]:
    login = Login(issuer)
    login.show_page()
    times = []
    for _ in range(count):
        began = time.perf_counter()
        login.browser.get(login.page + "/status").raise_for_status()
        times.append(time.perf_counter() - began)
    login.close()
    return times


# -- 3: waiting pages ------------------------------------------------------------------------


async def hold_streams(
    port: int, cookie: str, ids: list[str], redis_url: str, prefix: str
) -> dict[str, Any]:
    """Open one event stream per id, count those that deliver, then fan out card_verified."""
    ready: dict[str, float] = {}
    delivered: dict[str, float] = {}
    writers: list[asyncio.StreamWriter] = []

    async def client(transaction_id: str) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        writers.append(writer)
        writer.write(
            (
                f"GET /login/{transaction_id}/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Cookie: {COOKIE}={cookie}\r\nAccept: text/event-stream\r\n\r\n"
            ).encode()
        )
        buffer = b""
        try:
            while True:
                chunk = await reader.read(4096)
                if not chunk:
                    return
                buffer += chunk
                if transaction_id not in ready and b'"state": "created"' in buffer:
                    ready[transaction_id] = time.perf_counter()
                if b'"state": "card_verified"' in buffer:
                    delivered[transaction_id] = time.perf_counter()
                    return
        except (OSError, asyncio.IncompleteReadError):
            return

    tasks = [asyncio.create_task(client(i)) for i in ids]
    began = time.perf_counter()
    while len(ready) < len(ids) and time.perf_counter() - began < 30:
        await asyncio.sleep(0.1)
    opened = time.perf_counter() - began
    await asyncio.sleep(3)  # the pages wait
    holding = len(ready)
    publisher = redis.Redis.from_url(redis_url)
    message = json.dumps({"state": "card_verified", "reason": None, "version": 99})
    sent = time.perf_counter()
    pipe = publisher.pipeline(transaction=False)
    for transaction_id in ids:
        pipe.publish(f"{prefix}login-events:{transaction_id}", message)
    pipe.execute()
    published = time.perf_counter() - sent
    deadline = time.perf_counter() + 30
    while len(delivered) < holding and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    publisher.close()
    for writer in writers:
        writer.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    fanout = [delivered[i] - sent for i in delivered]
    return {
        "holding": holding,
        "open_s": opened,
        "delivered": len(delivered),
        "fanout": fanout,
        "publish_s": published,
    }


def waiting_pages(
    issuer: str, port: int, levels: list[int], redis_url: str, prefix: str, server_pid: int
) -> list[dict[str, Any]]:
    rows = []
    session = requests.Session()
    session.cookies.set(COOKIE, new_browser_key(), domain="127.0.0.1", path="/")
    cookie = session.cookies.get(COOKIE)
    assert cookie
    created: list[str] = []
    for level in levels:
        while len(created) < level:
            created.append(Login(issuer, session).id)
        ids = created[:level]
        rss_before = gunicorn_rss(server_pid)
        row: dict[str, Any] = {"level": level, "rss_idle": rss_before}
        rss: list[int] = []

        def sample(ids: list[str] = ids, rss: list[int] = rss) -> None:
            time.sleep(20 if len(ids) > 1500 else 10)
            rss.append(gunicorn_rss(server_pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        row.update(asyncio.run(hold_streams(port, cookie, ids, redis_url, prefix)))
        sampler.join()
        row["rss_waiting"] = max(rss) if rss else None
        rows.append(row)
        time.sleep(2)  # let the ended streams' threads return
        # the streams ended on card_verified; the next level needs fresh logins
        created = []
    session.close()
    return rows


# -- 4: Redis memory -----------------------------------------------------------------------------


def redis_memory(app: Any, pending: int) -> dict[str, float]:
    with app.app_context():
        store = get_store()
        client = store.client
        transactions = TransactionStore(store, ttl=300)
        ctx = AuthorizationContext(
            client_id=secrets.token_urlsafe(16),
            client_name="加賀市 電子申請",
            client_name_en="Kaga City e-Application",
            redirect_uri="https://forms.city.example.jp/callback",
            scopes=("openid", "name", "address", "birthdate", "gender"),
            state=secrets.token_urlsafe(16),
            nonce=secrets.token_urlsafe(16),
            code_challenge=secrets.token_urlsafe(32),
            code_challenge_method="S256",
        )
        before = int(client.info("memory")["used_memory"])
        keys_before = int(client.dbsize())
        sample = None
        for _ in range(pending):
            transaction = transactions.create(
                ctx,
                origin="https://id.city.example.jp",
                browser=BrowserBinding(new_browser_key()),
                locale="ja",
            )
            transaction = transactions.mark_qr_shown(transaction, time.time())
            sample = sample or transaction
        after = int(client.info("memory")["used_memory"])
        keys_after = int(client.dbsize())
        assert sample is not None
        parts = {
            "record": f"login:{sample.id}",
            "handoff index": f"handoff:{sample.handoff_id}",
            "qr index": f"qr:{sample.qr_token}",
            "nonce": f"login-nonce:{sample.id}",
        }
        usage = {
            name: float(client.memory_usage(store.key(key)) or 0) for name, key in parts.items()
        }
        record_json = len(client.get(store.key(parts["record"])) or b"")
    return {
        "per_login": (after - before) / pending,
        "keys_per_login": (keys_after - keys_before) / pending,
        "record_json_bytes": float(record_json),
        **{f"memory_usage {name}": value for name, value in usage.items()},
        "total_mib": (after - before) / 2**20,
    }


# -- main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--poll-flows", type=int, default=40)
    parser.add_argument("--connections", default="250,500,1000,2000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1000)
    parser.add_argument("--pending", type=int, default=10_000)
    parser.add_argument("--parts", default="latency,polling,pages,memory")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    levels = [int(level) for level in args.connections.split(",") if level]

    workdir = Path(tempfile.mkdtemp(prefix="myna-bench-handoff-"))
    redis_server = RedisServer(workdir)
    pki, trust = write_pki(workdir / "pki")
    creds = pki.issue(RESIDENTS["yamada"])
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    prefix = f"bench:{secrets.token_hex(4)}:"
    env = provider_env(
        issuer,
        database_url=f"sqlite:///{workdir / 'idp.sqlite3'}",
        redis_url=f"{redis_server.url}?max_connections={args.threads + 50}",
        IDP_REDIS_PREFIX=prefix,
        **trust,
    )  # the login rate limits are lifted: the bench is one address creating thousands

    def seed(_: Any) -> None:
        add_client(
            new_client(
                name="ベンチマーク",
                redirect_uris=[REDIRECT_URI],
                auth_method="client_secret_basic",
                client_id="bench",
            ).client
        )

    app = prepare_database(env, seed=seed)
    server = Gunicorn(
        env, port=port, workers=args.workers, threads=args.threads, log=workdir / "gunicorn.log"
    )
    try:
        server.wait_ready()
        warm = Login(issuer)  # enrolls the card (signature round) once
        warm.show_page()
        warm.respond(creds, warm.pickup(warm.frame()["content"]))
        warm.close()
        sse_latency(issuer, creds, 10)  # warm-up

        print(
            f"gunicorn gthread workers={args.workers} threads={args.threads} "
            f"cpus={os.cpu_count()} redis=private loopback"
        )
        if "latency" in parts:
            sse = sse_latency(issuer, creds, args.flows)
            print(f"\n1. SSE notification latency, {args.flows} flows (POST sent -> page event)")
            print(f"   pickup   -> picked_up     {ms(sse['pickup'])}")
            print(f"   response -> card_verified {ms(sse['response'])}")
            print(f"   GET /login/<id>/qr (one frame, each page each second) {ms(sse['qr'])}")
        if "polling" in parts:
            polling(issuer, creds, args.poll_flows)
        if "pages" in parts:
            pages(issuer, port, levels, redis_server.url, prefix, server.pid)
        if "memory" in parts:
            memory(app, args.pending)
    finally:
        server.stop()
        redis_server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def polling(issuer: str, creds: ResidentCredentials, flows: int) -> None:
    rtt = status_rtt(issuer)
    polled = polling_latency(issuer, creds, flows)
    print(f"\n2. polling fallback, {flows} flows, every {POLL_INTERVAL_MS} ms")
    print(f"   response -> poll sees card_verified {ms(polled)}")
    median_rtt = statistics.median(rtt)
    print(
        f"   expected for a {BANKID_POLL_S:.0f} s poller (BankID's guidance): "
        f"p50 {(BANKID_POLL_S * 0.5 + median_rtt) * 1000:7.1f} ms   "
        f"p95 {(BANKID_POLL_S * 0.95 + median_rtt) * 1000:7.1f} ms "
        f"(uniform phase + one /status request, p50 {median_rtt * 1000:.1f} ms)"
    )


def pages(
    issuer: str, port: int, levels: list[int], redis_url: str, prefix: str, server_pid: int
) -> None:
    print("\n3. waiting pages held by one instance (event streams open at once)")
    rows = waiting_pages(issuer, port, levels, redis_url, prefix, server_pid)
    for row in rows:
        fan = row["fanout"]
        fanout = ms(fan) if fan else "none delivered"
        rss = row["rss_waiting"]
        print(
            f"   N={row['level']:>5}: holding {row['holding']:>5} (opened in "
            f"{row['open_s']:.1f} s), fan-out delivered {row['delivered']:>5}: {fanout}; "
            f"gunicorn RSS {row['rss_idle'] / 2**20:.0f} MiB idle -> "
            f"{(rss or 0) / 2**20:.0f} MiB waiting"
        )


def memory(app: Any, pending: int) -> None:
    figures = redis_memory(app, pending)
    print(f"\n4. Redis memory, {pending} pending logins")
    print(
        f"   used_memory +{figures['total_mib']:.1f} MiB = {figures['per_login']:.0f} bytes per "
        f"login ({figures['keys_per_login']:.0f} keys; record JSON "
        f"{figures['record_json_bytes']:.0f} bytes)"
    )
    for name, value in figures.items():
        if name.startswith("memory_usage"):
            print(f"   {name}: {value:.0f} bytes")


if __name__ == "__main__":
    main()
