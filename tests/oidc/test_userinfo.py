"""Userinfo: the consented basic-4 claims in their documented formats, and pairwise subjects."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import Any

from flask import Flask
from joserfc import jwt
from joserfc.jwk import KeySet
from provider_support import (
    CapturingLogin,
    RelyingParty,
    enroll_test_resident,
    install_capturing_login,
)


def tokens_for(
    rp: RelyingParty, login: CapturingLogin, resident_id: str, granted: tuple[str, ...] | None
) -> dict[str, Any]:
    request = rp.authorization_request()
    assert rp.authorize(request).status_code == 200
    callback = rp.finish(login.last, resident_id, granted=granted)
    code = callback.headers["Location"].split("code=")[1].split("&")[0]
    response = rp.token_request(code, request.verifier)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def test_all_four_items_in_their_formats(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    body = tokens_for(rp, login, resident_id, None)
    response = rp.userinfo(body["access_token"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    info = response.get_json()
    id_token = jwt.decode(
        body["id_token"], KeySet.import_key_set(rp.http.get("/jwks.json").get_json())
    )
    assert info == {
        "sub": id_token.claims["sub"],
        "name": "山田\u3000太郎",
        "family_name": "山田",
        "given_name": "太郎",
        "address": {"formatted": "石川県加賀市大聖寺南町ニ４１番地", "country": "JP"},
        "birthdate": "1985-04-01",
        "gender": "male",
    }


def test_only_consented_items_are_released(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    body = tokens_for(rp, login, resident_id, ("openid", "birthdate"))
    assert body["scope"] == "openid birthdate"
    info = rp.userinfo(body["access_token"]).get_json()
    assert set(info) == {"sub", "birthdate"}


def test_openid_only_releases_just_the_subject(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    body = tokens_for(rp, login, resident_id, ())
    assert body["scope"] == "openid"
    assert set(rp.userinfo(body["access_token"]).get_json()) == {"sub"}


def test_name_without_a_single_ideographic_space_is_not_split(
    app: Flask, rp: RelyingParty, login: CapturingLogin
) -> None:
    with app.app_context():
        resident = enroll_test_resident(
            "SMITH JOHN", gender="other", birthdate=date(1990, 12, 31)
        ).id
    info = rp.userinfo(tokens_for(rp, login, resident, None)["access_token"]).get_json()
    assert info["name"] == "SMITH JOHN"
    assert "family_name" not in info
    assert "given_name" not in info
    assert info["gender"] == "other"
    assert info["birthdate"] == "1990-12-31"


def test_missing_token_is_invalid_token(rp: RelyingParty) -> None:
    response = rp.http.get("/userinfo")
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_unknown_token_is_invalid_token(rp: RelyingParty) -> None:
    response = rp.userinfo("not-a-token")
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"


def test_other_token_types_are_invalid_token(rp: RelyingParty) -> None:
    response = rp.http.get("/userinfo", headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_token"


def test_expired_token_is_invalid_token(app_factory: Callable[..., Flask]) -> None:
    short = app_factory(ACCESS_TOKEN_TTL=1)
    rp = RelyingParty(short)
    short_login = install_capturing_login(short)
    with short.app_context():
        resident = enroll_test_resident().id
    access_token = tokens_for(rp, short_login, resident, None)["access_token"]
    time.sleep(1.3)
    assert rp.userinfo(access_token).status_code == 401


def test_pairwise_subjects_differ_per_sector_and_agree_within_one(
    app: Flask, login: CapturingLogin, resident_id: str
) -> None:
    first = RelyingParty(app, redirect_uri="https://forms.city.example.jp/cb")
    same_host = RelyingParty(app, redirect_uri="https://forms.city.example.jp/other-cb")
    other_host = RelyingParty(app, redirect_uri="https://library.city.example.jp/cb")
    subs = [
        r.userinfo(tokens_for(r, login, resident_id, None)["access_token"]).get_json()["sub"]
        for r in (first, same_host, other_host)
    ]
    assert subs[0] == subs[1]
    assert subs[0] != subs[2]
    assert resident_id not in subs
