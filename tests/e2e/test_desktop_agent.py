"""``idp card login <URL>`` over real HTTP: in process with ``--virtual``, and end to end through
real pcscd + vpcd + pyscard with the card served by the vpcd bridge (marker ``pcsc``). The
PIN prompts are answered on stdin; the PIN never appears in the output."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from login_support import Browser, LiveServer, LoginPki, Started, dispose, make_login_app
from provider_support import RelyingParty, callback_params

from idp.card.errors import WrongPinError
from idp.card.jpki import JpkiClient
from idp.card.pin import PinKind
from idp.card.testpki import TestPki
from idp.card.transport import InProcessTransport
from idp.cli import main

Insert = Callable[..., Any]  # the ``emulated_card`` factory (tests/conftest.py)
VPCD_READER = "Virtual PCD 00 00"
AUTH_PIN_EF = 0x0018


@pytest.fixture
def live_rp(live: LiveServer) -> RelyingParty:
    return RelyingParty(live.app)


def agent(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["card", "login", *args], input=input)


def start(rp: RelyingParty, **overrides: str | None) -> tuple[Browser, Started, Any]:
    browser = Browser(rp)
    request = rp.authorization_request(**overrides)
    return browser, browser.start(request), request


def finish(
    live: LiveServer, rp: RelyingParty, browser: Browser, started: Started, request: Any
) -> dict[str, Any]:
    """Consent in the browser, redeem the code, read userinfo."""
    response = browser.proceed(started)
    if response.status_code == 200:
        response = browser.consent(started, response.get_data(as_text=True))
    assert response.status_code == 302, response.get_data(as_text=True)
    params = callback_params(response.headers["Location"])
    assertion = rp.assertion(aud=live.url + "/token")
    token = rp.token_request(params["code"][0], request.verifier, assertion=assertion).get_json()
    info = rp.userinfo(token["access_token"]).get_json()
    assert isinstance(info, dict)
    return info


def assert_no_secret(result: Result, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.output
        assert secret not in result.stderr


# -- --virtual (no reader): the demo's path ------------------------------------------------------


def test_virtual_card_signs_in_over_http(
    live: LiveServer, live_rp: RelyingParty, login_pki: LoginPki
) -> None:
    browser, started, request = start(live_rp)
    assert started.handoff_url.startswith(live.url + "/device/v1/transactions/")
    result = agent(
        started.handoff_url,
        "--virtual",
        "yamada",
        "--pki-dir",
        str(login_pki.directory),
        input="\n1234\nABC123\n",
    )
    assert result.exit_code == 0, result.output
    assert "加賀市 電子申請" in result.stderr and live.url in result.stderr
    assert "Signed in (card registered)" in result.stdout
    assert_no_secret(result, "1234", "ABC123")
    info = finish(live, live_rp, browser, started, request)
    assert info["name"] == "山田　太郎"


def test_declining_the_request_cancels_the_login(
    live: LiveServer, live_rp: RelyingParty, login_pki: LoginPki
) -> None:
    browser, started, _ = start(live_rp)
    result = agent(
        started.handoff_url,
        "--virtual",
        "yamada",
        "--pki-dir",
        str(login_pki.directory),
        input="n\n",
    )
    assert result.exit_code == 11, result.output
    status = browser.status(started)
    assert (status["state"], status["failure"]) == ("failed", "user_cancelled")


def test_unknown_handoff_is_a_clear_refusal(live: LiveServer, login_pki: LoginPki) -> None:
    result = agent(
        live.url + "/device/v1/transactions/" + "A" * 43,
        "--virtual",
        "yamada",
        "--pki-dir",
        str(login_pki.directory),
    )
    assert result.exit_code == 9, result.output
    assert "transaction_not_found" in result.stderr
    assert "Traceback" not in result.output


def test_unreachable_provider(login_pki: LoginPki) -> None:
    result = agent("http://127.0.0.1:1/device/v1/transactions/" + "A" * 43, "--virtual", "yamada")
    assert result.exit_code == 10, result.output
    assert "cannot reach the provider" in result.stderr


def test_not_a_url(login_pki: LoginPki) -> None:
    result = agent("file:///etc/passwd", "--virtual", "yamada")
    assert result.exit_code == 10 and "http(s) URL" in result.stderr


def test_card_from_an_untrusted_pki_is_refused(
    live: LiveServer, live_rp: RelyingParty, tmp_path: Path
) -> None:
    browser, started, _ = start(live_rp)
    rogue = tmp_path / "rogue-pki"
    TestPki.generate().save(rogue)
    result = agent(
        started.handoff_url, "--virtual", "yamada", "--pki-dir", str(rogue), input="\n1234\n"
    )
    assert result.exit_code == 9, result.output
    assert "certificate_untrusted" in result.stderr
    assert browser.status(started)["failure"] == "certificate_untrusted"


# -- the real card path: pcscd + vpcd + pyscard ---------------------------------------------


@pytest.fixture
def pcsc_live(
    db_url: str, redis_url: str, emulation_pki: TestPki, tmp_path: Path
) -> Iterator[LiveServer]:
    trusted = LoginPki.create(tmp_path / "emulation-pki", emulation_pki)
    server = LiveServer(lambda issuer: make_login_app(db_url, redis_url, trusted, ISSUER=issuer))
    yield server
    server.stop()
    dispose(server.app)


@pytest.mark.pcsc
def test_desktop_reader_login_end_to_end(pcsc_live: LiveServer, emulated_card: Insert) -> None:
    emulated = emulated_card("suzuki")
    rp = RelyingParty(pcsc_live.app)
    browser, started, request = start(rp)
    result = agent(started.handoff_url, "--reader", VPCD_READER, input="\n1234\nABC123\n")
    assert result.exit_code == 0, result.output
    assert "Signed in (card registered)" in result.stdout
    assert "[3 tries left]" in result.stderr and "[5 tries left]" in result.stderr
    assert_no_secret(result, "1234", "ABC123")
    info = finish(pcsc_live, rp, browser, started, request)
    assert info["name"] == "鈴木　花子" and info["gender"] == "female"
    # second login (prompt=login: the provider session would answer): PIN1 only
    browser, started, request = start(rp, prompt="login")
    result = agent(started.handoff_url, "--reader", VPCD_READER, input="\n1234\n")
    assert result.exit_code == 0, result.output
    assert "card registered" not in result.stdout
    assert "signature password" not in result.stderr
    assert finish(pcsc_live, rp, browser, started, request)["sub"] == info["sub"]
    assert emulated.card.pin_tries(AUTH_PIN_EF) == 3


@pytest.mark.pcsc
def test_desktop_reader_wrong_pin_then_right(pcsc_live: LiveServer, emulated_card: Insert) -> None:
    emulated = emulated_card("yamada")
    rp = RelyingParty(pcsc_live.app)
    browser, started, _ = start(rp)
    result = agent(started.handoff_url, "--reader", VPCD_READER, input="\n9999\n1234\nABC123\n")
    assert result.exit_code == 0, result.output
    assert "Wrong PIN: 2 tries left" in result.stderr
    assert "[2 tries left]" in result.stderr
    assert_no_secret(result, "9999", "1234", "ABC123")
    assert browser.status(started)["state"] == "card_verified"
    assert emulated.card.pin_tries(AUTH_PIN_EF) == 3  # a correct PIN resets the counter


@pytest.mark.pcsc
def test_desktop_reader_asks_before_the_last_try(
    pcsc_live: LiveServer, emulated_card: Insert
) -> None:
    emulated = emulated_card("yamada")
    direct = JpkiClient(InProcessTransport(emulated.card))
    for _ in range(2):
        with pytest.raises(WrongPinError):
            direct.verify_pin(PinKind.AUTH, "0000")
    rp = RelyingParty(pcsc_live.app)
    browser, started, _ = start(rp)
    result = agent(started.handoff_url, "--reader", VPCD_READER, input="\nn\n")
    assert result.exit_code == 11, result.output
    assert "Only ONE try is left" in result.stderr
    assert emulated.card.pin_tries(AUTH_PIN_EF) == 1
    assert browser.status(started)["failure"] == "user_cancelled"
    # confirmed: the last try is used, and the right PIN goes through
    browser, started, _ = start(rp)
    result = agent(started.handoff_url, "--reader", VPCD_READER, input="\ny\n1234\nABC123\n")
    assert result.exit_code == 0, result.output
    assert emulated.card.pin_tries(AUTH_PIN_EF) == 3


@pytest.mark.pcsc
def test_desktop_reader_blocked_pin(pcsc_live: LiveServer, emulated_card: Insert) -> None:
    emulated = emulated_card("yamada")
    direct = JpkiClient(InProcessTransport(emulated.card))
    for _ in range(3):
        try:
            direct.verify_pin(PinKind.AUTH, "0000")
        except Exception:  # noqa: BLE001 - WrongPinError twice, then PinBlockedError
            pass
    rp = RelyingParty(pcsc_live.app)
    browser, started, _ = start(rp)
    result = agent(started.handoff_url, "--reader", VPCD_READER, input="\n")
    assert result.exit_code == 7, result.output
    assert "blocked" in result.stderr
    assert browser.status(started)["failure"] == "pin_blocked"


@pytest.mark.pcsc
def test_desktop_reader_without_a_card(pcsc_live: LiveServer, emulated_card: Insert) -> None:
    emulated_card("yamada").remove()
    rp = RelyingParty(pcsc_live.app)
    _, started, _ = start(rp)
    result = agent(started.handoff_url, "--reader", VPCD_READER, input="\n")
    assert result.exit_code == 5, result.output
    assert "no card" in result.stderr
