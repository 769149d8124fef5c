"""Consent rules: when the page is needed and what approving remembers."""

from __future__ import annotations

from flask import Flask
from provider_support import RelyingParty, enroll_test_resident

from idp.account.consent import consent_items, consent_required, remember_consent
from idp.storage.consents import get_consent, revoke_consent


def test_consent_rules(app: Flask, rp: RelyingParty) -> None:
    with app.app_context():
        resident = enroll_test_resident()
        rid, cid = resident.id, rp.client_id
        assert consent_required(rid, cid, ["name"], ())
        assert not consent_required(rid, cid, [], ())
        assert consent_required(rid, cid, [], ("consent",))
        remember_consent(rid, cid, ["name", "address"])
        assert not consent_required(rid, cid, ["address"], ())
        assert not consent_required(rid, cid, ["name", "address"], ("login",))
        assert consent_required(rid, cid, ["name"], ("consent",))
        assert consent_required(rid, cid, ["name", "gender"], ())
        remember_consent(rid, cid, ["gender"])
        consent = get_consent(rid, cid)
        assert consent is not None and consent.scopes == ["address", "gender", "name"]
        assert revoke_consent(rid, cid)
        assert consent_required(rid, cid, ["name"], ())


def test_consent_items_follow_a_fixed_order_with_values(app: Flask) -> None:
    with app.app_context():
        resident = enroll_test_resident(gender="female")
        items = consent_items(resident, ["gender", "name"], "ja")
        assert [(i.scope, i.label, i.value) for i in items] == [
            ("name", "氏名", "山田　太郎"),
            ("gender", "性別", "女性"),
        ]
        [english] = consent_items(resident, ["birthdate"], "en")
        assert (english.label, english.value) == ("Date of birth", "1 April 1985")
