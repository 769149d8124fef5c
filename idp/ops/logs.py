"""Request ids and structured logs.

- Every request gets an id: the ``X-Request-ID`` it came with when that is well-formed (1-64 of
  ``A-Z a-z 0-9 . _ -``, as a proxy or load balancer sets it), otherwise a new random one. It is
  echoed in the response's ``X-Request-ID`` and attached to every log record made while the
  request runs (``record.request_id``).
- :func:`install_record_factory` makes every log record of the process pass through
  :func:`idp.ops.redaction.redact_record` when it is created, whatever logger made it and
  whatever handler writes it (gunicorn's, a JSON handler, pytest's capture).
- :class:`JsonFormatter` writes one JSON object per line: ``ts``, ``level``, ``logger``,
  ``message``, ``request_id`` (in a request), ``exc`` (a redacted traceback) and the ``extra``
  fields given to the call that are JSON-friendly.

Logging's handlers and levels are set by the process that serves the app (the gunicorn config
:mod:`idp.ops.gunicorn_conf`, or ``idp serve``), not by the app.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

from flask import Flask, Response, g, has_request_context, request

from idp.ops.redaction import redact, redact_record

__all__ = [
    "REQUEST_ID_HEADER",
    "JsonFormatter",
    "current_request_id",
    "install_record_factory",
    "new_request_id",
]

REQUEST_ID_HEADER: Final = "X-Request-ID"
_WELL_FORMED: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
_INSTALL_LOCK: Final = threading.Lock()
_installed = False

#: LogRecord attributes that are not "extra" fields.
_STANDARD: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "myna_redacted"}
)


def new_request_id() -> str:
    """A fresh request id (22 base64url characters)."""
    return secrets.token_urlsafe(16)


def current_request_id() -> str | None:
    """The id of the request being handled, or None outside a request."""
    if not has_request_context():
        return None
    value = g.get("request_id")
    return value if isinstance(value, str) else None


def install_record_factory() -> None:
    """Redact every log record the process creates and give it the current request id.

    Idempotent; wraps whatever record factory was installed before.
    """
    global _installed
    with _INSTALL_LOCK:
        if _installed:
            return
        previous: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            record.request_id = current_request_id()
            return redact_record(record)

        logging.setLogRecordFactory(factory)
        _installed = True


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring); redacts again on the way out."""

    def format(self, record: logging.LogRecord) -> str:
        redact_record(record)
        document: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            document["request_id"] = request_id
        for key, value in vars(record).items():
            if key in _STANDARD or key.startswith("_"):
                continue
            document[key] = _safe(value)
        if record.exc_text:
            document["exc"] = record.exc_text
        if record.stack_info:
            document["stack"] = record.stack_info
        return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _safe(value: Any) -> Any:
    if isinstance(value, bool | int | float) or value is None:
        return value
    return redact(str(value))


def _begin() -> None:
    offered = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = offered if _WELL_FORMED.fullmatch(offered) else new_request_id()


def _echo(response: Response) -> Response:
    request_id = current_request_id()
    if request_id:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


def init_app(app: Flask) -> None:
    """Request ids for ``app``'s requests; redaction for every log record of the process."""
    install_record_factory()
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    app.after_request(_echo)
