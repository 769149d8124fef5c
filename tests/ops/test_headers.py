"""Security headers on every response, CSP nonces, caching, and forwarded headers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, render_template_string, request
from login_support import Browser, LoginPki, dispose, make_login_app
from provider_support import RelyingParty

from idp.app import create_app
from idp.config import ConfigError

pytestmark = pytest.mark.redis

BASE_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _csp(response: Any) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    directives = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        directives[name] = value
    return directives


def _assert_base(response: Any) -> None:
    for name, value in BASE_HEADERS.items():
        assert response.headers.get(name) == value, (response.request.path, name)
    csp = _csp(response)
    assert csp["default-src"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["base-uri"] == "'none'"
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert "form-action" not in csp  # it would block the redirect back to the RP


def test_every_kind_of_response(rp: RelyingParty, app: Flask) -> None:
    client = app.test_client()
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    responses = {
        "discovery": client.get("/.well-known/openid-configuration"),
        "jwks": client.get("/jwks.json"),
        "authorize error page": client.get(
            "/authorize?client_id=nobody", headers={"Accept": "text/html"}
        ),
        "token error": client.post("/token", data={"grant_type": "authorization_code"}),
        "userinfo error": client.get("/userinfo"),
        "login page": rp.http.get(f"/login/{started.transaction_id}"),
        "login status": rp.http.get(started.status_path),
        "device api": client.get("/device/v1/transactions/unknown"),
        "static": client.get("/static/myna.css"),
        "not found": client.get("/nothing/here"),
        "healthz": client.get("/healthz"),
        "metrics": client.get("/metrics"),
    }
    for name, response in responses.items():
        assert response.status_code < 500, name
        _assert_base(response)
        assert "Strict-Transport-Security" not in response.headers, name  # http issuer
        response.close()


def test_inline_styles_carry_the_response_nonce(app: Flask) -> None:
    # The error page has an inline <style>: without the nonce the CSP would leave it unstyled.
    response = app.test_client().get("/authorize?client_id=nobody", headers={"Accept": "text/html"})
    nonces = re.findall(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"])
    styles = re.findall(r"<style([^>]*)>", response.get_data(as_text=True))
    assert styles and nonces
    assert all(f'nonce="{nonces[0]}"' in attrs for attrs in styles)


def test_logos_may_come_from_https_only() -> None:
    from idp.ops.headers import content_security_policy

    img = next(d for d in content_security_policy(None).split("; ") if d.startswith("img-src"))
    assert img.split()[1:] == ["'self'", "data:", "https:"]


def _cache_control(response: Any) -> tuple[str | None, str | None]:
    return response.headers.get("Cache-Control"), response.headers.get("Pragma")


def test_caching(rp: RelyingParty, app: Flask) -> None:
    client = app.test_client()
    no_store = ("no-store", "no-cache")
    assert _cache_control(client.post("/token", data={"grant_type": "password"})) == no_store
    assert _cache_control(client.get("/userinfo")) == no_store
    assert _cache_control(client.post("/revoke", data={"token": "x"})) == no_store
    assert _cache_control(client.get("/device/v1/transactions/unknown")) == no_store
    assert _cache_control(client.post("/device/v1/pickup", json={"qr": "x"})) == no_store
    assert _cache_control(rp.authorize(rp.authorization_request())) == no_store
    assert _cache_control(client.get("/readyz")) == no_store
    assert _cache_control(client.get("/nothing/here")) == no_store
    discovery = client.get("/.well-known/openid-configuration")
    assert discovery.headers["Cache-Control"] == "public, max-age=3600"
    assert "Pragma" not in discovery.headers
    assert client.get("/jwks.json").headers["Cache-Control"] == "public, max-age=300"
    static = client.get("/static/login.js")
    assert static.status_code == 200 and "no-store" not in static.headers["Cache-Control"]
    static.close()


def test_successful_token_and_userinfo_responses_are_not_stored(
    rp: RelyingParty, login_pki: LoginPki
) -> None:
    from login_support import full_login, virtual_card

    _, card = virtual_card(login_pki, login_pki.credentials("yamada"))
    request_, params, _ = full_login(rp, card)
    token = rp.token_request(params["code"][0], request_.verifier)
    assert token.status_code == 200
    assert _cache_control(token) == ("no-store", "no-cache")
    userinfo = rp.userinfo(token.get_json()["access_token"])
    assert userinfo.status_code == 200
    assert _cache_control(userinfo) == ("no-store", "no-cache")


@pytest.fixture
def page_app(sqlite_url: str, redis_url: str, login_pki: LoginPki) -> Iterator[Flask]:
    application = make_login_app(sqlite_url, redis_url, login_pki)

    @application.get("/test/inline")
    def inline() -> str:
        return render_template_string(
            '<style nonce="{{ csp_nonce() }}">p{}</style>'
            '<script nonce="{{ csp_nonce() }}">1</script>'
        )

    yield application
    dispose(application)


def test_nonce_per_response_only_when_used(page_app: Flask) -> None:
    client = page_app.test_client()
    first, second = client.get("/test/inline"), client.get("/test/inline")
    nonces = []
    for response in (first, second):
        html = response.get_data(as_text=True)
        used = set(re.findall(r'nonce="([^"]+)"', html))
        assert len(used) == 1  # one nonce per response, for every inline element
        nonce = used.pop()
        assert len(nonce) >= 22
        csp = _csp(response)
        assert csp["script-src"] == f"'self' 'nonce-{nonce}'"
        assert csp["style-src"] == f"'self' 'nonce-{nonce}'"
        nonces.append(nonce)
    assert nonces[0] != nonces[1]
    plain = client.get("/healthz")
    assert "nonce-" not in plain.headers["Content-Security-Policy"]


def _app(tmp_path: Path, redis_url: str, **config: Any) -> Flask:
    settings: dict[str, Any] = {
        "TESTING": True,
        "ISSUER": "http://localhost",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'idp.sqlite3'}",
        "REDIS_URL": redis_url,
    }
    settings.update(config)
    return create_app(settings)


def test_report_only(tmp_path: Path, redis_url: str) -> None:
    application = _app(tmp_path, redis_url, CSP_REPORT_ONLY="true", CSP_REPORT_URI="/csp-reports")
    response = application.test_client().get("/healthz")
    assert "Content-Security-Policy" not in response.headers
    policy = response.headers["Content-Security-Policy-Report-Only"]
    assert "frame-ancestors 'none'" in policy and policy.endswith("report-uri /csp-reports")
    assert response.headers["X-Frame-Options"] == "DENY"  # still enforced
    dispose(application)


def test_hsts_on_an_https_issuer(tmp_path: Path, redis_url: str) -> None:
    application = _app(tmp_path, redis_url, ISSUER="https://id.city.example.jp")
    response = application.test_client().get("/healthz")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    dispose(application)
    off = _app(tmp_path, redis_url, ISSUER="https://id.city.example.jp", HSTS_MAX_AGE=0)
    assert "Strict-Transport-Security" not in off.test_client().get("/healthz").headers
    dispose(off)


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"CSP_REPORT_ONLY": "maybe"}, "IDP_CSP_REPORT_ONLY must be true or false"),
        ({"CSP_REPORT_URI": "https://x; script-src *"}, "IDP_CSP_REPORT_URI"),
        ({"HSTS_MAX_AGE": -1}, "IDP_HSTS_MAX_AGE must be between"),
        ({"HSTS_MAX_AGE": "a year"}, "IDP_HSTS_MAX_AGE must be a number"),
        ({"TRUSTED_PROXIES": ["10.0.0.0/8", "proxy.internal"]}, "'proxy.internal' is not"),
        ({"ACCESS_LOG": "sometimes"}, "IDP_ACCESS_LOG must be true or false"),
    ],
)
def test_bad_settings_stop_the_start(
    tmp_path: Path, redis_url: str, config: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        _app(tmp_path, redis_url, **config)
    assert any(problem in p for p in refused.value.problems), refused.value.problems


# -- forwarded headers ------------------------------------------------------------------------


def _peer_app(tmp_path: Path, redis_url: str, **config: Any) -> Flask:
    application = _app(tmp_path, redis_url, **config)

    @application.get("/test/peer")
    def peer() -> dict[str, Any]:
        return {"addr": request.remote_addr, "scheme": request.scheme, "host": request.host}

    return application


FORWARDED = {
    "X-Forwarded-For": "198.51.100.7, 192.0.2.44",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "id.city.example.jp",
}


def _peer(application: Flask, remote_addr: str) -> dict[str, Any]:
    response = application.test_client().get(
        "/test/peer", headers=FORWARDED, environ_base={"REMOTE_ADDR": remote_addr}
    )
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def test_without_proxies_forwarded_headers_are_ignored(tmp_path: Path, redis_url: str) -> None:
    application = _peer_app(tmp_path, redis_url)
    assert _peer(application, "127.0.0.1") == {
        "addr": "127.0.0.1",
        "scheme": "http",
        "host": "localhost",
    }
    dispose(application)


def test_one_trusted_proxy(tmp_path: Path, redis_url: str) -> None:
    application = _peer_app(tmp_path, redis_url, TRUSTED_PROXY_COUNT=1)
    # The proxy appended the address it saw; what the client put before it is not believed.
    assert _peer(application, "127.0.0.1") == {
        "addr": "192.0.2.44",
        "scheme": "https",
        "host": "id.city.example.jp",
    }
    # The same headers from a peer that is not a configured proxy count for nothing.
    assert _peer(application, "203.0.113.9") == {
        "addr": "203.0.113.9",
        "scheme": "http",
        "host": "localhost",
    }
    dispose(application)


def test_configured_proxy_networks(tmp_path: Path, redis_url: str) -> None:
    application = _peer_app(
        tmp_path, redis_url, TRUSTED_PROXY_COUNT=1, TRUSTED_PROXIES="10.1.0.0/16, 2001:db8::1"
    )
    assert _peer(application, "10.1.2.3")["addr"] == "192.0.2.44"
    assert _peer(application, "2001:db8::1")["addr"] == "192.0.2.44"
    assert _peer(application, "127.0.0.1")["addr"] == "127.0.0.1"  # loopback no longer listed
    assert _peer(application, "10.2.0.1")["addr"] == "10.2.0.1"
    dispose(application)


def test_two_proxies(tmp_path: Path, redis_url: str) -> None:
    application = _peer_app(tmp_path, redis_url, TRUSTED_PROXY_COUNT=2)
    assert _peer(application, "127.0.0.1")["addr"] == "198.51.100.7"
    dispose(application)
