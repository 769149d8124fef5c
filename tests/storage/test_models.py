"""Models and typed queries on SQLite and PostgreSQL, schema built by the Alembic migration."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from flask import Flask
from provider_support import enroll_test_resident
from sqlalchemy import inspect
from sqlalchemy.exc import StatementError

from idp.storage.audit import list_releases, record_release
from idp.storage.base import db
from idp.storage.clients import Client, add_client
from idp.storage.consents import get_consent, list_consents, put_consent, revoke_consent
from idp.storage.models import Base
from idp.storage.residents import (
    Basic4Record,
    CertificateFacts,
    enroll_resident,
    find_resident_by_auth_certificate,
    find_residents_by_identity,
    get_resident,
    link_card,
    mark_credential_used,
)


def facts(fingerprint: str, *, kind: str = "auth") -> CertificateFacts:
    return CertificateFacts(
        sha256_hex=fingerprint,
        issuer=f"C=JP, O=JPKI-TEST, OU={kind}",
        serial_hex="0a1b",
        not_after=datetime(2030, 1, 1, tzinfo=UTC),
        policy_oid="1.2.392.200149.8.5.1.3.30",
    )


BASIC4 = Basic4Record(
    name="鈴木　花子",
    address="石川県金沢市広坂１丁目１番１号",
    birthdate=date(1952, 11, 20),
    gender="female",
    sex_code="2",
)


def test_migration_builds_exactly_the_models(app: Flask) -> None:
    with app.app_context():
        inspector = inspect(db.engine)
        tables = set(inspector.get_table_names()) - {"alembic_version"}
        assert tables == set(Base.metadata.tables)
        for table in tables:
            migrated = {column["name"] for column in inspector.get_columns(table)}
            assert migrated == set(Base.metadata.tables[table].columns.keys()), table


def test_no_my_number_anywhere_in_the_schema(app: Flask) -> None:
    with app.app_context():
        inspector = inspect(db.engine)
        for table in inspector.get_table_names():
            for column in inspector.get_columns(table):
                name = column["name"].lower()
                assert "my_number" not in name and "mynumber" not in name
                assert "individual_number" not in name and "kojin" not in name


def test_enroll_and_find_by_authentication_certificate(app: Flask) -> None:
    verified = datetime(2026, 4, 1, 9, 30, tzinfo=timezone(timedelta(hours=9)))
    with app.app_context():
        resident = enroll_resident(
            basic4=BASIC4,
            auth_certificate=facts("AA" * 32),
            sign_certificate=facts("bb" * 32, kind="sign"),
            verified_at=verified,
        )
        resident_id = resident.id
        assert len(resident_id) == 36
    with app.app_context():
        found = find_resident_by_auth_certificate("aa" * 32)
        assert found is not None and found.id == resident_id
        assert found.verified_at == verified
        assert found.verified_at.tzinfo is not None
        assert found.evidence["serial_hex"] == "0a1b"
        assert found.evidence["cert_sha256"] == "bb" * 32
        assert found.birthdate == date(1952, 11, 20)
        # the signature certificate is not a login credential
        assert find_resident_by_auth_certificate("bb" * 32) is None
        assert find_resident_by_auth_certificate("cc" * 32) is None


def test_refresh_and_card_renewal_keep_the_resident(app: Flask) -> None:
    with app.app_context():
        resident_id = enroll_resident(
            basic4=BASIC4,
            auth_certificate=facts("01" * 32),
            sign_certificate=facts("02" * 32, kind="sign"),
            verified_at=datetime.now(UTC),
        ).id
        moved = Basic4Record(**{**BASIC4.__dict__, "address": "石川県加賀市大聖寺南町ニ４１番地"})
        enroll_resident(
            basic4=moved,
            auth_certificate=facts("03" * 32),
            sign_certificate=facts("04" * 32, kind="sign"),
            verified_at=datetime.now(UTC),
            resident_id=resident_id,
        )
        (match,) = find_residents_by_identity(
            name="鈴木　花子", birthdate=date(1952, 11, 20), gender="female"
        )
        assert match.id == resident_id
        assert match.address == "石川県加賀市大聖寺南町ニ４１番地"
        for fingerprint in ("01" * 32, "03" * 32):
            found = find_resident_by_auth_certificate(fingerprint)
            assert found is not None and found.id == resident_id
        with pytest.raises(LookupError):
            enroll_resident(
                basic4=BASIC4,
                auth_certificate=facts("05" * 32),
                sign_certificate=facts("06" * 32, kind="sign"),
                verified_at=datetime.now(UTC),
                resident_id="no-such-resident",
            )


def test_link_card_and_mark_used(app: Flask) -> None:
    with app.app_context():
        resident_id = enroll_test_resident().id
        link_card(resident_id, facts("77" * 32), "auth")
        mark_credential_used("77" * 32)
        resident = get_resident(resident_id)
        assert resident is not None
        used = [c for c in resident.credentials if c.cert_sha256 == "77" * 32]
        assert used[0].last_used_at is not None
        with pytest.raises(ValueError, match="kind"):
            link_card(resident_id, facts("78" * 32), "other")
        with pytest.raises(LookupError):
            link_card("nobody", facts("79" * 32), "auth")


def test_naive_datetimes_are_refused(app: Flask) -> None:
    with app.app_context():
        with pytest.raises(StatementError, match="naive"):
            enroll_resident(
                basic4=BASIC4,
                auth_certificate=facts("a1" * 32),
                sign_certificate=facts("a2" * 32, kind="sign"),
                verified_at=datetime(2026, 1, 1),
            )
        db.session.rollback()


def test_consent_is_remembered_replaced_and_revoked(app: Flask) -> None:
    with app.app_context():
        resident_id = enroll_test_resident().id
        add_client(
            Client(
                client_id="forms",
                name="電子申請",
                redirect_uris=["https://forms.example.jp/cb"],
                token_endpoint_auth_method="none",
                allowed_scopes=["name"],
            )
        )
        assert get_consent(resident_id, "forms") is None
        put_consent(resident_id, "forms", ["name", "birthdate", "name"])
        consent = get_consent(resident_id, "forms")
        assert consent is not None and consent.scopes == ["birthdate", "name"]
        put_consent(resident_id, "forms", ["gender"])
        consent = get_consent(resident_id, "forms")
        assert consent is not None and consent.scopes == ["gender"]
        assert revoke_consent(resident_id, "forms") is True
        assert revoke_consent(resident_id, "forms") is False
        assert get_consent(resident_id, "forms") is None
        assert list_consents(resident_id) == []
        assert len(list_consents(resident_id, include_revoked=True)) == 1


def test_releases_are_listed_newest_first(app: Flask) -> None:
    with app.app_context():
        resident_id = enroll_test_resident().id
        first = datetime(2026, 1, 1, tzinfo=UTC)
        record_release(
            resident_id=resident_id,
            client_id="a",
            items=["name"],
            request_id="r1",
            released_at=first,
        )
        record_release(
            resident_id=resident_id,
            client_id="b",
            items=[],
            request_id="r2",
            released_at=first + timedelta(minutes=1),
        )
        releases = list_releases(resident_id)
        assert [r.request_id for r in releases] == ["r2", "r1"]
        assert releases[1].items == ["name"]
        assert releases[1].released_at == first
