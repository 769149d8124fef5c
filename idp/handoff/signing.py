"""The signing round of a login (flow E): the card's signature key signs the relying party's
document digest inside CMS signed attributes.

:func:`start_signing_round` runs when the card login is verified and the authorization request
names a signature transaction (:mod:`idp.oidc.sign_transactions`): it builds the signed
attributes (content type, message digest, signing time = now) that the device is given as
``to_be_signed``.

:func:`verify_signature_round` checks the device's answer (``unverifiedCertificate`` = the
signature certificate, ``signature`` = RS256 over ``to_be_signed``), in order: the certificate
for SIGNATURE (chain, validity, key usage, policy, revocation; a revoked certificate is
``sign_certificate_revoked``, HTTP 410: the registered details changed and the certificate must
be renewed at the municipal office), that it belongs to the resident who logged in (its basic-4
name, birthdate and gender match the record, or it is a signature certificate already linked to
that resident; ``signer_mismatch`` otherwise), the signature, then claims the transaction once
(``sign_transaction_unavailable`` if it was signed meanwhile), assembles the detached CMS and
stages it until the resident consents.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from idp.card.validation import (
    CertificateRevokedError,
    CertPurpose,
    TrustConfig,
    ValidatedCertificate,
    validate_certificate,
)
from idp.card.validation.errors import SignatureInvalidError
from idp.handoff.errors import DeviceError
from idp.handoff.transaction import (
    LoginTransaction,
    TransactionConflictError,
    TransactionStore,
    TxState,
)
from idp.oidc.sign_transactions import (
    SignResult,
    SignTransactionStore,
    assemble_cms,
    signed_attributes,
)
from idp.storage.ephemeral import EphemeralStore
from idp.storage.residents import get_resident

if TYPE_CHECKING:
    from idp.handoff.login import CardResponse, Verification

__all__ = ["start_signing_round", "verify_signature_round"]

log = logging.getLogger(__name__)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def start_signing_round(
    store: EphemeralStore, sign_transaction_id: str, moment: float
) -> dict[str, str]:
    """The ``sign`` data of a new signing round; ``sign_transaction_unavailable`` if the
    transaction expired or was signed meanwhile."""
    sign_store = SignTransactionStore(store)
    transaction = sign_store.get(sign_transaction_id)
    if (
        transaction is None
        or transaction.expired(moment)
        or sign_store.is_claimed(sign_transaction_id)
    ):
        raise DeviceError("sign_transaction_unavailable")
    signing_time = datetime.fromtimestamp(int(moment), UTC)
    to_be_signed = signed_attributes(transaction.digest_bytes, signing_time)
    return {
        "sign_transaction_id": transaction.id,
        "text": transaction.text,
        "digest": transaction.digest,
        "to_be_signed": _b64(to_be_signed),
        "signing_time": _iso(signing_time),
    }


def _same_resident(resident_id: str | None, sign: ValidatedCertificate) -> bool:
    resident = get_resident(resident_id or "")
    if resident is None:
        return False
    fingerprint = hashlib.sha256(sign.certificate.public_bytes(Encoding.DER)).hexdigest()
    if any(
        c.kind == "sign" and hmac.compare_digest(c.cert_sha256, fingerprint)
        for c in resident.credentials
    ):
        return True
    basic4 = sign.basic4
    return (
        basic4 is not None
        and basic4.name == resident.name
        and basic4.birthdate == resident.birthdate
        and basic4.gender == resident.gender
    )


def _check_signature(sign: ValidatedCertificate, signature: bytes, to_be_signed: bytes) -> None:
    key = sign.certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureInvalidError("the signature certificate's key is not RSA")
    try:
        key.verify(signature, to_be_signed, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise SignatureInvalidError("the signature does not match the signed attributes") from exc


def verify_signature_round(
    transactions: TransactionStore,
    transaction: LoginTransaction,
    response: CardResponse,
    trust: TrustConfig,
    moment: float,
) -> Verification:
    """Verify the signing round's answer (see the module docstring for the order)."""
    from idp.handoff.login import Verification  # the login module imports this one

    data = transaction.sign
    if data is None:  # only if the stored record were corrupt
        raise DeviceError("transaction_closed", "The signing round is missing.")
    now = datetime.fromtimestamp(moment, UTC)
    try:
        sign = validate_certificate(
            response.certificate, purpose=CertPurpose.SIGNATURE, trust=trust, now=now
        )
    except CertificateRevokedError as exc:
        raise DeviceError("sign_certificate_revoked") from exc
    if not _same_resident(transaction.resident_id, sign):
        raise DeviceError("signer_mismatch")
    to_be_signed = base64.b64decode(data["to_be_signed"])
    _check_signature(sign, response.signature, to_be_signed)
    sign_store = SignTransactionStore(transactions.store)
    sign_transaction = sign_store.get(data["sign_transaction_id"])
    if sign_transaction is None or not sign_store.claim(sign_transaction):
        raise DeviceError("sign_transaction_unavailable")
    cms = assemble_cms(
        to_be_signed=to_be_signed, signature=response.signature, certificate=sign.certificate
    )
    sign_store.stage(
        sign_transaction,
        SignResult(
            cms=_b64(cms),
            certificate=_b64(sign.certificate.public_bytes(Encoding.DER)),
            chain=[_b64(sign.issuer.public_bytes(Encoding.DER))],
            signed_at=data["signing_time"],
        ),
    )
    log.info("login %s: signature for %s staged", transaction.id[:8], sign_transaction.id[:8])
    try:
        updated = transactions.update(transaction, state=TxState.CARD_VERIFIED)
    except TransactionConflictError as exc:
        raise DeviceError("transaction_conflict") from exc
    return Verification("verified", updated)


def sign_document(transaction: LoginTransaction) -> dict[str, Any] | None:
    """The ``sign`` member of the device challenge (what the phone shows and signs)."""
    data = transaction.sign
    if transaction.purpose != "sign" or data is None:
        return None
    return {"text": data["text"], "digest": data["digest"], "to_be_signed": data["to_be_signed"]}
