"""The whole login, in process: authorize -> login page -> device (virtual card through the
shared device client) -> consent -> code -> token (private_key_jwt) -> userinfo."""

from __future__ import annotations

import time

from flask import Flask
from joserfc import jwt
from joserfc.jwk import KeySet
from login_support import LoginPki, full_login, virtual_card
from provider_support import ISSUER, RelyingParty

from idp.card.jpki_ap import TEXT_AP_AID
from idp.card.pin import PinKind
from idp.oidc.claims import ACR_CARD_PIN
from idp.storage.audit import list_releases


def test_first_login_enrolls_then_pin1_only(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    creds = login_pki.credentials("yamada")
    card, client = virtual_card(login_pki, creds)
    before = int(time.time())
    request, params, outcome = full_login(rp, client)
    assert outcome.enrolled and outcome.rounds == 2
    assert params["state"] == [request.state] and params["iss"] == [ISSUER]
    token = rp.token_request(params["code"][0], request.verifier)
    assert token.status_code == 200, token.get_json()
    body = token.get_json()
    keys = KeySet.import_key_set(rp.http.get("/jwks.json").get_json())
    id_token = jwt.decode(body["id_token"], keys, algorithms=["ES256"])
    claims = id_token.claims
    assert claims["iss"] == ISSUER and claims["aud"] == rp.client_id
    assert claims["nonce"] == request.params["nonce"]
    assert claims["amr"] == ["hwk", "sc", "pin", "mfa"] and claims["acr"] == ACR_CARD_PIN
    assert before - 1 <= claims["auth_time"] <= int(time.time())
    assert "name" not in claims and "address" not in claims  # basic-4 only at userinfo
    info = rp.userinfo(body["access_token"]).get_json()
    assert info == {
        "sub": claims["sub"],
        "name": "山田　太郎",
        "family_name": "山田",
        "given_name": "太郎",
        "address": {"formatted": "石川県加賀市大聖寺南町ニ４１番地", "country": "JP"},
        "birthdate": "1985-04-01",
        "gender": "male",
    }
    # the card saw PIN1 and the signature password, never a SELECT of the 券面事項入力補助AP
    assert not any(TEXT_AP_AID in command for command in card.commands)
    assert card.pin_tries(0x0018) == 3 and card.pin_tries(0x001B) == 5

    # second login (prompt=login: the provider session would answer): PIN1 only, consent
    # remembered, same sub
    card2, client2 = virtual_card(login_pki, creds)
    request2, params2, outcome2 = full_login(rp, client2, prompt="login")
    assert not outcome2.enrolled and outcome2.rounds == 1
    token2 = rp.token_request(params2["code"][0], request2.verifier).get_json()
    info2 = rp.userinfo(token2["access_token"]).get_json()
    assert info2["sub"] == info["sub"]
    # the signature password was not used the second time
    verifies = [c for c in card2.commands if c[:4] == bytes.fromhex("00200080") and len(c) > 5]
    assert len(verifies) == 1
    with app.app_context():
        releases = list_releases(rp_resident(app))
        assert len(releases) == 2 and releases[0].items == [
            "name",
            "address",
            "birthdate",
            "gender",
        ]


def rp_resident(app: Flask) -> str:
    from sqlalchemy import select

    from idp.storage.base import db
    from idp.storage.residents import Resident

    with app.app_context():
        return str(db.session.scalars(select(Resident.id)).one())


def test_only_the_consented_items_are_released(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    _, client = virtual_card(login_pki, login_pki.credentials("suzuki"))
    request, params, _ = full_login(rp, client, scope="openid birthdate")
    token = rp.token_request(params["code"][0], request.verifier).get_json()
    assert token["scope"].split() == ["openid", "birthdate"]
    info = rp.userinfo(token["access_token"]).get_json()
    assert set(info) == {"sub", "birthdate"} and info["birthdate"] == "1952-11-20"


def test_denied_consent_releases_nothing(app: Flask, rp: RelyingParty, login_pki: LoginPki) -> None:
    _, client = virtual_card(login_pki, login_pki.credentials("suzuki"))
    request, params, _ = full_login(rp, client, approve=False)
    assert params["error"] == ["access_denied"] and params["state"] == [request.state]
    assert "code" not in params
    with app.app_context():
        assert list_releases(rp_resident(app)) == []


def test_max_age_is_honoured_with_the_card_auth_time(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    _, client = virtual_card(login_pki, login_pki.credentials("yamada"))
    request, params, _ = full_login(rp, client, max_age="300")
    token = rp.token_request(params["code"][0], request.verifier).get_json()
    keys = KeySet.import_key_set(rp.http.get("/jwks.json").get_json())
    claims = jwt.decode(token["id_token"], keys, algorithms=["ES256"]).claims
    assert time.time() - claims["auth_time"] < 60


def test_wrong_pin_costs_one_try_and_is_reported(rp: RelyingParty, login_pki: LoginPki) -> None:
    from login_support import Browser, device_login

    from idp.card.errors import WrongPinError
    from idp.handoff.device_client import FixedPrompts

    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    card, client = virtual_card(login_pki, login_pki.credentials("yamada"))
    prompts = FixedPrompts(pin="9999")
    try:
        device_login(rp.app, started.handoff_url, client, prompts)
    except WrongPinError as exc:
        assert exc.tries_left == 2
    else:
        raise AssertionError("a wrong PIN must not sign")
    assert prompts.asked[-2:] == ["secret:auth:3", "wrong:auth:2"]
    assert card.pin_tries(0x0018) == 2
    # nothing reached the provider: the transaction still waits for the card
    assert browser.status(started)["state"] == "picked_up"
    assert PinKind.AUTH.max_tries == 3


def test_last_try_is_never_spent_without_confirmation(
    rp: RelyingParty, login_pki: LoginPki
) -> None:
    from login_support import Browser, device_login

    from idp.card.errors import WrongPinError
    from idp.handoff.device_client import FixedPrompts, LoginAbortedError

    card, client = virtual_card(login_pki, login_pki.credentials("yamada"))
    for _ in range(2):
        try:
            client.verify_pin(PinKind.AUTH, "0000")
        except WrongPinError:
            pass
    assert card.pin_tries(0x0018) == 1
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    prompts = FixedPrompts(use_last_try=False)
    try:
        device_login(rp.app, started.handoff_url, client, prompts)
    except LoginAbortedError as exc:
        assert exc.reason == "last_try_declined"
    else:
        raise AssertionError("the last try needs a confirmation")
    assert "secret:auth:1" not in prompts.asked and "last-try:auth" in prompts.asked
    assert card.pin_tries(0x0018) == 1
    status = browser.status(started)
    assert (status["state"], status["failure"]) == ("failed", "user_cancelled")
    # with the confirmation, the correct PIN signs (and resets the counter)
    browser = Browser(rp)
    started = browser.start(rp.authorization_request())
    device_login(rp.app, started.handoff_url, client, FixedPrompts(use_last_try=True))
    assert card.pin_tries(0x0018) == 3
    assert browser.status(started)["state"] == "card_verified"
