from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from idp.card.challenge import NONCE_BYTES, Challenge, ChallengeFormatError, new_nonce
from idp.card.errors import CardError
from idp.card.testpki import ResidentCredentials


def _challenge(**overrides: str) -> Challenge:
    fields = {
        "origin": "https://idp.city.kaga.example",
        "nonce": "n0nce-AbC_123",
        "transaction_id": "tx-42",
        "purpose": "login",
    }
    fields.update(overrides)
    return Challenge(**fields)


def test_new_nonce_is_256_bits_base64url_unpadded() -> None:
    nonce = new_nonce()
    assert len(nonce) == 43 and "=" not in nonce
    assert len(base64.urlsafe_b64decode(nonce + "=")) == NONCE_BYTES == 32
    assert new_nonce() != nonce


def test_to_be_signed_is_hash_of_origin_then_hash_of_context() -> None:
    challenge = _challenge()
    expected = (
        hashlib.sha256(b"https://idp.city.kaga.example").digest()
        + hashlib.sha256(b"n0nce-AbC_123\ntx-42\nlogin").digest()
    )
    assert challenge.to_be_signed() == expected
    assert len(expected) == 64


def test_every_field_changes_what_is_signed() -> None:
    base = _challenge().to_be_signed()
    for field, value in (
        ("origin", "https://evil.example"),
        ("nonce", "other"),
        ("transaction_id", "tx-43"),
        ("purpose", "sign"),
    ):
        assert _challenge(**{field: value}).to_be_signed() != base


def test_digest_info_is_the_der_sha256_digest_info() -> None:
    challenge = _challenge()
    info = challenge.digest_info()
    assert len(info) == 51
    assert info[:19] == bytes.fromhex("3031300d060960864801650304020105000420")
    assert info[19:] == hashlib.sha256(challenge.to_be_signed()).digest()


def test_a_raw_rsa_signature_over_digest_info_is_a_standard_rs256_signature(
    yamada: ResidentCredentials,
) -> None:
    """What the card does (pad DigestInfo, raw RSA) verifies as PKCS#1 v1.5 SHA-256."""
    challenge = _challenge()
    key = yamada.auth_key
    numbers = key.private_numbers()
    size = key.key_size // 8
    info = challenge.digest_info()
    encoded = b"\x00\x01" + b"\xff" * (size - len(info) - 3) + b"\x00" + info
    raw = pow(int.from_bytes(encoded, "big"), numbers.d, numbers.public_numbers.n)
    signature = raw.to_bytes(size, "big")
    public = key.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, challenge.to_be_signed(), padding.PKCS1v15(), hashes.SHA256())
    assert signature == key.sign(challenge.to_be_signed(), padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize(
    "origin",
    [
        "https://idp.example.jp",
        "https://idp.example.jp:8443",
        "https://localhost:5000",
        "http://localhost:5000",
        "http://127.0.0.1:8080",
        "https://[::1]:8443",
    ],
)
def test_origins_accepted(origin: str) -> None:
    assert _challenge(origin=origin).origin == origin


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("origin", "https://idp.example.jp/"),
        ("origin", "https://idp.example.jp/path"),
        ("origin", "http://idp.example.jp"),
        ("origin", "https://IDP.example.jp"),
        ("origin", "https://idp.example.jp:0"),
        ("origin", "https://idp.example.jp:99999"),
        ("origin", "idp.example.jp"),
        ("origin", ""),
        ("nonce", ""),
        ("nonce", "a\nb"),
        ("nonce", "x" * 257),
        ("transaction_id", "tx 1"),
        ("transaction_id", "tx\n"),
        ("purpose", "logout"),
    ],
)
def test_bad_fields_are_typed_errors(field: str, value: str) -> None:
    with pytest.raises(ChallengeFormatError) as info:
        _challenge(**{field: value})
    assert info.value.field == field
    assert isinstance(info.value, CardError) and isinstance(info.value, ValueError)
