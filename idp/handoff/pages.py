"""The browser side of a login: the login page, its status, consent, cancel and retry.

- :func:`start_login` is the login starter ``/authorize`` hands a validated request to
  (:func:`idp.oidc.authorize.register_login_starter`): it creates the transaction, sets the
  browser-binding cookie and redirects (303) to ``/login/<transaction id>``.
- ``GET /login/<id>`` shows who is asking, the items asked for, the rotating QR code for the
  phone with the verification code, the same-device app link, the desktop-reader command
  ``idp card login <handoff URL>`` and the live status. ``login.js`` fetches a new QR frame
  every second from ``GET /login/<id>/qr``, follows ``GET /login/<id>/events`` (server-sent
  events, :mod:`idp.handoff.events`) and falls back to polling ``GET /login/<id>/status``; it
  moves on by itself. Without JavaScript a Continue button does.
- ``GET /m/<qr token>``: the page a phone's camera opens from the QR code (no app yet): what to
  do, and the app link. It reads nothing from Redis and picks nothing up.
- ``GET /login/<id>/continue``: after the card was verified, the consent page (or straight back
  to the relying party when the remembered consent covers the request).
- ``POST /login/<id>/consent`` (approve / deny), ``/cancel``, ``/retry``: CSRF-protected forms.
- ``POST /login/<id>/extend``: more time for the resident (WCAG 2.2.1; bounded, see
  :meth:`idp.handoff.transaction.TransactionStore.extend`). JSON for ``login.js`` (which
  announces the coming expiry a minute ahead), or back to the login page for a plain form post.

Every ``/login`` route answers only the browser holding the binding cookie of that transaction
(403 otherwise). Creating a transaction is rate limited per client and per address
(:mod:`idp.handoff.ratelimit`: 429 with ``Retry-After``). Pages are Japanese first;
``?lang=en`` (or ``ui_locales=en`` in the authorization request) switches to English.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import quote, urlencode

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    json,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from markupsafe import Markup

from idp.account.consent import consent_items, consent_required, remember_consent
from idp.account.human_errors import problem_for, problem_response
from idp.account.portal_locks import lock_resident
from idp.account.texts import MESSAGES, text
from idp.extensions import get_settings, get_store
from idp.handoff.device_api import handoff_url, transactions
from idp.handoff.events import EventHub, event_stream
from idp.handoff.qr import QrError, frame_at, parse_frame
from idp.handoff.qr_image import qr_svg
from idp.handoff.ratelimit import RateLimitedError, check_login_creation
from idp.handoff.transaction import (
    FINAL_STATES,
    MAX_EXTENSIONS,
    MAX_RETRIES,
    BrowserBinding,
    ExtensionRefusedError,
    LoginTransaction,
    TransactionConflictError,
    TxState,
    cookie_name,
    new_browser_key,
)
from idp.i18n import explicit_choice, format_moment, negotiate, use_locale
from idp.oidc.authorize import AuthorizationContext, deny_authorization, finish_authorization
from idp.oidc.claims import ACR_CARD_PIN, AMR_CARD_PIN
from idp.oidc.sign_transactions import SignTransactionStore
from idp.storage.residents import get_resident

__all__ = ["APP_LINK_SCHEME", "POLL_INTERVAL_MS", "QR_REFRESH_MS", "bp", "event_hub", "start_login"]

log = logging.getLogger(__name__)

#: Failures after which the relying party is told ``certificate_revoked`` (access_denied).
REVOKED_FAILURES = frozenset({"certificate_revoked", "sign_certificate_revoked"})

POLL_INTERVAL_MS: Final = 1500
QR_REFRESH_MS: Final = 1000
APP_LINK_SCHEME: Final = "myna-idp"
_HUB: Final = "myna.events"

bp = Blueprint("handoff", __name__)

_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def redirect(location: str, code: int = 302) -> Response:
    """A redirect that no cache keeps."""
    response = Response("", status=code)
    response.headers["Location"] = location
    response.headers["Cache-Control"] = "no-store"
    return response


# -- the login starter --------------------------------------------------------------------------


def _browser_key() -> str | None:
    value = request.cookies.get(cookie_name(get_settings().issuer))
    if value and 32 <= len(value) <= 64 and all(c.isalnum() or c in "-_" for c in value):
        return value
    return None


def start_login(ctx: AuthorizationContext) -> Response:
    """Create the login transaction for ``ctx``, bind it to this browser, show the login page."""
    settings = get_settings()
    locale = negotiate(ctx.ui_locales)
    try:
        check_login_creation(
            get_store(), settings, client_id=ctx.client_id, remote_addr=request.remote_addr
        )
    except RateLimitedError as error:
        return _rate_limited(error, locale)
    key = _browser_key() or new_browser_key()
    transaction = transactions().create(
        ctx,
        origin=settings.origin,
        browser=BrowserBinding(key),
        locale=locale,
    )
    response = redirect(url_for("handoff.login_page", transaction_id=transaction.id), 303)
    _set_cookie(response, key)
    response.headers["Cache-Control"] = "no-store"
    return response


def _set_cookie(response: Response, key: str) -> None:
    issuer = get_settings().issuer
    response.set_cookie(
        cookie_name(issuer),
        key,
        path="/",
        secure=issuer.startswith("https://"),
        httponly=True,
        samesite="Lax",
    )


# -- helpers ------------------------------------------------------------------------------------


def event_hub(app: Flask | None = None) -> EventHub:
    """The app's login event hub (one pattern subscription per process, started on demand)."""
    application: Flask = app or current_app._get_current_object()  # type: ignore[attr-defined]
    hub = application.extensions.get(_HUB)
    if hub is None:
        hub = application.extensions.setdefault(_HUB, EventHub(lambda: get_store(application)))
    assert isinstance(hub, EventHub)
    return hub


def _rate_limited(error: RateLimitedError, locale: str) -> Response:
    log.warning("login refused: %s", error)
    response = _message_page(None, None, "rate_limited", locale, status=429)
    response.headers["Retry-After"] = str(error.retry_after)
    response.headers["Cache-Control"] = "no-store"
    return response


def app_link(frame_url: str, return_url: str | None = None) -> str:
    """``myna-idp://handoff?qr=<frame URL>[&return=<page URL>]`` (both percent-encoded)."""
    link = f"{APP_LINK_SCHEME}://handoff?qr={quote(frame_url, safe='')}"
    if return_url is not None:
        link += f"&return={quote(return_url, safe='')}"
    return link


def _page_url(transaction: LoginTransaction) -> str:
    return get_settings().endpoint(f"/login/{transaction.id}")


def _frame_document(transaction: LoginTransaction, locale: str, now: float) -> dict[str, Any]:
    """The current QR frame: content, t, SVG markup, verification code, same-device link."""
    settings = get_settings()
    transaction = transactions().mark_qr_shown(transaction, now)
    assert transaction.qr_start is not None
    frame = frame_at(transaction.qr_token, transaction.qr_key, transaction.qr_start, now)
    content = frame.url(settings.issuer)
    return {
        "content": content,
        "t": frame.t,
        "svg": qr_svg(
            content,
            title=text(locale, "qr_alt", code=transaction.verification_code),
            mask=frame.t % 8,
        ),
        "verification_code": transaction.verification_code,
        "app_link": app_link(content, _page_url(transaction)),
    }


def _describe(locale: str) -> Callable[[str, str | None], str]:
    def describe(state: str, reason: str | None) -> str:
        if state == TxState.FAILED.value:
            return text(locale, _failure_key(reason) or "status_failed")
        key = f"status_{state}"
        return text(locale, key if key in MESSAGES else "status_created")

    return describe


class _PageError(Exception):
    def __init__(self, key: str, status: int, locale: str) -> None:
        super().__init__(key)
        self.key = key
        self.status = status
        self.locale = locale


def _locale(transaction: LoginTransaction | None = None) -> str:
    choice = explicit_choice()
    if transaction is None:
        return choice or negotiate()
    return choice or transaction.locale


def _owned(transaction_id: str) -> tuple[LoginTransaction, BrowserBinding]:
    transaction = transactions().get(transaction_id)
    if transaction is None:
        raise _PageError("status_expired", 410, _locale())
    key = _browser_key()
    binding = BrowserBinding(key) if key else None
    if binding is None or not binding.owns(transaction):
        raise _PageError("not_your_login", 403, _locale(transaction))
    return transaction, binding


def _page(template: str, locale: str, status: int = 200, **context: Any) -> Response:
    other = "en" if locale == "ja" else "ja"
    transaction = context.get("transaction")
    lang_url = context.pop("lang_url", None)
    if lang_url is not None:
        lang_url = f"{lang_url}lang={other}"
    elif isinstance(transaction, LoginTransaction) and request.method == "POST":
        # A page answering a form post: switch language on the login page, not the form URL.
        lang_url = url_for("handoff.login_page", transaction_id=transaction.id, lang=other)
    else:
        lang_url = f"?lang={other}"
    use_locale(locale)
    body = render_template(template, lang=locale, other_lang=other, lang_url=lang_url, **context)
    return Response(body, status=status, mimetype="text/html")


def _message_page(
    transaction: LoginTransaction | None,
    binding: BrowserBinding | None,
    key: str,
    locale: str,
    *,
    status: int = 200,
) -> Response:
    can_retry = (
        transaction is not None
        and binding is not None
        and transaction.status(time.time()) in (TxState.FAILED, TxState.EXPIRED)
        and transaction.retries < MAX_RETRIES
    )
    failure = transaction.failure if transaction is not None else None
    problem = problem_for(failure or key)  # the human error page (idp.account.human_errors)
    return _page(
        "account/problem.html" if problem else "handoff/message.html",
        locale,
        status,
        problem=problem,
        message_key=key,
        message=text(locale, key),
        failure_key=_failure_key(failure),
        failure_message=text(locale, _failure_key(failure) or "failure_default"),
        failure_code=failure,
        transaction=transaction,
        csrf=binding.csrf_token(transaction, get_settings().secret_key)
        if transaction is not None and binding is not None
        else None,
        can_retry=can_retry,
        can_cancel=transaction is not None
        and binding is not None
        and TxState(transaction.state) not in (TxState.FINISHED, TxState.CANCELLED),
    )


def _failure_key(code: str | None) -> str | None:
    if code is None:
        return None
    known = {
        "user_cancelled",
        "pin_blocked",
        "card_unusable",
        "certificate_expired",
        "certificate_revoked",
        "certificate_untrusted",
        "certificate_wrong_purpose",
        "signature_invalid",
        "revocation_unavailable",
        "card_mismatch",
        "enrollment_unavailable",
        "sign_certificate_revoked",
        "sign_transaction_unavailable",
        "signer_mismatch",
    }
    # The typed revocation refusals (idp.card.validation.errors) read like their parent to
    # the resident: the status could not be checked; the code stays in logs and metrics.
    code = _SAME_TEXT_AS.get(code, code)
    return f"failure_{code}" if code in known else "failure_default"


_SAME_TEXT_AS: Final = {
    "revocation_stale": "revocation_unavailable",
    "ocsp_response_invalid": "revocation_unavailable",
}


def _status_key(state: TxState) -> str:
    return f"status_{state.value}"


def _check_csrf(transaction: LoginTransaction, binding: BrowserBinding) -> None:
    token = request.form.get("csrf", "")
    if not binding.check_csrf(transaction, get_settings().secret_key, token):
        raise _PageError("csrf_failed", 400, _locale(transaction))


# -- pages --------------------------------------------------------------------------------------


@bp.get("/login/<transaction_id>")
def login_page(transaction_id: str) -> Response:
    transaction, binding = _owned(transaction_id)
    locale = _locale(transaction)
    if request.args.get("lang") and locale != transaction.locale:
        try:
            transaction = transactions().update(transaction, locale=locale)
        except TransactionConflictError:
            pass
    now = time.time()
    state = transaction.status(now)
    if state in FINAL_STATES:
        return _message_page(transaction, binding, _status_key(state), locale)
    if state is TxState.CARD_VERIFIED:
        # Back from the app on the same device: straight on.
        return redirect(
            url_for("handoff.continue_login", transaction_id=transaction.id, lang=locale)
        )
    frame = _frame_document(transaction, locale, now) if state is TxState.CREATED else None
    ctx = transaction.ctx
    client = ctx.client_name_en if locale == "en" and ctx.client_name_en else ctx.client_name
    return _page(
        "handoff/login.html",
        locale,
        transaction=transaction,
        frame=frame,
        qr_markup=Markup(frame["svg"]) if frame else None,  # noqa: S704 - our own SVG
        verification_code=transaction.verification_code,
        qr_url=url_for("handoff.qr", transaction_id=transaction.id, lang=locale),
        events_url=url_for("handoff.events", transaction_id=transaction.id, lang=locale),
        qr_refresh_ms=QR_REFRESH_MS,
        client=client,
        client_logo_uri=ctx.client_logo_uri,
        items=[text(locale, f"item_{item}") for item in ctx.requested_items],
        command=f"idp card login {handoff_url(transaction)}",
        demo_command=f"idp card login --virtual yamada {handoff_url(transaction)}"
        if get_settings().extra.get("DEMO_VIRTUAL_CARD")
        else None,
        status_message=_describe(locale)(state.value, transaction.failure),
        status_url=url_for("handoff.status", transaction_id=transaction.id),
        continue_url=url_for("handoff.continue_login", transaction_id=transaction.id, lang=locale),
        csrf=binding.csrf_token(transaction, get_settings().secret_key),
        poll_ms=POLL_INTERVAL_MS,
        minutes=_minutes(transaction.expires_at - int(now)),
        expires_in=max(0, transaction.expires_at - int(now)),
        can_extend=transaction.extensions < MAX_EXTENSIONS,
        extensions_left=MAX_EXTENSIONS - transaction.extensions,
        extend_url=url_for("handoff.extend", transaction_id=transaction.id, lang=locale),
    )


@bp.get("/login/<transaction_id>/status")
def status(transaction_id: str) -> Response:
    try:
        transaction, _ = _owned(transaction_id)
    except _PageError as error:
        return _json_refusal(error)
    now = time.time()
    state = transaction.status(now)
    locale = _locale(transaction)
    document = {
        "state": state.value,
        "message": _describe(locale)(state.value, transaction.failure),
        "failure": transaction.failure,
        "expires_in": max(0, transaction.expires_at - int(now)),
        "continue_url": url_for(
            "handoff.continue_login", transaction_id=transaction.id, lang=locale
        ),
    }
    return _no_store(Response(json.dumps(document), mimetype="application/json"))


def _json_refusal(error: _PageError) -> Response:
    code = "expired" if error.status == 410 else "forbidden"
    body = {"state": TxState.EXPIRED.value if code == "expired" else None, "error": code}
    return _no_store(Response(json.dumps(body), status=error.status, mimetype="application/json"))


@bp.get("/login/<transaction_id>/qr")
def qr(transaction_id: str) -> Response:
    """The current QR frame (JSON), only for the owning browser and only while not picked up."""
    try:
        transaction, _ = _owned(transaction_id)
    except _PageError as error:
        return _json_refusal(error)
    now = time.time()
    state = transaction.status(now)
    if state is not TxState.CREATED:
        body = {"state": state.value, "error": "not_waiting"}
        status_code = 410 if state is TxState.EXPIRED else 409
        return _no_store(
            Response(json.dumps(body), status=status_code, mimetype="application/json")
        )
    document = _frame_document(transaction, _locale(transaction), now)
    return _no_store(Response(json.dumps(document), mimetype="application/json"))


@bp.get("/login/<transaction_id>/events")
def events(transaction_id: str) -> Response:
    """Server-sent events with the transaction's state (see :mod:`idp.handoff.events`)."""
    try:
        transaction, _ = _owned(transaction_id)
    except _PageError as error:
        return _json_refusal(error)
    locale = _locale(transaction)
    settings = get_settings()
    hub = event_hub()
    if settings.events_max_streams and hub.waiting >= settings.events_max_streams:
        # Every stream holds a server thread: past the cap the page polls /status instead,
        # so the threads left keep answering everyone's requests.
        log.warning("event streams at the cap (%d); page %s polls", hub.waiting, transaction.id[:8])
        busy = Response(json.dumps({"error": "busy"}), status=503, mimetype="application/json")
        busy.headers["Retry-After"] = str(settings.events_heartbeat)
        return _no_store(busy)
    stream = event_stream(
        hub,
        transactions(),
        transaction.id,
        heartbeat=settings.events_heartbeat,
        describe=_describe(locale),
    )
    response = Response(stream_with_context(stream), mimetype="text/event-stream")
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return _no_store(response)


@bp.get("/m/<qr_token>")
def phone_landing(qr_token: str) -> Response:
    """Where a phone camera lands from the QR code: open the app (nothing is picked up here)."""
    settings = get_settings()
    locale = _locale()
    query = urlencode([(name, request.args.get(name, "")) for name in ("t", "c")])
    content = settings.endpoint(f"/m/{qr_token}") + "?" + query
    try:
        parse_frame(content, settings.issuer)
    except QrError:
        return _page("handoff/phone.html", locale, 400, valid=False, app_link=None)
    return _page(
        "handoff/phone.html",
        locale,
        valid=True,
        app_link=app_link(content),
        lang_url=f"?{query}&",
    )


@bp.get("/login/<transaction_id>/continue")
def continue_login(transaction_id: str) -> Response:
    transaction, binding = _owned(transaction_id)
    locale = _locale(transaction)
    state = transaction.status(time.time())
    if state in FINAL_STATES:
        return _message_page(transaction, binding, _status_key(state), locale)
    if state is not TxState.CARD_VERIFIED:
        return redirect(url_for("handoff.login_page", transaction_id=transaction.id, lang=locale))
    ctx = transaction.ctx
    resident_id = transaction.resident_id
    assert resident_id is not None
    if consent_required(resident_id, ctx.client_id, ctx.requested_items, ctx.prompt):
        return _consent_page(transaction, binding, locale)
    return _complete(transaction, binding, locale)


def _consent_page(transaction: LoginTransaction, binding: BrowserBinding, locale: str) -> Response:
    resident = get_resident(transaction.resident_id or "")
    if resident is None:
        return problem_response("account_deleted", locale=locale)
    ctx = transaction.ctx
    client = ctx.client_name_en if locale == "en" and ctx.client_name_en else ctx.client_name
    verified = format_moment(resident.verified_at, locale)
    return _page(
        "account/consent.html",
        locale,
        transaction=transaction,
        client=client,
        items=consent_items(
            resident,
            ctx.requested_items,
            locale,
            sign_text=transaction.sign["text"] if transaction.sign else None,
        ),
        verified_at=verified,
        action=url_for("handoff.consent", transaction_id=transaction.id, lang=locale),
        csrf=binding.csrf_token(transaction, get_settings().secret_key),
    )


def _complete(transaction: LoginTransaction, binding: BrowserBinding, locale: str) -> Response:
    store = transactions()
    if not store.claim_finish(transaction):
        return _message_page(transaction, binding, "status_finished", locale, status=409)
    ctx = transaction.ctx
    assert transaction.resident_id is not None and transaction.auth_time is not None
    if lock_resident(transaction.resident_id) is None:  # deleted meanwhile: delete wins
        _settle(transaction, TxState.CANCELLED)
        return problem_response("account_deleted", locale=locale)
    if ctx.sign_transaction_id is not None:
        # The staged signature becomes fetchable once the resident consented.
        SignTransactionStore(get_store()).release(ctx.sign_transaction_id)
    response = finish_authorization(
        ctx,
        resident_id=transaction.resident_id,
        granted_scopes=ctx.scopes,
        auth_time=transaction.auth_time,
        amr=AMR_CARD_PIN,
        acr=ACR_CARD_PIN,
    )
    _settle(transaction, TxState.FINISHED)
    return response


def _settle(transaction: LoginTransaction, state: TxState) -> None:
    store = transactions()
    try:
        store.update(transaction, state=state)
    except TransactionConflictError:
        log.warning("login %s changed while settling it", transaction.id[:8])
    store.discard_nonce(transaction)


@bp.post("/login/<transaction_id>/consent")
def consent(transaction_id: str) -> Response:
    transaction, binding = _owned(transaction_id)
    locale = _locale(transaction)
    _check_csrf(transaction, binding)
    state = transaction.status(time.time())
    if state is not TxState.CARD_VERIFIED:
        return _message_page(transaction, binding, _status_key(state), locale, status=409)
    decision = request.form.get("decision")
    ctx = transaction.ctx
    if decision == "approve":
        assert transaction.resident_id is not None
        if lock_resident(transaction.resident_id) is None:  # deleted meanwhile: delete wins
            return _complete(transaction, binding, locale)
        remember_consent(transaction.resident_id, ctx.client_id, ctx.requested_items)
        return _complete(transaction, binding, locale)
    if decision == "deny":
        return _deny(transaction, binding, locale)
    raise _PageError("csrf_failed", 400, locale)


def _deny(transaction: LoginTransaction, binding: BrowserBinding, locale: str) -> Response:
    if not transactions().claim_finish(transaction):
        return _message_page(transaction, binding, "status_finished", locale, status=409)
    _settle(transaction, TxState.CANCELLED)
    ctx = transaction.ctx
    if ctx.sign_transaction_id is not None:
        SignTransactionStore(get_store()).discard(ctx.sign_transaction_id)
    if transaction.failure in REVOKED_FAILURES:
        return deny_authorization(ctx, "access_denied", "certificate_revoked")
    return deny_authorization(ctx, "access_denied", "The resident declined.")


@bp.post("/login/<transaction_id>/cancel")
def cancel(transaction_id: str) -> Response:
    transaction, binding = _owned(transaction_id)
    locale = _locale(transaction)
    _check_csrf(transaction, binding)
    if TxState(transaction.state) in (TxState.FINISHED, TxState.CANCELLED):
        return _message_page(transaction, binding, _status_key(TxState(transaction.state)), locale)
    return _deny(transaction, binding, locale)


@bp.post("/login/<transaction_id>/retry")
def retry(transaction_id: str) -> Response:
    transaction, binding = _owned(transaction_id)
    locale = _locale(transaction)
    _check_csrf(transaction, binding)
    state = transaction.status(time.time())
    if state not in (TxState.FAILED, TxState.EXPIRED) or transaction.retries >= MAX_RETRIES:
        return _message_page(transaction, binding, _status_key(state), locale, status=409)
    try:
        check_login_creation(
            get_store(),
            get_settings(),
            client_id=transaction.ctx.client_id,
            remote_addr=request.remote_addr,
        )
    except RateLimitedError as error:
        return _rate_limited(error, locale)
    store = transactions()
    if not store.claim_finish(transaction):
        return _message_page(transaction, binding, "status_finished", locale, status=409)
    fresh = store.create(
        transaction.ctx,
        origin=get_settings().origin,
        browser=binding,
        locale=locale,
        retries=transaction.retries + 1,
    )
    return redirect(url_for("handoff.login_page", transaction_id=fresh.id), 303)


@bp.post("/login/<transaction_id>/extend")
def extend(transaction_id: str) -> Response:
    """Extend the login: JSON ``{expires_in, extensions_left, message, note}`` for ``login.js``
    (``Accept: application/json``), a 303 back to the login page for a plain form post.
    Refusals: 403 (not this browser), 400 (CSRF), 410 (expired), 409 (``limit`` /
    ``finished``), each with a ``message`` to show."""
    wants_json = request.accept_mimetypes.best == "application/json"
    try:
        transaction, binding = _owned(transaction_id)
        _check_csrf(transaction, binding)
    except _PageError as error:
        if not wants_json:
            raise
        return _extend_refusal(error.key, error.status, error.locale)
    locale = _locale(transaction)
    now = time.time()
    try:
        extended = transactions().extend(transaction, now)
    except ExtensionRefusedError as refused:
        status_code = 410 if refused.reason == "expired" else 409
        key = {"expired": "status_expired", "finished": _status_key(transaction.status(now))}
        message_key = key.get(refused.reason, "extend_limit")
        if not wants_json:
            return _message_page(transaction, binding, message_key, locale, status=status_code)
        return _extend_refusal(message_key, status_code, locale, refused.reason)
    log.info("login %s extended (%d)", extended.id[:8], extended.extensions)
    if not wants_json:
        return redirect(url_for("handoff.login_page", transaction_id=extended.id, lang=locale), 303)
    expires_in = max(0, extended.expires_at - int(now))
    document = {
        "expires_in": expires_in,
        "extensions_left": MAX_EXTENSIONS - extended.extensions,
        "message": text(locale, "extended", minutes=_minutes(expires_in)),
        "note": text(locale, "expires_note", minutes=_minutes(expires_in)),
    }
    return _no_store(Response(json.dumps(document), mimetype="application/json"))


def _minutes(seconds: int) -> int:
    return max(1, (seconds + 59) // 60)


def _extend_refusal(key: str, status_code: int, locale: str, reason: str | None = None) -> Response:
    codes = {403: "forbidden", 400: "csrf_failed", 410: "expired"}
    body = {"error": reason or codes.get(status_code, "refused"), "message": text(locale, key)}
    return _no_store(Response(json.dumps(body), status=status_code, mimetype="application/json"))


# -- errors and headers -------------------------------------------------------------------------


@bp.errorhandler(_PageError)
def page_error(error: _PageError) -> Response:
    return _message_page(None, None, error.key, error.locale, status=error.status)


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.after_request
def security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    return response
