"""myna-idp against node-oidc-provider: complete logins, server CPU per login, token latency,
discovery and JWKS throughput, on one machine, the servers and the load generator on
different cores, runs alternated.

    .venv/bin/python bench/peer_compare.py \
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5440/idp_bench] \
        [--concurrency 1,4,16,64] [--rounds 2] [--seconds 6] [--endpoint-seconds 1.5] \
        [--server-core 1] [--client-core 0] [--profile-seconds 15] [--out DIR]

The peer (``bench/peer/``, run ``npm ci`` there first): npm ``oidc-provider`` pinned in
``package-lock.json``, its in-memory store, the development interactions (a login form that
takes any login, then a consent form), PKCE required, ES256 ID tokens, one confidential client
with ``private_key_jwt`` (ES256). myna-idp: ``gunicorn -c python:idp.ops.gunicorn_conf
--workers 1`` (gthread), PostgreSQL (``--database-url``, emptied and migrated), a private
``redis-server``, trusting a test PKI with CRLs; the same client, the same ES256 ID tokens.

One load script (threads; each thread runs complete flows one after another, a new HTTP
connection per flow, kept alive within it) drives, per server:

- the peer: ``GET /auth`` -> the login form -> ``POST`` login -> ``GET /auth/<uid>`` -> the
  consent form -> ``POST`` consent -> ``GET /auth/<uid>`` (the code) -> ``POST /token`` ->
  ``GET /me``;
- myna-idp: ``GET /authorize`` -> the login page -> the device API's challenge -> the card's
  response (RS256 with the resident's software key; the provider validates the certificate
  chain, validity, key usage, policy, CRL and the signature) -> status -> continue (the code:
  the resident consented once before timing) -> ``POST /token`` -> ``GET /userinfo``.

For each server, round and concurrency: flows for ``--seconds`` (flows started in the window
finish), then ``GET`` discovery and JWKS for ``--endpoint-seconds`` each at the same
concurrency (one kept-alive connection per thread). Server CPU is the user + system time of the
server's processes (``/proc/<pid>/stat``: node; gunicorn's master and worker) over the window,
divided by completed flows; for myna-idp also with its storage (the private Redis and the
PostgreSQL backends of its database). Rounds alternate: peer, myna-idp, peer, myna-idp.

``--profile-seconds``: afterwards, py-spy records myna-idp's worker under concurrency 4 and
the script prints where the time goes (samples of threads waiting for a socket, a lock or the
next request dropped) (needs ``pip install py-spy``; root or ptrace rights).
Results go to ``--out`` (default a temporary directory): ``peer_compare.json``, ``report.md`` (the
tables and the profile summary) and the py-spy raw profile.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import redis
import requests
from support import (
    REDIRECT_URI,
    ROOT,
    BenchClient,
    CpuMeter,
    FlowError,
    Gunicorn,
    RedisServer,
    Server,
    Session,
    Timings,
    card_login,
    free_port,
    pin,
    pkce,
    postgres_backends,
    postgres_sessions,
    prepare_database,
    provider_env,
    summary,
    wait_http,
    write_pki,
)

from idp.card.testpki import RESIDENTS, ResidentCredentials

PEER_DIR = ROOT / "bench" / "peer"
PEER_SCOPE = "openid profile address"
PEER_STEPS = ("authorize", "login_page", "login", "resume_login", "consent_page", "consent",
              "resume_consent", "token", "userinfo")  # fmt: skip
ACTION = re.compile(r'action="([^"]+)"')


# -- the peer's flow -----------------------------------------------------------------------------


def peer_login(issuer: str, client: BenchClient, timings: Timings) -> None:
    """One complete login at node-oidc-provider with its development interactions."""
    browser = Session()
    try:
        verifier, challenge = pkce()
        state = secrets.token_urlsafe(12)
        query = urlencode(
            {"response_type": "code", "client_id": client.client_id, "redirect_uri": REDIRECT_URI,
             "scope": PEER_SCOPE, "state": state, "nonce": secrets.token_urlsafe(12),
             "code_challenge": challenge, "code_challenge_method": "S256"}
        )  # fmt: skip

        def redirect(step: str, call: Callable[[], requests.Response]) -> str:
            with timings.timed(step):
                response = call()
            if response.status_code not in (302, 303):
                raise FlowError(step, response)
            return urljoin(issuer, response.headers["Location"])

        def form(step: str, url: str) -> str:
            with timings.timed(step):
                response = browser.get(url, timeout=60)
            action = ACTION.search(response.text) if response.status_code == 200 else None
            if action is None:
                raise FlowError(step, response)
            return urljoin(issuer, action.group(1))

        get = browser.get
        url = redirect("authorize", lambda: get(f"{issuer}/auth?{query}", allow_redirects=False))
        action = form("login_page", url)
        data = {"prompt": "login", "login": "yamada", "password": "any"}
        url = redirect("login", lambda: browser.post(action, data=data, allow_redirects=False))
        url = redirect("resume_login", lambda: get(url, allow_redirects=False))
        action = form("consent_page", url)
        url = redirect(
            "consent",
            lambda: browser.post(action, data={"prompt": "consent"}, allow_redirects=False),
        )
        callback = redirect("resume_consent", lambda: get(url, allow_redirects=False))
        params = dict(pair.split("=", 1) for pair in urlsplit(callback).query.split("&"))
        if params.get("state") != state or "code" not in params:
            raise FlowError("resume_consent", None, callback)
        with timings.timed("token"):
            token = browser.post(
                f"{issuer}/token", data=client.token_form(params["code"], verifier), timeout=60
            )
        if token.status_code != 200:
            raise FlowError("token", token)
        with timings.timed("userinfo"):
            info = browser.get(
                f"{issuer}/me",
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
                timeout=60,
            )
        if info.status_code != 200:
            raise FlowError("userinfo", info)
    finally:
        browser.close()


# -- the servers ---------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    issuer: str
    flow: Callable[[Timings], None]
    meters: dict[str, CpuMeter]
    counters: Callable[[], dict[str, int]] | None = None
    discovery: str = ""
    jwks: str = ""


def start_peer(workdir: Path, core: set[int]) -> tuple[Server, Target]:
    node = shutil.which("node")
    if node is None or not (PEER_DIR / "node_modules" / "oidc-provider").is_dir():
        sys.exit("node and bench/peer/node_modules are needed: cd bench/peer && npm ci")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    client = BenchClient(audience=f"{issuer}/token")
    env = {**os.environ, "PORT": str(port), "CLIENT_JWKS": json.dumps(client.jwks())}  # noqa: TID251
    server = Server(
        [node, str(PEER_DIR / "provider.mjs")], env=env, log=workdir / "peer.log", cores=core
    )
    wait_http(f"{issuer}/.well-known/openid-configuration", process=server.process)
    target = Target(
        "node-oidc-provider",
        issuer,
        lambda timings: peer_login(issuer, client, timings),
        {"app": CpuMeter([server.pid])},
    )
    return server, target


def start_ours(
    workdir: Path, core: set[int], database_url: str, workers: int
) -> tuple[list[Server], Target]:
    redis_server = RedisServer(workdir / "redis", cores=core)
    pki, trust = write_pki(workdir / "pki")
    creds: ResidentCredentials = pki.issue(RESIDENTS["yamada"])
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    client = BenchClient(audience=f"{issuer}/token")
    env = provider_env(
        issuer,
        database_url=database_url,
        redis_url=f"{redis_server.url}?max_connections=300",
        **trust,
    )
    prepare_database(env, client_jwks=client.jwks())
    server = Gunicorn(env, port=port, workers=workers, log=workdir / "gunicorn.log", cores=core)
    server.wait_ready()
    # The card enrolls and the resident consents once; timed flows are returning logins.
    card_login(issuer, creds, client, consent=True)
    database = urlsplit(database_url).path.lstrip("/")
    pg_counters = postgres_sessions(database_url, database)
    redis_client = redis.Redis.from_url(redis_server.url)

    def redis_counters() -> dict[str, int]:
        return {"redis_commands": int(redis_client.info("stats")["total_commands_processed"])}

    def flow(timings: Timings) -> None:
        card_login(issuer, creds, client, timings=timings)

    target = Target(
        "myna-idp",
        issuer,
        flow,
        {
            "app": CpuMeter([server.pid]),
            "redis": CpuMeter([redis_server.pid]),
            "postgres": CpuMeter([], extra=postgres_backends(database_url, database)),
        },
        counters=lambda: {**pg_counters(), **redis_counters()},
    )
    return [server, redis_server], target


# -- the load ------------------------------------------------------------------------------------


@dataclass
class Run:
    server: str
    round: int
    concurrency: int
    flows: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    steps: dict[str, list[float]] = field(default_factory=dict)
    discovery_rps: float = 0.0
    jwks_rps: float = 0.0
    discovery_cpu_us: float = 0.0
    jwks_cpu_us: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        token = summary(self.steps.get("token", []))
        return {
            "server": self.server,
            "round": self.round,
            "concurrency": self.concurrency,
            "flows": self.flows,
            "errors": dict(self.errors),
            "seconds": round(self.seconds, 3),
            "flows_per_s": self.flows / self.seconds if self.seconds else 0.0,
            "cpu_s": self.cpu,
            "cpu_ms_per_flow": {k: 1000 * v / max(1, self.flows) for k, v in self.cpu.items()},
            "token_p50_ms": token[0],
            "token_p99_ms": token[1],
            "steps_p50_ms": {k: summary(v)[0] for k, v in self.steps.items()},
            "discovery_rps": self.discovery_rps,
            "jwks_rps": self.jwks_rps,
            "per_flow": {k: v / max(1, self.flows) for k, v in self.counts.items()},
            "discovery_cpu_us": self.discovery_cpu_us,
            "jwks_cpu_us": self.jwks_cpu_us,
        }


def run_flows(target: Target, concurrency: int, seconds: float, run: Run) -> None:
    timings = Timings()
    lock = threading.Lock()
    for meter in target.meters.values():
        meter.start()
    counted = target.counters() if target.counters else {}
    began = time.perf_counter()
    until = began + seconds

    def worker() -> None:
        while time.perf_counter() < until:
            try:
                target.flow(timings)
            except (FlowError, requests.RequestException) as exc:
                with lock:
                    run.errors[getattr(exc, "step", type(exc).__name__)] += 1
                continue
            with lock:
                run.flows += 1

    finished = threading.Event()

    def sampler() -> None:  # short-lived database connections: note them while they live
        while not finished.wait(0.05):
            for name, meter in target.meters.items():
                if name == "postgres":
                    meter.sample()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    watcher = threading.Thread(target=sampler)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    finished.set()
    watcher.join()
    run.seconds = time.perf_counter() - began
    run.cpu = {name: meter.used() for name, meter in target.meters.items()}
    if target.counters:
        time.sleep(1.2)  # PostgreSQL's backends report their counters about once a second
        own = {"redis_commands": 1}  # the first INFO
        run.counts = {k: v - counted[k] - own.get(k, 0) for k, v in target.counters().items()}
    run.steps = dict(timings.values)


def requests_per_second(url: str, concurrency: int, seconds: float) -> tuple[float, int]:
    count = 0
    failures = 0
    lock = threading.Lock()
    until = time.perf_counter() + seconds

    def worker() -> None:
        nonlocal count, failures
        session = Session()
        done = bad = 0
        while time.perf_counter() < until:
            if session.get(url, timeout=30).status_code == 200:
                done += 1
            else:
                bad += 1
        session.close()
        with lock:
            count += done
            failures += bad

    began = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"{url}: {failures} failed requests")
    return count / (time.perf_counter() - began), count


def measure(target: Target, round_: int, level: int, args: argparse.Namespace) -> Run:
    run = Run(target.name, round_, level)
    run_flows(target, level, args.seconds, run)
    meter = target.meters["app"]
    meter.start()
    run.discovery_rps, count = requests_per_second(target.discovery, level, args.endpoint_seconds)
    run.discovery_cpu_us = 1e6 * meter.used() / max(1, count)
    meter.start()
    run.jwks_rps, count = requests_per_second(target.jwks, level, args.endpoint_seconds)
    run.jwks_cpu_us = 1e6 * meter.used() / max(1, count)
    row = run.row()
    cpu = " ".join(f"{k}={v:.1f}" for k, v in row["cpu_ms_per_flow"].items())
    if run.counts:
        cpu += " (per flow: " + ", ".join(f"{k} {v:.1f}" for k, v in row["per_flow"].items()) + ")"
    print(
        f"  {target.name:<19} r{round_} c={level:<3} {row['flows']:>5} flows "
        f"{row['flows_per_s']:7.1f}/s  cpu ms/flow {cpu}  token p50 {row['token_p50_ms']:.1f} "
        f"p99 {row['token_p99_ms']:.1f}  disc {run.discovery_rps:.0f}/s "
        f"{run.discovery_cpu_us:.0f} us, jwks {run.jwks_rps:.0f}/s {run.jwks_cpu_us:.0f} us"
        f"{'  ERRORS ' + str(dict(run.errors)) if run.errors else ''}",
        flush=True,
    )
    return run


# -- py-spy --------------------------------------------------------------------------------------


def redis_commands_of_one_flow(target: Target, redis_url: str) -> str:
    """Run one login with Redis MONITOR on: its commands by name."""
    client = redis.Redis.from_url(redis_url)
    names: Counter[str] = Counter()
    ready = threading.Event()

    def watch() -> None:
        with client.monitor() as monitor:
            ready.set()
            for command in monitor.listen():
                if "FLOWDONE" in command["command"]:
                    return
                words = command["command"].split()
                if words and words[0] != "INFO":
                    names[words[0].upper()] += 1

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ready.wait(5)
    target.flow(Timings())
    client.execute_command("ECHO", "FLOWDONE")
    watcher.join(5)
    client.close()
    listed = ", ".join(f"{name} {count}" for name, count in names.most_common())
    return f"  Redis commands of one login: {sum(names.values())} ({listed})"


def profile(target: Target, master: int, seconds: float, out: Path) -> str:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return "py-spy is not installed: no profile"
    raw = out / "myna-idp.pyspy.txt"
    # --nonblocking: sampling does not stop the worker's 250 threads each time (stopping them
    # at this rate on a loaded machine can stall py-spy and the worker)
    recorder = subprocess.Popen(
        [spy, "record", "--pid", str(master), "--subprocesses", "--nonblocking", "--rate", "100",
         "--duration", str(int(seconds)), "--format", "raw", "--output", str(raw)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)
    run = Run(target.name, 0, 4)
    run_flows(target, 4, seconds - 1.5, run)
    try:
        recorder.wait(timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        recorder.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
        try:
            recorder.wait(timeout=30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait()
    if not raw.exists():
        return "py-spy wrote no profile"
    return f"py-spy, {run.flows} flows at concurrency 4 ({raw}):\n" + where_the_time_goes(
        raw.read_text()
    )


# Which part of a login a sample belongs to: the first of these found in its stack, innermost
# first. Names are py-spy's "function (file:line)" frames; matched on function and file.
BUCKETS = (
    ("certificate validation + card signature", ("idp/card/validation",)),
    ("ID token / JWT signing and checks", ("joserfc/", "authlib/jose")),
    ("templates (Jinja)", ("jinja2/",)),
    ("logging (JSON access log)", ("logging/", "idp/ops/logs")),
    ("metrics (prometheus_client)", ("prometheus_client/",)),
    ("PostgreSQL (SQLAlchemy + psycopg)", ("sqlalchemy/", "psycopg/")),
    ("Redis (redis-py)", ("redis/",)),
    ("Authlib OAuth machinery", ("authlib/",)),
    ("Flask / Werkzeug request handling", ("flask/", "werkzeug/")),
    ("gunicorn HTTP parsing and I/O", ("gunicorn/",)),
)


# The view function of each step of the card login (py-spy frame prefixes).
VIEWS = (
    ("authorize", "authorize (idp/oidc/routes.py"),
    ("login_page", "login_page (idp/handoff/pages.py"),
    ("device_challenge", "get_challenge (idp/handoff/device_api.py"),
    ("device_response", "post_response (idp/handoff/device_api.py"),
    ("status", "status (idp/handoff/pages.py"),
    ("continue", "continue_login (idp/handoff/pages.py"),
    ("token", "token (idp/oidc/routes.py"),
    ("userinfo", "userinfo (idp/oidc/routes.py"),
)

# Innermost frames of a thread that waits (py-spy does not always see it as idle): a socket, a
# lock, epoll, the next request. Such samples are not CPU and are dropped.
WAITING = (
    "select (selectors.py",
    "_worker (concurrent/futures/thread.py",
    "wait (threading.py",
    "Connection.wait (psycopg/",
    "_read_from_socket (redis/",
    "accept (socket.py",
    "readinto (socket.py",
    "recv_into (",
    "get (queue.py",
    "_wait_for_tstate_lock (threading.py",
)


def where_the_time_goes(raw: str, top: int = 15) -> str:
    """Summarize py-spy's raw (collapsed) stacks: buckets by library, top self functions."""
    buckets: Counter[str] = Counter()
    views: Counter[str] = Counter()
    selfs: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = waiting = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames and frames[0].startswith("process "):
            frames = frames[1:]
        if not frames or any(needle in frames[-1] for needle in WAITING):
            waiting += count
            continue
        total += count
        selfs[frames[-1]] += count
        view = next(
            (step for step, prefix in VIEWS if any(f.startswith(prefix) for f in frames)),
            "outside the views (gunicorn, Flask dispatch, access log, metrics)",
        )
        views[view] += count
        for name in {frame for frame in frames if "idp/" in frame}:
            inclusive[name] += count
        for bucket, needles in BUCKETS:
            if any(needle in frame for frame in reversed(frames) for needle in needles):
                buckets[bucket] += count
                break
        else:
            buckets["other (threads, sockets, interpreter)"] += count
    if not total:
        return "  (no samples)"
    lines = [
        f"  {total} samples on CPU ({waiting} waiting dropped); by part (innermost library in "
        "the stack):"
    ]
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in buckets.most_common()]
    lines.append("  by step (the view function in the stack):")
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in views.most_common()]
    lines.append("  top functions by own time:")
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in selfs.most_common(top)]
    lines.append("  idp functions, inclusive:")
    lines += [f"    {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


# -- report --------------------------------------------------------------------------------------


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def report(runs: list[Run], levels: list[int]) -> str:
    rows = [run.row() for run in runs]
    by: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by[(row["server"], row["concurrency"])].append(row)

    def avg(server: str, level: int, get: Callable[[dict[str, Any]], float]) -> float:
        return mean([get(row) for row in by[(server, level)]])

    out = [
        "| conc | server | logins/s | server CPU ms/login | + storage | token p50 ms | "
        "token p99 ms | discovery req/s | CPU µs/req | JWKS req/s | CPU µs/req | errors |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    ratios = [
        "| conc | logins/s | server CPU ms/login | + storage | token p50 | token p99 | "
        "discovery req/s | discovery CPU/req | JWKS req/s | JWKS CPU/req |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for level in levels:
        figures = {}
        for server in ("node-oidc-provider", "myna-idp"):
            f = {
                "rate": avg(server, level, lambda r: r["flows_per_s"]),
                "cpu": avg(server, level, lambda r: r["cpu_ms_per_flow"]["app"]),
                "all": avg(server, level, lambda r: sum(r["cpu_ms_per_flow"].values())),
                "p50": avg(server, level, lambda r: r["token_p50_ms"]),
                "p99": avg(server, level, lambda r: r["token_p99_ms"]),
                "disc": avg(server, level, lambda r: r["discovery_rps"]),
                "jwks": avg(server, level, lambda r: r["jwks_rps"]),
                "disc_cpu": avg(server, level, lambda r: r["discovery_cpu_us"]),
                "jwks_cpu": avg(server, level, lambda r: r["jwks_cpu_us"]),
                "errors": sum(sum(r["errors"].values()) for r in by[(server, level)]),
            }
            figures[server] = f
            out.append(
                f"| {level} | {server} | {f['rate']:.1f} | {f['cpu']:.1f} | {f['all']:.1f} | "
                f"{f['p50']:.1f} | {f['p99']:.1f} | {f['disc']:.0f} | {f['disc_cpu']:.0f} | "
                f"{f['jwks']:.0f} | {f['jwks_cpu']:.0f} | {f['errors']} |"
            )
        us, peer = figures["myna-idp"], figures["node-oidc-provider"]

        def ratio(key: str, us: dict[str, float] = us, peer: dict[str, float] = peer) -> str:
            return f"{us[key] / peer[key]:.2f}" if peer[key] else "-"

        ratios.append(
            f"| {level} | {ratio('rate')} | {ratio('cpu')} | {ratio('all')} | {ratio('p50')} | "
            f"{ratio('p99')} | {ratio('disc')} | {ratio('disc_cpu')} | {ratio('jwks')} | "
            f"{ratio('jwks_cpu')} |"
        )
    steps = ["", "Per-step latency p50 (ms) at concurrency 1, mean of the rounds:", ""]
    for server, names in (("node-oidc-provider", PEER_STEPS), ("myna-idp", None)):
        level_rows = by[(server, levels[0])]
        keys = names or tuple(level_rows[0]["steps_p50_ms"]) if level_rows else ()
        parts = [f"{k} {mean([r['steps_p50_ms'].get(k, 0.0) for r in level_rows]):.1f}"
                 for k in keys]  # fmt: skip
        steps.append(f"- {server} (c={levels[0]}): " + ", ".join(parts))
    return "\n".join(
        [*out, "", "Ratios myna-idp / node-oidc-provider (CPU and latency: lower is better):", "",
         *ratios, *steps]
    )  # fmt: skip


def machine() -> str:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    lock = json.loads((PEER_DIR / "package-lock.json").read_text())
    peer = lock["packages"]["node_modules/oidc-provider"]["version"]
    load = os.getloadavg()
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} cores ({model}); "
        f"Python {platform.python_version()}, node {node}, oidc-provider {peer}; "
        f"load average before {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5440/idp_bench"
    )
    parser.add_argument("--concurrency", default="1,4,16,64")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--endpoint-seconds", type=float, default=1.5)
    parser.add_argument("--server-core", type=int, default=1)
    parser.add_argument("--client-core", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--profile-seconds", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]
    out = args.out or Path(tempfile.mkdtemp(prefix="myna-bench-peer-"))
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="myna-bench-peer-run-"))

    header = machine()
    client_cores = pin({args.client_core})
    server_cores = {args.server_core} if args.server_core < (os.cpu_count() or 1) else set()
    print(header)
    print(f"servers on cores {sorted(server_cores)}, load generator on {sorted(client_cores)}")
    servers: list[Server] = []
    try:
        peer_server, peer = start_peer(workdir, server_cores)
        servers.append(peer_server)
        ours_servers, ours = start_ours(workdir, server_cores, args.database_url, args.workers)
        servers.extend(ours_servers)
        for target in (peer, ours):
            document = requests.get(f"{target.issuer}/.well-known/openid-configuration").json()
            target.discovery = f"{target.issuer}/.well-known/openid-configuration"
            target.jwks = document["jwks_uri"]
            warm = Run(target.name, 0, 4)
            run_flows(target, 4, 4.0, warm)  # warm-up (imports, JIT, pools)
        runs: list[Run] = []
        for round_ in range(1, args.rounds + 1):
            for target in (peer, ours):
                for level in levels:
                    runs.append(measure(target, round_, level, args))
        table = report(runs, levels)
        print()
        print(table)
        (out / "peer_compare.json").write_text(
            json.dumps({"machine": header, "runs": [r.row() for r in runs]}, indent=1)
        )
        parts = [header, table]
        if args.profile_seconds > 0:
            private = next(s for s in ours_servers if isinstance(s, RedisServer))
            parts.append(redis_commands_of_one_flow(ours, private.url))
            print("\n" + parts[-1])
            parts.append(profile(ours, ours_servers[0].pid, args.profile_seconds, out))
            print("\n" + parts[-1])
        (out / "report.md").write_text("\n\n".join(parts) + "\n")
        print(f"\nresults in {out} (peer_compare.json, report.md)")
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
