"""Signature transactions (flow E): what a relying party asked to have signed, and the result.

A relying party registers a transaction over the back channel (:mod:`idp.oidc.sign_api`): the
SHA-256 digest of its document and a short text the resident sees. The record lives in the
ephemeral store under ``sign-tx:<id>`` for its lifetime plus :data:`GRACE_SECONDS` (so a late
fetch can be told ``expired``). An authorization request names it with ``sign_transaction_id``;
after the card login, the login's signing round builds the CMS signed attributes
(:func:`signed_attributes`), the card's signature key signs them, and :func:`assemble_cms`
builds the detached SignedData. The result is *staged* (``sign-staged:<id>``) until the resident
consents, then *released* (``sign-result:<id>``); the relying party takes it once (``GETDEL``,
leaving ``sign-fetched:<id>`` so a second fetch gets ``already_fetched``).

A transaction is signed at most once: the signing round claims it with ``SET NX``
(``sign-claimed:<id>``).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
import unicodedata
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from idp.storage.ephemeral import EphemeralStore

__all__ = [
    "DEFAULT_EXPIRES_IN",
    "GRACE_SECONDS",
    "MAX_EXPIRES_IN",
    "MAX_TEXT",
    "MIN_EXPIRES_IN",
    "RESULT_TTL",
    "SignRequestError",
    "SignResult",
    "SignTransaction",
    "SignTransactionStore",
    "assemble_cms",
    "parse_sign_request",
    "signed_attributes",
]

MIN_EXPIRES_IN: Final = 60
MAX_EXPIRES_IN: Final = 600
DEFAULT_EXPIRES_IN: Final = 300
MAX_TEXT: Final = 200
GRACE_SECONDS: Final = 600
"""How long after its expiry a transaction is remembered (to answer ``expired``)."""
RESULT_TTL: Final = 600
"""How long a released result waits for the relying party."""
DIGEST_ALGORITHM: Final = "sha-256"


class SignRequestError(ValueError):
    """The relying party's signature request is malformed (``invalid_request``)."""


@dataclass(frozen=True)
class SignTransaction:
    """One registered signature request."""

    id: str
    client_id: str
    digest: str  # base64url, no padding, 32 bytes
    text: str
    created_at: int
    expires_at: int

    @property
    def digest_bytes(self) -> bytes:
        return _b64url_decode(self.digest)

    def expired(self, now: float) -> bool:
        return now >= self.expires_at


@dataclass(frozen=True)
class SignResult:
    """The signed result as the relying party receives it."""

    cms: str
    certificate: str
    chain: list[str]
    signed_at: str

    def document(self) -> dict[str, Any]:
        return {"status": "signed", **asdict(self)}


def _b64url_decode(value: str) -> bytes:
    if not value or not all(c.isalnum() or c in "-_" for c in value):
        raise SignRequestError("'digest' must be base64url without padding.")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SignRequestError("'digest' is not valid base64url.") from exc


def parse_sign_request(body: Any) -> tuple[bytes, str, int]:
    """``(digest, text, expires_in)`` from the request body; SignRequestError otherwise."""
    if not isinstance(body, dict):
        raise SignRequestError("The body must be a JSON object.")
    unknown = set(body) - {"digest", "digest_algorithm", "text", "expires_in"}
    if unknown:
        raise SignRequestError(f"Unknown member(s): {', '.join(sorted(unknown))}.")
    if body.get("digest_algorithm") != DIGEST_ALGORITHM:
        raise SignRequestError("'digest_algorithm' must be 'sha-256'.")
    raw_digest = body.get("digest")
    if not isinstance(raw_digest, str) or len(raw_digest) > 64:
        raise SignRequestError("'digest' must be a base64url string of 32 bytes.")
    digest = _b64url_decode(raw_digest)
    if len(digest) != 32:
        raise SignRequestError("'digest' must be the 32-byte SHA-256 of the document.")
    text = body.get("text")
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT:
        raise SignRequestError(f"'text' must be 1-{MAX_TEXT} characters.")
    if any(unicodedata.category(c).startswith("C") for c in text):
        raise SignRequestError("'text' must not contain control characters.")
    expires_in = body.get("expires_in", DEFAULT_EXPIRES_IN)
    if (
        isinstance(expires_in, bool)
        or not isinstance(expires_in, int)
        or not MIN_EXPIRES_IN <= expires_in <= MAX_EXPIRES_IN
    ):
        raise SignRequestError(
            f"'expires_in' must be an integer from {MIN_EXPIRES_IN} to {MAX_EXPIRES_IN}."
        )
    return digest, text, expires_in


def _plausible(transaction_id: str) -> bool:
    return 16 <= len(transaction_id) <= 64 and all(c.isalnum() or c in "-_" for c in transaction_id)


class SignTransactionStore:
    """Signature transactions and their results in the ephemeral store."""

    def __init__(self, store: EphemeralStore) -> None:
        self._store = store

    def create(
        self, *, client_id: str, digest: bytes, text: str, expires_in: int, now: float | None = None
    ) -> SignTransaction:
        created = int(time.time() if now is None else now)
        transaction = SignTransaction(
            id=secrets.token_urlsafe(32),
            client_id=client_id,
            digest=base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"),
            text=text,
            created_at=created,
            expires_at=created + expires_in,
        )
        self._store.put_json(
            f"sign-tx:{transaction.id}", asdict(transaction), ttl=expires_in + GRACE_SECONDS
        )
        return transaction

    def get(self, transaction_id: str) -> SignTransaction | None:
        if not _plausible(transaction_id):
            return None
        data = self._store.get_json(f"sign-tx:{transaction_id}")
        if not isinstance(data, dict):
            return None
        try:
            return SignTransaction(**data)
        except TypeError:
            return None

    def is_claimed(self, transaction_id: str) -> bool:
        return self._store.exists(f"sign-claimed:{transaction_id}")

    def claim(self, transaction: SignTransaction) -> bool:
        """True for exactly one signing round of this transaction."""
        return self._store.add_once(
            f"sign-claimed:{transaction.id}", ttl=RESULT_TTL + MAX_EXPIRES_IN + GRACE_SECONDS
        )

    def stage(self, transaction: SignTransaction, result: SignResult) -> None:
        """Keep the result until the resident consents (:meth:`release`)."""
        self._store.put_json(f"sign-staged:{transaction.id}", asdict(result), ttl=RESULT_TTL)

    def release(self, transaction_id: str) -> bool:
        """Make a staged result fetchable; False if there was none."""
        data = self._store.take(f"sign-staged:{transaction_id}")
        if data is None:
            return False
        self._store.put(f"sign-result:{transaction_id}", data, ttl=RESULT_TTL)
        return True

    def discard(self, transaction_id: str) -> None:
        """Drop a staged result (the resident declined)."""
        self._store.delete(f"sign-staged:{transaction_id}")

    def fetch(self, transaction_id: str, client_id: str, now: float | None = None) -> SignResult:
        """The result, once, for the client that created the transaction.

        Raises :class:`FetchError` with ``not_found``, ``not_ready``, ``already_fetched`` or
        ``expired``.
        """
        moment = time.time() if now is None else now
        transaction = self.get(transaction_id)
        if transaction is None or not secrets.compare_digest(transaction.client_id, client_id):
            raise FetchError("not_found")
        raw = self._store.take_marking(
            f"sign-result:{transaction.id}",
            marker=f"sign-fetched:{transaction.id}",
            ttl=RESULT_TTL + GRACE_SECONDS,
        )
        if raw is not None:
            return SignResult(**json.loads(raw))
        if self._store.exists(f"sign-fetched:{transaction.id}"):
            raise FetchError("already_fetched")
        if transaction.expired(moment):
            raise FetchError("expired")
        raise FetchError("not_ready")


class FetchError(Exception):
    """Why a result cannot be fetched (an error code of the result endpoint)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def signed_attributes(digest: bytes, signing_time: datetime) -> bytes:
    """The DER SET of CMS signed attributes the card signs (RFC 5652 section 5.4).

    content-type id-data, message-digest ``digest``, signing-time ``signing_time``; sorted as
    DER requires for a SET OF.
    """
    attributes = [
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "message_digest", "values": [digest]}),
        cms.CMSAttribute(
            {"type": "signing_time", "values": [cms.Time({"utc_time": signing_time})]}
        ),
    ]
    attributes.sort(key=lambda attribute: attribute.dump())
    encoded: bytes = cms.CMSAttributes(attributes).dump()
    return encoded


def assemble_cms(*, to_be_signed: bytes, signature: bytes, certificate: x509.Certificate) -> bytes:
    """The detached ``ContentInfo(SignedData)`` DER around a signature over ``to_be_signed``."""
    signer = asn1_x509.Certificate.load(certificate.public_bytes(Encoding.DER))
    attributes = cms.CMSAttributes.load(to_be_signed)
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                {
                    "issuer_and_serial_number": cms.IssuerAndSerialNumber(
                        {"issuer": signer.issuer, "serial_number": signer.serial_number}
                    )
                }
            ),
            "digest_algorithm": {"algorithm": "sha256"},
            "signed_attrs": attributes,
            "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
            "signature": core.OctetString(signature),
        }
    )
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {"content_type": "data"},
            "certificates": [signer],
            "signer_infos": [signer_info],
        }
    )
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump())
