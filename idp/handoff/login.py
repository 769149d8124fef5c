"""Verifying a card response for a login transaction (the server side of flows A-D).

:func:`parse_card_response` checks the shape of the Web-eID-style token (no crypto, nothing
consumed): ``unverifiedCertificate`` (base64 DER of the authentication certificate),
``algorithm`` ``RS256``, ``signature`` (base64), ``format`` ``myna:1``, ``appVersion``, and for
purpose ``enroll`` also ``signingCertificate`` and ``signingSignature`` (the signature key's
signature over the *same* challenge).

:func:`verify_card_response` then, in order:

1. refuses ended transactions (``transaction_closed``) and expired ones
   (``transaction_expired``);
2. takes the round's nonce with ``GETDEL`` (``nonce_used`` if it is gone: a replay);
3. validates the authentication certificate and its signature over
   ``Challenge(origin, nonce, transaction id, purpose)`` with :mod:`idp.card.validation`
   (chain to the configured anchors, validity, key usage, policy, revocation);
4. purpose ``login``: a card linked to a resident with a fresh record -> ``card_verified``;
   an unknown card or a stale record -> a new round with purpose ``enroll``;
5. purpose ``enroll``: the same card as in the login round (``card_mismatch`` otherwise), the
   signature certificate validated for SIGNATURE with its signature over the same challenge,
   then :func:`idp.account.enrollment.enroll_card` -> ``card_verified``;
6. when the authorization request names a signature transaction, steps 4 and 5 lead to a
   round with purpose ``sign`` (state ``sign_needed``) instead, verified by
   :mod:`idp.handoff.signing` -> ``card_verified``.

Any failure after the nonce was taken ends the transaction in ``failed`` with the error code
(the browser page says why and offers to try again); failures before it leave the transaction
as it was.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from idp.account.enrollment import (
    EnrollmentError,
    certificate_sha256,
    enroll_card,
    record_login,
    resident_for_card,
)
from idp.card.challenge import ALGORITHM, Challenge, ChallengeFormatError
from idp.card.validation import (
    CertificateValidationError,
    CertPurpose,
    TrustConfig,
    validate_certificate,
)
from idp.handoff.errors import DeviceError
from idp.handoff.signing import start_signing_round, verify_signature_round
from idp.handoff.transaction import (
    DEVICE_STATES,
    LoginTransaction,
    TransactionConflictError,
    TransactionStore,
    TxState,
)
from idp.storage.ephemeral import StoreUnavailableError

__all__ = [
    "FORMAT",
    "MAX_CERTIFICATE_B64",
    "CardResponse",
    "Verification",
    "parse_card_response",
    "verify_card_response",
]

log = logging.getLogger(__name__)

FORMAT: Final = "myna:1"
MAX_CERTIFICATE_B64: Final = 8192
"""A JPKI certificate is under 2 KB of DER; anything far larger is refused before decoding."""
MAX_SIGNATURE_B64: Final = 1024
MAX_APP_VERSION: Final = 200


@dataclass(frozen=True)
class CardResponse:
    """A parsed card response (bytes decoded, nothing verified yet)."""

    certificate: bytes
    algorithm: str
    signature: bytes
    format: str
    app_version: str
    signing_certificate: bytes | None = None
    signing_signature: bytes | None = None

    @property
    def has_signing(self) -> bool:
        return self.signing_certificate is not None


@dataclass(frozen=True)
class Verification:
    """What a verified response led to: ``verified``, or the next round (``enroll_needed``,
    ``sign_needed``)."""

    outcome: Literal["verified", "enroll_needed", "sign_needed"]
    transaction: LoginTransaction


def _b64(body: dict[str, Any], name: str, limit: int, *, required: bool = True) -> bytes | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise DeviceError("invalid_token", f"'{name}' must be a non-empty base64 string.")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DeviceError("invalid_token", f"'{name}' is not valid base64.") from exc


def parse_card_response(body: Any, *, purpose: str) -> CardResponse:
    """Check the token's shape for a round of ``purpose``; ``DeviceError`` (4xx) otherwise."""
    if not isinstance(body, dict):
        raise DeviceError("invalid_json")
    fmt = body.get("format")
    if not isinstance(fmt, str):
        raise DeviceError("invalid_token", "'format' is required.")
    if fmt != FORMAT:
        raise DeviceError("unsupported_format")
    algorithm = body.get("algorithm")
    if not isinstance(algorithm, str):
        raise DeviceError("invalid_token", "'algorithm' is required.")
    if algorithm != ALGORITHM:
        raise DeviceError("algorithm_unsupported")
    app_version = body.get("appVersion")
    if not isinstance(app_version, str) or not 0 < len(app_version) <= MAX_APP_VERSION:
        raise DeviceError("invalid_token", "'appVersion' must be a string of 1-200 characters.")
    certificate = _b64(body, "unverifiedCertificate", MAX_CERTIFICATE_B64)
    signature = _b64(body, "signature", MAX_SIGNATURE_B64)
    signing_certificate = _b64(body, "signingCertificate", MAX_CERTIFICATE_B64, required=False)
    signing_signature = _b64(body, "signingSignature", MAX_SIGNATURE_B64, required=False)
    assert certificate is not None and signature is not None
    if (signing_certificate is None) != (signing_signature is None):
        raise DeviceError(
            "invalid_token", "'signingCertificate' and 'signingSignature' go together."
        )
    if purpose == "enroll" and signing_certificate is None:
        raise DeviceError("signing_certificate_required")
    if purpose != "enroll" and signing_certificate is not None:
        raise DeviceError("signing_certificate_unexpected")
    return CardResponse(
        certificate=certificate,
        algorithm=algorithm,
        signature=signature,
        format=fmt,
        app_version=app_version,
        signing_certificate=signing_certificate,
        signing_signature=signing_signature,
    )


def check_open(transaction: LoginTransaction, now: float) -> None:
    """Raise unless a device may still fetch or answer this transaction's challenge."""
    state = transaction.status(now)
    if state is TxState.EXPIRED:
        raise DeviceError("transaction_expired")
    if state not in DEVICE_STATES and state is not TxState.CARD_VERIFIED:
        raise DeviceError("transaction_closed")


def verify_card_response(
    transactions: TransactionStore,
    transaction: LoginTransaction,
    response: CardResponse,
    *,
    trust: TrustConfig,
    max_record_age: timedelta,
    now: float | None = None,
) -> Verification:
    """Verify ``response`` for ``transaction`` (see the module docstring for the order)."""
    moment = time.time() if now is None else now
    check_open(transaction, moment)
    nonce = transactions.take_nonce(transaction)
    if nonce is None:
        raise DeviceError("nonce_used")
    try:
        return _verify(transactions, transaction, response, nonce, trust, max_record_age, moment)
    except DeviceError as error:
        _fail(transactions, transaction, error.code)
        raise
    except CertificateValidationError as error:
        _fail(transactions, transaction, error.code)
        raise DeviceError.from_validation(error) from error
    except EnrollmentError as error:
        _fail(transactions, transaction, error.code)
        raise DeviceError(error.code, str(error), status=422) from error
    except Exception:
        # An outage mid-verification (the database, Redis): this round's nonce is spent, so the
        # login could never finish. End it now with a retryable reason (the page says "try again
        # in a few minutes") instead of leaving it waiting until it expires; the device gets the
        # blueprint's 503 for the same exception.
        _fail_after_outage(transactions, transaction)
        raise


def _fail_after_outage(transactions: TransactionStore, transaction: LoginTransaction) -> None:
    try:
        _fail(transactions, transaction, "temporarily_unavailable")
    except StoreUnavailableError:
        log.warning("login %s: could not record the outage (store unavailable)", transaction.id[:8])


def _fail(transactions: TransactionStore, transaction: LoginTransaction, code: str) -> None:
    log.info("login %s failed: %s", transaction.id[:8], code)
    try:
        transactions.update(transaction, state=TxState.FAILED, failure=code)
    except TransactionConflictError:
        log.warning("login %s changed while failing it", transaction.id[:8])


def _verify(
    transactions: TransactionStore,
    transaction: LoginTransaction,
    response: CardResponse,
    nonce: str,
    trust: TrustConfig,
    max_record_age: timedelta,
    moment: float,
) -> Verification:
    now = datetime.fromtimestamp(moment, UTC)
    try:
        challenge = Challenge(
            origin=transaction.origin,
            nonce=nonce,
            transaction_id=transaction.id,
            purpose=transaction.purpose,
        )
    except ChallengeFormatError as exc:  # only if the stored record were corrupt
        raise DeviceError("transaction_closed", "The transaction record is unusable.") from exc
    if transaction.purpose == "sign":
        return verify_signature_round(transactions, transaction, response, trust, moment)
    auth = validate_certificate(
        response.certificate,
        purpose=CertPurpose.AUTHENTICATION,
        trust=trust,
        now=now,
        challenge=challenge,
        algorithm=response.algorithm,
        signature=response.signature,
    )
    fingerprint = certificate_sha256(auth.certificate)

    if transaction.purpose == "login":
        lookup = resident_for_card(auth, now=now, max_age=max_record_age)
        if lookup.needs_enrollment:
            updated = _conflict_safe(
                lambda: transactions.new_round(
                    transaction,
                    purpose="enroll",
                    state=TxState.ENROLL_NEEDED,
                    auth_cert_sha256=fingerprint,
                    known_resident_id=lookup.resident_id,
                    enrollment=lookup.reason,
                )
            )
            return Verification("enroll_needed", updated)
        assert lookup.resident_id is not None
        record_login(auth, now=now)
        return _card_verified(
            transactions,
            transaction,
            moment,
            resident_id=lookup.resident_id,
            auth_time=int(moment),
            auth_cert_sha256=fingerprint,
        )

    # purpose "enroll": the same card as the login round, plus its signature certificate.
    expected = transaction.auth_cert_sha256
    if expected is not None and not hmac.compare_digest(expected, fingerprint):
        raise DeviceError("card_mismatch")
    assert response.signing_certificate is not None and response.signing_signature is not None
    sign = validate_certificate(
        response.signing_certificate,
        purpose=CertPurpose.SIGNATURE,
        trust=trust,
        now=now,
        challenge=challenge,
        algorithm=response.algorithm,
        signature=response.signing_signature,
    )
    enrollment = enroll_card(auth, sign, now=now, known_resident_id=transaction.known_resident_id)
    log.info("login %s: card %s", transaction.id[:8], enrollment.kind)
    return _card_verified(
        transactions,
        transaction,
        moment,
        resident_id=enrollment.resident_id,
        auth_time=int(moment),
        auth_cert_sha256=fingerprint,
        enrollment=enrollment.kind,
    )


def _card_verified(
    transactions: TransactionStore, transaction: LoginTransaction, moment: float, **changes: Any
) -> Verification:
    """``card_verified``, or the signing round when the request names a sign transaction."""
    sign_id = transaction.ctx.sign_transaction_id
    if sign_id is None:
        updated = _conflict_safe(
            lambda: transactions.update(transaction, state=TxState.CARD_VERIFIED, **changes)
        )
        return Verification("verified", updated)
    sign_round = start_signing_round(transactions.store, sign_id, moment)
    updated = _conflict_safe(
        lambda: transactions.new_round(
            transaction, purpose="sign", state=TxState.SIGN_NEEDED, sign=sign_round, **changes
        )
    )
    return Verification("sign_needed", updated)


def _conflict_safe(write: Any) -> LoginTransaction:
    try:
        result = write()
    except TransactionConflictError as exc:
        raise DeviceError("transaction_conflict") from exc
    assert isinstance(result, LoginTransaction)
    return result
