"""The device API: the challenge, the card response and every way a response is refused.

Tokens are made with the test PKI's software keys (``software_token``), so every refusal is
the real validation path; each case asserts the exact ``error`` code and HTTP status, and
what the browser's status then says.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from login_support import (
    Browser,
    FlaskHttp,
    LoginPki,
    Started,
    challenge_of,
    device_login,
    dispose,
    make_login_app,
    sign_challenge,
    software_token,
    virtual_card,
)
from provider_support import ISSUER, RelyingParty

from idp.card.testpki import RESIDENTS, ResidentCredentials
from idp.extensions import get_settings, get_store
from idp.handoff.transaction import TransactionStore


class Login:
    """A login started in the browser, seen from the device."""

    def __init__(self, rp: RelyingParty, **overrides: str | None) -> None:
        self.rp = rp
        self.browser = Browser(rp)
        self.started: Started = self.browser.start(rp.authorization_request(**overrides))
        self.device = FlaskHttp(rp.app)
        self.path = urlsplit(self.started.handoff_url).path

    def challenge(self) -> dict[str, Any]:
        status, body = self.device.get(self.started.handoff_url)
        assert status == 200, body
        assert isinstance(body, dict)
        return body

    def post(self, token: Any) -> tuple[int, Any]:
        response = self.device.client.post(self.path + "/response", json=token)
        return response.status_code, response.get_json(silent=True)

    def post_raw(self, data: bytes | str, content_type: str = "application/json") -> Any:
        return self.device.client.post(
            self.path + "/response", data=data, content_type=content_type
        )

    def browser_status(self) -> dict[str, Any]:
        return self.browser.status(self.started)

    def transaction_store(self) -> TransactionStore:
        with self.rp.app.app_context():
            return TransactionStore(get_store(), ttl=get_settings().login_ttl)


def error(response: tuple[int, Any]) -> tuple[int, str]:
    status, body = response
    assert isinstance(body, dict) and set(body) == {"error", "message"}, body
    return status, body["error"]


def enroll(rp: RelyingParty, login_pki: LoginPki, resident: str = "yamada") -> ResidentCredentials:
    """Enroll the resident's card with a full device login (then forget the browser side)."""
    creds = login_pki.credentials(resident)
    _, client = virtual_card(login_pki, creds)
    login = Login(rp)
    device_login(rp.app, login.started.handoff_url, client)
    return creds


# -- the challenge --------------------------------------------------------------------------------


def test_challenge_names_who_asks_and_what_to_sign(rp: RelyingParty) -> None:
    login = Login(rp, scope="openid name birthdate")
    assert login.browser_status()["state"] == "created"
    doc = login.challenge()
    assert doc["transaction_id"] == login.started.transaction_id
    assert doc["origin"] == ISSUER
    assert doc["purpose"] == "login"
    assert doc["client_name"] == "加賀市 電子申請"
    assert doc["client_name_en"] == "Kaga City e-Application"
    assert doc["requested_items"] == ["name", "birthdate"]
    assert len(doc["nonce"]) == 43
    assert 0 < doc["expires_in"] <= 300
    assert doc["signature"]["format"] == "myna:1" and doc["signature"]["algorithm"] == "RS256"
    assert doc["response_url"] == login.started.handoff_url + "/response"
    assert login.browser_status()["state"] == "picked_up"


def test_unknown_handoff_is_transaction_not_found(rp: RelyingParty) -> None:
    device = FlaskHttp(rp.app)
    assert error(device.get(ISSUER + "/device/v1/transactions/" + "A" * 43)) == (
        404,
        "transaction_not_found",
    )
    assert error(device.get(ISSUER + "/device/v1/transactions/short")) == (
        404,
        "transaction_not_found",
    )


def test_the_transaction_id_is_not_a_handoff_id(rp: RelyingParty) -> None:
    login = Login(rp)
    url = ISSUER + "/device/v1/transactions/" + login.started.transaction_id
    assert error(login.device.get(url)) == (404, "transaction_not_found")


def test_unknown_paths_and_methods_are_json_errors(rp: RelyingParty) -> None:
    login = Login(rp)
    client = login.device.client
    response = client.get("/device/v1/nothing/here")
    assert (response.status_code, response.get_json()["error"]) == (404, "not_found")
    response = client.delete(login.path)
    assert (response.status_code, response.get_json()["error"]) == (405, "method_not_allowed")
    response = client.get(login.path + "/response")
    assert (response.status_code, response.get_json()["error"]) == (405, "method_not_allowed")


# -- a good response ------------------------------------------------------------------------------


def test_unknown_card_gets_an_enrollment_round(rp: RelyingParty, login_pki: LoginPki) -> None:
    creds = login_pki.credentials("suzuki")
    login = Login(rp)
    doc = login.challenge()
    status, body = login.post(software_token(creds, doc))
    assert status == 200 and body["status"] == "enroll_needed"
    following = body["challenge"]
    assert following["purpose"] == "enroll"
    assert following["nonce"] != doc["nonce"]
    assert following["transaction_id"] == doc["transaction_id"]
    assert login.browser_status()["state"] == "enroll_needed"
    assert login.challenge()["nonce"] == following["nonce"]
    status, body = login.post(software_token(creds, following))
    assert (status, body) == (200, {"status": "verified"})
    assert login.browser_status()["state"] == "card_verified"


def test_known_card_is_verified_in_one_round(rp: RelyingParty, login_pki: LoginPki) -> None:
    creds = enroll(rp, login_pki)
    login = Login(rp)
    assert login.post(software_token(creds, login.challenge())) == (200, {"status": "verified"})
    assert login.browser_status()["state"] == "card_verified"


def test_a_database_outage_mid_verification_ends_the_login_retryably(
    rp: RelyingParty, login_pki: LoginPki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database fails after the nonce was taken (fault injected where the card's record is
    looked up): the device gets 503, and the login ends as failed with a retryable reason at
    once instead of waiting, unfinishable, until it expires. Nothing was issued."""
    from sqlalchemy.exc import OperationalError

    from idp.handoff import login as login_module

    creds = enroll(rp, login_pki)
    login = Login(rp)
    token = software_token(creds, login.challenge())

    def database_gone(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    monkeypatch.setattr(login_module, "resident_for_card", database_gone)
    assert error(login.post(token)) == (503, "temporarily_unavailable")
    status = login.browser_status()
    assert (status["state"], status["failure"]) == ("failed", "temporarily_unavailable")
    monkeypatch.undo()
    assert error(login.post(token)) == (409, "transaction_closed")


# -- replays and binding --------------------------------------------------------------------------


def test_replayed_response_is_nonce_used(rp: RelyingParty, login_pki: LoginPki) -> None:
    creds = enroll(rp, login_pki)
    login = Login(rp)
    token = software_token(creds, login.challenge())
    assert login.post(token)[0] == 200
    assert error(login.post(token)) == (409, "nonce_used")
    assert login.browser_status()["state"] == "card_verified"


def test_concurrent_responses_verify_once(rp: RelyingParty, login_pki: LoginPki) -> None:
    creds = enroll(rp, login_pki)
    login = Login(rp)
    token = software_token(creds, login.challenge())
    results: list[int] = []

    def send() -> None:
        client = rp.app.test_client(use_cookies=False)
        results.append(client.post(login.path + "/response", json=token).status_code)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200] + [409] * 5


def test_response_for_another_transaction_is_signature_invalid(
    rp: RelyingParty, login_pki: LoginPki
) -> None:
    creds = enroll(rp, login_pki)
    first, second = Login(rp), Login(rp)
    token_for_first = software_token(creds, first.challenge())
    second.challenge()
    assert error(second.post(token_for_first)) == (422, "signature_invalid")
    status = second.browser_status()
    assert (status["state"], status["failure"]) == ("failed", "signature_invalid")
    # the first transaction is untouched and still accepts its own response
    assert first.post(token_for_first) == (200, {"status": "verified"})


def test_signature_for_another_origin_is_refused(rp: RelyingParty, login_pki: LoginPki) -> None:
    creds = enroll(rp, login_pki)
    login = Login(rp)
    doc = dict(login.challenge(), origin="https://phishing.example")
    token = software_token(creds, doc)
    assert error(login.post(token)) == (422, "signature_invalid")


def test_signature_for_another_purpose_is_refused(rp: RelyingParty, login_pki: LoginPki) -> None:
    creds = enroll(rp, login_pki)
    login = Login(rp)
    doc = dict(login.challenge(), purpose="sign")
    token = software_token(creds, doc, with_signing=False)
    assert error(login.post(token)) == (422, "signature_invalid")


def test_expired_transaction_is_refused(rp: RelyingParty, login_pki: LoginPki) -> None:
    creds = enroll(rp, login_pki)
    login = Login(rp)
    doc = login.challenge()
    store = login.transaction_store()
    with rp.app.app_context():
        transaction = store.get(login.started.transaction_id)
        assert transaction is not None
        store.update(transaction, expires_at=int(time.time()) - 1)
    assert error(login.post(software_token(creds, doc))) == (410, "transaction_expired")
    assert error(login.device.get(login.started.handoff_url)) == (410, "transaction_expired")
    assert login.browser_status()["state"] == "expired"


def test_ended_transaction_is_closed(rp: RelyingParty, login_pki: LoginPki) -> None:
    creds = login_pki.credentials("yamada")
    login = Login(rp)
    doc = login.challenge()
    cancel = login.device.client.post(login.path + "/cancel", json={"reason": "user_cancelled"})
    assert cancel.status_code == 200
    status = login.browser_status()
    assert (status["state"], status["failure"]) == ("failed", "user_cancelled")
    assert error(login.post(software_token(creds, doc))) == (409, "transaction_closed")
    assert error(login.device.get(login.started.handoff_url)) == (409, "transaction_closed")


def test_cancel_needs_a_known_reason(rp: RelyingParty) -> None:
    login = Login(rp)
    response = login.device.client.post(login.path + "/cancel", json={"reason": "because"})
    assert (response.status_code, response.get_json()["error"]) == (400, "invalid_token")
    assert login.browser_status()["state"] == "created"


# -- certificates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "code"),
    [
        ("wrong_ca", "certificate_untrusted"),
        ("expired", "certificate_expired"),
        ("not_yet_valid", "certificate_not_yet_valid"),
        ("wrong_policy", "certificate_wrong_policy"),
        ("wrong_key_usage", "certificate_wrong_key_usage"),
    ],
)
def test_bad_certificates_are_refused(
    rp: RelyingParty, login_pki: LoginPki, variant: str, code: str
) -> None:
    creds = login_pki.credentials("yamada", variant)
    login = Login(rp)
    assert error(login.post(software_token(creds, login.challenge()))) == (422, code)
    status = login.browser_status()
    assert (status["state"], status["failure"]) == ("failed", code)


def test_revoked_certificate_is_refused(rp: RelyingParty, login_pki: LoginPki) -> None:
    creds = enroll(rp, login_pki)
    login_pki.revoke("auth", creds.auth_certificate.serial_number)
    time.sleep(1.1)  # the trust files are re-read at most once a second
    login = Login(rp)
    assert error(login.post(software_token(creds, login.challenge()))) == (
        422,
        "certificate_revoked",
    )


def test_signature_certificate_where_authentication_is_required(
    rp: RelyingParty, login_pki: LoginPki
) -> None:
    creds = login_pki.credentials("yamada")
    assert creds.sign_certificate is not None and creds.sign_key is not None
    login = Login(rp)
    token = software_token(
        creds, login.challenge(), certificate=creds.sign_certificate, key=creds.sign_key
    )
    assert error(login.post(token)) == (422, "certificate_wrong_purpose")


def test_signature_by_another_key_is_refused(rp: RelyingParty, login_pki: LoginPki) -> None:
    creds = login_pki.credentials("yamada")
    other = login_pki.credentials("suzuki")
    login = Login(rp)
    token = software_token(creds, login.challenge(), key=other.auth_key)
    assert error(login.post(token)) == (422, "signature_invalid")


def test_enrollment_round_with_another_card_is_card_mismatch(
    rp: RelyingParty, login_pki: LoginPki
) -> None:
    first = login_pki.credentials("suzuki")
    second = login_pki.credentials("takahashi")
    login = Login(rp)
    _, body = login.post(software_token(first, login.challenge()))
    assert error(login.post(software_token(second, body["challenge"]))) == (422, "card_mismatch")
    assert login.browser_status()["failure"] == "card_mismatch"


def test_enrollment_with_a_bad_signing_signature(rp: RelyingParty, login_pki: LoginPki) -> None:
    creds = login_pki.credentials("suzuki")
    login = Login(rp)
    _, body = login.post(software_token(creds, login.challenge()))
    token = software_token(creds, body["challenge"])
    token["signingSignature"] = token["signature"]  # the auth key's signature, not the sign key's
    assert error(login.post(token)) == (422, "signature_invalid")


def test_enrollment_with_an_untrusted_signature_certificate(
    rp: RelyingParty, login_pki: LoginPki
) -> None:
    good = login_pki.credentials("suzuki")
    rogue = login_pki.credentials("suzuki", "wrong_ca")
    login = Login(rp)
    _, body = login.post(software_token(good, login.challenge()))
    mixed = replace(good, sign_certificate=rogue.sign_certificate, sign_key=rogue.sign_key)
    assert error(login.post(software_token(mixed, body["challenge"]))) == (
        422,
        "certificate_untrusted",
    )


# -- revocation policy ----------------------------------------------------------------------------


def test_no_revocation_source_fails_closed(
    db_url: str, redis_url: str, login_pki: LoginPki
) -> None:
    app = make_login_app(db_url, redis_url, login_pki, JPKI_CRL_FILES=[])
    try:
        rp = RelyingParty(app)
        login = Login(rp)
        creds = login_pki.credentials("yamada")
        assert error(login.post(software_token(creds, login.challenge()))) == (
            422,
            "revocation_unavailable",
        )
    finally:
        dispose(app)


def test_revocation_can_be_made_optional(db_url: str, redis_url: str, login_pki: LoginPki) -> None:
    app = make_login_app(db_url, redis_url, login_pki, JPKI_CRL_FILES=[], REVOCATION_REQUIRED=False)
    try:
        rp = RelyingParty(app)
        login = Login(rp)
        creds = login_pki.credentials("yamada")
        status, body = login.post(software_token(creds, login.challenge()))
        assert (status, body["status"]) == (200, "enroll_needed")
    finally:
        dispose(app)


def test_crl_past_next_update_fails_closed(rp: RelyingParty, login_pki: LoginPki) -> None:
    creds = login_pki.credentials("yamada")
    login = Login(rp)
    doc = login.challenge()
    now = datetime.now(UTC)
    for kind in ("auth", "sign"):
        crl = login_pki.pki.crl(
            kind,  # type: ignore[arg-type]
            this_update=now - timedelta(days=2),
            next_update=now - timedelta(days=1),
        )
        login_pki.crl_path(kind).write_bytes(crl.public_bytes(Encoding.PEM))
    # a CRL past its nextUpdate is refused at load (idp.revocation): with no usable CRL held,
    # the certificate fails closed
    time.sleep(1.1)
    assert error(login.post(software_token(creds, doc))) == (422, "revocation_unavailable")
    status = login.browser_status()
    assert (status["state"], status["failure"]) == ("failed", "revocation_unavailable")


def test_missing_anchor_file_is_trust_unavailable(
    db_url: str, redis_url: str, login_pki: LoginPki
) -> None:
    app = make_login_app(
        db_url, redis_url, login_pki, JPKI_AUTH_ANCHORS=[str(login_pki.directory / "nope.pem")]
    )
    try:
        rp = RelyingParty(app)
        login = Login(rp)
        creds = login_pki.credentials("yamada")
        assert error(login.post(software_token(creds, login.challenge()))) == (
            503,
            "trust_unavailable",
        )
    finally:
        dispose(app)


# -- malformed requests (nothing consumed) ---------------------------------------------


def _still_open(login: Login, creds: ResidentCredentials, doc: dict[str, Any]) -> None:
    status, body = login.post(software_token(creds, doc))
    assert status == 200, body


def test_oversized_body_is_request_too_large(rp: RelyingParty, login_pki: LoginPki) -> None:
    creds = login_pki.credentials("yamada")
    login = Login(rp)
    doc = login.challenge()
    token = software_token(creds, doc)
    token["appVersion"] = "x" * 20_000
    response = login.post_raw(json.dumps(token))
    assert (response.status_code, response.get_json()["error"]) == (413, "request_too_large")
    huge = login.post_raw(b"{" + b" " * 100_000 + b"}")  # over the app-wide limit too
    assert (huge.status_code, huge.get_json()["error"]) == (413, "request_too_large")
    _still_open(login, creds, doc)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "invalid_json"),
        (b"\xff\xfe", "application/json", 400, "invalid_json"),
        (b"[1, 2]", "application/json", 400, "invalid_json"),
        (b'"token"', "application/json", 400, "invalid_json"),
        (b"", "application/json", 400, "invalid_json"),
        (b"a=b", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        (b"{}", "text/plain", 415, "unsupported_media_type"),
    ],
)
def test_garbage_bodies(
    rp: RelyingParty,
    login_pki: LoginPki,
    body: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    creds = login_pki.credentials("yamada")
    login = Login(rp)
    doc = login.challenge()
    response = login.post_raw(body, content_type)
    assert (response.status_code, response.get_json()["error"]) == (status, code)
    _still_open(login, creds, doc)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"format": "web-eid:1"}, "unsupported_format"),
        ({"format": None}, "invalid_token"),
        ({"algorithm": "ES256"}, "algorithm_unsupported"),
        ({"algorithm": "none"}, "algorithm_unsupported"),
        ({"algorithm": 7}, "invalid_token"),
        ({"unverifiedCertificate": None}, "invalid_token"),
        ({"unverifiedCertificate": "***"}, "invalid_token"),
        ({"unverifiedCertificate": ""}, "invalid_token"),
        ({"unverifiedCertificate": "QUJD" * 3000}, "invalid_token"),
        ({"signature": "not base64!"}, "invalid_token"),
        ({"signature": 12}, "invalid_token"),
        ({"appVersion": None}, "invalid_token"),
        ({"appVersion": ""}, "invalid_token"),
        ({"signingCertificate": "QUJD"}, "invalid_token"),
        (
            {"signingCertificate": "QUJD", "signingSignature": "QUJD"},
            "signing_certificate_unexpected",
        ),
    ],
)
def test_malformed_tokens(
    rp: RelyingParty, login_pki: LoginPki, change: dict[str, Any], code: str
) -> None:
    creds = login_pki.credentials("yamada")
    login = Login(rp)
    doc = login.challenge()
    token: dict[str, Any] = dict(software_token(creds, doc))
    for name, value in change.items():
        if value is None:
            token.pop(name, None)
        else:
            token[name] = value
    assert error(login.post(token)) == (400, code)
    _still_open(login, creds, doc)


def test_garbage_certificate_is_certificate_malformed(rp: RelyingParty) -> None:
    login = Login(rp)
    doc = login.challenge()
    token = {
        "unverifiedCertificate": "MIIBAAAA",
        "algorithm": "RS256",
        "signature": "AAAA",
        "format": "myna:1",
        "appVersion": "x",
    }
    assert error(login.post(token)) == (422, "certificate_malformed")
    assert login.browser_status()["failure"] == "certificate_malformed"
    assert doc["purpose"] == "login"


def test_enroll_round_without_signing_fields(rp: RelyingParty, login_pki: LoginPki) -> None:
    creds = login_pki.credentials("suzuki")
    login = Login(rp)
    _, body = login.post(software_token(creds, login.challenge()))
    token = software_token(creds, body["challenge"], with_signing=False)
    assert error(login.post(token)) == (400, "signing_certificate_required")
    assert login.browser_status()["state"] == "enroll_needed"


# -- services down --------------------------------------------------------------------------------


def test_redis_down_is_temporarily_unavailable(db_url: str, login_pki: LoginPki) -> None:
    app = make_login_app(db_url, "redis://127.0.0.1:1/0", login_pki, REDIS_TIMEOUT=0.5)
    try:
        client = app.test_client()
        response = client.get("/device/v1/transactions/" + "A" * 43)
        assert (response.status_code, response.get_json()["error"]) == (
            503,
            "temporarily_unavailable",
        )
    finally:
        dispose(app)


def test_challenge_signature_helper_matches_the_card(login_pki: LoginPki) -> None:
    """The software signer used above computes exactly what the virtual card computes."""
    from idp.card.jpki import JpkiClient
    from idp.card.pin import PinKind

    creds = login_pki.credentials("yamada")
    card, client = virtual_card(login_pki, creds)
    assert isinstance(client, JpkiClient)
    doc = {"origin": ISSUER, "nonce": "n" * 43, "transaction_id": "t" * 43, "purpose": "login"}
    client.verify_pin(PinKind.AUTH, "1234")
    assert client.sign(PinKind.AUTH, challenge_of(doc).digest_info()) == sign_challenge(
        creds.auth_key, challenge_of(doc)
    )
    assert RESIDENTS["yamada"].name == "山田　太郎" and card is not None
