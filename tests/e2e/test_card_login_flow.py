"""The whole login, in process: authorize -> login page -> device (virtual card through the
shared device client) -> consent -> code -> token (private_key_jwt) -> userinfo."""

from __future__ import annotations

from flask import Flask
from login_support import LoginPki, full_login, virtual_card
from provider_support import RelyingParty


def test_first_login_enrolls_then_pin1_only(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    creds = login_pki.credentials("yamada")
    _, client = virtual_card(login_pki, creds)
    request, params, outcome = full_login(rp, client)
    assert outcome.enrolled and outcome.rounds == 2
    token = rp.token_request(params["code"][0], request.verifier)
    assert token.status_code == 200, token.get_json()
    info = rp.userinfo(token.get_json()["access_token"]).get_json()
    assert info["name"] == "山田　太郎"
    assert info["birthdate"] == "1985-04-01"
    assert info["gender"] == "male"
    assert info["address"]["formatted"] == "石川県加賀市大聖寺南町ニ４１番地"
    # second login: PIN1 only, consent remembered
    _, client2 = virtual_card(login_pki, creds)
    request2, params2, outcome2 = full_login(rp, client2)
    assert not outcome2.enrolled and outcome2.rounds == 1
    token2 = rp.token_request(params2["code"][0], request2.verifier).get_json()
    info2 = rp.userinfo(token2["access_token"]).get_json()
    assert info2["sub"] == info["sub"]
