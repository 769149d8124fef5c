"""Metrics derived from real requests: logins, card verifications, tokens, Redis errors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flask import Flask
from login_support import Browser, LoginPki, device_login, dispose, full_login, virtual_card
from ops_support import free_port, sample
from provider_support import ISSUER, RelyingParty, make_app

from idp.app import create_app
from idp.handoff.device_client import DeviceApiError

pytestmark = pytest.mark.redis


def test_a_login_counts_verification_login_and_tokens(
    rp: RelyingParty, login_pki: LoginPki
) -> None:
    verified = sample("myna_card_verifications_total", result="verified")
    enroll = sample("myna_card_verifications_total", result="enroll_needed")
    codes = sample("myna_logins_total", result="code")
    issued = sample("myna_tokens_issued_total", grant_type="authorization_code")
    token_seconds = sample("myna_http_request_duration_seconds_count", endpoint="oidc.token")
    device_seconds = sample(
        "myna_http_request_duration_seconds_count", endpoint="device.post_response"
    )

    _, card = virtual_card(login_pki, login_pki.credentials("yamada"))
    request, params, _ = full_login(rp, card)
    response = rp.token_request(params["code"][0], request.verifier)
    assert response.status_code == 200, response.get_data(as_text=True)

    # First login of this resident: enrollment (enroll_needed), then verified.
    assert sample("myna_card_verifications_total", result="enroll_needed") == enroll + 1
    assert sample("myna_card_verifications_total", result="verified") == verified + 1
    assert sample("myna_logins_total", result="code") == codes + 1
    assert sample("myna_tokens_issued_total", grant_type="authorization_code") == issued + 1
    assert (
        sample("myna_http_request_duration_seconds_count", endpoint="oidc.token")
        == token_seconds + 1
    )
    assert (
        sample("myna_http_request_duration_seconds_count", endpoint="device.post_response")
        == device_seconds + 2
    )


def test_refusals_are_counted_by_reason(rp: RelyingParty, login_pki: LoginPki) -> None:
    credentials = login_pki.credentials("suzuki")
    login_pki.revoke("auth", credentials.auth_certificate.serial_number)
    revoked = sample("myna_card_verifications_total", result="certificate_revoked")
    time.sleep(1.05)  # the trust cache rechecks the CRL files once a second
    started = Browser(rp).start(rp.authorization_request())
    _, card = virtual_card(login_pki, credentials)
    with pytest.raises(DeviceApiError) as refused:
        device_login(rp.app, started.handoff_url, card)
    assert refused.value.code == "certificate_revoked"
    assert sample("myna_card_verifications_total", result="certificate_revoked") == revoked + 1


def test_consent_denied_is_a_login_failure(rp: RelyingParty, login_pki: LoginPki) -> None:
    denied = sample("myna_logins_total", result="access_denied")
    _, card = virtual_card(login_pki, login_pki.credentials("tanaka"))
    _, params, _ = full_login(rp, card, approve=False)
    assert params["error"] == ["access_denied"]
    assert sample("myna_logins_total", result="access_denied") == denied + 1


def test_token_errors_by_code(rp: RelyingParty) -> None:
    invalid_grant = sample("myna_token_errors_total", error="invalid_grant")
    response = rp.token_request("no-such-code", "v" * 43)
    assert response.status_code == 400
    assert sample("myna_token_errors_total", error="invalid_grant") == invalid_grant + 1


def test_status_codes_and_unmatched_paths(app: Flask) -> None:
    before = sample("myna_http_requests_total", endpoint="unmatched", method="GET", status="404")
    assert app.test_client().get("/no/such/path").status_code == 404
    after = sample("myna_http_requests_total", endpoint="unmatched", method="GET", status="404")
    assert after == before + 1


def test_redis_down_counts_errors_and_answers_503(
    tmp_path: Path, login_pki: LoginPki, redis_url: str
) -> None:
    application = make_app(
        f"sqlite:///{tmp_path / 'idp.sqlite3'}", redis_url, **login_pki.settings()
    )
    rp = RelyingParty(application)
    dispose(application)
    # The same database (schema and client kept), Redis now on a port where nobody listens.
    broken = create_app(
        {
            "TESTING": True,
            "ISSUER": ISSUER,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'idp.sqlite3'}",
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "REDIS_TIMEOUT": 0.5,
            **login_pki.settings(),
        }
    )
    try:
        errors = sample("myna_redis_errors_total", kind="ConnectionError")
        unavailable = sample(
            "myna_http_requests_total", endpoint="oidc.authorize", method="GET", status="503"
        )
        rp.app = broken
        rp.http = broken.test_client()
        response = rp.authorize(rp.authorization_request())
        assert response.status_code == 503, response.get_data(as_text=True)
        assert sample("myna_redis_errors_total", kind="ConnectionError") > errors
        assert (
            sample(
                "myna_http_requests_total", endpoint="oidc.authorize", method="GET", status="503"
            )
            == unavailable + 1
        )
    finally:
        dispose(broken)
