"""idp.i18n: catalogs compile on start, the locale order, the language cookie."""

from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Flask, render_template_string
from flask_babel import gettext

from idp import i18n


def _app(tmp_path: Path) -> Flask:
    app = Flask("idp", instance_path=str(tmp_path / "instance"))
    i18n.init_app(app)

    @app.get("/")
    def index() -> str:
        return render_template_string('{{ _("Sign in with your My Number card") }}')

    @app.get("/remembered")
    def remembered() -> str:
        i18n.use_locale("en")
        return gettext("Sign in with your My Number card")

    return app


def test_catalogs_are_compiled_into_the_instance_directory(tmp_path: Path) -> None:
    _app(tmp_path)
    mo = tmp_path / "instance/translations/idp/ja/LC_MESSAGES/messages.mo"
    assert mo.is_file() and mo.stat().st_size > 0


def test_an_outdated_mo_is_recompiled_and_a_fresh_one_kept(tmp_path: Path) -> None:
    target = tmp_path / "out"
    i18n.compile_catalogs(i18n.CATALOGS, target)
    mo = target / "ja/LC_MESSAGES/messages.mo"
    old = time.time() - 10 * 365 * 24 * 3600
    os.utime(mo, (old, old))
    i18n.compile_catalogs(i18n.CATALOGS, target)
    assert mo.stat().st_mtime > old
    mo.write_bytes(b"kept")
    i18n.compile_catalogs(i18n.CATALOGS, target)
    assert mo.read_bytes() == b"kept"


def test_japanese_by_default_and_accept_language_english(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    assert client.get("/").text == "マイナンバーカードでログイン"
    english = client.get("/", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert english.text == "Sign in with your My Number card"
    assert client.get("/", headers={"Accept-Language": "fr, ja;q=0.5"}).text.startswith("マイ")


def test_lang_switch_wins_and_is_remembered_in_a_cookie(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    response = client.get("/?lang=en", headers={"Accept-Language": "ja"})
    assert response.text == "Sign in with your My Number card"
    assert "myna_lang=en" in response.headers["Set-Cookie"]
    assert client.get("/", headers={"Accept-Language": "ja"}).text.startswith("Sign in")
    assert client.get("/?lang=xx").text.startswith("Sign in")  # unsupported: ignored


def test_the_transaction_locale_beats_cookie_and_browser(tmp_path: Path) -> None:
    client = _app(tmp_path).test_client()
    client.get("/?lang=ja")
    assert client.get("/remembered", headers={"Accept-Language": "ja"}).text.startswith("Sign")
    assert client.get("/remembered?lang=ja").text.startswith("マイ")


def test_negotiate_prefers_ui_locales_over_the_browser(tmp_path: Path) -> None:
    app = _app(tmp_path)
    with app.test_request_context("/", headers={"Accept-Language": "ja"}):
        assert i18n.negotiate(["fr", "en-US"]) == "en"
        assert i18n.negotiate(["fr"]) == "ja"
    with app.test_request_context("/?lang=ja", headers={"Accept-Language": "en"}):
        assert i18n.negotiate(["en"]) == "ja"
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert i18n.negotiate() == "en"


def test_an_unwritable_instance_directory_falls_back_to_a_temporary_one(tmp_path: Path) -> None:
    blocker = tmp_path / "instance"
    blocker.write_text("a file where the instance directory should be")
    target = i18n.compiled_directory(i18n.CATALOGS, str(blocker))
    assert not target.is_relative_to(blocker)
    assert (target / "ja/LC_MESSAGES/messages.mo").is_file()
    app = Flask("idp", instance_path=str(blocker))
    i18n.init_app(app)
    with app.test_request_context("/"):
        assert gettext("Sign in with your My Number card") == "マイナンバーカードでログイン"


def test_the_error_page_switches_language_without_repeating_its_url(tmp_path: Path) -> None:
    """An error page answering a hostile request links to /language/<locale>, which goes back to
    the referring page of this site with ``lang`` (and never to another site)."""
    client = _app(tmp_path).test_client()
    page = "/authorize?client_id=x&redirect_uri=https%3A%2F%2Fattacker.example%2Fcb"
    back = client.get("/language/en", headers={"Referer": f"http://localhost{page}"})
    assert back.status_code == 303
    assert back.headers["Location"] == page.replace("%2Fcb", "%2Fcb&lang=en")
    assert "myna_lang=en" in back.headers["Set-Cookie"]
    away = client.get("/language/ja", headers={"Referer": "https://evil.example/x?y=1"})
    assert (away.status_code, away.headers["Location"]) == (303, "/")
    assert client.get("/language/fr").status_code == 404
