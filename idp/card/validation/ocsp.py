"""``OcspRevocationChecker``: revocation by an OCSP query, checked as Web eID does.

The request (``cryptography``'s ``OCSPRequestBuilder``) names one certificate and carries a
fresh 32-byte nonce. It goes through an injected ``fetch(url, body, timeout) -> bytes`` (by
default an HTTP POST with ``urllib``; the responder URL is given to the constructor). The answer
must be, in this order:

1. parseable, with responseStatus ``successful``;
2. about exactly one SingleResponse matching the request's CertID (hash algorithm, issuer name
   and key hashes, serial);
3. signed by an authorised responder: the issuing CA itself, or a delegated responder
   certificate carried in the response, directly issued by that CA, with extendedKeyUsage
   OCSPSigning and within its validity; the signature must verify (SHA-2 with RSA or ECDSA);
4. echoing the request's nonce;
5. fresh: ``thisUpdate`` not before ``now - allowed_time_skew - max_this_update_age`` (17 min
   by default) and not after ``now + allowed_time_skew`` (15 min); ``nextUpdate``, when present,
   not before ``now - allowed_time_skew``;
6. ``good``. ``revoked`` gives ``CertificateRevokedError``, ``unknown`` ``RevocationUnknownError``.

``query`` returns the checked answer (an :class:`OcspAnswer`: status, thisUpdate, nextUpdate,
revocation date and reason) for any of the three statuses, so that a caller may cache it within
its validity; ``check`` is ``query`` followed by :meth:`OcspAnswer.raise_for_status`.

Unreachable, timed out or non-successful answers give ``RevocationUnavailableError``; any answer
failing 1-4 ``OcspResponseInvalidError`` and 5 ``RevocationStaleError`` (both subclasses of it,
so ``revocation_required=False`` lets them through as ``unchecked``).
"""

from __future__ import annotations

import http.client
import secrets
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, SignatureAlgorithmOID

from idp.card.validation.errors import (
    PARSE_ERRORS,
    CertificateRevokedError,
    OcspResponseInvalidError,
    RevocationStaleError,
    RevocationUnavailableError,
    RevocationUnknownError,
)

__all__ = [
    "MAX_RESPONSE_BYTES",
    "NONCE_BYTES",
    "Fetch",
    "OcspAnswer",
    "OcspRevocationChecker",
    "urllib_fetch",
]

Fetch = Callable[[str, bytes, float], bytes]
"""``fetch(url, body, timeout) -> response body``; raises ``OSError`` (``TimeoutError``,
``urllib.error.URLError``, ...) or ``ValueError`` when there is no answer."""

NONCE_BYTES: Final = 32
MAX_RESPONSE_BYTES: Final = 64 * 1024

_ACCEPTED_SIGNATURE_ALGORITHMS: Final = frozenset(
    {
        SignatureAlgorithmOID.RSA_WITH_SHA256,
        SignatureAlgorithmOID.RSA_WITH_SHA384,
        SignatureAlgorithmOID.RSA_WITH_SHA512,
        SignatureAlgorithmOID.ECDSA_WITH_SHA256,
        SignatureAlgorithmOID.ECDSA_WITH_SHA384,
        SignatureAlgorithmOID.ECDSA_WITH_SHA512,
    }
)


@dataclass(frozen=True)
class OcspAnswer:
    """One checked SingleResponse: what a cache may keep until ``next_update``."""

    status: Literal["good", "revoked", "unknown"]
    this_update: datetime
    next_update: datetime | None
    revoked_at: datetime | None = None
    reason: str | None = None

    def raise_for_status(self) -> None:
        """Return for ``good``; raise ``CertificateRevokedError`` or ``RevocationUnknownError``."""
        if self.status == "good":
            return
        if self.status == "revoked":
            raise CertificateRevokedError(revoked_at=self.revoked_at, reason=self.reason)
        raise RevocationUnknownError()


def urllib_fetch(url: str, body: bytes, timeout: float) -> bytes:
    """POST an OCSP request (RFC 6960 Appendix A.1) and return the body of the answer."""
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked by the checker
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/ocsp-request",
            "Accept": "application/ocsp-response",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            data: bytes = response.read(MAX_RESPONSE_BYTES + 1)
    except http.client.HTTPException as exc:
        raise OSError(f"OCSP responder spoke broken HTTP: {type(exc).__name__}") from exc
    if len(data) > MAX_RESPONSE_BYTES:
        raise ValueError("OCSP response is too large")
    return data


def _key_hash(certificate: x509.Certificate) -> bytes:
    # RFC 6960 ResponderID byKey: SHA-1 of the subjectPublicKey BIT STRING contents.
    return x509.SubjectKeyIdentifier.from_public_key(certificate.public_key()).digest


def _verify_response_signature(response: ocsp.OCSPResponse, signer: x509.Certificate) -> bool:
    if response.signature_algorithm_oid not in _ACCEPTED_SIGNATURE_ALGORITHMS:
        return False
    try:
        algorithm = response.signature_hash_algorithm
        key = signer.public_key()
        if algorithm is None:
            return False
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(
                response.signature, response.tbs_response_bytes, padding.PKCS1v15(), algorithm
            )
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(response.signature, response.tbs_response_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


class OcspRevocationChecker:
    """Revocation by OCSP (see the module docstring). One responder URL for every issuer."""

    def __init__(
        self,
        *,
        url: str,
        fetch: Fetch = urllib_fetch,
        timeout: float = 5.0,
        max_this_update_age: timedelta = timedelta(minutes=2),
        allowed_time_skew: timedelta = timedelta(minutes=15),
        cert_id_hash: hashes.HashAlgorithm | None = None,
    ) -> None:
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("OCSP responder URL must be http or https")
        if timeout <= 0:
            raise ValueError("OCSP timeout must be positive")
        self.url = url
        self._fetch = fetch
        self._timeout = timeout
        self._max_age = max_this_update_age
        self._skew = allowed_time_skew
        # CertID hashing is not a security function here (RFC 6960 uses SHA-1; responders
        # commonly support nothing else).
        self._cert_id_hash = cert_id_hash or hashes.SHA1()  # noqa: S303

    def build_request(
        self, certificate: x509.Certificate, issuer: x509.Certificate
    ) -> tuple[ocsp.OCSPRequest, bytes]:
        """A request for ``certificate`` with a fresh nonce; returns it and the nonce."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        request = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(certificate, issuer, self._cert_id_hash)
            .add_extension(x509.OCSPNonce(nonce), critical=False)
            .build()
        )
        return request, nonce

    def check(
        self, certificate: x509.Certificate, issuer: x509.Certificate, *, now: datetime
    ) -> None:
        self.query(certificate, issuer, now=now).raise_for_status()

    def query(
        self, certificate: x509.Certificate, issuer: x509.Certificate, *, now: datetime
    ) -> OcspAnswer:
        """Ask the responder about ``certificate``; the checked answer (steps 1-5)."""
        request, nonce = self.build_request(certificate, issuer)
        body = request.public_bytes(serialization.Encoding.DER)
        try:
            raw = self._fetch(self.url, body, self._timeout)
        except (OSError, ValueError) as exc:
            raise RevocationUnavailableError("OCSP responder could not be reached") from exc
        return self.read_response(raw, request=request, nonce=nonce, issuer=issuer, now=now)

    def check_response(
        self,
        raw: bytes,
        *,
        request: ocsp.OCSPRequest,
        nonce: bytes,
        issuer: x509.Certificate,
        now: datetime,
    ) -> None:
        """Steps 1-6 of the module docstring on one answer."""
        self.read_response(
            raw, request=request, nonce=nonce, issuer=issuer, now=now
        ).raise_for_status()

    def read_response(
        self,
        raw: bytes,
        *,
        request: ocsp.OCSPRequest,
        nonce: bytes,
        issuer: x509.Certificate,
        now: datetime,
    ) -> OcspAnswer:
        """Steps 1-5 of the module docstring on one answer."""
        if len(raw) > MAX_RESPONSE_BYTES:
            raise OcspResponseInvalidError("OCSP response is too large")
        try:
            response = ocsp.load_der_ocsp_response(raw)
        except PARSE_ERRORS as exc:
            raise OcspResponseInvalidError("OCSP response cannot be parsed") from exc
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            raise RevocationUnavailableError(
                f"OCSP responder answered {response.response_status.name}"
            )
        try:
            single = self._matching_single_response(response, request)
            self._check_responder(response, issuer, now)
            self._check_nonce(response, nonce)
            self._check_freshness(single, now)
            status = single.certificate_status
            this_update, next_update = single.this_update_utc, single.next_update_utc
            if status is ocsp.OCSPCertStatus.GOOD:
                return OcspAnswer("good", this_update, next_update)
            if status is ocsp.OCSPCertStatus.REVOKED:
                reason = single.revocation_reason
                return OcspAnswer(
                    "revoked",
                    this_update,
                    next_update,
                    revoked_at=single.revocation_time_utc,
                    reason=reason.value if reason is not None else None,
                )
        except PARSE_ERRORS as exc:
            raise OcspResponseInvalidError("OCSP response cannot be parsed") from exc
        return OcspAnswer("unknown", this_update, next_update)

    @staticmethod
    def _matching_single_response(
        response: ocsp.OCSPResponse, request: ocsp.OCSPRequest
    ) -> ocsp.OCSPSingleResponse:
        matching = [
            single
            for single in response.responses
            if single.serial_number == request.serial_number
            and single.issuer_key_hash == request.issuer_key_hash
            and single.issuer_name_hash == request.issuer_name_hash
            and single.hash_algorithm.name == request.hash_algorithm.name
        ]
        if len(matching) != 1:
            raise OcspResponseInvalidError(
                "OCSP response does not hold exactly one answer for the certificate"
            )
        return matching[0]

    def _check_responder(
        self, response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime
    ) -> None:
        def named(candidate: x509.Certificate) -> bool:
            if response.responder_key_hash is not None:
                return _key_hash(candidate) == response.responder_key_hash
            return candidate.subject == response.responder_name

        if named(issuer) and _verify_response_signature(response, issuer):
            return
        for delegate in response.certificates:
            if not named(delegate) or not self._authorised_delegate(delegate, issuer, now):
                continue
            if _verify_response_signature(response, delegate):
                return
        raise OcspResponseInvalidError("OCSP response is not signed by an authorised responder")

    def _authorised_delegate(
        self, delegate: x509.Certificate, issuer: x509.Certificate, now: datetime
    ) -> bool:
        try:
            delegate.verify_directly_issued_by(issuer)
            usage = delegate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (
            ValueError,
            TypeError,
            InvalidSignature,
            UnsupportedAlgorithm,
            x509.ExtensionNotFound,
        ):
            return False
        if ExtendedKeyUsageOID.OCSP_SIGNING not in usage:
            return False
        return (
            delegate.not_valid_before_utc - self._skew
            <= now
            <= delegate.not_valid_after_utc + self._skew
        )

    @staticmethod
    def _check_nonce(response: ocsp.OCSPResponse, nonce: bytes) -> None:
        try:
            echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
        except x509.ExtensionNotFound as exc:
            raise OcspResponseInvalidError("OCSP response does not echo the nonce") from exc
        if not secrets.compare_digest(echoed, nonce):
            raise OcspResponseInvalidError("OCSP response nonce does not match the request")

    def _check_freshness(self, single: ocsp.OCSPSingleResponse, now: datetime) -> None:
        not_before = now - self._skew - self._max_age
        not_after = now + self._skew
        if single.this_update_utc < not_before:
            raise RevocationStaleError("OCSP thisUpdate is too old")
        if single.this_update_utc > not_after:
            raise RevocationStaleError("OCSP thisUpdate is in the future")
        next_update = single.next_update_utc
        if next_update is not None and next_update < now - self._skew:
            raise RevocationStaleError("OCSP nextUpdate is in the past")
