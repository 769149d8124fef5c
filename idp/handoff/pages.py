"""The browser side of a login: the login page, its status, consent, cancel and retry.

- :func:`start_login` is the login starter ``/authorize`` hands a validated request to
  (:func:`idp.oidc.authorize.register_login_starter`): it creates the transaction, sets the
  browser-binding cookie and redirects (303) to ``/login/<transaction id>``.
- ``GET /login/<id>`` shows who is asking, the items asked for, the desktop-reader command
  ``idp card login <handoff URL>`` and the live status; ``login.js`` polls
  ``GET /login/<id>/status`` and moves on by itself; without JavaScript a Continue button does.
- ``GET /login/<id>/continue``: after the card was verified, the consent page (or straight back
  to the relying party when the remembered consent covers the request).
- ``POST /login/<id>/consent`` (approve / deny), ``/cancel``, ``/retry``: CSRF-protected forms.

Every route answers only the browser holding the binding cookie of that transaction (403
otherwise). Pages are Japanese first; ``?lang=en`` (or ``ui_locales=en`` in the authorization
request) switches to English.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Final

from flask import Blueprint, Response, json, render_template, request, url_for

from idp.account.consent import consent_items, consent_required, remember_consent
from idp.account.texts import pick_locale, text
from idp.extensions import get_settings
from idp.handoff.device_api import handoff_url, transactions
from idp.handoff.transaction import (
    FINAL_STATES,
    MAX_RETRIES,
    BrowserBinding,
    LoginTransaction,
    TransactionConflictError,
    TxState,
    cookie_name,
    new_browser_key,
)
from idp.oidc.authorize import AuthorizationContext, deny_authorization, finish_authorization
from idp.oidc.claims import ACR_CARD_PIN, AMR_CARD_PIN
from idp.storage.residents import get_resident

__all__ = ["POLL_INTERVAL_MS", "bp", "start_login"]

log = logging.getLogger(__name__)

POLL_INTERVAL_MS: Final = 1500

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
    key = _browser_key() or new_browser_key()
    transaction = transactions().create(
        ctx,
        origin=settings.origin,
        browser=BrowserBinding(key),
        locale=pick_locale(None, ctx.ui_locales),
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


class _PageError(Exception):
    def __init__(self, key: str, status: int, locale: str) -> None:
        super().__init__(key)
        self.key = key
        self.status = status
        self.locale = locale


def _locale(transaction: LoginTransaction | None = None) -> str:
    choice = request.args.get("lang")
    if transaction is None:
        return pick_locale(choice)
    if choice:
        return pick_locale(choice, transaction.ctx.ui_locales)
    return transaction.locale


def _owned(transaction_id: str) -> tuple[LoginTransaction, BrowserBinding]:
    transaction = transactions().get(transaction_id)
    if transaction is None:
        raise _PageError("status_expired", 410, _locale())
    key = _browser_key()
    binding = BrowserBinding(key) if key else None
    if binding is None or not binding.owns(transaction):
        raise _PageError("not_your_login", 403, _locale(transaction))
    return transaction, binding


def _translator(locale: str) -> Callable[..., str]:
    def translate(key: str, **values: Any) -> str:
        return text(locale, key, **{k: str(v) for k, v in values.items()})

    return translate


def _page(template: str, locale: str, status: int = 200, **context: Any) -> Response:
    other = "en" if locale == "ja" else "ja"
    transaction = context.get("transaction")
    if isinstance(transaction, LoginTransaction) and request.method == "POST":
        # A page answering a form post: switch language on the login page, not the form URL.
        lang_url = url_for("handoff.login_page", transaction_id=transaction.id, lang=other)
    else:
        lang_url = f"?lang={other}"
    body = render_template(
        template, lang=locale, other_lang=other, lang_url=lang_url, t=_translator(locale), **context
    )
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
    return _page(
        "handoff/message.html",
        locale,
        status,
        message_key=key,
        failure_key=_failure_key(failure),
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
        "certificate_expired",
        "certificate_revoked",
        "certificate_untrusted",
        "certificate_wrong_purpose",
        "signature_invalid",
        "revocation_unavailable",
        "card_mismatch",
        "enrollment_unavailable",
    }
    return f"failure_{code}" if code in known else "failure_default"


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
    ctx = transaction.ctx
    client = ctx.client_name_en if locale == "en" and ctx.client_name_en else ctx.client_name
    return _page(
        "handoff/login.html",
        locale,
        transaction=transaction,
        client=client,
        items=[text(locale, f"item_{item}") for item in ctx.requested_items],
        command=f"idp card login {handoff_url(transaction)}",
        demo_command=f"idp card login --virtual yamada {handoff_url(transaction)}"
        if get_settings().extra.get("DEMO_VIRTUAL_CARD")
        else None,
        status_key=_status_key(state),
        status_url=url_for("handoff.status", transaction_id=transaction.id),
        continue_url=url_for("handoff.continue_login", transaction_id=transaction.id, lang=locale),
        csrf=binding.csrf_token(transaction, get_settings().secret_key),
        poll_ms=POLL_INTERVAL_MS,
        minutes=max(1, (transaction.expires_at - int(now) + 59) // 60),
    )


@bp.get("/login/<transaction_id>/status")
def status(transaction_id: str) -> Response:
    try:
        transaction, _ = _owned(transaction_id)
    except _PageError as error:
        code = "expired" if error.status == 410 else "forbidden"
        body = {"state": TxState.EXPIRED.value if code == "expired" else None, "error": code}
        return _no_store(
            Response(json.dumps(body), status=error.status, mimetype="application/json")
        )
    now = time.time()
    state = transaction.status(now)
    locale = _locale(transaction)
    document = {
        "state": state.value,
        "message": text(locale, _status_key(state)),
        "failure": transaction.failure,
        "expires_in": max(0, transaction.expires_at - int(now)),
        "continue_url": url_for(
            "handoff.continue_login", transaction_id=transaction.id, lang=locale
        ),
    }
    return _no_store(Response(json.dumps(document), mimetype="application/json"))


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
        return _message_page(transaction, binding, "status_failed", locale, status=409)
    ctx = transaction.ctx
    client = ctx.client_name_en if locale == "en" and ctx.client_name_en else ctx.client_name
    verified = resident.verified_at.astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return _page(
        "account/consent.html",
        locale,
        transaction=transaction,
        client=client,
        items=consent_items(resident, ctx.requested_items, locale),
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
        remember_consent(transaction.resident_id, ctx.client_id, ctx.requested_items)
        return _complete(transaction, binding, locale)
    if decision == "deny":
        return _deny(transaction, binding, locale)
    raise _PageError("csrf_failed", 400, locale)


def _deny(transaction: LoginTransaction, binding: BrowserBinding, locale: str) -> Response:
    if not transactions().claim_finish(transaction):
        return _message_page(transaction, binding, "status_finished", locale, status=409)
    _settle(transaction, TxState.CANCELLED)
    return deny_authorization(transaction.ctx, "access_denied", "The resident declined.")


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
