"""The device API, ``/device/v1``: what the phone app or the desktop agent talks to.

JSON only, no cookies, versioned in the path; documented in ``docs/device-api.md`` and
``docs/device-api.openapi.yaml``.

=======  ==============================================  =======================================
method   path                                            answer
=======  ==============================================  =======================================
POST     /device/v1/pickup                               a phone presents a QR frame (``qr``):
                                                         the handoff URL, the verification code
                                                         and the challenge (single use)
GET      /device/v1/transactions/<handoff id>            the challenge to sign (marks the
                                                         transaction ``picked_up``)
POST     /device/v1/transactions/<handoff id>/response   the card response: ``verified``, or
                                                         ``enroll_needed`` / ``sign_needed``
                                                         with the next challenge
POST     /device/v1/transactions/<handoff id>/cancel     the device gives up (``reason``)
=======  ==============================================  =======================================

Every error is ``{"error": <code>, "message": <text>}`` with a 4xx status (503 when a
backing service is down); never a 500 for bad input (see :mod:`idp.handoff.errors`).
"""

from __future__ import annotations

import logging
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from flask import Blueprint, Response, json, request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from idp.extensions import get_settings, get_store
from idp.handoff.errors import DeviceError, error_response
from idp.handoff.login import (
    FORMAT,
    check_open,
    parse_card_response,
    verify_card_response,
)
from idp.handoff.qr import QrError, check_fresh, check_mac, parse_frame
from idp.handoff.ratelimit import RateLimitedError, check_pickup
from idp.handoff.signing import sign_document
from idp.handoff.transaction import (
    DEVICE_STATES,
    LoginTransaction,
    TransactionConflictError,
    TransactionStore,
    TxState,
)
from idp.handoff.trust import TrustUnavailableError, get_trust
from idp.storage.ephemeral import StoreUnavailableError

__all__ = ["API_PREFIX", "MAX_BODY", "bp", "challenge_document", "transactions"]

log = logging.getLogger(__name__)

API_PREFIX: Final = "/device/v1"
MAX_BODY: Final = 16 * 1024
"""Largest device request body: two certificates and two signatures in base64 fit in 8 KB."""

CANCEL_REASONS: Final = frozenset(
    {"user_cancelled", "enrollment_unavailable", "pin_blocked", "card_unusable"}
)

bp = Blueprint("device", __name__, url_prefix=API_PREFIX)


def transactions() -> TransactionStore:
    """The login transactions of the current app."""
    return TransactionStore(get_store(), ttl=get_settings().login_ttl)


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def response_url(transaction: LoginTransaction) -> str:
    return get_settings().endpoint(f"{API_PREFIX}/transactions/{transaction.handoff_id}/response")


def handoff_url(transaction: LoginTransaction) -> str:
    """The URL a device is handed (``idp card login <this>``)."""
    return get_settings().endpoint(f"{API_PREFIX}/transactions/{transaction.handoff_id}")


def challenge_document(transaction: LoginTransaction, now: float) -> dict[str, Any]:
    """The challenge as the device sees it."""
    ctx = transaction.ctx
    document: dict[str, Any] = {
        "transaction_id": transaction.id,
        "nonce": transaction.nonce,
        "origin": transaction.origin,
        "purpose": transaction.purpose,
        "state": transaction.state,
        "client_name": ctx.client_name,
        "client_name_en": ctx.client_name_en,
        "requested_items": list(ctx.requested_items),
        "expires_at": _iso(transaction.expires_at),
        "expires_in": max(0, int(transaction.expires_at - now)),
        "signature": {
            "format": FORMAT,
            "algorithm": "RS256",
            "signed_data": "to_be_signed (the DER CMS signed attributes in 'sign')"
            if transaction.purpose == "sign"
            else "SHA-256(origin) || SHA-256(nonce '\\n' transaction_id '\\n' purpose)",
            "keys": _keys(transaction.purpose),
        },
        "response_url": response_url(transaction),
    }
    sign = sign_document(transaction)
    if sign is not None:
        document["sign"] = sign
    return document


def _keys(purpose: str) -> list[str]:
    if purpose == "enroll":
        return ["authentication", "signature"]
    if purpose == "sign":
        return ["signature"]
    return ["authentication"]


def _json(document: Any, status: int = 200) -> Response:
    response = Response(json.dumps(document), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def _find(handoff_id: str) -> LoginTransaction:
    transaction = transactions().by_handoff(handoff_id)
    if transaction is None:
        raise DeviceError("transaction_not_found")
    return transaction


def _body() -> Any:
    if request.mimetype != "application/json":
        raise DeviceError("unsupported_media_type")
    length = request.content_length
    if length is not None and length > MAX_BODY:
        raise DeviceError("request_too_large")
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise DeviceError("request_too_large")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DeviceError("invalid_json") from exc


@bp.get("/transactions/<handoff_id>")
def get_challenge(handoff_id: str) -> Response:
    now = time.time()
    transaction = _find(handoff_id)
    state = transaction.status(now)
    if state is TxState.EXPIRED:
        raise DeviceError("transaction_expired")
    if state not in DEVICE_STATES:
        raise DeviceError("transaction_closed")
    if state is TxState.CREATED:
        try:
            transaction = transactions().update(transaction, state=TxState.PICKED_UP)
        except TransactionConflictError:
            transaction = _find(handoff_id)
    return _json(challenge_document(transaction, now))


@bp.post("/pickup")
def pickup() -> Response:
    """A phone presents the QR frame it scanned and takes the transaction (once)."""
    settings = get_settings()
    check_pickup(get_store(), settings, remote_addr=request.remote_addr)
    body = _body()
    content = body.get("qr") if isinstance(body, dict) else None
    now = time.time()
    store = transactions()
    try:
        frame = parse_frame(content, settings.issuer)
        transaction = store.by_qr(frame.token)
        if transaction is None:
            raise DeviceError("qr_unknown")
        check_mac(frame, secret=transaction.qr_key)
        state = transaction.status(now)
        if state is TxState.EXPIRED:
            raise DeviceError("transaction_expired")
        if state in (
            TxState.PICKED_UP,
            TxState.ENROLL_NEEDED,
            TxState.SIGN_NEEDED,
            TxState.CARD_VERIFIED,
        ):
            raise DeviceError("already_picked_up")
        if state is not TxState.CREATED:
            raise DeviceError("transaction_closed")
        check_fresh(frame, start=transaction.qr_start, now=now, window=settings.qr_frame_window)
    except QrError as error:
        raise DeviceError(error.code, str(error)) from error
    try:
        picked = store.pick_up(transaction)
    except TransactionConflictError as exc:
        raise DeviceError("transaction_conflict") from exc
    if picked is None:
        raise DeviceError("already_picked_up")
    log.info("login %s picked up by QR", picked.id[:8])
    ctx = picked.ctx
    return _json(
        {
            "handoff_url": handoff_url(picked),
            "verification_code": picked.verification_code,
            "client_name": ctx.client_name,
            "client_name_en": ctx.client_name_en,
            "origin": picked.origin,
            "challenge": challenge_document(picked, now),
        }
    )


@bp.post("/transactions/<handoff_id>/response")
def post_response(handoff_id: str) -> Response:
    body = _body()
    transaction = _find(handoff_id)
    now = time.time()
    check_open(transaction, now)
    card_response = parse_card_response(body, purpose=transaction.purpose)
    if transaction.status(now) in DEVICE_STATES:
        transactions().announce(transaction, "checking")
    settings = get_settings()
    try:
        trust = get_trust()
    except TrustUnavailableError as exc:
        log.error("trust configuration unavailable: %s", exc)
        raise DeviceError("trust_unavailable") from exc
    result = verify_card_response(
        transactions(),
        transaction,
        card_response,
        trust=trust,
        max_record_age=timedelta(days=settings.enrollment_max_age_days),
        now=now,
    )
    document: dict[str, Any] = {"status": result.outcome}
    if result.outcome in ("enroll_needed", "sign_needed"):
        document["challenge"] = challenge_document(result.transaction, now)
    return _json(document)


@bp.post("/transactions/<handoff_id>/cancel")
def cancel(handoff_id: str) -> Response:
    body = _body()
    transaction = _find(handoff_id)
    now = time.time()
    state = transaction.status(now)
    if state is TxState.EXPIRED:
        raise DeviceError("transaction_expired")
    if state not in DEVICE_STATES:
        raise DeviceError("transaction_closed")
    reason = body.get("reason") if isinstance(body, dict) else None
    if reason not in CANCEL_REASONS:
        raise DeviceError(
            "invalid_token", f"'reason' must be one of {', '.join(sorted(CANCEL_REASONS))}."
        )
    store = transactions()
    try:
        store.update(transaction, state=TxState.FAILED, failure=str(reason))
    except TransactionConflictError as exc:
        raise DeviceError("transaction_conflict") from exc
    store.discard_nonce(transaction)
    return _json({"status": "cancelled"})


@bp.errorhandler(DeviceError)
def device_error(error: DeviceError) -> Response:
    return error_response(error)


@bp.errorhandler(RateLimitedError)
def rate_limited(error: RateLimitedError) -> Response:
    log.warning("device API: %s", error)
    response = error_response(DeviceError("rate_limited"))
    response.headers["Retry-After"] = str(error.retry_after)
    return response


@bp.errorhandler(StoreUnavailableError)
def store_unavailable(error: StoreUnavailableError) -> Response:
    log.error("ephemeral store unavailable: %s", error)
    return error_response(DeviceError("temporarily_unavailable"))


@bp.errorhandler(OperationalError)
@bp.errorhandler(PoolTimeoutError)
def database_unavailable(error: OperationalError | PoolTimeoutError) -> Response:
    log.error("database unavailable: %s", type(error).__name__)
    return error_response(DeviceError("temporarily_unavailable"))


@bp.errorhandler(RequestEntityTooLarge)
def too_large(error: RequestEntityTooLarge) -> Response:
    return error_response(DeviceError("request_too_large"))


_RESOURCE = re.compile(r"transactions/[^/]+(?:/response|/cancel)?|pickup")


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def unknown(rest: str) -> Response:
    """Anything else under /device/v1: a JSON 404, or 405 for a known resource."""
    code = "method_not_allowed" if _RESOURCE.fullmatch(rest) else "not_found"
    raise DeviceError(code)


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Response:
    codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
    if (error.code or 400) >= 500:
        # An unexpected failure (already logged by Flask): not the device's fault.
        return error_response(DeviceError("temporarily_unavailable"))
    code = codes.get(error.code or 400, "invalid_json")
    return error_response(DeviceError(code))
