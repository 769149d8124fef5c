"""Enrollment (flow D), refresh of a stale record, and card renewal keeping ``sub`` (flow F)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from flask import Flask
from login_support import LoginPki, full_login, virtual_card
from provider_support import RelyingParty, enroll_test_resident
from sqlalchemy import func, select

from idp.card.testpki import RESIDENTS, ResidentCredentials
from idp.storage.base import db
from idp.storage.residents import CardCredential, Resident, get_resident

MOVED_TO = "石川県金沢市広坂１丁目１番１号"


def login_userinfo(
    rp: RelyingParty, login_pki: LoginPki, creds: ResidentCredentials
) -> tuple[dict, bool]:
    _, client = virtual_card(login_pki, creds)
    # prompt=login: every login here is a card login (the provider session would answer)
    request, params, outcome = full_login(rp, client, prompt="login")
    token = rp.token_request(params["code"][0], request.verifier).get_json()
    info = rp.userinfo(token["access_token"]).get_json()
    assert isinstance(info, dict)
    return info, outcome.enrolled


def residents(app: Flask) -> list[Resident]:
    with app.app_context():
        rows = list(db.session.scalars(select(Resident)))
        for row in rows:
            db.session.expunge(row)
        return rows


def credential_count(app: Flask) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(CardCredential)) or 0)


def test_enrollment_stores_verified_items_with_evidence(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    creds = login_pki.credentials("takahashi")
    before = datetime.now(UTC)
    info, enrolled = login_userinfo(rp, login_pki, creds)
    assert enrolled
    [resident] = residents(app)
    assert resident.name == "高橋　健一" and resident.name_substitution == "10000"
    assert resident.verified_at >= before - timedelta(seconds=1)
    assert creds.sign_certificate is not None
    evidence = resident.evidence
    assert evidence["serial_hex"] == f"{creds.sign_certificate.serial_number:x}"
    assert evidence["policy_oid"] == "1.2.392.200149.8.5.1.1.20"
    assert "JPKI for digital signature" in evidence["issuer"]
    assert len(evidence["cert_sha256"]) == 64
    assert credential_count(app) == 2
    assert info["family_name"] == "高橋" and info["given_name"] == "健一"


def test_renewed_card_keeps_the_sub_and_updates_the_address(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    old_card = login_pki.credentials("yamada")
    first, _ = login_userinfo(rp, login_pki, old_card)
    moved = replace(RESIDENTS["yamada"], address=MOVED_TO)
    new_card = login_pki.pki.issue(moved, now=datetime.now(UTC))
    assert new_card.auth_certificate.serial_number != old_card.auth_certificate.serial_number
    second, enrolled = login_userinfo(rp, login_pki, new_card)
    assert enrolled
    assert second["sub"] == first["sub"]
    assert second["address"]["formatted"] == MOVED_TO
    assert len(residents(app)) == 1
    assert credential_count(app) == 4
    # the new card now logs in with PIN1 only
    third, enrolled = login_userinfo(rp, login_pki, new_card)
    assert not enrolled and third["sub"] == first["sub"]


def test_different_person_is_a_new_resident(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    first, _ = login_userinfo(rp, login_pki, login_pki.credentials("yamada"))
    second, _ = login_userinfo(rp, login_pki, login_pki.credentials("suzuki"))
    assert first["sub"] != second["sub"]
    assert len(residents(app)) == 2


def test_same_name_birthdate_gender_with_two_candidates_does_not_guess(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    with app.app_context():
        enroll_test_resident(address="東京都千代田区霞が関一丁目")
        enroll_test_resident(address="大阪府大阪市北区中之島一丁目")
    login_userinfo(rp, login_pki, login_pki.credentials("yamada"))
    assert len(residents(app)) == 3


def test_two_candidates_one_with_the_same_address_is_relinked(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    with app.app_context():
        same = enroll_test_resident(address=RESIDENTS["yamada"].address).id
        enroll_test_resident(address="大阪府大阪市北区中之島一丁目")
    login_userinfo(rp, login_pki, login_pki.credentials("yamada"))
    assert len(residents(app)) == 2
    with app.app_context():
        resident = get_resident(same)
        assert resident is not None and len(resident.credentials) == 4


def test_stale_record_is_refreshed_with_the_signature_certificate(
    app: Flask, rp: RelyingParty, login_pki: LoginPki
) -> None:
    creds = login_pki.credentials("suzuki")
    first, _ = login_userinfo(rp, login_pki, creds)
    long_ago = datetime.now(UTC) - timedelta(days=400)
    with app.app_context():
        [row] = list(db.session.scalars(select(Resident)))
        row.verified_at = long_ago
        row.address = "古い住所"
        db.session.commit()
    second, enrolled = login_userinfo(rp, login_pki, creds)
    assert enrolled
    assert second["sub"] == first["sub"]
    assert second["address"]["formatted"] == RESIDENTS["suzuki"].address
    [resident] = residents(app)
    assert resident.verified_at > long_ago + timedelta(days=399)
    assert credential_count(app) == 2
