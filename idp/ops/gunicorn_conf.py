"""gunicorn configuration for the provider: ``gunicorn -c python:idp.ops.gunicorn_conf``.

Why threads (``gthread``): the login page holds a server-sent events stream
(``/login/<id>/events``) open for as long as the resident takes with the card, up to
``IDP_LOGIN_TTL`` (5 minutes). A ``sync`` worker serves one request at a time, so every waiting
page would hold a whole process and a handful of residents would block the provider. A
``gthread`` worker gives each connection a thread: a waiting page costs one mostly idle thread
(the process shares one Redis subscription among all its pages, see ``idp.handoff.events``),
while the other threads keep answering. Size it as::

    workers x threads >= login pages waiting at once + requests in flight

One worker per core (CPU-bound work, RSA verification and token signing, is spread over the
workers); 250 threads each, measured in docs/handoff.md (one 2-core instance holds about 1,000
waiting pages). ``worker_connections`` is twice ``threads``: a gthread worker that reaches it
stops reporting to the arbiter and is killed after ``timeout``, with all its pages. Pair it
with ``IDP_EVENTS_MAX_STREAMS=190`` (three quarters of the threads), so that waiting pages never
hold every thread and QR frames, the device API and ``/token`` are still served. Redis
allows 100 connections per pool unless the URL says more: add ``max_connections=`` (threads +
50) to ``IDP_REDIS_URL``. Asynchronous workers (gevent) are not used: psycopg and
cryptography block in C, which would stall every connection of a worker.

Everything here can be overridden on the command line (``--workers 8 --threads 128
--bind 10.0.0.5:8000``) or with ``GUNICORN_CMD_ARGS``. Settings of the app itself come from the
``IDP_*`` environment as always (docs/configuration.md).

Metrics: each worker keeps its own counters; ``raw_env`` points ``PROMETHEUS_MULTIPROC_DIR`` at
a fresh private directory so that ``/metrics``, whichever worker answers it, adds up all
workers. A worker that exits is marked dead there; the directory is removed when gunicorn
stops. Logs: one JSON object per line on standard error (``idp.ops.logs.JsonFormatter``),
every record redacted. gunicorn's own access log is off: the app writes one without query
strings (``idp.access``), the reverse proxy another.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from typing import Any

# prometheus_client is NOT imported here: it picks its value store when first imported, and
# that must happen in the workers, after raw_env below has set PROMETHEUS_MULTIPROC_DIR.

wsgi_app = "idp.app:create_app()"
bind = ["127.0.0.1:8000"]

worker_class = "gthread"
workers = max(2, min(multiprocessing.cpu_count(), 8))
threads = 250
worker_connections = 2 * threads
# The worker's main thread reports to the arbiter while request threads wait on streams, so a
# long event stream never looks like a hung worker; `timeout` only catches a stuck process.
timeout = 30
graceful_timeout = 30
keepalive = 5
# A closing stream ends at its next heartbeat (IDP_EVENTS_HEARTBEAT); workers are not recycled
# by request count: no leaks to hide, and recycling would cut waiting pages.
max_requests = 0
# Each worker proves it is alive by touching a file (os.utime) on every turn of its loop, that
# is for every request: on tmpfs, not a disk-backed /tmp where each touch is a journaled
# metadata write (about 4 % of a worker's CPU in the py-spy profile of docs/benchmarks.md).
_SHM = "/dev/shm"  # noqa: S108 - gunicorn makes its file there with mkstemp (private, 0600)
worker_tmp_dir = _SHM if os.path.isdir(_SHM) else None

# Only the local reverse proxy may set X-Forwarded-Proto for gunicorn's own wsgi.url_scheme;
# the app decides what it trusts itself (IDP_TRUSTED_PROXY_COUNT / IDP_TRUSTED_PROXIES).
forwarded_allow_ips = "127.0.0.1,::1"

_METRICS_DIR = tempfile.mkdtemp(prefix="myna-idp-metrics-")
raw_env = [f"PROMETHEUS_MULTIPROC_DIR={_METRICS_DIR}"]

accesslog = None
errorlog = "-"
loglevel = "info"
logconfig_dict: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "idp.ops.logs.JsonFormatter"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        # Off, as said above: with a logconfig_dict gunicorn writes its access log whatever
        # ``accesslog`` says, so its logger stays above the level of those lines.
        "gunicorn.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
    },
}


def child_exit(server: Any, worker: Any) -> None:
    """Forget the live gauges of a worker that exited (its counters stay counted)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _METRICS_DIR)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    """Remove the metrics directory when gunicorn stops."""
    shutil.rmtree(_METRICS_DIR, ignore_errors=True)
