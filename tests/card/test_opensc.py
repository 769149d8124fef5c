"""OpenSC's own JPKI driver (opensc-tool, pkcs15-tool, pkcs11-tool) against the virtual card.

Each test inserts a fresh card through pcscd + vpcd (``emulated_card``), so PIN counters start
full. Signatures made through PKCS#11 are checked with ``openssl dgst -verify``. The tools are
pointed at vpcd's first reader (PKCS#11 by token label: one card is inserted at a time).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

pytestmark = pytest.mark.opensc

Insert = Callable[..., Any]  # the ``emulated_card`` factory (tests/conftest.py)
READER = "Virtual PCD 00 00"
PKCS11_MODULE = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
AUTH_TOKEN = "JPKI (User Authentication PIN)"
SIGN_TOKEN = "JPKI (Digital Signature PIN)"
TIMEOUT = 30


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"{args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def tries_left() -> list[int]:
    """``pkcs15-tool --list-pins``: tries left on (authentication PIN, signature password)."""
    output = run("pkcs15-tool", "--reader", READER, "--list-pins").stdout
    return [int(value) for value in re.findall(r"Tries left\s*:\s*(\d+)", output)]


def pkcs11_sign(
    tmp_path: Path, *, token: str, key_id: str, pin: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    data = tmp_path / "data"
    data.write_bytes(b"signed through OpenSC's PKCS#11 module\n")
    return run(
        "pkcs11-tool",
        "--module",
        PKCS11_MODULE,
        "--token-label",
        token,
        "--login",
        "--pin",
        pin,
        "--sign",
        "--mechanism",
        "SHA256-RSA-PKCS",
        "--id",
        key_id,
        "-i",
        str(data),
        "-o",
        str(tmp_path / "signature"),
        check=check,
    )


def openssl_verify(tmp_path: Path, certificate: x509.Certificate) -> str:
    public_key = tmp_path / "public.pem"
    public_key.write_bytes(
        certificate.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    return run(
        "openssl",
        "dgst",
        "-sha256",
        "-verify",
        str(public_key),
        "-signature",
        str(tmp_path / "signature"),
        str(tmp_path / "data"),
    ).stdout


def test_opensc_detects_a_jpki_card(emulated_card: Insert) -> None:
    emulated_card()
    assert run("opensc-tool", "--reader", READER, "-n").stdout.strip() == "jpki"


def test_lists_four_certificates(emulated_card: Insert) -> None:
    emulated_card()
    output = run("pkcs15-tool", "--reader", READER, "--list-certificates").stdout
    assert output.count("X.509 Certificate [") == 4
    for title in (
        "User Authentication Certificate]",
        "Digital Signature Certificate]",
        "User Authentication Certificate CA]",
        "Digital Signature Certificate CA]",
    ):
        assert title in output


def test_reads_the_authentication_certificate(emulated_card: Insert) -> None:
    emulated = emulated_card()
    pem = run("pkcs15-tool", "--reader", READER, "--read-certificate", "01").stdout
    assert x509.load_pem_x509_certificate(pem.encode()) == emulated.credentials.auth_certificate


def test_signature_certificate_needs_the_password(emulated_card: Insert) -> None:
    emulated = emulated_card()
    refused = run("pkcs15-tool", "--reader", READER, "--read-certificate", "02", check=False)
    assert "BEGIN CERTIFICATE" not in refused.stdout
    pem = run(
        "pkcs15-tool", "--reader", READER, "--auth-id", "02", "--verify-pin", "--pin", "ABC123",
        "--read-certificate", "02",
    ).stdout  # fmt: skip
    assert x509.load_pem_x509_certificate(pem.encode()) == emulated.credentials.sign_certificate


def test_pkcs11_signs_with_the_authentication_key(emulated_card: Insert, tmp_path: Path) -> None:
    emulated = emulated_card()
    pkcs11_sign(tmp_path, token=AUTH_TOKEN, key_id="01", pin="1234")
    assert "Verified OK" in openssl_verify(tmp_path, emulated.credentials.auth_certificate)
    assert tries_left() == [3, 5]


def test_pkcs11_signs_with_the_signature_key(emulated_card: Insert, tmp_path: Path) -> None:
    emulated = emulated_card()
    pkcs11_sign(tmp_path, token=SIGN_TOKEN, key_id="02", pin="ABC123")
    assert "Verified OK" in openssl_verify(tmp_path, emulated.credentials.sign_certificate)


def test_the_signature_does_not_verify_with_the_other_certificate(
    emulated_card: Insert, tmp_path: Path
) -> None:
    emulated = emulated_card()
    pkcs11_sign(tmp_path, token=AUTH_TOKEN, key_id="01", pin="1234")
    with pytest.raises(pytest.fail.Exception, match="Verification failure"):
        openssl_verify(tmp_path, emulated.credentials.sign_certificate)


def test_wrong_pin_costs_a_try(emulated_card: Insert, tmp_path: Path) -> None:
    emulated_card()
    result = pkcs11_sign(tmp_path, token=AUTH_TOKEN, key_id="01", pin="9999", check=False)
    assert result.returncode != 0
    assert "CKR_PIN_INCORRECT" in result.stderr
    assert tries_left() == [2, 5]


def test_wrong_signature_password_costs_a_try(emulated_card: Insert, tmp_path: Path) -> None:
    emulated_card()
    result = pkcs11_sign(tmp_path, token=SIGN_TOKEN, key_id="02", pin="XYZ999", check=False)
    assert "CKR_PIN_INCORRECT" in result.stderr
    assert tries_left() == [3, 4]


def test_blocked_pin_shows_no_tries_left(emulated_card: Insert, tmp_path: Path) -> None:
    emulated_card()
    for _ in range(3):
        result = pkcs11_sign(tmp_path, token=AUTH_TOKEN, key_id="01", pin="9999", check=False)
        assert "CKR_PIN_INCORRECT" in result.stderr
    assert tries_left() == [0, 5]
    # Once blocked even the right PIN fails; OpenSC 0.23 reports it as a general error.
    result = pkcs11_sign(tmp_path, token=AUTH_TOKEN, key_id="01", pin="1234", check=False)
    assert result.returncode != 0
    assert tries_left() == [0, 5]
