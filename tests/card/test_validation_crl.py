from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp.card.testpki import RESIDENTS, ResidentCredentials, TestPki, bulk_crl_der, make_ca
from idp.card.validation import (
    CertificateRevokedError,
    ChainedRevocationChecker,
    CrlRevocationChecker,
    OcspRevocationChecker,
    RevocationDataInvalidError,
    RevocationStaleError,
    RevocationUnavailableError,
)


def _now() -> datetime:
    return datetime.now(UTC)


def _checker(pki: TestPki, *crls: x509.CertificateRevocationList | bytes) -> CrlRevocationChecker:
    return CrlRevocationChecker(
        issuers=[pki.auth_ca.certificate, pki.sign_ca.certificate], crls=crls
    )


def test_revoked_and_good(pki: TestPki, yamada: ResidentCredentials) -> None:
    other = pki.issue(RESIDENTS["suzuki"])
    revoked_at = (_now() - timedelta(hours=1)).replace(microsecond=0)
    crl = pki.crl(
        "auth",
        [(other.auth_certificate.serial_number, revoked_at, x509.ReasonFlags.affiliation_changed)],
    )
    checker = _checker(pki, crl)
    checker.check(yamada.auth_certificate, pki.auth_ca.certificate, now=_now())
    with pytest.raises(CertificateRevokedError) as info:
        checker.check(other.auth_certificate, pki.auth_ca.certificate, now=_now())
    assert info.value.revoked_at == revoked_at
    assert info.value.reason == "affiliationChanged"
    assert info.value.code == "certificate_revoked"
    with pytest.raises(CertificateRevokedError) as again:  # details now come from the cache
        checker.check(other.auth_certificate, pki.auth_ca.certificate, now=_now())
    assert (again.value.revoked_at, again.value.reason) == (revoked_at, "affiliationChanged")
    (summary,) = checker.summaries
    assert summary.revoked_count == 1 and summary.issuer == pki.auth_ca.certificate


def test_each_issuer_has_its_own_list(pki: TestPki, yamada: ResidentCredentials) -> None:
    assert yamada.sign_certificate is not None
    serial = yamada.sign_certificate.serial_number
    checker = _checker(pki, pki.crl("auth", [(serial, _now(), None)]))
    with pytest.raises(RevocationUnavailableError, match="no CRL"):
        checker.check(yamada.sign_certificate, pki.sign_ca.certificate, now=_now())
    checker.load(pki.crl("sign", [(serial, _now(), None)]))
    with pytest.raises(CertificateRevokedError) as info:
        checker.check(yamada.sign_certificate, pki.sign_ca.certificate, now=_now())
    assert info.value.reason is None


def test_crl_of_a_second_generation_is_matched_by_signature(pki: TestPki) -> None:
    generations = [make_ca("auth") for _ in range(3)]
    second = TestPki(auth_ca=generations[1], sign_ca=pki.sign_ca)
    creds = second.issue(RESIDENTS["tanaka"], now=_now())
    crl = second.crl("auth", [(creds.auth_certificate.serial_number, _now(), None)])
    checker = CrlRevocationChecker(issuers=[g.certificate for g in generations], crls=[crl])
    with pytest.raises(CertificateRevokedError):
        checker.check(creds.auth_certificate, generations[1].certificate, now=_now())
    with pytest.raises(RevocationUnavailableError):
        checker.check(creds.auth_certificate, generations[2].certificate, now=_now())


def test_forged_crl_is_refused(pki: TestPki) -> None:
    forged = pki.crl("auth", [], signer=pki.rogue_ca("auth"))
    with pytest.raises(RevocationDataInvalidError) as info:
        _checker(pki, forged)
    assert info.value.code == "revocation_data_invalid"


@pytest.mark.parametrize(
    "raw", [b"", b"garbage", b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"]
)
def test_garbage_crl(pki: TestPki, raw: bytes) -> None:
    with pytest.raises(RevocationDataInvalidError):
        _checker(pki, raw)


def test_der_and_pem(pki: TestPki, yamada: ResidentCredentials) -> None:
    crl = pki.crl("auth", [(yamada.auth_certificate.serial_number, _now(), None)])
    for raw in (
        crl.public_bytes(serialization.Encoding.DER),
        crl.public_bytes(serialization.Encoding.PEM),
    ):
        with pytest.raises(CertificateRevokedError):
            _checker(pki, raw).check(yamada.auth_certificate, pki.auth_ca.certificate, now=_now())


def test_freshness_at_load(pki: TestPki) -> None:
    now = _now()
    with pytest.raises(RevocationDataInvalidError, match="past its nextUpdate"):
        _checker(
            pki,
            pki.crl(
                "auth", [], this_update=now - timedelta(days=2), next_update=now - timedelta(days=1)
            ),
        )
    with pytest.raises(RevocationDataInvalidError, match="future"):
        _checker(pki, pki.crl("auth", [], this_update=now + timedelta(hours=1)))


def test_freshness_at_check(pki: TestPki, yamada: ResidentCredentials) -> None:
    now = _now()
    checker = _checker(
        pki, pki.crl("auth", [], this_update=now, next_update=now + timedelta(hours=1))
    )
    checker.check(yamada.auth_certificate, pki.auth_ca.certificate, now=now + timedelta(minutes=64))
    with pytest.raises(RevocationStaleError) as info:
        checker.check(
            yamada.auth_certificate, pki.auth_ca.certificate, now=now + timedelta(hours=2)
        )
    assert info.value.code == "revocation_stale"
    assert isinstance(info.value, RevocationUnavailableError)
    with pytest.raises(RevocationStaleError, match="future"):
        checker.check(
            yamada.auth_certificate, pki.auth_ca.certificate, now=now - timedelta(hours=1)
        )


def test_only_a_newer_crl_replaces_the_held_one(pki: TestPki, yamada: ResidentCredentials) -> None:
    now = _now()
    serial = yamada.auth_certificate.serial_number
    newer = pki.crl("auth", [(serial, now, None)], this_update=now - timedelta(minutes=1))
    older = pki.crl("auth", [], this_update=now - timedelta(hours=2))
    checker = _checker(pki, newer)
    summary = checker.load(older)
    assert summary.revoked_count == 1
    with pytest.raises(CertificateRevokedError):
        checker.check(yamada.auth_certificate, pki.auth_ca.certificate, now=now)
    checker.load(pki.crl("auth", [], this_update=now))
    checker.check(yamada.auth_certificate, pki.auth_ca.certificate, now=now)


def test_delta_and_critical_extensions_are_refused(pki: TestPki) -> None:
    def crl_with(extension: x509.ExtensionType, critical: bool) -> x509.CertificateRevocationList:
        now = _now()
        return (
            x509.CertificateRevocationListBuilder()
            .issuer_name(pki.auth_ca.certificate.subject)
            .last_update(now)
            .next_update(now + timedelta(days=1))
            .add_extension(extension, critical=critical)
            .sign(pki.auth_ca.private_key, hashes.SHA256())
        )

    with pytest.raises(RevocationDataInvalidError, match="delta"):
        _checker(pki, crl_with(x509.DeltaCRLIndicator(1), True))
    unknown = x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), b"\x05\x00")
    with pytest.raises(RevocationDataInvalidError, match="critical"):
        _checker(pki, crl_with(unknown, True))
    _checker(pki, crl_with(x509.CRLNumber(7), False))


def test_bulk_crl(pki: TestPki) -> None:
    now = _now()
    serials = [secrets.randbits(150) for _ in range(50_000)]
    raw = bulk_crl_der(
        pki.sign_ca,
        serials,
        revoked_at=now.replace(microsecond=0),
        reason=x509.ReasonFlags.superseded,
        this_update=now,
        next_update=now + timedelta(days=1),
    )
    checker = _checker(pki, raw)
    assert checker.summaries[0].revoked_count == len(set(serials))
    hit = pki.issue(RESIDENTS["yamada"]).sign_certificate
    assert hit is not None
    checker.check(hit, pki.sign_ca.certificate, now=now)
    revoked = (
        x509.CertificateBuilder()
        .subject_name(hit.subject)
        .issuer_name(hit.issuer)
        .public_key(hit.public_key())
        .serial_number(serials[-1])
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(pki.sign_ca.private_key, hashes.SHA256())
    )
    with pytest.raises(CertificateRevokedError) as info:
        checker.check(revoked, pki.sign_ca.certificate, now=now)
    assert info.value.reason == "superseded"
    assert info.value.revoked_at == now.replace(microsecond=0)


def test_chained_checker_falls_back_when_unavailable(
    pki: TestPki, yamada: ResidentCredentials
) -> None:
    def down(url: str, body: bytes, timeout: float) -> bytes:
        raise ConnectionRefusedError(url)

    ocsp = OcspRevocationChecker(url="http://127.0.0.1:9/ocsp", fetch=down)
    crl = _checker(pki, pki.crl("auth", [(yamada.auth_certificate.serial_number, _now(), None)]))
    with pytest.raises(CertificateRevokedError):
        ChainedRevocationChecker([ocsp, crl]).check(
            yamada.auth_certificate, pki.auth_ca.certificate, now=_now()
        )
    with pytest.raises(RevocationUnavailableError):
        ChainedRevocationChecker([ocsp]).check(
            yamada.auth_certificate, pki.auth_ca.certificate, now=_now()
        )
    with pytest.raises(ValueError):
        ChainedRevocationChecker([])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_crls_give_only_typed_errors(pki: TestPki, data: st.DataObject) -> None:
    now = _now()
    entries = [(n, now, x509.ReasonFlags.key_compromise) for n in range(1, 6)]
    raw = bytearray(pki.crl("auth", entries).public_bytes(serialization.Encoding.DER))
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    try:
        CrlRevocationChecker(issuers=[pki.auth_ca.certificate], crls=[bytes(raw[:cut])], now=now)
    except RevocationDataInvalidError:
        pass


def test_grace_after_next_update_and_staleness_limit(
    pki: TestPki, yamada: ResidentCredentials
) -> None:
    now = _now()
    crl = pki.crl(
        "auth", [], this_update=now - timedelta(hours=1), next_update=now + timedelta(hours=1)
    )
    issuers = [pki.auth_ca.certificate, pki.sign_ca.certificate]
    strict = CrlRevocationChecker(
        issuers=issuers,
        crls=[crl],
        next_update_grace=timedelta(0),
        max_age=timedelta(hours=3),
    )
    certificate, issuer = yamada.auth_certificate, pki.auth_ca.certificate
    strict.check(certificate, issuer, now=now + timedelta(minutes=59))
    with pytest.raises(RevocationStaleError, match="past its nextUpdate"):
        strict.check(certificate, issuer, now=now + timedelta(minutes=61))
    summary = strict.summary_for(issuer)
    assert summary is not None and summary.revoked_count == 0
    assert strict.staleness(summary, now) is None
    assert strict.summary_for(pki.rogue_ca("auth").certificate) is None

    lenient = CrlRevocationChecker(
        issuers=issuers,
        crls=[crl],
        next_update_grace=timedelta(hours=6),
        max_age=timedelta(hours=3),
    )
    lenient.check(certificate, issuer, now=now + timedelta(hours=1, minutes=59))
    with pytest.raises(RevocationStaleError, match="staleness limit") as info:
        lenient.check(certificate, issuer, now=now + timedelta(hours=2, minutes=1))
    assert info.value.code == "revocation_stale"
    with pytest.raises(ValueError, match="max_age"):
        CrlRevocationChecker(issuers=issuers, max_age=timedelta(0))


def test_a_crl_within_its_grace_still_loads(pki: TestPki) -> None:
    now = _now()
    late = pki.crl(
        "auth", [], this_update=now - timedelta(hours=3), next_update=now - timedelta(hours=1)
    )
    checker = CrlRevocationChecker(
        issuers=[pki.auth_ca.certificate], next_update_grace=timedelta(hours=2)
    )
    assert checker.load(late, now=now).next_update == late.next_update_utc
    with pytest.raises(RevocationDataInvalidError, match="past its nextUpdate"):
        CrlRevocationChecker(issuers=[pki.auth_ca.certificate]).load(late, now=now)
