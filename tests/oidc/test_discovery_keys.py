"""Discovery, JWKS, signing keys (rotation, encryption at rest)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from authlib.oidc.discovery import OpenIDProviderMetadata
from flask import Flask
from joserfc import jwt
from joserfc.jwk import KeySet
from provider_support import (
    ISSUER,
    CapturingLogin,
    RelyingParty,
    enroll_test_resident,
    install_capturing_login,
)

from idp.extensions import get_settings
from idp.oidc.keys import (
    KeyRing,
    KeyStorageError,
    RotationRefusedError,
    generate_signing_key,
    rotate_signing_key,
)
from idp.oidc.server import get_keyring
from idp.storage.base import db, utcnow
from idp.storage.keys import KeyState, list_signing_keys


def id_token_header(rp: RelyingParty, login: CapturingLogin, resident_id: str) -> dict[str, str]:
    request, params = rp.login(login, resident_id)
    body = rp.token_request(params["code"][0], request.verifier).get_json()
    keys = KeySet.import_key_set(rp.http.get("/jwks.json").get_json())
    return dict(jwt.decode(body["id_token"], keys).header)


def test_discovery_is_valid_and_truthful(rp: RelyingParty) -> None:
    response = rp.http.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    metadata = response.get_json()
    OpenIDProviderMetadata(metadata).validate()
    assert metadata["issuer"] == ISSUER
    assert metadata["authorization_endpoint"] == ISSUER + "/authorize"
    assert metadata["token_endpoint"] == ISSUER + "/token"
    assert metadata["userinfo_endpoint"] == ISSUER + "/userinfo"
    assert metadata["jwks_uri"] == ISSUER + "/jwks.json"
    assert metadata["response_types_supported"] == ["code"]
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["subject_types_supported"] == ["pairwise"]
    assert metadata["scopes_supported"] == [
        "openid",
        "name",
        "address",
        "birthdate",
        "gender",
        "age_over_18",
        "age_over_65",
        "offline_access",
        "sign",
    ]
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert set(metadata["token_endpoint_auth_methods_supported"]) == {
        "private_key_jwt",
        "client_secret_basic",
        "none",
    }
    for alg in metadata["token_endpoint_auth_signing_alg_values_supported"]:
        assert alg != "none" and not alg.startswith("HS")
    for path in ("/authorize", "/token", "/userinfo", "/jwks.json"):
        assert rp.http.open(path, method="OPTIONS").status_code == 200


def test_jwks_is_cacheable_and_public_only(rp: RelyingParty) -> None:
    response = rp.http.get("/jwks.json")
    assert response.headers["Cache-Control"] == "public, max-age=300"
    keys = response.get_json()["keys"]
    assert [key["alg"] for key in keys] == ["ES256", "ES256"]  # the active and the next key
    for key in keys:
        assert key["use"] == "sig" and key["kid"]
        assert "d" not in key


def test_rotation_publishes_first_then_signs_with_the_new_key(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    old_kid = id_token_header(rp, login, resident_id)["kid"]
    published = {key["kid"] for key in rp.http.get("/jwks.json").get_json()["keys"]}
    with app.app_context():
        settings = get_settings()
        (upcoming,) = [k for k in list_signing_keys("ES256") if k.state == KeyState.NEXT]
        assert published == {old_kid, upcoming.kid}  # the next key is out before it signs
        with pytest.raises(RotationRefusedError):  # published for less than the pre-publication
            rotate_signing_key("ES256", settings)
        later = utcnow() + timedelta(seconds=settings.key_prepublish_seconds)
        rotated = rotate_signing_key("ES256", settings, now=later)
    assert rotated.active_kid == upcoming.kid and rotated.retiring_kid == old_kid
    assert id_token_header(rp, login, resident_id)["kid"] == upcoming.kid
    published = {key["kid"] for key in rp.http.get("/jwks.json").get_json()["keys"]}
    assert published == {old_kid, upcoming.kid, rotated.next_kid}


def test_keys_are_encrypted_at_rest_when_configured(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(KEY_ENCRYPTION_KEY="k" * 40)
    login = install_capturing_login(app)
    rp = RelyingParty(app)
    with app.app_context():
        resident = enroll_test_resident().id
    assert id_token_header(rp, login, resident)["alg"] == "ES256"
    with app.app_context():
        stored = list_signing_keys()
        assert sorted(key.state for key in stored) == ["active", "next"]
        for key in stored:
            assert key.private_key_pem.startswith("aes256gcm.v1.")
            assert "PRIVATE KEY" not in key.private_key_pem
        settings = get_settings()
        wrong = replace(settings, key_encryption_key=b"w" * 40)
        with pytest.raises(KeyStorageError):
            KeyRing(wrong).signing_key("ES256")
        with pytest.raises(KeyStorageError):
            KeyRing(replace(settings, key_encryption_key=None)).signing_key("ES256")


def test_unreadable_signing_key_is_a_clean_server_error(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(KEY_ENCRYPTION_KEY="k" * 40)
    login = install_capturing_login(app)
    rp = RelyingParty(app)
    with app.app_context():
        resident = enroll_test_resident().id
        active = get_keyring().signing_key("ES256")
        # After the start check: the active key re-wrapped under another key-encryption key
        # (an operator mistake); the token endpoint refuses cleanly.
        other = replace(get_settings(), key_encryption_key=b"w" * 40)
        (row,) = [k for k in list_signing_keys("ES256") if k.kid == active.kid]
        row.private_key_pem = generate_signing_key("ES256", other).private_key_pem
        db.session.commit()
    request, params = rp.login(login, resident)
    response = rp.token_request(params["code"][0], request.verifier)
    assert response.status_code == 500
    assert response.get_json()["error"] == "server_error"
