from __future__ import annotations

from datetime import date

import pytest
from certfactory import (
    basic4_names,
    build,
    extension,
    extension_oid,
    policies,
    resign,
    sign_extensions,
    utf8,
    with_raw_basic4,
)
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idp.card.certs import GENDER_BY_SEX_CODE, Basic4, describe, parse_basic4
from idp.card.eras import era_code, era_matches
from idp.card.testpki import RESIDENTS, ResidentCredentials, TestPki
from idp.card.validation.errors import (
    Basic4MalformedError,
    Basic4MissingError,
    BirthdateEraMismatchError,
    CertificateMalformedError,
    CertificateValidationError,
)


def _sign_cert(pki: TestPki, **overrides: bytes | None) -> x509.Certificate:
    return build(pki.sign_ca, sign_extensions(basic4_names(**overrides)))


def test_parse_basic4_of_a_signature_certificate(yamada: ResidentCredentials) -> None:
    assert yamada.sign_certificate is not None
    assert parse_basic4(yamada.sign_certificate) == Basic4(
        name="山田　太郎",
        address="石川県加賀市大聖寺南町ニ４１番地",
        birthdate=date(1985, 4, 1),
        birthdate_era=3,
        gender="male",
        sex_code="1",
        name_substitution="00000",
        address_substitution="0" * 16,
    )


@pytest.mark.parametrize(
    ("key", "era", "gender", "substituted"),
    [
        ("suzuki", 3, "female", False),
        ("tanaka", 4, "male", False),
        ("takahashi", 4, "male", True),
        ("ito", 2, "other", False),
    ],
)
def test_parse_basic4_of_each_resident(
    pki: TestPki, key: str, era: int, gender: str, substituted: bool
) -> None:
    resident = RESIDENTS[key]
    certificate = pki.issue(resident).sign_certificate
    assert certificate is not None
    basic4 = parse_basic4(certificate)
    assert basic4.name == resident.name and basic4.address == resident.address
    assert basic4.birthdate == resident.birthdate and basic4.birthdate_era == era
    assert basic4.gender == gender and basic4.sex_code == resident.sex
    assert basic4.has_substituted_characters is substituted


def test_gender_mapping() -> None:
    assert GENDER_BY_SEX_CODE == {"1": "male", "2": "female", "3": "other"}


def test_auth_certificate_has_no_basic4(yamada: ResidentCredentials) -> None:
    with pytest.raises(Basic4MissingError):
        parse_basic4(yamada.auth_certificate)


def test_missing_entry_is_named(pki: TestPki) -> None:
    with pytest.raises(Basic4MissingError) as info:
        parse_basic4(_sign_cert(pki, sex=None))
    assert info.value.missing == ("sex",)
    assert info.value.code == "basic4_missing"


def test_san_without_basic4(pki: TestPki) -> None:
    certificate = build(pki.sign_ca, sign_extensions([x509.DNSName("example.jp")]))
    with pytest.raises(Basic4MissingError):
        parse_basic4(certificate)


def test_duplicate_entry(pki: TestPki) -> None:
    names = [*basic4_names(), *basic4_names(name=utf8("偽物　太郎"))[:1]]
    with pytest.raises(Basic4MalformedError) as info:
        parse_basic4(build(pki.sign_ca, sign_extensions(names)))
    assert info.value.field == "name"


def test_duplicate_san_extension(pki: TestPki) -> None:
    certificate = _sign_cert(pki)

    def duplicate_san(extensions: list[bytes]) -> list[bytes]:
        return [*extensions, *(e for e in extensions if extension_oid(e) == "2.5.29.17")]

    hostile = x509.load_der_x509_certificate(resign(certificate, pki.sign_ca, duplicate_san))
    with pytest.raises(Basic4MalformedError):
        parse_basic4(hostile)


def test_malformed_san_extension(pki: TestPki) -> None:
    certificate = _sign_cert(pki)

    def break_san(extensions: list[bytes]) -> list[bytes]:
        broken = extension("2.5.29.17", b"\x30\x05\xa0\x03\x06\x01")
        return [broken if extension_oid(e) == "2.5.29.17" else e for e in extensions]

    hostile = x509.load_der_x509_certificate(resign(certificate, pki.sign_ca, break_san))
    with pytest.raises(Basic4MalformedError):
        parse_basic4(hostile)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", b"\x04\x05abcde"),  # OCTET STRING
        ("name", b"\x13\x03abc"),  # PrintableString
        ("name", b"\x0c\x02\xff\xfe"),  # not UTF-8
        ("name", b"\x0c\x81\x03abc"),  # non-minimal length
        ("name", utf8("")),
        ("name", utf8("山田\n太郎")),
        ("name", utf8("山田\u202e太郎")),  # bidi override
        ("name", utf8("山" * 10_000)),
        ("address", utf8("住" * 300)),
        ("sex", utf8("9")),
        ("sex", utf8("")),
        ("sex", utf8("male")),
        ("birthdate", utf8("3198504")),
        ("birthdate", utf8("319850230")),
        ("birthdate", utf8("３19850401")),
        ("birthdate", utf8("S19850401")),
        ("birthdate", utf8("3-1985-04")),
        ("name_substitution", utf8("0002")),
        ("address_substitution", utf8("no")),
    ],
)
def test_hostile_values_are_typed(pki: TestPki, field: str, value: bytes) -> None:
    hostile = with_raw_basic4(_sign_cert(pki), pki.sign_ca, **{field: value})
    with pytest.raises(Basic4MalformedError):
        parse_basic4(x509.load_der_x509_certificate(hostile))


@pytest.mark.parametrize(
    "value",
    [
        b"",  # no value at all
        b"\x0c\x05ab",  # length past the end
        b"\x0c\x02abcd",  # trailing bytes
        b"\x0c\x84\x00\x00\x00\x03abc",  # 4-byte length
        b"\x2c\x05\x0c\x03abc",  # constructed UTF8String
    ],
)
def test_broken_der_values_are_typed(pki: TestPki, value: bytes) -> None:
    hostile = with_raw_basic4(_sign_cert(pki), pki.sign_ca, name=value)
    with pytest.raises(Basic4MalformedError):
        parse_basic4(x509.load_der_x509_certificate(hostile))


@pytest.mark.parametrize(
    ("value", "era"),
    [
        ("419850401", None),  # 平成 code for a 昭和 date
        ("319890107", 3),
        ("419890107", None),
        ("419890108", 4),
        ("420190430", 4),
        ("520190430", None),
        ("520190501", 5),
        ("119120729", 1),
        ("219120730", 2),
        ("019850401", 0),  # unknown era accepts any date
        ("618000101", None),
    ],
)
def test_birthdate_era(pki: TestPki, value: str, era: int | None) -> None:
    certificate = _sign_cert(pki, birthdate=utf8(value))
    if era is None:
        with pytest.raises(Basic4MalformedError) as info:
            parse_basic4(certificate)
        if value[0] != "6":
            assert isinstance(info.value, BirthdateEraMismatchError)
            assert info.value.code == "basic4_era_mismatch"
        return
    assert parse_basic4(certificate).birthdate_era == era


def test_era_table() -> None:
    assert era_code(date(1926, 12, 24)) == 2
    assert era_code(date(1926, 12, 25)) == 3
    assert era_code(date(2026, 1, 1)) == 5
    assert not era_matches(7, date(2026, 1, 1))
    with pytest.raises(ValueError):
        era_code(date(1800, 1, 1))


_TAGS = st.sampled_from([0x0C, 0x0C, 0x0C, 0x13, 0x16, 0x04, 0x1E])


@st.composite
def _tlv(draw: st.DrawFn) -> bytes:
    content = draw(
        st.one_of(
            st.binary(max_size=64),
            st.text(max_size=40).map(lambda t: t.encode("utf-8")),
            st.sampled_from([b"319850401", b"1", b"2", b"3", b"00000", b"419850401"]),
        )
    )
    tag = draw(_TAGS)
    length = len(content)
    header = bytes([length]) if length < 0x80 else bytes([0x81, length])
    return bytes([tag]) + header + content


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    field=st.sampled_from(
        ["name", "birthdate", "sex", "address", "name_substitution", "address_substitution"]
    ),
    value=st.one_of(_tlv(), st.none()),
)
def test_fuzzed_values_give_basic4_or_typed_errors(
    pki: TestPki, field: str, value: bytes | None
) -> None:
    try:
        certificate = _sign_cert(pki, **{field: value})
    except ValueError:
        return  # cryptography refuses to build it at all
    try:
        result = parse_basic4(certificate)
    except CertificateMalformedError as exc:
        assert isinstance(exc, CertificateValidationError)
        assert exc.code.startswith("basic4_")
        return
    assert isinstance(result, Basic4)


def test_describe(pki: TestPki, yamada: ResidentCredentials) -> None:
    auth = describe(yamada.auth_certificate)
    assert auth.purpose == "authentication"
    assert auth.subject.startswith("CN=") and "C=JP" in auth.subject
    assert "O=JPKI-TEST" in auth.issuer
    assert auth.serial_number == format(yamada.auth_certificate.serial_number, "X")
    assert auth.not_after == yamada.auth_certificate.not_valid_after_utc
    assert yamada.sign_certificate is not None
    assert describe(yamada.sign_certificate).purpose == "signature"
    assert describe(build(pki.sign_ca, [(policies("1.2.3.4"), False)])).purpose == "unknown"
    assert describe(build(pki.sign_ca, [])).purpose == "unknown"
