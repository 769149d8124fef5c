from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from certfactory import (
    auth_extensions,
    build,
    der,
    extension,
    key_usage,
    policies,
    resign,
    sign_extensions,
    tlv,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp.card import oids
from idp.card.certs import describe
from idp.card.challenge import Challenge, new_nonce
from idp.card.testpki import RESIDENTS, ResidentCredentials, TestPki, make_ca
from idp.card.validation import (
    CHECKS,
    AlgorithmUnsupportedError,
    Basic4MissingError,
    CertificateExpiredError,
    CertificateKeyUnsupportedError,
    CertificateMalformedError,
    CertificateNotYetValidError,
    CertificateRevokedError,
    CertificateUnknownCriticalExtensionError,
    CertificateUntrustedError,
    CertificateValidationError,
    CertificateWeakAlgorithmError,
    CertificateWrongKeyUsageError,
    CertificateWrongPolicyError,
    CertificateWrongPurposeError,
    CertPurpose,
    CrlRevocationChecker,
    RevocationUnavailableError,
    SignatureInvalidError,
    TrustConfig,
    validate_certificate,
    verify_challenge_signature,
)
from idp.card.validation import errors as validation_errors

AUTH = CertPurpose.AUTHENTICATION
SIGN = CertPurpose.SIGNATURE


@pytest.fixture(scope="session")
def trust(pki: TestPki) -> TrustConfig:
    return TrustConfig(
        auth_anchors=(pki.auth_ca.certificate,),
        sign_anchors=(pki.sign_ca.certificate,),
        revocation_required=False,
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _validate(
    certificate: x509.Certificate | bytes,
    purpose: CertPurpose,
    trust: TrustConfig,
    **kwargs: object,
) -> object:
    raw = certificate if isinstance(certificate, bytes) else der(certificate)
    return validate_certificate(raw, purpose=purpose, trust=trust, now=_now(), **kwargs)  # type: ignore[arg-type]


def test_check_table_order() -> None:
    assert [name for name, _ in CHECKS] == [
        "parse",
        "chain",
        "validity",
        "critical_extensions",
        "key_usage",
        "policy",
        "personal_data",
        "challenge_signature",
        "revocation",
    ]


def test_error_codes_are_unique_and_snake_case() -> None:
    classes = [
        cls
        for cls in vars(validation_errors).values()
        if isinstance(cls, type) and issubclass(cls, CertificateValidationError)
    ]
    codes = [cls.code for cls in classes]
    assert len(classes) >= 20
    assert len(set(codes)) == len(codes)
    assert all(code.replace("_", "").isalnum() and code.islower() for code in codes)


def test_good_auth_certificate(
    pki: TestPki, trust: TrustConfig, yamada: ResidentCredentials
) -> None:
    now = _now()
    result = validate_certificate(der(yamada.auth_certificate), purpose=AUTH, trust=trust, now=now)
    assert result.certificate == yamada.auth_certificate
    assert result.issuer == pki.auth_ca.certificate
    assert result.purpose is AUTH
    assert result.serial_number == yamada.auth_certificate.serial_number
    assert result.policy_oid == oids.AUTH_POLICY
    assert result.not_after == yamada.auth_certificate.not_valid_after_utc
    assert result.basic4 is None
    assert result.revocation_status == "not_configured"


def test_no_revocation_source_fails_closed_unless_waived(
    pki: TestPki, yamada: ResidentCredentials
) -> None:
    anchors = {"auth_anchors": (pki.auth_ca.certificate,), "sign_anchors": ()}
    required = TrustConfig(**anchors)  # type: ignore[arg-type]
    with pytest.raises(RevocationUnavailableError, match="no revocation source"):
        validate_certificate(der(yamada.auth_certificate), purpose=AUTH, trust=required, now=_now())
    waived = TrustConfig(**anchors, revocation_required=False)  # type: ignore[arg-type]
    result = validate_certificate(
        der(yamada.auth_certificate), purpose=AUTH, trust=waived, now=_now()
    )
    assert result.revocation_status == "not_configured"


def test_good_sign_certificate(
    pki: TestPki, trust: TrustConfig, yamada: ResidentCredentials
) -> None:
    assert yamada.sign_certificate is not None
    result = validate_certificate(
        der(yamada.sign_certificate), purpose=SIGN, trust=trust, now=_now()
    )
    assert result.issuer == pki.sign_ca.certificate
    assert result.policy_oid == oids.SIGN_POLICY
    assert result.basic4 is not None and result.basic4.name == "山田　太郎"


@pytest.mark.parametrize(
    ("variant", "error", "code"),
    [
        ("expired", CertificateExpiredError, "certificate_expired"),
        ("not_yet_valid", CertificateNotYetValidError, "certificate_not_yet_valid"),
        ("wrong_ca", CertificateUntrustedError, "certificate_untrusted"),
        ("wrong_policy", CertificateWrongPolicyError, "certificate_wrong_policy"),
        ("wrong_key_usage", CertificateWrongKeyUsageError, "certificate_wrong_key_usage"),
    ],
)
@pytest.mark.parametrize("purpose", [AUTH, SIGN])
def test_variants_fail_with_their_error(
    pki: TestPki,
    trust: TrustConfig,
    variant: str,
    error: type[CertificateValidationError],
    code: str,
    purpose: CertPurpose,
) -> None:
    creds = pki.issue(RESIDENTS["suzuki"], variant=variant)
    certificate = creds.auth_certificate if purpose is AUTH else creds.sign_certificate
    assert certificate is not None
    with pytest.raises(error) as info:
        _validate(certificate, purpose, trust)
    assert type(info.value) is error
    assert info.value.code == code


def test_sign_certificate_for_login_is_wrong_purpose(
    trust: TrustConfig, yamada: ResidentCredentials
) -> None:
    assert yamada.sign_certificate is not None
    with pytest.raises(CertificateWrongPurposeError) as info:
        _validate(yamada.sign_certificate, AUTH, trust)
    assert info.value.code == "certificate_wrong_purpose"
    with pytest.raises(CertificateWrongPurposeError):
        _validate(yamada.auth_certificate, SIGN, trust)


def test_wrong_purpose_by_policy_under_one_ca(pki: TestPki) -> None:
    """Even with one CA for both purposes, the policy tells auth and sign apart."""
    trust = TrustConfig(
        auth_anchors=(pki.auth_ca.certificate,),
        sign_anchors=(pki.auth_ca.certificate,),
        revocation_required=False,
    )
    sign_like = build(pki.auth_ca, sign_extensions())
    with pytest.raises(CertificateWrongPolicyError, match="other JPKI purpose"):
        _validate(sign_like, AUTH, trust)
    auth_like = build(
        pki.auth_ca,
        [
            (key_usage(digital_signature=True, content_commitment=True), True),
            (policies(oids.AUTH_POLICY), True),
        ],
    )
    with pytest.raises(CertificateWrongPolicyError, match="other JPKI purpose"):
        _validate(auth_like, SIGN, trust)


def test_three_ca_generations_with_one_dn(pki: TestPki) -> None:
    generations = [make_ca("auth") for _ in range(3)]
    assert len({g.certificate.subject for g in generations}) == 1
    second = TestPki(auth_ca=generations[1], sign_ca=pki.sign_ca)
    creds = second.issue(RESIDENTS["tanaka"], now=_now())
    anchors = tuple(g.certificate for g in generations)
    trust = TrustConfig(
        auth_anchors=anchors, sign_anchors=(pki.sign_ca.certificate,), revocation_required=False
    )
    result = validate_certificate(
        der(creds.auth_certificate), purpose=AUTH, trust=trust, now=_now()
    )
    assert result.issuer == generations[1].certificate
    without = TrustConfig(
        auth_anchors=(anchors[0], anchors[2]),
        sign_anchors=(pki.sign_ca.certificate,),
        revocation_required=False,
    )
    with pytest.raises(CertificateUntrustedError):
        validate_certificate(der(creds.auth_certificate), purpose=AUTH, trust=without, now=_now())


def test_anchor_outside_its_validity(
    pki: TestPki, yamada: ResidentCredentials, trust: TrustConfig
) -> None:
    later = pki.auth_ca.certificate.not_valid_after_utc + timedelta(days=1)
    with pytest.raises(CertificateUntrustedError, match="validity"):
        validate_certificate(der(yamada.auth_certificate), purpose=AUTH, trust=trust, now=later)


def test_clock_skew(pki: TestPki, trust: TrustConfig) -> None:
    now = _now()
    soon = build(pki.auth_ca, auth_extensions(), not_before=now + timedelta(minutes=3))
    just_expired = build(
        pki.auth_ca,
        auth_extensions(),
        not_before=now - timedelta(days=1),
        not_after=now - timedelta(minutes=3),
    )
    for certificate in (soon, just_expired):
        validate_certificate(der(certificate), purpose=AUTH, trust=trust, now=now)
    strict = TrustConfig(
        auth_anchors=trust.auth_anchors,
        sign_anchors=trust.sign_anchors,
        clock_skew=timedelta(0),
        revocation_required=False,
    )
    with pytest.raises(CertificateNotYetValidError) as not_yet:
        validate_certificate(der(soon), purpose=AUTH, trust=strict, now=now)
    assert not_yet.value.not_before == soon.not_valid_before_utc
    with pytest.raises(CertificateExpiredError) as expired:
        validate_certificate(der(just_expired), purpose=AUTH, trust=strict, now=now)
    assert expired.value.not_after == just_expired.not_valid_after_utc


def test_weak_signature_algorithm(pki: TestPki, trust: TrustConfig) -> None:
    base = build(pki.auth_ca, auth_extensions())
    certificate = resign(base, pki.auth_ca, hash_algorithm=hashes.SHA1())
    with pytest.raises(CertificateWeakAlgorithmError):
        _validate(certificate, AUTH, trust)


def test_unsupported_keys(pki: TestPki, trust: TrustConfig) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(CertificateKeyUnsupportedError):
        _validate(build(pki.auth_ca, auth_extensions(), key=small), AUTH, trust)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(pki.auth_ca.certificate.subject)
        .public_key(ec_key.public_key())
        .serial_number(1)
        .not_valid_before(_now() - timedelta(days=1))
        .not_valid_after(_now() + timedelta(days=1))
        .sign(pki.auth_ca.private_key, hashes.SHA256())
    )
    with pytest.raises(CertificateKeyUnsupportedError) as info:
        _validate(certificate, AUTH, trust)
    assert info.value.code == "certificate_key_unsupported"


def test_unknown_critical_extension(pki: TestPki, trust: TrustConfig) -> None:
    certificate = build(
        pki.auth_ca,
        [
            *auth_extensions(),
            (x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.5"), b"\x05\x00"), True),
        ],
    )
    with pytest.raises(CertificateUnknownCriticalExtensionError) as info:
        _validate(certificate, AUTH, trust)
    assert info.value.oid == "1.2.3.4.5"
    noncritical = build(
        pki.auth_ca,
        [
            *auth_extensions(),
            (x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4.5"), b"\x05\x00"), False),
        ],
    )
    _validate(noncritical, AUTH, trust)


@pytest.mark.parametrize(
    ("extensions", "message"),
    [
        ([(policies(oids.AUTH_POLICY), False)], "no keyUsage"),
        (
            [(key_usage(key_encipherment=True), True), (policies(oids.AUTH_POLICY), False)],
            "digitalSignature",
        ),
        (
            [
                (key_usage(digital_signature=True, key_cert_sign=True), True),
                (policies(oids.AUTH_POLICY), False),
            ],
            "certificate or CRL signing",
        ),
        (
            [
                (key_usage(digital_signature=True), True),
                (policies(oids.AUTH_POLICY), False),
                (x509.BasicConstraints(ca=True, path_length=None), True),
            ],
            "CA certificate",
        ),
    ],
)
def test_key_usage_failures(
    pki: TestPki,
    trust: TrustConfig,
    extensions: list[tuple[x509.ExtensionType, bool]],
    message: str,
) -> None:
    with pytest.raises(CertificateWrongKeyUsageError, match=message):
        _validate(build(pki.auth_ca, extensions), AUTH, trust)


def test_sign_certificate_needs_non_repudiation(pki: TestPki, trust: TrustConfig) -> None:
    extensions = sign_extensions()
    extensions[0] = (key_usage(digital_signature=True), True)
    with pytest.raises(CertificateWrongKeyUsageError, match="nonRepudiation"):
        _validate(build(pki.sign_ca, extensions), SIGN, trust)


def test_policy_failures(pki: TestPki, trust: TrustConfig) -> None:
    no_policy = build(pki.auth_ca, [(key_usage(digital_signature=True), True)])
    with pytest.raises(CertificateWrongPolicyError, match="no certificatePolicies"):
        _validate(no_policy, AUTH, trust)
    other = build(
        pki.auth_ca, [(key_usage(digital_signature=True), True), (policies("1.2.3"), False)]
    )
    with pytest.raises(CertificateWrongPolicyError):
        _validate(other, AUTH, trust)
    extensions = sign_extensions()
    extensions[1] = (policies(oids.SIGN_POLICY), False)
    with pytest.raises(CertificateWrongPolicyError, match="not critical"):
        _validate(build(pki.sign_ca, extensions), SIGN, trust)


def test_test_card_policy_is_accepted_only_when_configured(
    pki: TestPki, trust: TrustConfig
) -> None:
    extensions = sign_extensions()
    extensions[1] = (policies("1.2.3", oids.TEST_SIGN_POLICY), True)
    certificate = build(pki.sign_ca, extensions)
    with pytest.raises(CertificateWrongPolicyError):
        _validate(certificate, SIGN, trust)
    test_cards = TrustConfig(
        auth_anchors=trust.auth_anchors,
        sign_anchors=trust.sign_anchors,
        sign_policies=frozenset({oids.SIGN_POLICY, oids.TEST_SIGN_POLICY}),
        revocation_required=False,
    )
    result = validate_certificate(der(certificate), purpose=SIGN, trust=test_cards, now=_now())
    assert result.policy_oid == oids.TEST_SIGN_POLICY


def test_sign_certificate_without_basic4(pki: TestPki, trust: TrustConfig) -> None:
    with pytest.raises(Basic4MissingError):
        _validate(build(pki.sign_ca, sign_extensions([])), SIGN, trust)


@pytest.mark.parametrize(
    "raw", [b"", b"\x30", b"garbage", b"\x30\x03\x02\x01\x01", b"\x00" * 20_000]
)
def test_malformed_der(trust: TrustConfig, raw: bytes) -> None:
    with pytest.raises(CertificateMalformedError) as info:
        _validate(raw, AUTH, trust)
    assert info.value.code == "certificate_malformed"


def test_truncated_certificate(trust: TrustConfig, yamada: ResidentCredentials) -> None:
    raw = der(yamada.auth_certificate)
    for cut in (1, 10, len(raw) // 2, len(raw) - 1):
        with pytest.raises(CertificateMalformedError):
            _validate(raw[:cut], AUTH, trust)


def test_huge_extension(pki: TestPki, trust: TrustConfig) -> None:
    base = build(pki.auth_ca, auth_extensions())
    huge = resign(
        base,
        pki.auth_ca,
        lambda exts: [*exts, extension("1.2.3.4", b"\x04\x83\x01\x86\xa0" + b"a" * 100_000)],
    )
    assert len(huge) > 100_000
    with pytest.raises(CertificateMalformedError, match="too large"):
        _validate(huge, AUTH, trust)


def test_duplicate_extension(pki: TestPki, trust: TrustConfig) -> None:
    base = build(pki.auth_ca, auth_extensions())
    duplicated = resign(base, pki.auth_ca, lambda exts: [*exts, exts[0]])
    with pytest.raises(CertificateMalformedError):
        _validate(duplicated, AUTH, trust)


@pytest.mark.parametrize("serial", [b"\x02\x01\x00", b"\x02\x01\xff", b"\x02\x02\x80\x01"])
def test_non_positive_serial(pki: TestPki, trust: TrustConfig, serial: bytes) -> None:
    def set_serial(fields: list[bytes]) -> None:
        fields[1] = serial

    hostile = resign(build(pki.auth_ca, auth_extensions()), pki.auth_ca, edit_fields=set_serial)
    with pytest.raises(CertificateMalformedError):
        _validate(hostile, AUTH, trust)


def test_name_attribute_of_an_odd_type(pki: TestPki, trust: TrustConfig) -> None:
    """cryptography's ``x509.Name`` raises TypeError for a BIT STRING CN; still a typed error."""
    bit_string_cn = tlv(0x30, tlv(0x31, tlv(0x30, bytes.fromhex("0603550403") + b"\x03\x02\x00A")))

    def set_subject(fields: list[bytes]) -> None:
        fields[5] = bit_string_cn

    hostile = resign(build(pki.auth_ca, auth_extensions()), pki.auth_ca, edit_fields=set_subject)
    with pytest.raises(CertificateMalformedError):
        _validate(hostile, AUTH, trust)
    description = describe(x509.load_der_x509_certificate(hostile))
    assert description.subject == "(unreadable name)"
    assert description.purpose == "authentication"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.binary(max_size=3000))
def test_garbage_gives_only_typed_errors(trust: TrustConfig, raw: bytes) -> None:
    with pytest.raises(CertificateValidationError):
        _validate(raw, AUTH, trust)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_certificates_give_only_typed_errors(
    trust: TrustConfig, yamada: ResidentCredentials, data: st.DataObject
) -> None:
    assert yamada.sign_certificate is not None
    raw = bytearray(der(yamada.sign_certificate))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(raw)))
    try:
        _validate(bytes(raw[:cut]), SIGN, trust)
    except CertificateValidationError:
        pass


# -- challenge signature -------------------------------------------------------------------


def _challenge(purpose: str = "login") -> Challenge:
    return Challenge(
        origin="https://idp.example.jp", nonce=new_nonce(), transaction_id="tx-1", purpose=purpose
    )


def _sign(key: rsa.RSAPrivateKey, challenge: Challenge) -> bytes:
    return key.sign(challenge.to_be_signed(), padding.PKCS1v15(), hashes.SHA256())


def test_challenge_signature(trust: TrustConfig, yamada: ResidentCredentials) -> None:
    validated = validate_certificate(
        der(yamada.auth_certificate), purpose=AUTH, trust=trust, now=_now()
    )
    challenge = _challenge()
    signature = _sign(yamada.auth_key, challenge)
    verify_challenge_signature(
        validated, challenge=challenge, algorithm="RS256", signature=signature
    )
    with pytest.raises(AlgorithmUnsupportedError) as algorithm:
        verify_challenge_signature(
            validated, challenge=challenge, algorithm="PS256", signature=signature
        )
    assert algorithm.value.code == "algorithm_unsupported"
    with pytest.raises(SignatureInvalidError) as invalid:
        verify_challenge_signature(
            validated, challenge=_challenge(), algorithm="RS256", signature=signature
        )
    assert invalid.value.code == "signature_invalid"
    with pytest.raises(SignatureInvalidError):
        verify_challenge_signature(
            validated, challenge=challenge, algorithm="RS256", signature=signature[:-1]
        )
    with pytest.raises(SignatureInvalidError):
        verify_challenge_signature(
            validated, challenge=challenge, algorithm="RS256", signature=b"\x00" * 256
        )
    assert yamada.sign_key is not None
    with pytest.raises(SignatureInvalidError):
        verify_challenge_signature(
            validated,
            challenge=challenge,
            algorithm="RS256",
            signature=_sign(yamada.sign_key, challenge),
        )


def test_challenge_purpose_must_fit_the_certificate(
    trust: TrustConfig, yamada: ResidentCredentials
) -> None:
    assert yamada.sign_certificate is not None and yamada.sign_key is not None
    validated = validate_certificate(
        der(yamada.sign_certificate), purpose=SIGN, trust=trust, now=_now()
    )
    login = _challenge("login")
    with pytest.raises(CertificateWrongPurposeError):
        verify_challenge_signature(
            validated, challenge=login, algorithm="RS256", signature=_sign(yamada.sign_key, login)
        )
    for purpose in ("enroll", "sign"):
        challenge = _challenge(purpose)
        verify_challenge_signature(
            validated,
            challenge=challenge,
            algorithm="RS256",
            signature=_sign(yamada.sign_key, challenge),
        )


def test_challenge_is_checked_before_revocation(pki: TestPki, yamada: ResidentCredentials) -> None:
    crl = pki.crl("auth", [(yamada.auth_certificate.serial_number, _now(), None)])
    checker = CrlRevocationChecker(issuers=[pki.auth_ca.certificate], crls=[crl])
    trust = TrustConfig(
        auth_anchors=(pki.auth_ca.certificate,),
        sign_anchors=(pki.sign_ca.certificate,),
        revocation=checker,
    )
    challenge = _challenge()
    signature = _sign(yamada.auth_key, challenge)
    with pytest.raises(SignatureInvalidError):
        _validate(
            yamada.auth_certificate,
            AUTH,
            trust,
            challenge=challenge,
            algorithm="RS256",
            signature=b"\x01" * 256,
        )
    with pytest.raises(CertificateRevokedError):
        _validate(
            yamada.auth_certificate,
            AUTH,
            trust,
            challenge=challenge,
            algorithm="RS256",
            signature=signature,
        )


def test_challenge_arguments_go_together(trust: TrustConfig, yamada: ResidentCredentials) -> None:
    with pytest.raises(ValueError, match="together"):
        _validate(yamada.auth_certificate, AUTH, trust, challenge=_challenge())


def test_now_must_be_aware(trust: TrustConfig, yamada: ResidentCredentials) -> None:
    with pytest.raises(ValueError, match="timezone"):
        validate_certificate(
            der(yamada.auth_certificate),
            purpose=AUTH,
            trust=trust,
            now=datetime.now(),
        )


# -- revocation policy ---------------------------------------------------------------------


def test_revocation_unavailable_fails_closed_or_is_recorded(
    pki: TestPki, yamada: ResidentCredentials
) -> None:
    no_crl = CrlRevocationChecker(issuers=[pki.auth_ca.certificate])
    anchors = {
        "auth_anchors": (pki.auth_ca.certificate,),
        "sign_anchors": (pki.sign_ca.certificate,),
    }
    required = TrustConfig(**anchors, revocation=no_crl)  # type: ignore[arg-type]
    with pytest.raises(RevocationUnavailableError) as info:
        _validate(yamada.auth_certificate, AUTH, required)
    assert info.value.code == "revocation_unavailable"
    optional = TrustConfig(**anchors, revocation=no_crl, revocation_required=False)  # type: ignore[arg-type]
    result = validate_certificate(
        der(yamada.auth_certificate), purpose=AUTH, trust=optional, now=_now()
    )
    assert result.revocation_status == "unchecked"


def test_revocation_good_and_revoked(pki: TestPki, yamada: ResidentCredentials) -> None:
    other = pki.issue(RESIDENTS["suzuki"])
    crl = pki.crl(
        "auth", [(other.auth_certificate.serial_number, _now(), x509.ReasonFlags.key_compromise)]
    )
    checker = CrlRevocationChecker(issuers=[pki.auth_ca.certificate], crls=[crl])
    trust = TrustConfig(
        auth_anchors=(pki.auth_ca.certificate,),
        sign_anchors=(pki.sign_ca.certificate,),
        revocation=checker,
        revocation_required=False,
    )
    result = validate_certificate(
        der(yamada.auth_certificate), purpose=AUTH, trust=trust, now=_now()
    )
    assert result.revocation_status == "good"
    with pytest.raises(CertificateRevokedError) as info:
        _validate(other.auth_certificate, AUTH, trust)
    assert info.value.reason == "keyCompromise"
