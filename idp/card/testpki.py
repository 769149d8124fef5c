"""A test JPKI: two CAs shaped like J-LIS's and residents' certificates shaped like a card's.

For tests, the virtual card and the demo only. Nothing here is trusted in production: the CA
names say ``O=JPKI-TEST`` and the private keys are stored unencrypted.

- ``TestPki.generate()`` makes the authentication CA and the signature CA (self-signed RSA-2048,
  sha256WithRSA, 10 years, keyUsage keyCertSign+cRLSign and basicConstraints CA:TRUE, both
  critical).
- ``TestPki.issue(resident, variant=...)`` makes a resident's 利用者証明用 (auth) and 署名用
  (sign) certificates with fresh RSA-2048 keys. The variants break one property each, applied to
  both certificates: ``expired``, ``not_yet_valid``, ``wrong_ca`` (issued by a CA with the same
  DN but another key, which is trusted nowhere), ``wrong_policy`` (the auth and sign policies
  swapped) and ``wrong_key_usage`` (keyEncipherment instead of digitalSignature).
  Residents under 15 get no signature certificate, as on a real card.
- ``TestPki.crl(kind, revoked, ...)`` signs a CRL with either CA.

Storage (``save``/``load``): a directory of PEM files, ``auth-ca.pem``/``auth-ca.key.pem``,
``sign-ca.pem``/``sign-ca.key.pem``, the untrusted ``rogue-*`` CAs when made, and every
credential issued with ``now=None`` under ``residents/<resident>.<variant>.{auth,sign}[.key].pem``.
``issue(...)`` without ``now`` returns the stored credential of that resident and variant when
there is one (so a saved PKI gives the same certificates and keys after a restart); with
``now`` it always issues afresh and stores nothing.

RSA key generation takes tens of milliseconds per key: build one ``TestPki`` per test session.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Final, Literal

from asn1crypto.core import UTF8String
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from idp.card import oids
from idp.card.eras import era_code

__all__ = [
    "RESIDENTS",
    "VARIANTS",
    "IssuedCa",
    "Resident",
    "ResidentCredentials",
    "TestPki",
]

CaKind = Literal["auth", "sign"]

VARIANTS: Final = (
    "good",
    "expired",
    "not_yet_valid",
    "wrong_ca",
    "wrong_policy",
    "wrong_key_usage",
)

JPKI_SERVICE_NAME: Final = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "公的個人認証サービス"),
    ]
)
"""The DirName J-LIS puts in the CA's subjectAltName and the EE certificates' issuerAltName."""

_CA_VALIDITY: Final = timedelta(days=3652)
_ID_ALPHABET: Final = string.ascii_uppercase + string.digits
_NO_SIGN_CERT_UNDER: Final = 15


@dataclass(frozen=True)
class Resident:
    """A fictional resident: the basic 4 facts plus where they live (romaji for the DN)."""

    key: str
    name: str
    address: str
    birthdate: date
    sex: str
    municipality: str
    prefecture: str
    name_substituted: str | None = None
    address_substituted: str | None = None

    @property
    def name_flags(self) -> str:
        return self.name_substituted or "0" * len(self.name)

    @property
    def address_flags(self) -> str:
        return self.address_substituted or "0" * len(self.address)


RESIDENTS: Final[dict[str, Resident]] = {
    r.key: r
    for r in (
        Resident(
            key="yamada",
            name="山田　太郎",
            address="石川県加賀市大聖寺南町ニ４１番地",
            birthdate=date(1985, 4, 1),
            sex="1",
            municipality="Kaga-shi",
            prefecture="Ishikawa",
        ),
        Resident(
            key="suzuki",
            name="鈴木　花子",
            address="石川県加賀市山中温泉本町２丁目ナ１番地",
            birthdate=date(1952, 11, 20),
            sex="2",
            municipality="Kaga-shi",
            prefecture="Ishikawa",
        ),
        Resident(
            key="tanaka",
            name="田中　翔",
            address="東京都清瀬市中里五丁目８４２番地",
            birthdate=date(2007, 6, 15),
            sex="1",
            municipality="Kiyose-shi",
            prefecture="Tokyo",
        ),
        Resident(
            # 髙 is outside JIS X 0208: the card carries 高 and flags the first character.
            key="takahashi",
            name="高橋　健一",
            address="大阪府大阪市北区中之島一丁目３番２０号",
            birthdate=date(1990, 2, 28),
            sex="1",
            municipality="Osaka-shi",
            prefecture="Osaka",
            name_substituted="10000",
        ),
        Resident(
            key="ito",
            name="伊藤　ひかる",
            address="北海道札幌市中央区北一条西二丁目",
            birthdate=date(1925, 3, 3),
            sex="3",
            municipality="Sapporo-shi",
            prefecture="Hokkaido",
        ),
        Resident(
            key="kobayashi",
            name="小林　さくら",
            address="石川県加賀市作見町ル２５番地１",
            birthdate=date(2016, 8, 9),
            sex="2",
            municipality="Kaga-shi",
            prefecture="Ishikawa",
        ),
    )
}


@dataclass(frozen=True)
class IssuedCa:
    """A CA certificate with its private key."""

    certificate: x509.Certificate
    private_key: rsa.RSAPrivateKey


@dataclass(frozen=True)
class ResidentCredentials:
    """What a resident's card holds: the auth pair and, from age 15, the sign pair."""

    resident: Resident
    auth_certificate: x509.Certificate
    auth_key: rsa.RSAPrivateKey
    sign_certificate: x509.Certificate | None
    sign_key: rsa.RSAPrivateKey | None


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _ca_name(kind: CaKind) -> x509.Name:
    purpose = "JPKI for user authentication" if kind == "auth" else "JPKI for digital signature"
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI-TEST"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, purpose),
            x509.NameAttribute(
                NameOID.ORGANIZATIONAL_UNIT_NAME,
                "Test Agency for Local Authority Information Systems",
            ),
        ]
    )


def make_ca(kind: CaKind, *, now: datetime | None = None) -> IssuedCa:
    """A self-signed CA of the given kind; call it again for another generation (same DN)."""
    now = now or datetime.now(UTC)
    key = _new_key()
    name = _ca_name(kind)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now - timedelta(days=1) + _CA_VALIDITY)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DirectoryName(JPKI_SERVICE_NAME)]), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return IssuedCa(certificate=certificate, private_key=key)


def _opaque_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


def _utf8_der(value: str) -> bytes:
    return bytes(UTF8String(value).dump())


def fifth_birthday_after(birthdate: date, issued: date) -> date:
    """The holder's 5th birthday after ``issued`` (29 February falls back to the 28th)."""

    def birthday_in(year: int) -> date:
        try:
            return birthdate.replace(year=year)
        except ValueError:
            return date(year, 2, 28)

    first = birthday_in(issued.year)
    if first <= issued:
        first = birthday_in(issued.year + 1)
    return birthday_in(first.year + 4)


def _age(birthdate: date, on: date) -> int:
    return on.year - birthdate.year - ((on.month, on.day) < (birthdate.month, birthdate.day))


def _key_usage(*, digital_signature: bool, non_repudiation: bool, encipher: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=non_repudiation,
        key_encipherment=encipher,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _basic4_san(resident: Resident) -> x509.SubjectAlternativeName:
    values = {
        oids.BASIC4_NAME: resident.name,
        oids.BASIC4_BIRTHDATE: f"{era_code(resident.birthdate)}{resident.birthdate:%Y%m%d}",
        oids.BASIC4_SEX: resident.sex,
        oids.BASIC4_ADDRESS: resident.address,
        oids.BASIC4_NAME_SUBSTITUTION: resident.name_flags,
        oids.BASIC4_ADDRESS_SUBSTITUTION: resident.address_flags,
    }
    return x509.SubjectAlternativeName(
        [
            x509.OtherName(x509.ObjectIdentifier(oid), _utf8_der(values[oid]))
            for oid in oids.BASIC4_ORDER
        ]
    )


@dataclass(frozen=True)
class _Window:
    not_before: datetime
    not_after: datetime


def _window(resident: Resident, variant: str, now: datetime) -> _Window:
    expiry = fifth_birthday_after(resident.birthdate, now.date())
    # 23:59:59 JST on the expiry date.
    not_after = datetime.combine(expiry, time(14, 59, 59), tzinfo=UTC)
    if variant == "expired":
        return _Window(now - timedelta(days=5 * 365), now - timedelta(days=1))
    if variant == "not_yet_valid":
        return _Window(now + timedelta(days=1), not_after)
    return _Window(now - timedelta(minutes=10), not_after)


@dataclass
class TestPki:
    """The two test CAs and the credentials issued under them (see the module docstring)."""

    __test__ = False  # not a pytest test class

    auth_ca: IssuedCa
    sign_ca: IssuedCa
    rogue_auth_ca: IssuedCa | None = None
    rogue_sign_ca: IssuedCa | None = None
    _issued: dict[tuple[str, str], ResidentCredentials] = field(default_factory=dict, repr=False)

    @classmethod
    def generate(cls, *, now: datetime | None = None) -> TestPki:
        return cls(auth_ca=make_ca("auth", now=now), sign_ca=make_ca("sign", now=now))

    def ca(self, kind: CaKind) -> IssuedCa:
        return self.auth_ca if kind == "auth" else self.sign_ca

    def rogue_ca(self, kind: CaKind) -> IssuedCa:
        """An untrusted CA with the same DN as the real one (made on first use)."""
        if kind == "auth":
            if self.rogue_auth_ca is None:
                self.rogue_auth_ca = make_ca("auth")
            return self.rogue_auth_ca
        if self.rogue_sign_ca is None:
            self.rogue_sign_ca = make_ca("sign")
        return self.rogue_sign_ca

    # -- issuing ---------------------------------------------------------------------------

    def issue(
        self, resident: Resident, *, variant: str = "good", now: datetime | None = None
    ) -> ResidentCredentials:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
        if now is None:
            cached = self._issued.get((resident.key, variant))
            if cached is not None:
                return cached
        at = now or datetime.now(UTC)
        auth_key = _new_key()
        auth_certificate = self._auth_certificate(resident, variant, at, auth_key)
        sign_key: rsa.RSAPrivateKey | None = None
        sign_certificate: x509.Certificate | None = None
        if _age(resident.birthdate, at.date()) >= _NO_SIGN_CERT_UNDER:
            sign_key = _new_key()
            sign_certificate = self._sign_certificate(resident, variant, at, sign_key)
        creds = ResidentCredentials(
            resident=resident,
            auth_certificate=auth_certificate,
            auth_key=auth_key,
            sign_certificate=sign_certificate,
            sign_key=sign_key,
        )
        if now is None:
            self._issued[(resident.key, variant)] = creds
        return creds

    def _issuer(self, kind: CaKind, variant: str) -> IssuedCa:
        return self.rogue_ca(kind) if variant == "wrong_ca" else self.ca(kind)

    def _ee_builder(
        self,
        kind: CaKind,
        variant: str,
        subject: x509.Name,
        window: _Window,
        key: rsa.RSAPrivateKey,
    ) -> tuple[x509.CertificateBuilder, IssuedCa]:
        issuer = self._issuer(kind, variant)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(window.not_before)
            .not_valid_after(window.not_after)
            .add_extension(
                x509.IssuerAlternativeName([x509.DirectoryName(JPKI_SERVICE_NAME)]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.private_key.public_key()),
                critical=False,
            )
        )
        return builder, issuer

    def _auth_certificate(
        self, resident: Resident, variant: str, now: datetime, key: rsa.RSAPrivateKey
    ) -> x509.Certificate:
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                x509.NameAttribute(NameOID.COMMON_NAME, _opaque_id()),
            ]
        )
        wrong_usage = variant == "wrong_key_usage"
        policy = oids.SIGN_POLICY_OID if variant == "wrong_policy" else oids.AUTH_POLICY_OID
        builder, issuer = self._ee_builder(
            "auth", variant, subject, _window(resident, variant, now), key
        )
        builder = builder.add_extension(
            _key_usage(
                digital_signature=not wrong_usage, non_repudiation=False, encipher=wrong_usage
            ),
            critical=True,
        ).add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(policy, None)]), critical=False
        )
        return builder.sign(issuer.private_key, hashes.SHA256())

    def _sign_certificate(
        self, resident: Resident, variant: str, now: datetime, key: rsa.RSAPrivateKey
    ) -> x509.Certificate:
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                x509.NameAttribute(NameOID.LOCALITY_NAME, resident.prefecture),
                x509.NameAttribute(NameOID.LOCALITY_NAME, resident.municipality),
                x509.NameAttribute(NameOID.COMMON_NAME, _opaque_id()),
            ]
        )
        wrong_usage = variant == "wrong_key_usage"
        policy = oids.AUTH_POLICY_OID if variant == "wrong_policy" else oids.SIGN_POLICY_OID
        builder, issuer = self._ee_builder(
            "sign", variant, subject, _window(resident, variant, now), key
        )
        builder = (
            builder.add_extension(
                _key_usage(
                    digital_signature=not wrong_usage,
                    non_repudiation=not wrong_usage,
                    encipher=wrong_usage,
                ),
                critical=True,
            )
            .add_extension(
                x509.CertificatePolicies([x509.PolicyInformation(policy, None)]), critical=True
            )
            .add_extension(_basic4_san(resident), critical=False)
        )
        return builder.sign(issuer.private_key, hashes.SHA256())

    # -- revocation lists ------------------------------------------------------------------

    def crl(
        self,
        kind: CaKind,
        revoked: Iterable[tuple[int, datetime, x509.ReasonFlags | None]] = (),
        *,
        this_update: datetime | None = None,
        next_update: datetime | None = None,
        signer: IssuedCa | None = None,
    ) -> x509.CertificateRevocationList:
        """A CRL of the ``kind`` CA, signed by it (or by ``signer``, to forge one)."""
        ca = self.ca(kind)
        signing = signer or ca
        this_update = this_update or datetime.now(UTC) - timedelta(minutes=1)
        next_update = next_update or this_update + timedelta(days=1)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.certificate.subject)
            .last_update(this_update)
            .next_update(next_update)
        )
        for serial, revoked_at, reason in revoked:
            entry = (
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_at)
            )
            if reason is not None:
                entry = entry.add_extension(x509.CRLReason(reason), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(signing.private_key, hashes.SHA256())

    # -- storage ---------------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        cas: dict[str, IssuedCa | None] = {
            "auth-ca": self.auth_ca,
            "sign-ca": self.sign_ca,
            "rogue-auth-ca": self.rogue_auth_ca,
            "rogue-sign-ca": self.rogue_sign_ca,
        }
        for stem, ca in cas.items():
            if ca is not None:
                _write_pair(directory, stem, ca.certificate, ca.private_key)
        residents = directory / "residents"
        residents.mkdir(exist_ok=True)
        for (resident_key, variant), creds in self._issued.items():
            stem = f"{resident_key}.{variant}"
            _write_pair(residents, f"{stem}.auth", creds.auth_certificate, creds.auth_key)
            if creds.sign_certificate is not None and creds.sign_key is not None:
                _write_pair(residents, f"{stem}.sign", creds.sign_certificate, creds.sign_key)

    @classmethod
    def load(cls, directory: Path) -> TestPki:
        pki = cls(
            auth_ca=_read_ca(directory, "auth-ca"),
            sign_ca=_read_ca(directory, "sign-ca"),
            rogue_auth_ca=_read_optional_ca(directory, "rogue-auth-ca"),
            rogue_sign_ca=_read_optional_ca(directory, "rogue-sign-ca"),
        )
        residents = directory / "residents"
        for auth_path in sorted(residents.glob("*.auth.pem")) if residents.is_dir() else []:
            resident_key, variant, _ = auth_path.name.split(".", 2)
            resident = RESIDENTS.get(resident_key)
            if resident is None or variant not in VARIANTS:
                continue
            auth_certificate, auth_key = _read_pair(
                auth_path.parent, f"{resident_key}.{variant}.auth"
            )
            sign_certificate: x509.Certificate | None = None
            sign_key: rsa.RSAPrivateKey | None = None
            if (auth_path.parent / f"{resident_key}.{variant}.sign.pem").exists():
                sign_certificate, sign_key = _read_pair(
                    auth_path.parent, f"{resident_key}.{variant}.sign"
                )
            pki._issued[(resident_key, variant)] = ResidentCredentials(
                resident=resident,
                auth_certificate=auth_certificate,
                auth_key=auth_key,
                sign_certificate=sign_certificate,
                sign_key=sign_key,
            )
        return pki

    @classmethod
    def load_or_generate(cls, directory: Path) -> TestPki:
        """Load the PKI saved in ``directory``, or generate one and save it there."""
        if (directory / "auth-ca.pem").exists():
            return cls.load(directory)
        pki = cls.generate()
        pki.save(directory)
        return pki


def _write_pair(
    directory: Path, stem: str, certificate: x509.Certificate, key: rsa.RSAPrivateKey
) -> None:
    (directory / f"{stem}.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path = directory / f"{stem}.key.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)


def _read_pair(directory: Path, stem: str) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    certificate = x509.load_pem_x509_certificate((directory / f"{stem}.pem").read_bytes())
    key = serialization.load_pem_private_key(
        (directory / f"{stem}.key.pem").read_bytes(), password=None
    )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{stem}.key.pem does not hold an RSA private key")
    return certificate, key


def _read_ca(directory: Path, stem: str) -> IssuedCa:
    certificate, key = _read_pair(directory, stem)
    return IssuedCa(certificate=certificate, private_key=key)


def _read_optional_ca(directory: Path, stem: str) -> IssuedCa | None:
    return _read_ca(directory, stem) if (directory / f"{stem}.pem").exists() else None


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def _der_integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def _der_time(moment: datetime) -> bytes:
    moment = moment.astimezone(UTC)
    if 1950 <= moment.year < 2050:
        return _der(0x17, moment.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    return _der(0x18, moment.strftime("%Y%m%d%H%M%SZ").encode("ascii"))


_SHA256_WITH_RSA: Final = bytes.fromhex("300d06092a864886f70d01010b0500")
_CRL_REASON_OID: Final = bytes.fromhex("0603551d15")
_CRL_REASON_CODES: Final = {
    x509.ReasonFlags.unspecified: 0,
    x509.ReasonFlags.key_compromise: 1,
    x509.ReasonFlags.ca_compromise: 2,
    x509.ReasonFlags.affiliation_changed: 3,
    x509.ReasonFlags.superseded: 4,
    x509.ReasonFlags.cessation_of_operation: 5,
    x509.ReasonFlags.certificate_hold: 6,
    x509.ReasonFlags.remove_from_crl: 8,
    x509.ReasonFlags.privilege_withdrawn: 9,
    x509.ReasonFlags.aa_compromise: 10,
}


def bulk_crl_der(
    ca: IssuedCa,
    serials: Iterable[int],
    *,
    revoked_at: datetime,
    reason: x509.ReasonFlags | None,
    this_update: datetime,
    next_update: datetime,
) -> bytes:
    """A DER CRL with many entries, encoded directly (``CertificateRevocationListBuilder``
    copies its entry list on every add, which is quadratic at 10^6 entries)."""
    when = _der_time(revoked_at)
    extensions = b""
    if reason is not None:
        code = _CRL_REASON_CODES[reason]
        reason_value = _der(0x04, _der(0x0A, bytes([code])))
        extensions = _der(0x30, _der(0x30, _CRL_REASON_OID + reason_value))
    entries = b"".join(_der(0x30, _der_integer(s) + when + extensions) for s in serials)
    tbs = _der(
        0x30,
        _der_integer(1)
        + _SHA256_WITH_RSA
        + ca.certificate.subject.public_bytes()
        + _der_time(this_update)
        + _der_time(next_update)
        + (_der(0x30, entries) if entries else b""),
    )
    signature = ca.private_key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    return _der(0x30, tbs + _SHA256_WITH_RSA + _der(0x03, b"\x00" + signature))
