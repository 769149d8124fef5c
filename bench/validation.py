"""Certificate validation speed, and CRL load/lookup cost at 10^6 revoked serials.

    .venv/bin/python bench/validation.py [--repeat 300] [--revoked 1000000] [--cache DIR]

Part 1 times ``validate_certificate`` per certificate (auth and sign; no revocation, with a
loaded CRL of --revoked entries, and with the challenge signature verified in the pipeline).
Part 2 loads a CRL of --revoked entries into ``CrlRevocationChecker`` (parse, signature check,
index build) and times lookups (miss: good certificate; hit: revoked, which also reads the date
and reason from the CRL). Memory is the RSS growth of the process across the load (Linux
/proc/self/statm) and the tracemalloc peak of a second load; the CRL's DER stays referenced by
the checker and is listed separately.

The test PKI and the big CRL are cached under --cache (default: $TMPDIR/myna-bench) so that
only the first run pays for key generation and CRL encoding.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from idp.card.challenge import Challenge, new_nonce
from idp.card.testpki import RESIDENTS, TestPki, bulk_crl_der
from idp.card.validation import (
    CertificateRevokedError,
    CertPurpose,
    CrlRevocationChecker,
    TrustConfig,
    validate_certificate,
)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def _time(function: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median and 95th percentile in microseconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def _big_crl(pki: TestPki, cache: Path, count: int, now: datetime) -> Path:
    fingerprint = pki.sign_ca.certificate.fingerprint(hashes.SHA256()).hex()[:16]
    path = cache / f"crl-{fingerprint}-{count}-{now:%Y%m%d}.der"
    if not path.exists():
        start = time.perf_counter()
        # Serials shaped like the test PKI's (random, up to 159 bits); a day of validity.
        serials = (x509.random_serial_number() for _ in range(count))
        raw = bulk_crl_der(
            pki.sign_ca,
            serials,
            revoked_at=now - timedelta(days=1),
            reason=x509.ReasonFlags.affiliation_changed,
            this_update=now - timedelta(hours=1),
            next_update=now + timedelta(days=1),
        )
        path.write_bytes(raw)
        print(f"(built {count:,}-entry CRL in {time.perf_counter() - start:.1f} s, cached)")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--revoked", type=int, default=1_000_000)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "myna-bench")
    args = parser.parse_args()
    cache: Path = args.cache
    cache.mkdir(parents=True, exist_ok=True)

    pki = TestPki.load_or_generate(cache / "pki")
    creds = pki.issue(RESIDENTS["yamada"])
    pki.save(cache / "pki")
    assert creds.sign_certificate is not None and creds.sign_key is not None
    now = datetime.now(UTC)
    auth_der = creds.auth_certificate.public_bytes(serialization.Encoding.DER)
    sign_der = creds.sign_certificate.public_bytes(serialization.Encoding.DER)
    anchors = {
        "auth_anchors": (pki.auth_ca.certificate,),
        "sign_anchors": (pki.sign_ca.certificate,),
    }

    # -- part 2 first: the big CRL (its checker is reused in part 1) ---------------------------
    crl_path = _big_crl(pki, cache, args.revoked, now)
    raw = crl_path.read_bytes()
    gc.collect()
    rss_before = _rss_bytes()
    start = time.perf_counter()
    checker = CrlRevocationChecker(issuers=[pki.sign_ca.certificate, pki.auth_ca.certificate])
    summary = checker.load(raw, now=now)
    load_seconds = time.perf_counter() - start
    rss_delta = _rss_bytes() - rss_before

    tracemalloc.start()
    CrlRevocationChecker(issuers=[pki.sign_ca.certificate]).load(raw, now=now)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    gc.collect()

    parsed = x509.load_der_x509_crl(raw)
    victim_serial = parsed[-1].serial_number  # the worst case for the detail look-up
    revoked_certificate = (
        x509.CertificateBuilder()
        .subject_name(creds.sign_certificate.subject)
        .issuer_name(pki.sign_ca.certificate.subject)
        .public_key(creds.sign_certificate.public_key())  # type: ignore[arg-type]
        .serial_number(victim_serial)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(pki.sign_ca.private_key, hashes.SHA256())
    )
    del parsed

    def miss() -> None:
        checker.check(creds.sign_certificate, pki.sign_ca.certificate, now=now)  # type: ignore[arg-type]

    def hit() -> None:
        try:
            checker.check(revoked_certificate, pki.sign_ca.certificate, now=now)
        except CertificateRevokedError:
            return
        raise AssertionError("revoked serial not found")

    miss_median, miss_p95 = _time(miss, args.repeat * 10)
    first_hit = _time(hit, 1)[0]
    hit_median, hit_p95 = _time(hit, args.repeat)

    # -- part 1: validation per certificate ------------------------------------------------------
    plain = TrustConfig(**anchors, revocation_required=False)  # type: ignore[arg-type]
    # The auth CA has no CRL loaded: give it a small one so both purposes check revocation.
    checker.load(pki.crl("auth", []), now=now)
    with_crl = TrustConfig(**anchors, revocation=checker)  # type: ignore[arg-type]
    challenge = Challenge(
        origin="https://idp.example.jp", nonce=new_nonce(), transaction_id="bench", purpose="login"
    )
    signature = creds.auth_key.sign(challenge.to_be_signed(), padding.PKCS1v15(), hashes.SHA256())

    rows: list[tuple[str, float, float]] = []
    for label, der, purpose, trust in (
        ("auth, no revocation", auth_der, CertPurpose.AUTHENTICATION, plain),
        ("sign (+ basic 4), no revocation", sign_der, CertPurpose.SIGNATURE, plain),
        ("auth, CRL", auth_der, CertPurpose.AUTHENTICATION, with_crl),
        (f"sign, CRL of {summary.revoked_count:,}", sign_der, CertPurpose.SIGNATURE, with_crl),
    ):

        def run(
            der: bytes = der, purpose: CertPurpose = purpose, trust: TrustConfig = trust
        ) -> None:
            validate_certificate(der, purpose=purpose, trust=trust, now=now)

        _time(run, 20)  # warm-up
        rows.append((label, *_time(run, args.repeat)))

    def login() -> None:
        validate_certificate(
            auth_der,
            purpose=CertPurpose.AUTHENTICATION,
            trust=with_crl,
            now=now,
            challenge=challenge,
            algorithm="RS256",
            signature=signature,
        )

    rows.append(("auth, CRL + challenge signature", *_time(login, args.repeat)))

    print()
    print(f"{'validate_certificate':<40} {'median µs':>10} {'p95 µs':>10}")
    for label, median, p95 in rows:
        print(f"{label:<40} {median:>10.0f} {p95:>10.0f}")
    print()
    print(f"CRL with {summary.revoked_count:,} revoked serials ({len(raw) / 1e6:.1f} MB DER)")
    print(f"{'load (parse + signature + index)':<40} {load_seconds:>10.2f} s")
    print(f"{'RSS growth across load':<40} {rss_delta / 1e6:>10.1f} MB")
    print(f"{'tracemalloc peak during load':<40} {traced_peak / 1e6:>10.1f} MB")
    print(f"{'lookup, not revoked (median / p95)':<40} {miss_median:>10.2f} / {miss_p95:.2f} µs")
    print(f"{'lookup, revoked, last entry, first time':<40} {first_hit / 1000:>10.1f} ms")
    print(f"{'lookup, revoked, cached (median / p95)':<40} {hit_median:>10.2f} / {hit_p95:.2f} µs")


if __name__ == "__main__":
    main()
