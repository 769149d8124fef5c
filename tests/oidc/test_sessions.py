"""Provider sessions: the cookie, the record in Redis, prompt / max_age / acr_values /
id_token_hint answered from the session, and the portal's API."""

from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask, Response
from joserfc import jwt
from joserfc.jwk import ECKey
from protocol_support import consent, error_page_code
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
    card_login,
    id_token_of,
    session_cookie,
    verified_claims,
)

from idp.config import ConfigError
from idp.extensions import get_settings, get_store
from idp.oidc.authorize import AuthorizationContext, _session_decision
from idp.oidc.claims import ACR_CARD_PIN
from idp.oidc.clients import load_client
from idp.oidc.server import get_keyring
from idp.oidc.sessions import (
    ACR_ORDER,
    SessionInfo,
    acr_satisfies,
    client_sid,
    current_session,
    end_all_sessions,
    end_session,
    open_session,
    sessions_for,
    set_session_cookie,
)
from idp.oidc.subject import pairwise_sub
from idp.storage.ephemeral import StoreUnavailableError

ITEMS = ("name", "address", "birthdate", "gender")
WEAK_ACR = "urn:example:acr:weaker-than-the-card"


@pytest.fixture
def db_url(database_url: str) -> str:
    """Sessions live in Redis; one real database is enough here (PostgreSQL)."""
    return database_url


@pytest.fixture
def logged_in(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> tuple[Any, dict[str, list[str]]]:
    """The resident consented to every item and logged in with the card in ``rp``'s browser."""
    consent(app, resident_id, rp, ITEMS)
    return card_login(rp, login, resident_id)


def browser_session(rp: RelyingParty) -> SessionInfo | None:
    cookie = session_cookie(rp)
    headers = {"Cookie": f"{COOKIE}={cookie}"} if cookie else {}
    with rp.app.test_request_context(headers=headers):
        return current_session()


def silent(rp: RelyingParty, **params: str | None) -> dict[str, list[str]]:
    """/authorize answered without the login page (a redirect); its callback parameters."""
    request = rp.authorization_request(**params)
    response = rp.authorize(request)
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    result = callback_params(response.headers["Location"])
    if "error" not in result:
        assert result["state"] == [request.state]
    return result


def went_to_login(rp: RelyingParty, login: CapturingLogin, **params: str | None) -> None:
    before = len(login.contexts)
    response = rp.authorize(rp.authorization_request(**params))
    assert response.status_code == 200, response.headers.get("Location")
    assert len(login.contexts) == before + 1


def sign_id_token(app: Flask, key: Any = None, **claims: Any) -> str:
    """An ID-token-shaped JWT signed by the provider's current key (or ``key``)."""
    with app.app_context():
        active = get_keyring().signing_key("ES256")
    now = int(time.time())
    body = {"iss": ISSUER, "iat": now, "exp": now + 600, **claims}
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode({"alg": "ES256", "kid": active.kid}, body, key or active.key)


def sub_of(app: Flask, rp: RelyingParty, resident_id: str) -> str:
    with app.app_context():
        client = load_client(rp.client_id)
        assert client is not None
        secret = get_settings().pairwise_secret
        return pairwise_sub(secret, sector=client.sector, resident_id=resident_id)


# -- the cookie and the record ------------------------------------------------------------------


def test_a_card_login_opens_a_session_with_a_host_only_cookie(
    app: Flask, rp: RelyingParty, logged_in: Any, resident_id: str
) -> None:
    info = browser_session(rp)
    assert info is not None
    assert info.resident_id == resident_id
    assert info.acr == ACR_CARD_PIN
    assert info.clients == (rp.client_id,)
    assert info.expires_at == pytest.approx(info.created_at + 1800, abs=2)
    store = rp.store()
    ttl = store.ttl(f"session:{info.sid}")
    assert ttl is not None and 1790 <= ttl <= 1800
    # The sid is not the cookie: knowing a sid does not give the session.
    assert session_cookie(rp) != info.sid


def test_the_cookie_is_httponly_lax_and_on_https_host_prefixed_and_secure(
    app_factory: Any,
) -> None:
    app = app_factory(ISSUER="https://idp.example.jp")
    with app.test_request_context():
        response = Response()
        set_session_cookie(response, "x" * 43)
        header = response.headers["Set-Cookie"]
    assert header.startswith("__Host-myna-session=")
    for attribute in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert attribute in header
    assert "Domain" not in header


def test_session_lifetime_is_configurable_and_bounded(
    app_factory: Any, login: CapturingLogin
) -> None:
    short = app_factory(SESSION_LIFETIME=120)
    with short.test_request_context():
        resident = enroll_test_resident().id
        info, secret = open_session(
            resident_id=resident, auth_time=int(time.time()), acr="x", amr=[]
        )
        assert secret is not None
        ttl = get_store().ttl(f"session:{info.sid}")
    assert ttl is not None and 110 <= ttl <= 120
    with pytest.raises(ConfigError, match="IDP_SESSION_LIFETIME"):
        app_factory(SESSION_LIFETIME=7 * 24 * 3600)
    with pytest.raises(ConfigError, match="IDP_SESSION_LIFETIME"):
        app_factory(SESSION_LIFETIME=0)


def test_a_malformed_or_unknown_cookie_is_no_session(app: Flask) -> None:
    for value in ("short", "x" * 43, "../../etc/passwd-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"):
        with app.test_request_context(headers={"Cookie": f"{COOKIE}={value}"}):
            assert current_session() is None


def test_the_id_token_carries_sid_and_auth_time(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    consent(app, resident_id, rp, ITEMS)
    request, params = card_login(rp, login, resident_id, max_age="300")
    claims = verified_claims(rp, id_token_of(rp, request, params))
    info = browser_session(rp)
    assert info is not None
    with app.app_context():
        assert claims["sid"] == client_sid(info.sid, rp.client_id)
    assert claims["sid"] != info.sid
    assert claims["auth_time"] == info.auth_time


def test_two_clients_see_different_sids_for_one_session(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    other = RelyingParty(app, redirect_uri="https://other.example.jp/cb", client_id="other-rp")
    other.http = rp.http  # the same browser
    consent(app, resident_id, rp, ITEMS)
    consent(app, resident_id, other, ITEMS)
    first = id_token_of(rp, *card_login(rp, login, resident_id))
    request = other.authorization_request(prompt="none")
    response = other.authorize(request)
    second = id_token_of(other, request, callback_params(response.headers["Location"]))
    sid_a = verified_claims(rp, first)["sid"]
    sid_b = verified_claims(rp, second)["sid"]
    assert sid_a != sid_b
    info = browser_session(rp)
    assert info is not None and set(info.clients) == {rp.client_id, "other-rp"}


def test_a_new_login_of_the_same_resident_refreshes_the_session_in_place(
    app: Flask, rp: RelyingParty, login: CapturingLogin, logged_in: Any, resident_id: str
) -> None:
    before = browser_session(rp)
    assert before is not None
    card_login(rp, login, resident_id, prompt="login", auth_time=int(time.time()) + 1)
    after = browser_session(rp)
    assert after is not None
    assert after.sid == before.sid
    assert after.auth_time > before.auth_time
    assert after.clients == before.clients


def test_a_login_of_another_resident_ends_the_previous_session(
    app: Flask, rp: RelyingParty, login: CapturingLogin, logged_in: Any, resident_id: str
) -> None:
    before = browser_session(rp)
    assert before is not None
    with app.app_context():
        other = enroll_test_resident("佐藤　花子", gender="female").id
    consent(app, other, rp, ITEMS)
    card_login(rp, login, other, prompt="login")
    after = browser_session(rp)
    assert after is not None and after.resident_id == other and after.sid != before.sid
    with app.app_context():
        assert sessions_for(resident_id) == []


# -- prompt ---------------------------------------------------------------------------------


def test_prompt_none_with_a_session_issues_a_code_silently(
    app: Flask, rp: RelyingParty, logged_in: Any, resident_id: str
) -> None:
    request = rp.authorization_request(prompt="none")
    response = rp.authorize(request)
    assert response.status_code == 302
    params = callback_params(response.headers["Location"])
    assert params["state"] == [request.state]
    assert params["iss"] == [ISSUER]
    claims = verified_claims(rp, id_token_of(rp, request, params))
    info = browser_session(rp)
    assert info is not None
    assert claims["auth_time"] == info.auth_time
    assert claims["acr"] == ACR_CARD_PIN
    assert claims["nonce"] == request.params["nonce"]


def test_without_prompt_a_session_answers_too(rp: RelyingParty, logged_in: Any) -> None:
    assert "code" in silent(rp)


def test_prompt_none_without_a_session_is_login_required(
    rp: RelyingParty, login: CapturingLogin
) -> None:
    assert silent(rp, prompt="none")["error"] == ["login_required"]


def test_prompt_none_without_consent_is_consent_required(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    consent(app, resident_id, rp, ("name",))
    card_login(rp, login, resident_id, scope="openid name")
    params = silent(rp, prompt="none", scope="openid name address")
    assert params["error"] == ["consent_required"]
    assert "state" in params


def test_without_consent_and_without_prompt_none_the_login_page_shows(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    consent(app, resident_id, rp, ("name",))
    card_login(rp, login, resident_id, scope="openid name")
    went_to_login(rp, login, scope="openid name address")


def test_prompt_login_forces_the_card_login(
    rp: RelyingParty, login: CapturingLogin, logged_in: Any
) -> None:
    went_to_login(rp, login, prompt="login")


def test_prompt_consent_goes_to_the_login_and_consent(
    rp: RelyingParty, login: CapturingLogin, logged_in: Any
) -> None:
    went_to_login(rp, login, prompt="consent")


def test_prompt_select_account_goes_to_the_login(
    rp: RelyingParty, login: CapturingLogin, logged_in: Any
) -> None:
    went_to_login(rp, login, prompt="select_account")


def test_prompt_none_combined_is_still_invalid_request(rp: RelyingParty, logged_in: Any) -> None:
    assert silent(rp, prompt="none consent")["error"] == ["invalid_request"]


def test_a_signature_request_always_needs_the_card(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    consent(app, resident_id, rp, ITEMS)
    card_login(rp, login, resident_id)
    info = browser_session(rp)
    assert info is not None
    ctx = AuthorizationContext.from_dict(
        {**login.last.to_dict(), "scopes": ["openid", "sign"], "prompt": ["none"]}
    )
    with app.test_request_context():
        assert _session_decision(ctx, info) == ("login_required", "A signature needs the card.")


# -- max_age --------------------------------------------------------------------------------


def test_max_age_older_than_the_session_login_is_login_required_with_prompt_none(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    consent(app, resident_id, rp, ITEMS)
    card_login(rp, login, resident_id, auth_time=int(time.time()) - 120)
    assert silent(rp, prompt="none", max_age="60")["error"] == ["login_required"]
    went_to_login(rp, login, max_age="60")


def test_max_age_within_the_session_login_answers_silently_with_auth_time(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    consent(app, resident_id, rp, ITEMS)
    auth_time = int(time.time()) - 120
    card_login(rp, login, resident_id, auth_time=auth_time)
    request = rp.authorization_request(prompt="none", max_age="600")
    response = rp.authorize(request)
    claims = verified_claims(
        rp, id_token_of(rp, request, callback_params(response.headers["Location"]))
    )
    assert claims["auth_time"] == auth_time


def test_max_age_zero_always_needs_a_new_login(rp: RelyingParty, logged_in: Any) -> None:
    assert silent(rp, prompt="none", max_age="0")["error"] == ["login_required"]


# -- acr_values -----------------------------------------------------------------------------


def test_acr_order_has_the_card_pin_as_the_strongest() -> None:
    assert ACR_ORDER[-1] == ACR_CARD_PIN
    assert acr_satisfies(ACR_CARD_PIN, [ACR_CARD_PIN])
    assert not acr_satisfies(WEAK_ACR, [ACR_CARD_PIN])
    assert acr_satisfies(WEAK_ACR, ["urn:unknown"])  # voluntary: unknown values ignored
    assert acr_satisfies(WEAK_ACR, [])


def weak_session(app: Flask, rp: RelyingParty, resident_id: str) -> None:
    """A session from a (hypothetical) method weaker than the card, in ``rp``'s browser."""
    with app.test_request_context():
        _, secret = open_session(
            resident_id=resident_id, auth_time=int(time.time()), acr=WEAK_ACR, amr=["pwd"]
        )
    assert secret is not None
    rp.http.set_cookie(COOKIE, secret, domain="localhost")


def test_a_weaker_session_never_satisfies_acr_values_for_the_card(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    consent(app, resident_id, rp, ITEMS)
    weak_session(app, rp, resident_id)
    params = silent(rp, prompt="none", acr_values=ACR_CARD_PIN)
    assert params["error"] == ["login_required"]
    went_to_login(rp, login, acr_values=ACR_CARD_PIN)
    went_to_login(rp, login, acr_values=f"urn:unknown {ACR_CARD_PIN}")


def test_a_card_session_satisfies_acr_values_for_the_card(rp: RelyingParty, logged_in: Any) -> None:
    assert "code" in silent(rp, prompt="none", acr_values=ACR_CARD_PIN)


def test_discovery_publishes_the_acr_order(rp: RelyingParty) -> None:
    metadata = rp.http.get("/.well-known/openid-configuration").get_json()
    assert metadata["acr_values_supported"] == list(ACR_ORDER)
    assert "sid" in metadata["claims_supported"]


# -- id_token_hint --------------------------------------------------------------------------


def test_an_id_token_hint_of_the_session_resident_answers_silently(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    consent(app, resident_id, rp, ITEMS)
    hint = id_token_of(rp, *card_login(rp, login, resident_id))
    assert "code" in silent(rp, prompt="none", id_token_hint=hint)


def test_an_expired_id_token_hint_still_counts(
    app: Flask, rp: RelyingParty, logged_in: Any, resident_id: str
) -> None:
    hint = sign_id_token(
        app,
        sub=sub_of(app, rp, resident_id),
        aud=rp.client_id,
        iat=int(time.time()) - 7200,
        exp=int(time.time()) - 3600,
    )
    assert "code" in silent(rp, prompt="none", id_token_hint=hint)


@pytest.mark.parametrize(
    "hint_kind", ["other-resident", "other-client", "foreign-key", "other-issuer", "garbage"]
)
def test_an_id_token_hint_that_does_not_match_the_session_is_login_required(
    app: Flask,
    rp: RelyingParty,
    login: CapturingLogin,
    logged_in: Any,
    resident_id: str,
    hint_kind: str,
) -> None:
    sub = sub_of(app, rp, resident_id)
    hints = {
        "other-resident": lambda: sign_id_token(app, sub="someone-else", aud=rp.client_id),
        "other-client": lambda: sign_id_token(app, sub=sub, aud="another-client"),
        "foreign-key": lambda: sign_id_token(
            app, ECKey.generate_key("P-256", private=True), sub=sub, aud=rp.client_id
        ),
        "other-issuer": lambda: sign_id_token(
            app, sub=sub, aud=rp.client_id, iss="https://evil.example"
        ),
        "garbage": lambda: "not.a.jwt",
    }
    hint = hints[hint_kind]()
    assert silent(rp, prompt="none", id_token_hint=hint)["error"] == ["login_required"]
    went_to_login(rp, login, id_token_hint=hint)


# -- the portal's API -------------------------------------------------------------------------


def test_sessions_for_lists_every_live_session_newest_first(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    consent(app, resident_id, rp, ITEMS)
    card_login(rp, login, resident_id)
    second_browser = RelyingParty.__new__(RelyingParty)
    second_browser.__dict__.update(rp.__dict__)
    second_browser.http = app.test_client()
    card_login(second_browser, login, resident_id)
    with app.app_context():
        listed = sessions_for(resident_id)
        assert len(listed) == 2
        assert listed[0].created_at >= listed[1].created_at
        report = end_session(listed[1].sid)
        assert report.sessions_ended == 1
        assert [s.sid for s in sessions_for(resident_id)] == [listed[0].sid]
        assert end_session(listed[1].sid).sessions_ended == 0  # already gone
        assert end_all_sessions(resident_id).sessions_ended == 1
        assert sessions_for(resident_id) == []
    assert browser_session(rp) is None
    assert silent(rp, prompt="none")["error"] == ["login_required"]


def test_an_ended_session_is_gone_for_the_browser(
    app: Flask, rp: RelyingParty, logged_in: Any
) -> None:
    info = browser_session(rp)
    assert info is not None
    with app.app_context():
        end_session(info.sid)
    assert browser_session(rp) is None


# -- Redis down -----------------------------------------------------------------------------


def test_redis_down_at_authorize_with_a_session_cookie_is_temporarily_unavailable(
    app_factory: Any,
) -> None:
    app = app_factory(REDIS_URL="redis://127.0.0.1:9/0", REDIS_TIMEOUT=0.5)
    install_capturing_login(app)
    rp = RelyingParty(app)
    rp.http.set_cookie(COOKIE, "a" * 43, domain="localhost")
    request = rp.authorization_request(prompt="none")
    response = rp.authorize(request)
    assert response.status_code == 302
    params = callback_params(response.headers["Location"])
    assert params["error"] == ["temporarily_unavailable"]
    assert params["state"] == [request.state]


def test_redis_down_in_the_portal_api_is_a_typed_error(app_factory: Any) -> None:
    app = app_factory(REDIS_URL="redis://127.0.0.1:9/0", REDIS_TIMEOUT=0.5)
    with app.test_request_context(headers={"Cookie": f"{COOKIE}={'a' * 43}"}):
        with pytest.raises(StoreUnavailableError):
            current_session()
        with pytest.raises(StoreUnavailableError):
            sessions_for("r")
    browser = app.test_client()
    browser.set_cookie(COOKIE, "a" * 43, domain="localhost")
    response = browser.get("/logout")
    assert response.status_code == 503
    assert 'data-outcome="unavailable"' in response.get_data(as_text=True)
    assert f"{COOKIE}=;" in response.headers["Set-Cookie"]


def test_logout_page_for_a_bad_request_is_an_error_page(rp: RelyingParty) -> None:
    assert error_page_code(rp.http.get("/logout?id_token_hint=nonsense")) == "invalid_request"
