"""Builders for odd and hostile certificates used by the certificate and validation tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache

from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from idp.card import oids
from idp.card.testpki import IssuedCa

SHA256_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")


@cache
def subject_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def utf8(value: str | bytes) -> bytes:
    raw = value.encode("utf-8") if isinstance(value, str) else value
    return b"\x0c" + _length(len(raw)) + raw


def _length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def basic4_names(**overrides: bytes | None) -> list[x509.GeneralName]:
    """The six basic-4 otherNames of yamada; override a field's DER value, or drop it with None."""
    values: dict[str, bytes | None] = {
        "name": utf8("山田　太郎"),
        "birthdate": utf8("319850401"),
        "sex": utf8("1"),
        "address": utf8("石川県加賀市大聖寺南町ニ４１番地"),
        "name_substitution": utf8("00000"),
        "address_substitution": utf8("0" * 16),
    }
    values.update(overrides)
    order = {
        "name": oids.BASIC4_NAME,
        "birthdate": oids.BASIC4_BIRTHDATE,
        "sex": oids.BASIC4_SEX,
        "address": oids.BASIC4_ADDRESS,
        "name_substitution": oids.BASIC4_NAME_SUBSTITUTION,
        "address_substitution": oids.BASIC4_ADDRESS_SUBSTITUTION,
    }
    return [
        x509.OtherName(x509.ObjectIdentifier(oid), value)
        for field, oid in order.items()
        if (value := values[field]) is not None
    ]


def key_usage(**flags: bool) -> x509.KeyUsage:
    names = (
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    )
    return x509.KeyUsage(**{name: flags.get(name, False) for name in names})


def policies(*oid_strings: str) -> x509.CertificatePolicies:
    return x509.CertificatePolicies(
        [x509.PolicyInformation(x509.ObjectIdentifier(oid), None) for oid in oid_strings]
    )


def sign_extensions(
    san: Sequence[x509.GeneralName] | None = None,
) -> list[tuple[x509.ExtensionType, bool]]:
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (key_usage(digital_signature=True, content_commitment=True), True),
        (policies(oids.SIGN_POLICY), True),
    ]
    names = basic4_names() if san is None else san
    if names:
        extensions.append((x509.SubjectAlternativeName(names), False))
    return extensions


def auth_extensions() -> list[tuple[x509.ExtensionType, bool]]:
    return [
        (key_usage(digital_signature=True), True),
        (policies(oids.AUTH_POLICY), False),
    ]


def build(
    issuer: IssuedCa,
    extensions: Sequence[tuple[x509.ExtensionType, bool]],
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key: rsa.RSAPrivateKey | None = None,
) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "TESTHOSTILE000000001"),
                ]
            )
        )
        .issuer_name(issuer.certificate.subject)
        .public_key((key or subject_key()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=365))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer.private_key, hashes.SHA256())


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _length(len(content)) + content


def split_tlvs(data: bytes) -> list[bytes]:
    """The TLVs concatenated in ``data`` (definite lengths only)."""
    out: list[bytes] = []
    offset = 0
    while offset < len(data):
        first = data[offset + 1]
        if first < 0x80:
            length, header = first, 2
        else:
            size = first & 0x7F
            length = int.from_bytes(data[offset + 2 : offset + 2 + size], "big")
            header = 2 + size
        out.append(data[offset : offset + header + length])
        offset += header + length
    return out


def contents(element: bytes) -> bytes:
    first = element[1]
    return element[2 if first < 0x80 else 2 + (first & 0x7F) :]


def extension(oid: str, value: bytes, *, critical: bool = False) -> bytes:
    """An Extension's DER with ``value`` as the raw extnValue contents."""
    body = bytes(core.ObjectIdentifier(oid).dump())
    if critical:
        body += b"\x01\x01\xff"
    return tlv(0x30, body + tlv(0x04, value))


def extension_oid(element: bytes) -> str:
    return str(core.ObjectIdentifier.load(split_tlvs(contents(element))[0]).dotted)


SIGNATURE_ALGORITHMS = {
    "sha1": bytes.fromhex("300d06092a864886f70d0101050500"),
    "sha256": SHA256_WITH_RSA,
}


def resign(
    certificate: x509.Certificate,
    issuer: IssuedCa,
    edit: Callable[[list[bytes]], list[bytes]] = list,
    *,
    hash_algorithm: hashes.HashAlgorithm | None = None,
    edit_fields: Callable[[list[bytes]], None] | None = None,
) -> bytes:
    """The certificate with its extension list (DER of each Extension) changed by ``edit``,
    signed again by ``issuer`` (with SHA-256 or ``hash_algorithm``, even SHA-1); written by
    hand so that anything can be produced."""
    algorithm = hash_algorithm or hashes.SHA256()
    algorithm_der = SIGNATURE_ALGORITHMS[algorithm.name]
    fields = split_tlvs(contents(certificate.tbs_certificate_bytes))
    fields[2] = algorithm_der
    assert fields[-1][0] == 0xA3
    extensions = split_tlvs(contents(contents(fields[-1])))
    fields[-1] = tlv(0xA3, tlv(0x30, b"".join(edit(extensions))))
    if edit_fields is not None:  # 0 version, 1 serial, 3 issuer, 4 validity, 5 subject, 6 key
        edit_fields(fields)
    tbs_der = tlv(0x30, b"".join(fields))
    signature = issuer.private_key.sign(tbs_der, padding.PKCS1v15(), algorithm)
    return tlv(0x30, tbs_der + algorithm_der + tlv(0x03, b"\x00" + signature))


def raw_san(names: Sequence[x509.GeneralName], **raw_values: bytes) -> bytes:
    """A subjectAltName's DER with otherName values written verbatim (``field=bytes``)."""
    fields = {
        oids.BASIC4_NAME: "name",
        oids.BASIC4_BIRTHDATE: "birthdate",
        oids.BASIC4_SEX: "sex",
        oids.BASIC4_ADDRESS: "address",
        oids.BASIC4_NAME_SUBSTITUTION: "name_substitution",
        oids.BASIC4_ADDRESS_SUBSTITUTION: "address_substitution",
    }
    encoded = b""
    for name in names:
        assert isinstance(name, x509.OtherName)
        oid = name.type_id.dotted_string
        value = raw_values.get(fields.get(oid, ""), name.value)
        encoded += tlv(0xA0, bytes(core.ObjectIdentifier(oid).dump()) + tlv(0xA0, value))
    return tlv(0x30, encoded)


def with_raw_basic4(certificate: x509.Certificate, issuer: IssuedCa, **raw_values: bytes) -> bytes:
    """``certificate`` (with a basic-4 SAN) re-signed with some values replaced verbatim."""
    names = list(certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    replacement = extension("2.5.29.17", raw_san(names, **raw_values))

    def edit(extensions: list[bytes]) -> list[bytes]:
        return [replacement if extension_oid(e) == "2.5.29.17" else e for e in extensions]

    return resign(certificate, issuer, edit)
