"""The forms tool's own check of a detached CMS SignedData from the provider.

The relying party does not trust the provider's word that the document was signed: it checks

- the structure (ContentInfo / SignedData, detached, one SignerInfo, SHA-256, RSA PKCS#1 v1.5);
- the signed attributes: content type ``data`` and message digest equal to the SHA-256 of the
  document it built itself; the signing time;
- the signature over the DER SET of the signed attributes with the signer certificate's key;
- the signer certificate: issued (signature verified) by the configured signature CA, valid at
  the signing time, digitalSignature / nonRepudiation key usage;
- the basic 4 items in its subjectAltName (JPKI ``otherName`` 1.2.392.200149.8.5.5.1..6): the
  name and birthdate must equal those of the logged-in resident.

Every failure is a :class:`SignatureCheckError` with a stable ``code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final

from asn1crypto import cms, core
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = ["SignatureCheckError", "VerifiedSignature", "verify_detached_cms"]

NAME_OID: Final = "1.2.392.200149.8.5.5.1"
SEX_OID: Final = "1.2.392.200149.8.5.5.3"
BIRTHDATE_OID: Final = "1.2.392.200149.8.5.5.4"
ADDRESS_OID: Final = "1.2.392.200149.8.5.5.5"
CLOCK_SKEW: Final = timedelta(minutes=5)


class SignatureCheckError(Exception):
    """The CMS does not prove what it must (``code`` says which check failed)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(frozen=True)
class VerifiedSignature:
    signer_name: str
    signer_birthdate: date
    signer_address: str
    serial_hex: str
    signing_time: datetime
    certificate: x509.Certificate


def _basic4(certificate: x509.Certificate) -> dict[str, str]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError) as exc:
        raise SignatureCheckError("signer_not_a_resident", "no basic 4 items") from exc
    values: dict[str, str] = {}
    for name in san:
        if isinstance(name, x509.OtherName):
            try:
                values[name.type_id.dotted_string] = str(core.UTF8String.load(name.value).native)
            except ValueError as exc:
                raise SignatureCheckError("signer_not_a_resident", "malformed basic 4") from exc
    if NAME_OID not in values or BIRTHDATE_OID not in values:
        raise SignatureCheckError("signer_not_a_resident", "no name or birthdate")
    return values


def _birthdate(value: str) -> date:
    # EYYYYMMDD: era code, then the Gregorian date
    try:
        return date(int(value[1:5]), int(value[5:7]), int(value[7:9]))
    except ValueError as exc:
        raise SignatureCheckError("signer_not_a_resident", "malformed birthdate") from exc


def verify_detached_cms(
    cms_der: bytes,
    *,
    document_digest: bytes,
    sign_ca: x509.Certificate,
    expected_name: str,
    expected_birthdate: str,
    now: datetime | None = None,
) -> VerifiedSignature:
    now = now or datetime.now(UTC)
    try:
        info = cms.ContentInfo.load(cms_der)
        if info["content_type"].native != "signed_data":
            raise SignatureCheckError("cms_malformed", "not SignedData")
        signed = info["content"]
        if signed["encap_content_info"]["content"].native is not None:
            raise SignatureCheckError("cms_malformed", "content is not detached")
        signers = signed["signer_infos"]
        if len(signers) != 1:
            raise SignatureCheckError("cms_malformed", "exactly one signer expected")
        signer = signers[0]
        if signer["digest_algorithm"]["algorithm"].native != "sha256":
            raise SignatureCheckError("cms_malformed", "digest is not SHA-256")
        sid = signer["sid"]
        if sid.name != "issuer_and_serial_number":
            raise SignatureCheckError("cms_malformed", "signer id is not issuer and serial")
        serial = int(sid.chosen["serial_number"].native)
        signer_cert_der: bytes | None = None
        for choice in signed["certificates"] or []:
            if choice.name != "certificate":
                continue
            candidate = choice.chosen
            if (
                candidate.serial_number == serial
                and candidate.issuer.dump() == sid.chosen["issuer"].dump()
            ):
                signer_cert_der = candidate.dump()
        if signer_cert_der is None:
            raise SignatureCheckError("cms_malformed", "the signer's certificate is not included")
        attributes = signer["signed_attrs"]
        if not attributes:
            raise SignatureCheckError("cms_malformed", "no signed attributes")
        by_type: dict[str, list[object]] = {}
        for attribute in attributes:
            by_type.setdefault(attribute["type"].native, []).extend(attribute["values"].native)
        signature = bytes(signer["signature"].native)
        signed_bytes = attributes.dump(force=False)
        signed_bytes = b"\x31" + signed_bytes[1:]  # [0] IMPLICIT -> SET, as signed
        algorithm = signer["signature_algorithm"]["algorithm"].native
    except SignatureCheckError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise SignatureCheckError("cms_malformed", "not a DER CMS SignedData") from exc

    if algorithm not in ("rsassa_pkcs1v15", "sha256_rsa"):
        raise SignatureCheckError("cms_malformed", f"signature algorithm {algorithm}")
    if by_type.get("content_type") != ["data"]:
        raise SignatureCheckError("cms_malformed", "content type is not id-data")
    if by_type.get("message_digest") != [document_digest]:
        raise SignatureCheckError("digest_mismatch", "the CMS signs another document")
    times = by_type.get("signing_time")
    if not times or len(times) != 1 or not isinstance(times[0], datetime):
        raise SignatureCheckError("cms_malformed", "no signing time")
    signing_time = times[0].astimezone(UTC)

    try:
        certificate = x509.load_der_x509_certificate(signer_cert_der)
    except ValueError as exc:
        raise SignatureCheckError("cms_malformed", "signer certificate unreadable") from exc
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureCheckError("cms_malformed", "signer key is not RSA")
    try:
        key.verify(signature, signed_bytes, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise SignatureCheckError("signature_invalid", "the signature does not verify") from exc
    try:
        certificate.verify_directly_issued_by(sign_ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise SignatureCheckError(
            "certificate_untrusted", "not issued by the signature CA"
        ) from exc
    if not (
        certificate.not_valid_before_utc - CLOCK_SKEW
        <= signing_time
        <= certificate.not_valid_after_utc + CLOCK_SKEW
    ):
        raise SignatureCheckError("certificate_expired", "not valid at the signing time")
    if signing_time > now + CLOCK_SKEW:
        raise SignatureCheckError("cms_malformed", "signing time in the future")
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        if not (usage.digital_signature or usage.content_commitment):
            raise SignatureCheckError("certificate_wrong_key_usage", "not a signing key")
    except x509.ExtensionNotFound as exc:
        raise SignatureCheckError("certificate_wrong_key_usage", "no key usage") from exc

    basic4 = _basic4(certificate)
    birthdate = _birthdate(basic4[BIRTHDATE_OID])
    if basic4[NAME_OID] != expected_name or birthdate.isoformat() != expected_birthdate:
        raise SignatureCheckError("signer_mismatch", "signed by someone other than the applicant")
    return VerifiedSignature(
        signer_name=basic4[NAME_OID],
        signer_birthdate=birthdate,
        signer_address=basic4.get(ADDRESS_OID, ""),
        serial_hex=f"{certificate.serial_number:x}",
        signing_time=signing_time,
        certificate=certificate,
    )
