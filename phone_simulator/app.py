"""The phone simulator's screens: a small Flask app shaped like a phone (TEST ONLY).

Configuration (``create_app(config)``, or ``PHONE_*`` environment variables):

==================  ===========================================================================
PROVIDERS           the provider origins this app trusts (a list, or comma-separated); a QR
                    of any other origin is refused on the phone, before any request
PKI                 a :class:`~idp.card.testpki.TestPki` (tests), or
PKI_DIR             the test PKI directory (``var/test-pki``, as the demo writes it)
SECRET_KEY          signs the session cookie (language, chosen card, CSRF); random by default
SESSION_FACTORY     a callable returning a ``requests.Session`` for the device API (tests route
                    it to another provider instance, like a load balancer would)
ANSWER_TIMEOUT      seconds a screen waits for the person before the login is abandoned (300)
SETTLE_SECONDS      seconds an answer waits for the next screen before showing "working" (10)
==================  ===========================================================================

Routes: ``GET /`` (scan: paste a QR frame URL or an app link; ``?qr=`` / ``?link=`` prefill it
and scan at once, which is what clicking the QR on the demo's login page does), ``POST /scan``,
``GET /flow/<id>`` (the current screen), ``POST /flow/<id>/answer``, ``POST
/flow/<id>/cancel``, ``POST /card/replace``. ``?lang=en`` switches to English.

The PIN and the password arrive in a POST body, go to the flow's card thread and from there to
the card; they are never logged, kept or sent to the provider.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from flask import Flask, Response, abort, redirect, render_template, request, session, url_for

from idp.card.testpki import RESIDENTS, TestPki
from phone_simulator.flow import FINAL_STEPS, Phone, PhoneFlow, Step
from phone_simulator.provider import PickupError
from phone_simulator.qr import ScanError
from phone_simulator.texts import error_key, item_label, pick_locale, text
from phone_simulator.wallet import CardBusyError, Wallet

__all__ = ["DEFAULT_RESIDENT", "create_app", "phone_of"]

DEFAULT_RESIDENT: Final = "yamada"
SETTLE_SECONDS: Final = 10.0

_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def _providers(value: Any) -> list[str]:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return [str(item) for item in value or []]


def _pki(config: Mapping[str, Any]) -> TestPki:
    pki = config.get("PKI")
    if isinstance(pki, TestPki):
        return pki
    directory = config.get("PKI_DIR")
    if not directory:
        raise ValueError("the phone simulator needs PKI or PKI_DIR (the test PKI)")
    return TestPki.load(Path(str(directory)))


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The simulator app (see the module docstring for ``config``)."""
    app = Flask(__name__)
    app.config.update(SETTLE_SECONDS=SETTLE_SECONDS)
    app.config.from_prefixed_env("PHONE")
    if config:
        app.config.update(config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secrets.token_urlsafe(32)
    app.config.update(
        SESSION_COOKIE_NAME="phone_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",  # kept when the login page opens the simulator
    )
    providers = _providers(app.config.get("PROVIDERS"))
    if not providers:
        raise ValueError("the phone simulator needs PROVIDERS (the provider origins it trusts)")
    options: dict[str, Any] = {}
    if app.config.get("SESSION_FACTORY") is not None:
        options["session_factory"] = app.config["SESSION_FACTORY"]
    if app.config.get("ANSWER_TIMEOUT") is not None:
        options["answer_timeout"] = float(app.config["ANSWER_TIMEOUT"])
    phone = Phone(Wallet(_pki(app.config)), providers, **options)
    app.extensions["phone"] = phone
    settle = float(app.config["SETTLE_SECONDS"])

    def locale() -> str:
        choice = request.args.get("lang")
        if choice:
            session["lang"] = pick_locale(choice)
        return pick_locale(session.get("lang"))

    def csrf_token() -> str:
        token = session.get("csrf")
        if not isinstance(token, str):
            token = secrets.token_urlsafe(24)
            session["csrf"] = token
        return token

    def check_csrf() -> None:
        expected = session.get("csrf")
        if not isinstance(expected, str) or not secrets.compare_digest(
            expected, request.form.get("csrf", "")
        ):
            abort(400)

    def resident_choice() -> str:
        choice = session.get("resident")
        return choice if isinstance(choice, str) and choice in RESIDENTS else DEFAULT_RESIDENT

    def page(template: str, status: int = 200, **context: Any) -> Response:
        lang = locale()

        def t(key: str, **values: Any) -> str:
            return text(lang, key, **values)

        other = "en" if lang == "ja" else "ja"
        body = render_template(
            template,
            lang=lang,
            t=t,
            error_key=error_key,
            other_lang=other,
            lang_url=url_for(request.endpoint or "home", **(request.view_args or {}), lang=other)
            if request.method == "GET"
            else url_for("home", lang=other),
            csrf=csrf_token(),
            **context,
        )
        return Response(body, status=status, mimetype="text/html")

    def home_page(
        *, status: int = 200, error: str | None = None, detail: str = "", **context: Any
    ) -> Response:
        chosen = resident_choice()
        tries = phone.wallet.tries(chosen) if phone.wallet.loaded(chosen) else None
        context.setdefault("qr", "")
        return page(
            "phone/home.html",
            status,
            residents=list(RESIDENTS.values()),
            chosen=RESIDENTS[chosen],
            tries=tries,
            error=error,
            detail=detail,
            **context,
        )

    @app.get("/")
    def home() -> Response:
        scanned = request.args.get("qr") or request.args.get("link") or ""
        notice = session.pop("notice", None)
        return home_page(qr=scanned[:4096], auto=bool(scanned), notice=notice)

    @app.post("/scan")
    def scan() -> Response:
        check_csrf()
        resident = request.form.get("resident") or resident_choice()
        if resident not in RESIDENTS:
            return home_page(status=400, error="unknown_resident")
        session["resident"] = resident
        content = request.form.get("qr", "")
        try:
            flow = phone.scan(content, resident)
        except ScanError as exc:
            return home_page(status=400, error=exc.code, qr=content[:4096])
        except CardBusyError:
            return home_page(status=409, error="card_busy", qr=content[:4096])
        except PickupError as exc:
            return home_page(
                status=409, error=exc.code, detail=exc.message, retry_after=exc.retry_after
            )
        flow.wait_settled(settle)
        return _see_other(url_for("flow_page", flow_id=flow.id))

    @app.post("/card/replace")
    def replace_card() -> Response:
        check_csrf()
        resident = resident_choice()
        phone.wallet.replace(resident)
        session["notice"] = resident
        return _see_other(url_for("home"))

    def get_flow(flow_id: str) -> PhoneFlow:
        flow = phone.flow(flow_id)
        if flow is None:
            abort(404)
        return flow

    @app.get("/flow/<flow_id>")
    def flow_page(flow_id: str) -> Response:
        flow = get_flow(flow_id)
        screen = flow.screen()
        lang = locale()
        requested = flow.challenge.requested_items if flow.challenge else ()
        return page(
            "phone/flow.html",
            flow=flow,
            screen=screen,
            client=_client_name(flow, lang),
            items=[item_label(lang, item) for item in requested],
            purpose=flow.challenge.purpose if flow.challenge else "login",
            resident=RESIDENTS[flow.resident],
            final=screen.step in FINAL_STEPS,
            steps=Step,
        )

    @app.post("/flow/<flow_id>/answer")
    def answer(flow_id: str) -> Response:
        check_csrf()
        flow = get_flow(flow_id)
        try:
            seq = int(request.form.get("seq", ""))
        except ValueError:
            abort(400)
        value = request.form.get("value", "")
        if len(value) > 64:
            abort(400)
        if flow.answer(seq, value):
            flow.wait_settled(settle)
        return _see_other(url_for("flow_page", flow_id=flow.id))

    @app.post("/flow/<flow_id>/cancel")
    def cancel(flow_id: str) -> Response:
        check_csrf()
        flow = get_flow(flow_id)
        flow.cancel()
        flow.wait_final(settle)
        return _see_other(url_for("flow_page", flow_id=flow.id))

    @app.errorhandler(400)
    @app.errorhandler(404)
    def client_error(error: Any) -> Response:
        status = int(getattr(error, "code", 400) or 400)
        return page("phone/message.html", status, error="default", screen=None)

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    return app


def _client_name(flow: PhoneFlow, lang: str) -> str:
    if lang == "en" and flow.found.client_name_en:
        return flow.found.client_name_en
    return flow.client_name


def _see_other(location: str) -> Response:
    response = redirect(location, 303)
    assert isinstance(response, Response)
    return response


def phone_of(app: Flask) -> Phone:
    """The :class:`Phone` behind ``app`` (tests drive it directly too)."""
    phone = app.extensions["phone"]
    assert isinstance(phone, Phone)
    return phone
