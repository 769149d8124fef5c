"""The claims parameter, verified_claims (Identity Assurance) and derived claims."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import KeySet
from protocol_support import consent, refresh
from provider_support import (
    CapturingLogin,
    RelyingParty,
    callback_params,
    enroll_test_resident,
    install_capturing_login,
)

from idp.account.consent import consent_items
from idp.oidc.claims import age_at_least, japan_today, resident_of
from idp.oidc.claims_request import ClaimsRequestError, parse_claims
from idp.storage.residents import get_resident

ALL = (
    "name",
    "address",
    "birthdate",
    "gender",
    "age_over_18",
    "age_over_65",
    "resident_of",
    "offline_access",
)
KAGA = {"172065": "石川県加賀市"}


def keys(rp: RelyingParty) -> KeySet:
    return KeySet.import_key_set(rp.http.get("/jwks.json").get_json())


def login_with(
    rp: RelyingParty,
    login: CapturingLogin,
    resident_id: str,
    *,
    scope: str = "openid",
    claims: dict[str, Any] | None = None,
    granted: tuple[str, ...] | None = None,
) -> tuple[tuple[str, ...], dict[str, Any]]:
    """Authorize (with ``claims``), finish, redeem: (the context's scopes, the token body)."""
    extra = {"claims": json.dumps(claims)} if claims is not None else {}
    request = rp.authorization_request(scope=scope, **extra)
    response = rp.authorize(request)
    assert response.status_code == 200, response.get_data(as_text=True)
    ctx = login.last
    callback = rp.finish(ctx, resident_id, granted=granted)
    params = callback_params(callback.headers["Location"])
    assert "code" in params, params
    body = rp.token_request(params["code"][0], request.verifier).get_json()
    assert "access_token" in body, body
    return ctx.scopes, body


def id_token_claims(rp: RelyingParty, body: dict[str, Any]) -> dict[str, Any]:
    return dict(jwt.decode(body["id_token"], keys(rp)).claims)


@pytest.fixture
def all_rp(app: Flask) -> RelyingParty:
    return RelyingParty(app, scopes=ALL)


# -- derived claims, pure -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "today", "years", "expected"),
    [
        (date(2007, 4, 2), date(2025, 4, 1), 18, False),
        (date(2007, 4, 2), date(2025, 4, 2), 18, True),
        (date(2008, 2, 29), date(2026, 2, 28), 18, False),
        (date(2008, 2, 29), date(2026, 3, 1), 18, True),
        (date(2008, 2, 29), date(2028, 2, 29), 20, True),
        (date(1960, 1, 1), date(2024, 12, 31), 65, False),
        (date(1960, 1, 1), date(2025, 1, 1), 65, True),
    ],
)
def test_age_thresholds(born: date, today: date, years: int, expected: bool) -> None:
    assert age_at_least(born, years, today=today) is expected


def test_today_is_the_date_in_japan() -> None:
    assert japan_today(datetime(2025, 3, 31, 15, 0, tzinfo=UTC)) == date(2025, 4, 1)
    assert japan_today(datetime(2025, 3, 31, 14, 59, tzinfo=UTC)) == date(2025, 3, 31)


def test_resident_of_matches_the_longest_configured_prefix() -> None:
    places = [
        ("141003", "神奈川県横浜市"),
        ("141011", "神奈川県横浜市鶴見区"),
        ("172065", "石川県加賀市"),
    ]
    assert resident_of("石川県加賀市大聖寺南町ニ４１番地", places) == {
        "code": "172065",
        "name": "石川県加賀市",
    }
    assert resident_of("神奈川県横浜市鶴見区鶴見中央", places) == {
        "code": "141011",
        "name": "神奈川県横浜市鶴見区",
    }
    assert resident_of("石川県金沢市広坂", places) is None
    assert resident_of("石川県加賀市", []) is None


# -- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[1, 2]",
        '{"userinfo": []}',
        '{"id_token": {"name": "yes"}}',
        '{"userinfo": {"name": {"essential": "true"}}}',
        '{"userinfo": {"name": {"value": {"a": 1}}}}',
        '{"userinfo": {"name": {"values": "山田"}}}',
        '{"userinfo": {"verified_claims": {"claims": {"name": null}}}}',
        '{"userinfo": {"verified_claims": {"verification": {}, "claims": {"name": null}}}}',
        '{"userinfo": {"verified_claims": {"verification": {"trust_framework": null}}}}',
        '{"userinfo": {"verified_claims": {"verification": {"trust_framework": null},'
        ' "claims": {}}}}',
        '{"userinfo": {"verified_claims": []}}',
        '{"userinfo": {"verified_claims": {"verification": {"trust_framework": null,'
        ' "evidence": "x"}, "claims": {"name": null}}}}',
        json.dumps({"userinfo": {"name": None, "x": "y" * 5000}}),
    ],
)
def test_malformed_claims_requests(raw: str) -> None:
    with pytest.raises(ClaimsRequestError) as caught:
        parse_claims(raw)
    assert str(caught.value).isascii()
    assert "山田" not in str(caught.value)


def test_parsing_keeps_known_claims_only() -> None:
    plan = parse_claims(
        json.dumps(
            {
                "userinfo": {"name": None, "email": None, "age_over_18": {"essential": True}},
                "id_token": {"sub": {"value": "abc"}, "auth_time": {"essential": True}},
                "other": {"name": None},
            }
        )
    )
    assert plan == {
        "userinfo": {"name": None, "age_over_18": {"essential": True}},
        "id_token": {"sub": {"value": "abc"}},
    }


# -- the claims parameter -----------------------------------------------------------------


def test_claims_for_the_id_token_only(
    all_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    scopes, body = login_with(
        all_rp,
        login,
        resident_id,
        claims={"id_token": {"birthdate": None, "age_over_18": {"essential": True}}},
    )
    assert scopes == ("openid", "birthdate", "age_over_18")
    assert body["scope"] == "openid birthdate age_over_18"
    claims = id_token_claims(all_rp, body)
    assert claims["birthdate"] == "1985-04-01"
    assert claims["age_over_18"] is True
    # asked for in the ID token only: userinfo does not repeat them
    assert all_rp.userinfo(body["access_token"]).get_json() == {"sub": claims["sub"]}


def test_single_claims_at_userinfo(
    all_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    scopes, body = login_with(all_rp, login, resident_id, claims={"userinfo": {"given_name": None}})
    assert scopes == ("openid", "name")
    info = all_rp.userinfo(body["access_token"]).get_json()
    assert info.keys() == {"sub", "given_name"}
    assert info["given_name"] == "太郎"
    assert "name" not in id_token_claims(all_rp, body)


def test_scope_and_claims_combine(
    all_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    _, body = login_with(
        all_rp,
        login,
        resident_id,
        scope="openid gender",
        claims={"id_token": {"gender": None}, "userinfo": {"age_over_65": None}},
    )
    info = all_rp.userinfo(body["access_token"]).get_json()
    assert info.keys() == {"sub", "gender", "age_over_65"}
    assert info["age_over_65"] is False
    assert id_token_claims(all_rp, body)["gender"] == "male"


def test_items_not_granted_are_not_released_even_if_essential(
    all_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    _, body = login_with(
        all_rp,
        login,
        resident_id,
        claims={"id_token": {"birthdate": {"essential": True}, "gender": None}},
        granted=("openid", "gender"),
    )
    claims = id_token_claims(all_rp, body)
    assert "birthdate" not in claims
    assert claims["gender"] == "male"


def test_claims_of_items_the_client_may_not_ask_for_are_dropped(
    rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    scopes, body = login_with(
        rp, login, resident_id, claims={"userinfo": {"age_over_18": None, "name": None}}
    )
    assert scopes == ("openid", "name")
    assert "age_over_18" not in rp.userinfo(body["access_token"]).get_json()


def test_malformed_claims_parameter_is_redirected_with_state(rp: RelyingParty) -> None:
    request = rp.authorization_request(claims='{"userinfo": {"name": 1}}')
    response = rp.authorize(request)
    assert response.status_code == 302
    params = callback_params(response.headers["Location"])
    assert params["error"] == ["invalid_request"]
    assert params["state"] == [request.state]
    assert params["iss"] == ["http://localhost"]


def test_requested_sub_must_be_the_resident_who_logs_in(
    app: Flask, all_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    _, body = login_with(all_rp, login, resident_id)
    sub = id_token_claims(all_rp, body)["sub"]
    _, again = login_with(all_rp, login, resident_id, claims={"id_token": {"sub": {"value": sub}}})
    assert id_token_claims(all_rp, again)["sub"] == sub

    with app.app_context():
        other = enroll_test_resident("鈴木　花子", birthdate=date(1952, 11, 20), gender="female").id
    request = all_rp.authorization_request(
        scope="openid", claims=json.dumps({"id_token": {"sub": {"value": sub}}})
    )
    all_rp.authorize(request)
    callback = all_rp.finish(login.last, other)
    params = callback_params(callback.headers["Location"])
    assert params["error"] == ["login_required"]
    assert params["state"] == [request.state]


def test_claims_survive_a_refresh(
    app: Flask, all_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    consent(app, resident_id, all_rp, ["birthdate", "offline_access"])
    _, body = login_with(
        all_rp,
        login,
        resident_id,
        scope="openid offline_access",
        claims={"id_token": {"birthdate": None}},
    )
    renewed = refresh(all_rp, body["refresh_token"]).get_json()
    assert id_token_claims(all_rp, renewed)["birthdate"] == "1985-04-01"
    narrowed = refresh(all_rp, renewed["refresh_token"], scope="openid offline_access").get_json()
    assert "birthdate" not in id_token_claims(all_rp, narrowed)


# -- derived claims through the provider --------------------------------------------------


def test_age_scopes_release_no_birthdate(app: Flask, login: CapturingLogin) -> None:
    rp = RelyingParty(app, scopes=ALL)
    with app.app_context():
        young = enroll_test_resident().id
        old = enroll_test_resident("鈴木　花子", birthdate=date(1952, 11, 20), gender="female").id
    for resident, over_65 in ((young, False), (old, True)):
        _, body = login_with(rp, login, resident, scope="openid age_over_18 age_over_65")
        info = rp.userinfo(body["access_token"]).get_json()
        assert info == {"sub": info["sub"], "age_over_18": True, "age_over_65": over_65}


def test_resident_of_needs_configured_municipalities(
    app: Flask, login: CapturingLogin, resident_id: str
) -> None:
    # not configured: the scope is not offered, asking for it is ignored (not an error)
    rp = RelyingParty(app, scopes=ALL)
    assert (
        "resident_of"
        not in rp.http.get("/.well-known/openid-configuration").get_json()["scopes_supported"]
    )
    scopes, body = login_with(rp, login, resident_id, scope="openid resident_of")
    assert scopes == ("openid",)
    assert "resident_of" not in rp.userinfo(body["access_token"]).get_json()


def test_resident_of_from_the_address_prefix(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(MUNICIPALITIES=KAGA)
    login = install_capturing_login(app)
    rp = RelyingParty(app, scopes=ALL)
    metadata = rp.http.get("/.well-known/openid-configuration").get_json()
    assert "resident_of" in metadata["scopes_supported"]
    assert "resident_of" in metadata["claims_supported"]
    with app.app_context():
        kaga = enroll_test_resident().id
        kanazawa = enroll_test_resident("鈴木　花子", address="石川県金沢市広坂１丁目１番１号").id
    _, body = login_with(rp, login, kaga, scope="openid resident_of")
    info = rp.userinfo(body["access_token"]).get_json()
    assert info["resident_of"] == {"code": "172065", "name": "石川県加賀市"}
    assert "address" not in info
    _, body = login_with(rp, login, kanazawa, scope="openid resident_of")
    assert rp.userinfo(body["access_token"]).get_json().keys() == {"sub"}


def test_consent_page_lines_for_the_new_items(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(MUNICIPALITIES=KAGA)
    with app.test_request_context():
        resident = enroll_test_resident()
        lines = consent_items(
            resident, ["offline_access", "resident_of", "age_over_65", "age_over_18"], "ja"
        )
        assert [(line.scope, line.value) for line in lines] == [
            ("age_over_18", "はい"),
            ("age_over_65", "いいえ"),
            ("resident_of", "石川県加賀市"),
            ("offline_access", lines[3].value),
        ]
        assert all(line.label for line in lines)
        english = consent_items(resident, ["age_over_18"], "en")
        assert english[0].value == "Yes"


# -- verified_claims ----------------------------------------------------------------------

VERIFIED = {
    "verification": {
        "trust_framework": None,
        "time": None,
        "evidence": [{"type": {"value": "electronic_signature"}}],
    },
    "claims": {"name": None, "birthdate": {"essential": True}, "email": None},
}


def test_verified_claims_with_jpki_evidence(
    app: Flask, all_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    scopes, body = login_with(
        all_rp, login, resident_id, claims={"userinfo": {"verified_claims": VERIFIED}}
    )
    assert scopes == ("openid", "name", "birthdate")
    info = all_rp.userinfo(body["access_token"]).get_json()
    with app.app_context():
        resident = get_resident(resident_id)
        assert resident is not None
        verified_at = resident.verified_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        issuer, serial = resident.evidence["issuer"], resident.evidence["serial_hex"]
    assert info["verified_claims"] == {
        "verification": {
            "trust_framework": "jp_jpki",
            "time": verified_at,
            "evidence": [
                {
                    "type": "electronic_signature",
                    "signature_type": "jp_jpki",
                    "issuer": issuer,
                    "serial_number": serial,
                    "created_at": verified_at,
                }
            ],
        },
        "claims": {"name": "山田　太郎", "birthdate": "1985-04-01"},
    }
    # the verified items are not repeated as plain claims
    assert info.keys() == {"sub", "verified_claims"}


def test_verified_claims_release_only_what_was_asked_and_granted(
    all_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    request = {"verification": {"trust_framework": None}, "claims": {"name": None, "gender": None}}
    _, body = login_with(
        all_rp,
        login,
        resident_id,
        claims={"id_token": {"verified_claims": request}},
        granted=("openid", "gender"),
    )
    claims = id_token_claims(all_rp, body)
    assert claims["verified_claims"] == {
        "verification": {"trust_framework": "jp_jpki"},
        "claims": {"gender": "male"},
    }


@pytest.mark.parametrize(
    "verification",
    [
        {"trust_framework": {"value": "eidas"}},
        {"trust_framework": {"values": ["de_aml", "uk_tfida"]}},
        {"trust_framework": None, "evidence": [{"type": {"value": "document"}}]},
    ],
)
def test_verified_claims_not_matching_the_request_are_omitted(
    all_rp: RelyingParty,
    login: CapturingLogin,
    resident_id: str,
    verification: dict[str, Any],
) -> None:
    request = {"verification": verification, "claims": {"name": None}}
    _, body = login_with(
        all_rp, login, resident_id, claims={"userinfo": {"verified_claims": request}}
    )
    assert "verified_claims" not in all_rp.userinfo(body["access_token"]).get_json()


def test_several_verified_claims_requests(
    all_rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    requests = [
        {"verification": {"trust_framework": {"value": "jp_jpki"}}, "claims": {"name": None}},
        {"verification": {"trust_framework": None}, "claims": {"address": None}},
    ]
    _, body = login_with(
        all_rp, login, resident_id, claims={"userinfo": {"verified_claims": requests}}
    )
    answers = all_rp.userinfo(body["access_token"]).get_json()["verified_claims"]
    assert [answer["claims"] for answer in answers] == [
        {"name": "山田　太郎"},
        {"address": {"formatted": "石川県加賀市大聖寺南町ニ４１番地", "country": "JP"}},
    ]


def test_discovery_advertises_claims_and_identity_assurance(rp: RelyingParty) -> None:
    metadata = rp.http.get("/.well-known/openid-configuration").get_json()
    assert metadata["claims_parameter_supported"] is True
    assert metadata["verified_claims_supported"] is True
    assert metadata["trust_frameworks_supported"] == ["jp_jpki"]
    assert metadata["evidence_supported"] == ["electronic_signature"]
    assert metadata["claims_in_verified_claims_supported"] == [
        "name",
        "family_name",
        "given_name",
        "address",
        "birthdate",
        "gender",
    ]
    for claim in ("age_over_18", "age_over_65", "verified_claims", "birthdate"):
        assert claim in metadata["claims_supported"]
