"""The forms tool of the demo relying party, with Flask's test client (no provider needed).

The resident's session is set as the login leaves it (verified claims from userinfo); the CMS
checks run on CMS built by the provider's own assembler around a software RS256 signature with
a test resident's signature key (what the card computes).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from flask import Flask
from flask.testing import FlaskClient
from joserfc.jwk import ECKey
from login_support import LoginPki

from idp.card.testpki import ResidentCredentials
from idp.oidc.sign_transactions import assemble_cms, signed_attributes
from relying_party_demo import create_app
from relying_party_demo.cms_check import SignatureCheckError, verify_detached_cms
from relying_party_demo.form_parts import canonical_document, document_digest, health_check_form
from relying_party_demo.form_store import FormStore, Submission

FORM = "ningen-dock"
YAMADA = {
    "name": "山田　太郎",
    "address": {"formatted": "石川県加賀市大聖寺南町ニ４１番地", "country": "JP"},
    "birthdate": "1985-04-01",
    "gender": "male",
}
VERIFIED_AT = "2026-11-29T09:53:00Z"
ANSWERS = {
    "exam_date": "2027-01-15",
    "clinic": "加賀市民病院",
    "insurance": "国民健康保険",
    "bank_account": "北國銀行 大聖寺支店 普通 1234567",
}


@pytest.fixture
def rp_app(tmp_path: Path, login_pki: LoginPki) -> Flask:
    key = ECKey.generate_key("P-256", parameters={"kid": "demo-rp-1"}, private=True)
    key_file = tmp_path / "rp-key.json"
    key_file.write_text(json.dumps(key.as_dict(private=True)))
    return create_app(
        {
            "ISSUER": "http://127.0.0.1:9",  # never contacted by these tests
            "CLIENT_ID": "demo-rp",
            "KEY_FILE": str(key_file),
            "REDIRECT_URI": "http://127.0.0.1:5001/callback",
            "SECRET_KEY": "rp-test-secret-key-rp-test-secret-key",
            "FORMS_DB": str(tmp_path / "forms.sqlite3"),
            "SIGN_CA_FILE": str(login_pki.sign_anchor),
            "TESTING": True,
        }
    )


def logged_in(app: Flask, claims: dict[str, Any] | None = None) -> FlaskClient:
    client = app.test_client()
    userinfo = dict(claims or YAMADA)
    userinfo["verified_claims"] = {
        "verification": {"trust_framework": "jp_jpki", "time": VERIFIED_AT},
        "claims": dict(claims or YAMADA),
    }
    with client.session_transaction() as session:
        session["profile"] = {
            "sub": "pairwise-sub-1",
            "acr": "urn:myna-idp:acr:jpki-card-pin",
            "amr": ["hwk", "sc", "pin", "mfa"],
            "auth_time": 1_800_000_000,
            "claims": userinfo,
        }
    return client


def test_the_health_check_form_is_seeded_and_needs_a_login(rp_app: Flask) -> None:
    client = rp_app.test_client()
    listing = client.get("/forms").get_data(as_text=True)
    assert "人間ドック助成金申請" in listing and f'data-form="{FORM}"' in listing
    english = client.get("/forms?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in english and "Health check" in english
    response = client.get(f"/forms/{FORM}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next=/forms/{FORM}"
    assert client.get("/forms/no-such-form").status_code == 404


def test_identity_block_fills_itself_read_only_with_the_badge(rp_app: Flask) -> None:
    page = logged_in(rp_app).get(f"/forms/{FORM}").get_data(as_text=True)
    assert "マイナンバーカードで確認済み" in page
    assert f'<time id="verified-at" datetime="{VERIFIED_AT}">' in page
    for item, value in (
        ("name", "山田　太郎"),
        ("address", "石川県加賀市大聖寺南町ニ４１番地"),
        ("birthdate", "1985-04-01"),
        ("gender", "男性"),
    ):
        assert f'id="identity-{item}" data-claim="{item}" readonly' in page
        assert f'value="{value}"' in page
    # the identity inputs have no name: a browser does not even post them
    assert 'name="name"' not in page and 'name="birthdate"' not in page
    for label in ("受診予定日", "受診機関", "加入保険", "振込口座"):
        assert label in page


def test_without_verified_claims_the_badge_shows_the_login_time(rp_app: Flask) -> None:
    client = rp_app.test_client()
    with client.session_transaction() as session:
        session["profile"] = {"sub": "s", "auth_time": 1_800_000_000, "claims": dict(YAMADA)}
    page = client.get(f"/forms/{FORM}").get_data(as_text=True)
    shown = '<time id="verified-at" datetime="2027-01-15T08:00:00Z">2027年1月15日 17:00</time>'
    assert shown in page


def test_answers_are_checked(rp_app: Flask) -> None:
    client = logged_in(rp_app)
    bad = {**ANSWERS, "exam_date": "2027-02-30", "insurance": "健康になる保険", "clinic": ""}
    response = client.post(f"/forms/{FORM}/review", data=bad)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    for key in ("exam_date", "insurance", "clinic"):
        assert f'data-error="{key}"' in page
    assert 'data-error="bank_account"' not in page


def test_forged_identity_fields_are_ignored(rp_app: Flask) -> None:
    client = logged_in(rp_app)
    forged = {**ANSWERS, "name": "偽物　一郎", "birthdate": "2000-01-01", "identity": "x"}
    page = client.post(f"/forms/{FORM}/review", data=forged).get_data(as_text=True)
    assert "偽物" not in page and "2000-01-01" not in page
    assert "山田　太郎" in page and "1985-04-01" in page
    with client.session_transaction() as session:
        draft = session["drafts"][FORM]
    assert draft["answers"] == ANSWERS  # nothing but the form's own parts


def test_a_submission_without_a_signature_is_refused(rp_app: Flask) -> None:
    client = logged_in(rp_app)
    response = client.post(f"/forms/{FORM}/submit", data=ANSWERS)
    assert response.status_code == 400
    assert 'id="error-code">signature_required<' in response.get_data(as_text=True)
    # signing needs the reviewed draft of this session
    response = client.post(f"/forms/{FORM}/sign", data={"submission_id": "made-up"})
    assert response.status_code == 400
    assert 'id="error-code">no_draft<' in response.get_data(as_text=True)
    assert FormStore(rp_app.config["FORMS_DB"]).submissions() == []


def test_the_document_is_canonical_json() -> None:
    form = health_check_form()
    identity = {"name": "山田　太郎", "birthdate": "1985-04-01"}
    one = canonical_document(
        form=form, submission_id="abc", identity=identity, answers=ANSWERS, sub="s"
    )
    two = canonical_document(
        form=form,
        submission_id="abc",
        identity=dict(reversed(identity.items())),
        answers=dict(reversed(ANSWERS.items())),
        sub="s",
    )
    assert one == two and "山田　太郎".encode() in one
    assert b'":' in one and b'": ' not in one and b", " not in one  # no insignificant whitespace
    assert json.loads(one)["applicant"] == {**identity, "sub": "s"}


# -- the RP's own CMS check --------------------------------------------------------------------


def cms_for(creds: ResidentCredentials, digest: bytes, when: datetime | None = None) -> bytes:
    """What the provider returns: the card's RS256 over the signed attributes, assembled."""
    assert creds.sign_key is not None and creds.sign_certificate is not None
    to_be_signed = signed_attributes(digest, when or datetime.now(UTC))
    signature = creds.sign_key.sign(to_be_signed, padding.PKCS1v15(), hashes.SHA256())
    return assemble_cms(
        to_be_signed=to_be_signed, signature=signature, certificate=creds.sign_certificate
    )


def check(login_pki: LoginPki, cms: bytes, digest: bytes, name: str = "山田　太郎") -> Any:
    return verify_detached_cms(
        cms,
        document_digest=digest,
        sign_ca=login_pki.pki.sign_ca.certificate,
        expected_name=name,
        expected_birthdate="1985-04-01",
    )


def test_cms_check_accepts_the_residents_signature(login_pki: LoginPki) -> None:
    digest = document_digest(b"document")
    verified = check(login_pki, cms_for(login_pki.credentials("yamada"), digest), digest)
    assert verified.signer_name == "山田　太郎"
    assert verified.signer_birthdate.isoformat() == "1985-04-01"
    assert abs(verified.signing_time - datetime.now(UTC)) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("other_document", "digest_mismatch"),
        ("other_resident", "signer_mismatch"),
        ("wrong_ca", "certificate_untrusted"),
        ("tampered", "signature_invalid"),
        ("garbage", "cms_malformed"),
        ("expired", "certificate_expired"),
    ],
)
def test_cms_check_refuses(login_pki: LoginPki, case: str, code: str) -> None:
    digest = document_digest(b"document")
    yamada = login_pki.credentials("yamada")
    if case == "other_document":
        cms = cms_for(yamada, document_digest(b"another document"))
    elif case == "other_resident":
        cms = cms_for(login_pki.credentials("suzuki"), digest)
    elif case == "wrong_ca":
        cms = cms_for(login_pki.credentials("yamada", "wrong_ca"), digest)
    elif case == "expired":
        cms = cms_for(login_pki.credentials("yamada", "expired"), digest)
    elif case == "tampered":
        good = bytearray(cms_for(yamada, digest))
        good[-5] ^= 0x01  # inside the signature value at the end of the SignerInfo
        cms = bytes(good)
    else:
        cms = b"\x30\x03\x02\x01\x00"
    with pytest.raises(SignatureCheckError) as raised:
        check(login_pki, cms, digest)
    assert raised.value.code == code


# -- staff ---------------------------------------------------------------------------------


def test_staff_list_downloads_and_csv(rp_app: Flask, login_pki: LoginPki) -> None:
    form = health_check_form()
    identity = {"name": "山田　太郎", "address": "石川県加賀市", "birthdate": "1985-04-01"}
    document = canonical_document(
        form=form, submission_id="sub-1", identity=identity, answers=ANSWERS, sub="s"
    )
    cms = cms_for(login_pki.credentials("yamada"), document_digest(document))
    verified = check(login_pki, cms, document_digest(document))
    store = FormStore(rp_app.config["FORMS_DB"])
    submission = Submission(
        submission_id="sub-1",
        form_id=form.form_id,
        sub="s",
        identity=identity,
        answers=ANSWERS,
        document=document,
        digest_hex=document_digest(document).hex(),
        cms=cms,
        signer_name=verified.signer_name,
        signer_serial=verified.serial_hex,
        signed_at="2026-11-29T10:00:00Z",
        submitted_at="2026-11-29T10:00:01Z",
    )
    assert store.add_submission(submission)
    assert not store.add_submission(submission)  # idempotent: the same id is kept once
    client = rp_app.test_client()
    page = client.get("/staff").get_data(as_text=True)
    assert 'data-submission="sub-1"' in page and "山田　太郎" in page
    assert "2026-11-29T10:00:00Z" in page
    assert client.get("/staff/submissions/sub-1.p7s").data == cms
    assert client.get("/staff/submissions/sub-1.json").data == document
    assert client.get("/staff/submissions/nope.p7s").status_code == 404
    exported = client.get(f"/staff/forms/{FORM}/submissions.csv")
    assert exported.mimetype == "text/csv"
    raw = exported.data
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:3] == ["受付番号", "提出日時", "署名者"] and "受診機関" in rows[0]
    assert rows[1][0] == "sub-1" and rows[1][2] == "山田　太郎" and "加賀市民病院" in rows[1]


def test_staff_define_a_form_from_parts(rp_app: Flask) -> None:
    client = rp_app.test_client()
    definition = {
        "form_id": "bicycle-parking",
        "title_ja": "駐輪場利用申請",
        "title_en": "Bicycle parking",
        "parts": [
            {"key": "identity", "kind": "identity", "label_ja": "申請者"},
            {"key": "start", "kind": "date", "label_ja": "利用開始日"},
            {"key": "place", "kind": "choice", "label_ja": "駐輪場", "options": ["駅前", "市役所"]},
            {"key": "note", "kind": "text", "label_ja": "備考", "required": False},
        ],
    }
    response = client.post("/staff/forms", data={"definition": json.dumps(definition)})
    assert response.status_code == 302
    assert "駐輪場利用申請" in client.get("/forms").get_data(as_text=True)
    page = logged_in(rp_app).get("/forms/bicycle-parking").get_data(as_text=True)
    assert "マイナンバーカードで確認済み" in page and "駅前" in page
    for broken in (
        "not json",
        json.dumps({**definition, "parts": [{"key": "x", "kind": "choice", "label_ja": "x"}]}),
        json.dumps({**definition, "parts": [{"key": "x", "kind": "photo", "label_ja": "x"}]}),
    ):
        refused = client.post("/staff/forms", data={"definition": broken})
        assert refused.status_code == 400 and 'id="definition-error"' in refused.get_data(
            as_text=True
        )


def test_the_session_cookie_stays_small_with_the_longest_answers(rp_app: Flask) -> None:
    client = logged_in(rp_app)
    longest = {**ANSWERS, "clinic": "病" * 200, "bank_account": "口" * 200}
    response = client.post(f"/forms/{FORM}/review", data=longest)
    assert response.status_code == 200
    cookie = response.headers["Set-Cookie"]
    assert len(cookie.encode()) < 4093, len(cookie)  # browsers drop larger cookies
