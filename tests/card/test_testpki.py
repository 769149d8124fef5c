from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto.core import UTF8String
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

from idp.card import oids
from idp.card.testpki import RESIDENTS, VARIANTS, ResidentCredentials, TestPki, fifth_birthday_after


def _verify_issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> None:
    certificate.verify_directly_issued_by(issuer)


def test_cas_are_shaped_like_jlis(pki: TestPki) -> None:
    for kind, ou in (
        ("auth", "JPKI for user authentication"),
        ("sign", "JPKI for digital signature"),
    ):
        ca = pki.ca(kind).certificate  # type: ignore[arg-type]
        assert ca.subject == ca.issuer
        assert ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "JPKI-TEST"
        assert ou in [
            a.value for a in ca.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        ]
        assert ca.public_key().key_size == 2048  # type: ignore[union-attr]
        ku = ca.extensions.get_extension_for_class(x509.KeyUsage)
        assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
        assert not ku.value.digital_signature
        bc = ca.extensions.get_extension_for_class(x509.BasicConstraints)
        assert bc.critical and bc.value.ca
        assert (ca.not_valid_after_utc - ca.not_valid_before_utc).days >= 3650
        _verify_issued_by(ca, ca)


def test_auth_certificate(pki: TestPki, yamada: ResidentCredentials) -> None:
    cert = yamada.auth_certificate
    _verify_issued_by(cert, pki.auth_ca.certificate)
    assert [a.oid for a in cert.subject] == [NameOID.COUNTRY_NAME, NameOID.COMMON_NAME]
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(cn, str) and len(cn) == 20 and cn.isalnum() and cn.upper() == cn
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.content_commitment
    policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier.dotted_string for p in policies] == [oids.AUTH_POLICY]
    ian = cert.extensions.get_extension_for_class(x509.IssuerAlternativeName).value
    (dirname,) = ian.get_values_for_type(x509.DirectoryName)
    assert (
        dirname.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "公的個人認証サービス"
    )
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    # The 5th birthday (1 April) after issuance, 23:59:59 JST.
    expected = fifth_birthday_after(date(1985, 4, 1), cert.not_valid_before_utc.date())
    assert cert.not_valid_after_utc == datetime(
        expected.year, expected.month, expected.day, 14, 59, 59, tzinfo=UTC
    )


def test_sign_certificate_carries_basic4_in_real_order(
    pki: TestPki, yamada: ResidentCredentials
) -> None:
    cert = yamada.sign_certificate
    assert cert is not None and yamada.sign_key is not None
    _verify_issued_by(cert, pki.sign_ca.certificate)
    assert [a.value for a in cert.subject.get_attributes_for_oid(NameOID.LOCALITY_NAME)] == [
        "Ishikawa",
        "Kaga-shi",
    ]
    policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies)
    assert policies.critical
    assert [p.policy_identifier.dotted_string for p in policies.value] == [oids.SIGN_POLICY]
    ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and ku.content_commitment
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert all(isinstance(n, x509.OtherName) for n in san)
    names = [n for n in san if isinstance(n, x509.OtherName)]
    assert [n.type_id.dotted_string for n in names] == list(oids.BASIC4_ORDER)
    values = {n.type_id.dotted_string: UTF8String.load(n.value).native for n in names}
    assert names[0].value[0] == 0x0C
    assert values[oids.BASIC4_NAME] == "山田　太郎"
    assert values[oids.BASIC4_BIRTHDATE] == "319850401"
    assert values[oids.BASIC4_SEX] == "1"
    assert values[oids.BASIC4_NAME_SUBSTITUTION] == "00000"
    assert values[oids.BASIC4_ADDRESS_SUBSTITUTION] == "0" * len(RESIDENTS["yamada"].address)
    assert cert.serial_number != yamada.auth_certificate.serial_number
    # The key really is the certificate's key.
    sig = yamada.sign_key.sign(b"x", padding.PKCS1v15(), hashes.SHA256())
    public_key = cert.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(sig, b"x", padding.PKCS1v15(), hashes.SHA256())


def test_children_get_no_signature_certificate(pki: TestPki) -> None:
    creds = pki.issue(RESIDENTS["kobayashi"])
    assert creds.sign_certificate is None and creds.sign_key is None


def test_fifth_birthday_after() -> None:
    assert fifth_birthday_after(date(1985, 4, 1), date(2026, 3, 31)) == date(2030, 4, 1)
    assert fifth_birthday_after(date(1985, 4, 1), date(2026, 4, 1)) == date(2031, 4, 1)
    assert fifth_birthday_after(date(2000, 2, 29), date(2026, 1, 1)) == date(2030, 2, 28)


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "good"])
def test_variants_break_both_certificates(pki: TestPki, variant: str) -> None:
    now = datetime.now(UTC)
    creds = pki.issue(RESIDENTS["suzuki"], variant=variant, now=now)
    pairs = (("auth", creds.auth_certificate), ("sign", creds.sign_certificate))
    for kind, cert in pairs:
        assert cert is not None
        ca = pki.ca(kind).certificate  # type: ignore[arg-type]
        if variant == "wrong_ca":
            assert cert.issuer == ca.subject
            with pytest.raises(Exception):  # noqa: B017 - the signature does not verify
                cert.verify_directly_issued_by(ca)
            continue
        cert.verify_directly_issued_by(ca)
        if variant == "expired":
            assert cert.not_valid_after_utc < now
        elif variant == "not_yet_valid":
            assert cert.not_valid_before_utc > now + timedelta(hours=1)
        elif variant == "wrong_policy":
            policy = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value[0]
            expected = oids.SIGN_POLICY if kind == "auth" else oids.AUTH_POLICY
            assert policy.policy_identifier.dotted_string == expected
        elif variant == "wrong_key_usage":
            ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
            assert not ku.digital_signature and ku.key_encipherment


def test_unknown_variant(pki: TestPki) -> None:
    with pytest.raises(ValueError, match="unknown variant"):
        pki.issue(RESIDENTS["yamada"], variant="nope")


def test_crl_signed_by_the_ca(pki: TestPki) -> None:
    now = datetime.now(UTC)
    crl = pki.crl("auth", [(1234, now, x509.ReasonFlags.key_compromise), (99, now, None)])
    assert crl.is_signature_valid(pki.auth_ca.certificate.public_key())  # type: ignore[arg-type]
    assert not crl.is_signature_valid(pki.sign_ca.certificate.public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(1234)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.key_compromise
    )
    assert crl.next_update_utc is not None and crl.next_update_utc > now


def test_save_load_round_trip(pki: TestPki, yamada: ResidentCredentials, tmp_path: Path) -> None:
    pki.issue(RESIDENTS["yamada"], variant="wrong_ca")
    pki.save(tmp_path)
    loaded = TestPki.load(tmp_path)
    assert loaded.auth_ca.certificate == pki.auth_ca.certificate
    assert loaded.sign_ca.private_key.private_numbers() == pki.sign_ca.private_key.private_numbers()
    again = loaded.issue(RESIDENTS["yamada"])
    assert again.auth_certificate == yamada.auth_certificate
    assert again.sign_certificate == yamada.sign_certificate
    assert again.auth_key.private_numbers() == yamada.auth_key.private_numbers()
    assert loaded.rogue_auth_ca is not None
    assert (tmp_path / "auth-ca.key.pem").stat().st_mode & 0o077 == 0


def test_load_or_generate(tmp_path: Path) -> None:
    first = TestPki.load_or_generate(tmp_path / "pki")
    second = TestPki.load_or_generate(tmp_path / "pki")
    assert first.auth_ca.certificate == second.auth_ca.certificate
