"""Logout: RP-initiated logout at /logout and back-channel logout tokens over real HTTP."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner
from flask import Flask
from joserfc import jwt
from prometheus_client import REGISTRY
from protocol_support import consent, error_page_code, set_client
from provider_support import (
    ISSUER,
    CapturingLogin,
    RelyingParty,
    callback_params,
    enroll_test_resident,
    install_capturing_login,
)
from session_support import (
    COOKIE,
    Receiver,
    card_login,
    id_token_of,
    logout_receiver,
    session_cookie,
    verified_claims,
)

from idp.cli import main
from idp.oidc.backchannel import LOGOUT_EVENT
from idp.oidc.clients import ClientRegistrationError, new_client
from idp.oidc.server import get_keyring
from idp.oidc.sessions import current_session, end_client_sessions, sessions_for
from idp.storage.clients import get_client

ITEMS = ("name", "address", "birthdate", "gender")
AFTER = "https://rp.example.jp/signed-out"


@pytest.fixture
def db_url(database_url: str) -> str:
    """Sessions live in Redis; one real database is enough here (PostgreSQL)."""
    return database_url


@pytest.fixture
def receiver() -> Any:
    with logout_receiver() as server:
        yield server


@pytest.fixture
def registered(app: Flask, rp: RelyingParty, receiver: Receiver) -> RelyingParty:
    set_client(
        app,
        rp,
        post_logout_redirect_uris=[AFTER],
        backchannel_logout_uri=receiver.url,
        backchannel_logout_session_required=True,
    )
    return rp


def logged_in(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str, **params: str
) -> dict[str, Any]:
    """Consent + card login + token: the verified ID token claims; ``raw`` holds the JWT."""
    consent(app, resident_id, rp, ITEMS)
    token = id_token_of(rp, *card_login(rp, login, resident_id, **params))
    return {**verified_claims(rp, token), "raw": token}


def logout(rp: RelyingParty, **params: str) -> Any:
    return rp.http.get("/logout?" + urlencode(params))


def has_session(rp: RelyingParty) -> bool:
    cookie = session_cookie(rp)
    if cookie is None:
        return False
    with rp.app.test_request_context(headers={"Cookie": f"{COOKIE}={cookie}"}):
        return current_session() is not None


def counter(result: str) -> float:
    value = REGISTRY.get_sample_value("myna_backchannel_logouts_total", {"result": result})
    return value or 0.0


# -- discovery and registration -------------------------------------------------------------


def test_discovery_tells_the_truth_about_logout(rp: RelyingParty) -> None:
    metadata = rp.http.get("/.well-known/openid-configuration").get_json()
    assert metadata["end_session_endpoint"] == ISSUER + "/logout"
    assert metadata["backchannel_logout_supported"] is True
    assert metadata["backchannel_logout_session_supported"] is True
    assert metadata["frontchannel_logout_supported"] is False
    assert rp.http.get("/logout").status_code == 200


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"post_logout_redirect_uris": ["http://rp.example.jp/out"]}, "post-logout"),
        ({"post_logout_redirect_uris": ["https://rp.example.jp/out#x"]}, "fragment"),
        ({"backchannel_logout_uri": "http://rp.example.jp/bc"}, "back-channel"),
        ({"backchannel_logout_session_required": True}, "needs the URI"),
    ],
)
def test_registration_refuses_unsafe_logout_settings(
    app: Flask, fields: dict[str, Any], message: str
) -> None:
    with app.app_context(), pytest.raises(ClientRegistrationError, match=message):
        new_client(
            name="市",
            redirect_uris=["https://rp.example.jp/cb"],
            auth_method="none",
            **fields,
        )


def test_registration_keeps_logout_settings(app: Flask) -> None:
    with app.app_context():
        created = new_client(
            name="市",
            redirect_uris=["https://rp.example.jp/cb"],
            auth_method="none",
            post_logout_redirect_uris=[AFTER, AFTER],
            backchannel_logout_uri="http://127.0.0.1:8080/bc",
            backchannel_logout_session_required=True,
        )
    assert created.client.post_logout_redirect_uris == [AFTER]
    assert created.client.backchannel_logout_uri == "http://127.0.0.1:8080/bc"
    assert created.client.backchannel_logout_session_required is True


def test_the_cli_registers_logout_settings(
    app: Flask, db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "IDP_ISSUER": "http://localhost:5000",
        "IDP_SECRET_KEY": "c" * 40,
        "IDP_PAIRWISE_SECRET": "d" * 40,
        "IDP_DATABASE_URL": db_url,
        "IDP_REDIS_URL": redis_url,
    }.items():
        monkeypatch.setenv(name, value)
    base = ["clients", "add", "--name", "市", "--redirect-uri", "https://rp.example.jp/cb"]
    base += ["--auth-method", "none", "--client-id", "cli-logout"]
    result = CliRunner().invoke(
        main,
        [
            *base,
            "--post-logout-redirect-uri",
            AFTER,
            "--backchannel-logout-uri",
            "https://rp.example.jp/bc",
            "--backchannel-logout-session-required",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        row = get_client("cli-logout")
        assert row is not None
        assert row.post_logout_redirect_uris == [AFTER]
        assert row.backchannel_logout_uri == "https://rp.example.jp/bc"
        assert row.backchannel_logout_session_required is True
    refused = CliRunner().invoke(
        main, [*base[:-1], "cli-2", "--backchannel-logout-uri", "http://rp.example.jp/bc"]
    )
    assert refused.exit_code == 1
    assert "back-channel logout URI must be https" in refused.output


# -- RP-initiated logout, attributed --------------------------------------------------------


def test_logout_with_id_token_hint_ends_the_session_and_sends_a_logout_token(
    app: Flask,
    registered: RelyingParty,
    login: CapturingLogin,
    resident_id: str,
    receiver: Receiver,
) -> None:
    rp = registered
    id_token = logged_in(app, rp, login, resident_id)
    delivered = counter("delivered")
    response = logout(
        rp, id_token_hint=id_token["raw"], post_logout_redirect_uri=AFTER, state="s-1 2"
    )
    assert response.status_code == 302
    assert response.headers["Location"].startswith(AFTER + "?")
    assert callback_params(response.headers["Location"]) == {"state": ["s-1 2"]}
    assert f"{COOKIE}=;" in response.headers["Set-Cookie"]
    assert not has_session(rp)
    with app.app_context():
        assert sessions_for(resident_id) == []
    # The logout token, validated with the published JWKS.
    [token] = receiver.tokens()
    claims = verified_claims(rp, token, typ="logout+jwt")
    assert claims["iss"] == ISSUER
    assert claims["aud"] == rp.client_id
    assert claims["sub"] == id_token["sub"]
    assert claims["sid"] == id_token["sid"]
    assert claims["events"] == {LOGOUT_EVENT: {}}
    assert "nonce" not in claims
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    assert claims["iat"] <= time.time() + 1 < claims["exp"]
    assert counter("delivered") == delivered + 1
    # The relying party's next silent request finds no session.
    request = rp.authorization_request(prompt="none")
    assert callback_params(rp.authorize(request).headers["Location"])["error"] == ["login_required"]


def test_every_client_of_the_session_is_told(
    app: Flask,
    registered: RelyingParty,
    login: CapturingLogin,
    resident_id: str,
    receiver: Receiver,
) -> None:
    rp = registered
    other = RelyingParty(app, redirect_uri="https://other.example.jp/cb", client_id="other-rp")
    other.http = rp.http
    with logout_receiver() as other_receiver:
        set_client(app, other, backchannel_logout_uri=other_receiver.url)
        id_token = logged_in(app, rp, login, resident_id)
        consent(app, resident_id, other, ITEMS)
        request = other.authorization_request(prompt="none")
        other_params = callback_params(other.authorize(request).headers["Location"])
        other_token = verified_claims(rp, id_token_of(other, request, other_params))
        logout(rp, id_token_hint=id_token["raw"])
        [token] = other_receiver.tokens()
    claims = verified_claims(rp, token, typ="logout+jwt")
    assert claims["aud"] == "other-rp"
    assert claims["sid"] == other_token["sid"] != id_token["sid"]
    assert claims["sub"] == other_token["sub"]
    assert len(receiver.tokens()) == 1


def test_logout_without_redirect_shows_the_signed_out_page(
    app: Flask, registered: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    id_token = logged_in(app, registered, login, resident_id)
    response = logout(registered, id_token_hint=id_token["raw"])
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert 'data-outcome="done"' in body
    assert "サインアウトしました" in body
    assert '<html lang="ja">' in body and "You have signed out." not in body  # Japanese first
    assert response.headers["Cache-Control"] == "no-store"


def test_an_expired_id_token_hint_still_logs_out(
    app: Flask, registered: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    id_token = logged_in(app, registered, login, resident_id)
    with app.app_context():
        active = get_keyring().signing_key("ES256")
    claims = {k: v for k, v in id_token.items() if k != "raw"}
    claims.update(iat=int(time.time()) - 7200, exp=int(time.time()) - 3600)
    expired = jwt.encode({"alg": "ES256", "kid": active.kid}, claims, active.key)
    response = logout(registered, id_token_hint=expired, post_logout_redirect_uri=AFTER)
    assert response.status_code == 302
    assert not has_session(registered)


# -- RP-initiated logout, refused -----------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"post_logout_redirect_uri": AFTER},  # no client named
        {"client_id": "{rp}", "post_logout_redirect_uri": AFTER + "/"},  # not exact
        {"client_id": "{rp}", "post_logout_redirect_uri": "https://evil.example/out"},
        {"client_id": "{rp}", "post_logout_redirect_uri": "https://rp.example.jp/callback"},
        {"client_id": "nobody"},
        {"id_token_hint": "not-a-jwt"},
        {"client_id": "{rp}", "state": "bad\u0001state"},
    ],
)
def test_a_bad_logout_request_is_an_error_page_not_a_redirect(
    registered: RelyingParty, params: dict[str, str]
) -> None:
    filled = {k: v.replace("{rp}", registered.client_id) for k, v in params.items()}
    assert error_page_code(logout(registered, **filled)) == "invalid_request"


def test_a_hint_for_another_client_than_client_id_is_refused(
    app: Flask, registered: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    id_token = logged_in(app, registered, login, resident_id)
    RelyingParty(app, redirect_uri="https://other.example.jp/cb", client_id="other-rp")
    response = logout(registered, id_token_hint=id_token["raw"], client_id="other-rp")
    assert error_page_code(response) == "invalid_request"
    assert has_session(registered)


def test_a_repeated_parameter_is_refused(registered: RelyingParty) -> None:
    response = registered.http.get(
        f"/logout?client_id={registered.client_id}&client_id={registered.client_id}"
    )
    assert error_page_code(response) == "invalid_request"


# -- RP-initiated logout, confirmed ---------------------------------------------------------


def confirmation_form(response: Any) -> dict[str, str]:
    body = response.get_data(as_text=True)
    fields: dict[str, str] = {}
    for chunk in body.split('<input type="hidden" ')[1:]:
        name = chunk.split('name="', 1)[1].split('"', 1)[0]
        value = chunk.split('value="', 1)[1].split('"', 1)[0]
        fields[name] = value.replace("&amp;", "&")
    return fields


def test_an_unattributed_logout_asks_first_then_ends_on_confirmation(
    app: Flask,
    registered: RelyingParty,
    login: CapturingLogin,
    resident_id: str,
    receiver: Receiver,
) -> None:
    rp = registered
    logged_in(app, rp, login, resident_id)
    response = logout(rp, client_id=rp.client_id, post_logout_redirect_uri=AFTER, state="abc")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "サインアウトしますか" in body and 'hreflang="en">English<' in body  # the switch
    assert "Set-Cookie" not in response.headers
    assert has_session(rp)
    assert receiver.posts == []
    form = confirmation_form(response)
    assert form["client_id"] == rp.client_id
    assert form["post_logout_redirect_uri"] == AFTER
    assert form["state"] == "abc"
    answer = rp.http.post("/logout/confirm", data={**form, "decision": "logout"})
    assert answer.status_code == 302
    assert callback_params(answer.headers["Location"]) == {"state": ["abc"]}
    assert not has_session(rp)
    assert len(receiver.tokens()) == 1


def test_a_hint_of_another_resident_asks_first(
    app: Flask, registered: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    with app.app_context():
        other = enroll_test_resident("佐藤　花子").id
    stale = logged_in(app, registered, login, other)  # then another resident logs in here
    logged_in(app, registered, login, resident_id, prompt="login")
    response = logout(registered, id_token_hint=stale["raw"])
    assert response.status_code == 200
    assert "サインアウトしますか" in response.get_data(as_text=True)
    assert has_session(registered)


def test_staying_signed_in_keeps_the_session(
    app: Flask, registered: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    logged_in(app, registered, login, resident_id)
    form = confirmation_form(logout(registered, client_id=registered.client_id))
    answer = registered.http.post("/logout/confirm", data={**form, "decision": "stay"})
    assert answer.status_code == 200
    assert 'data-outcome="stayed"' in answer.get_data(as_text=True)
    assert has_session(registered)


@pytest.mark.parametrize("damage", [{"csrf": "0" * 64}, {"csrf": ""}, {"decision": "maybe"}])
def test_a_forged_confirmation_is_refused(
    app: Flask,
    registered: RelyingParty,
    login: CapturingLogin,
    resident_id: str,
    damage: dict[str, str],
) -> None:
    logged_in(app, registered, login, resident_id)
    form = confirmation_form(logout(registered, client_id=registered.client_id))
    data = {**form, "decision": "logout", **damage}
    answer = registered.http.post("/logout/confirm", data=data)
    assert error_page_code(answer) == "invalid_request"
    assert has_session(registered)


def test_without_a_session_logout_goes_straight_back(registered: RelyingParty) -> None:
    response = logout(
        registered, client_id=registered.client_id, post_logout_redirect_uri=AFTER, state="x"
    )
    assert response.status_code == 302
    assert callback_params(response.headers["Location"]) == {"state": ["x"]}


def test_post_to_the_end_session_endpoint_works_too(
    app: Flask, registered: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    id_token = logged_in(app, registered, login, resident_id)
    response = registered.http.post(
        "/logout", data={"id_token_hint": id_token["raw"], "post_logout_redirect_uri": AFTER}
    )
    assert response.status_code == 302
    assert not has_session(registered)


def test_a_cross_site_post_without_the_cookie_continues_as_a_get(
    app: Flask, registered: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    id_token = logged_in(app, registered, login, resident_id)
    cookieless = app.test_client()  # SameSite=Lax: the cross-site POST carries no cookie
    form = {"id_token_hint": id_token["raw"], "post_logout_redirect_uri": AFTER, "state": "z"}
    response = cookieless.post("/logout", data=form)
    assert response.status_code == 303
    again = response.headers["Location"]
    assert again.startswith(ISSUER + "/logout?")
    assert has_session(registered)
    # The browser follows with a top-level GET, which carries the cookie.
    answer = registered.http.get(again)
    assert answer.status_code == 302
    assert callback_params(answer.headers["Location"]) == {"state": ["z"]}
    assert not has_session(registered)


# -- back-channel failures --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["refused", "unreachable", "timeout"])
def test_a_failing_relying_party_never_blocks_the_logout(app_factory: Any, mode: str) -> None:
    app = app_factory(BACKCHANNEL_LOGOUT_TIMEOUT=1)
    login = install_capturing_login(app)
    rp = RelyingParty(app)
    with app.app_context():
        resident_id = enroll_test_resident().id
    status, delay = {"refused": (500, 0.0), "unreachable": (200, 0.0), "timeout": (200, 3.0)}[mode]
    with logout_receiver(status=status, delay=delay) as server:
        url = server.url if mode != "unreachable" else "http://127.0.0.1:9/bc"
        set_client(app, rp, backchannel_logout_uri=url)
        id_token = logged_in(app, rp, login, resident_id)
        before = counter(mode)
        response = logout(rp, id_token_hint=id_token["raw"])
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert 'data-outcome="done"' in body
    assert "通知できませんでした" in body and "加賀市 電子申請" in body
    assert not has_session(rp)
    assert counter(mode) == before + 1


def test_a_client_without_a_backchannel_uri_is_skipped(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    id_token = logged_in(app, rp, login, resident_id)
    response = logout(rp, id_token_hint=id_token["raw"])
    assert 'data-outcome="done"' in response.get_data(as_text=True)
    assert "通知できませんでした" not in response.get_data(as_text=True)


def test_end_client_sessions_tells_only_that_client_and_keeps_the_session(
    app: Flask,
    registered: RelyingParty,
    login: CapturingLogin,
    resident_id: str,
    receiver: Receiver,
) -> None:
    id_token = logged_in(app, registered, login, resident_id)
    with app.app_context():
        report = end_client_sessions(resident_id, registered.client_id)
        assert report.sessions_ended == 0
        assert report.notified == (registered.client_id,)
        assert report.failed == ()
        [info] = sessions_for(resident_id)
        assert info.clients == ()
        assert end_client_sessions(resident_id, registered.client_id).notified == ()
    [token] = receiver.tokens()
    assert verified_claims(registered, token, typ="logout+jwt")["sid"] == id_token["sid"]
    assert has_session(registered)
