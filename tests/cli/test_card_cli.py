"""``idp card ...`` against real pcscd/vpcd: the happy paths and every clear-error path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from idp.card import pcsc
from idp.cli import main

Insert = Callable[..., Any]  # the ``emulated_card`` factory (tests/conftest.py)
VPCD_READER = "Virtual PCD 00 00"
IDP = str(Path(sys.executable).with_name("idp"))
TIMEOUT = 30


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["card", *args], input=input)


def assert_clean_error(result: Result, exit_code: int, message: str) -> None:
    assert result.exit_code == exit_code, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


class NotJpkiCard:
    """Some other smart card: every application is unknown, every other command unsupported."""

    atr = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")

    def process(self, raw: bytes) -> bytes:
        return b"\x6a\x82" if raw[1:2] == b"\xa4" else b"\x6d\x00"

    def power_on(self) -> None: ...

    def power_off(self) -> None: ...

    def reset(self) -> None: ...


# -- without pcscd / without a card -----------------------------------------------------------


def test_no_pcscd_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "PCSCLITE_CSOCK_NAME": str(tmp_path / "no-pcscd.comm")}  # noqa: TID251
    for command in ("readers", "status"):
        result = subprocess.run(
            [IDP, "card", command], capture_output=True, text=True, env=env, timeout=TIMEOUT
        )
        assert result.returncode == 3, result.stderr
        assert result.stderr.strip() == "Error: pcscd (the PC/SC service) is not running"


@pytest.mark.pcsc
def test_readers_lists_the_vpcd_readers(emulated_card: Insert) -> None:
    emulated_card()
    result = invoke("readers")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "Virtual PCD 00 00: card present",
        "Virtual PCD 00 01: no card",
    ]


@pytest.mark.pcsc
def test_status_without_a_card() -> None:
    assert_clean_error(invoke("status"), 5, "Error: no card in the reader")


@pytest.mark.pcsc
def test_status_of_an_empty_reader(emulated_card: Insert) -> None:
    emulated_card()
    result = invoke("status", "--reader", "Virtual PCD 00 01")
    assert_clean_error(result, 5, "no card in the reader (Virtual PCD 00 01)")


@pytest.mark.pcsc
def test_status_of_an_unknown_reader() -> None:
    assert_clean_error(invoke("status", "--reader", "Nope 42"), 4, "no single reader matches")


@pytest.mark.pcsc
def test_status_of_a_card_that_is_not_jpki(emulated_card: Insert) -> None:
    emulated_card(serve=lambda _card: NotJpkiCard())
    assert_clean_error(invoke("status"), 6, "not a My Number card")


# -- status and verify-pin on the emulated card -----------------------------------------------


@pytest.mark.pcsc
def test_status_shows_tries_and_certificates(emulated_card: Insert) -> None:
    emulated = emulated_card()
    result = invoke("status", "--reader", VPCD_READER)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "card:   My Number card (JPKI token label 'JPKIAPICCTOKEN2')" in out
    assert "authentication PIN:  3 of 3 tries left" in out
    assert "signature password:  5 of 5 tries left" in out
    certificate = emulated.credentials.auth_certificate
    assert f"subject:  {certificate.subject.rfc4514_string()}" in out
    assert f"serial:   {certificate.serial_number:X}" in out
    assert "JPKI for digital signature" in out  # the signature CA
    assert "signature certificate: not shown" in out
    # Status spends no try.
    assert "3 of 3 tries left" in invoke("status").stdout


@pytest.mark.pcsc
def test_verify_pin(emulated_card: Insert) -> None:
    emulated_card(pin="4321")
    result = invoke("verify-pin", input="4321\n")
    assert result.exit_code == 0, result.output
    assert "Authentication PIN: correct" in result.stdout
    assert "4321" not in result.output


@pytest.mark.pcsc
def test_verify_signature_password(emulated_card: Insert) -> None:
    emulated_card(sign_password="PASS99")
    result = invoke("verify-pin", "--signature", input="pass99\n")  # clients upper-case it
    assert result.exit_code == 0, result.output
    assert "Signature password: correct" in result.stdout


@pytest.mark.pcsc
def test_wrong_then_blocked_pin(emulated_card: Insert) -> None:
    emulated_card()
    result = invoke("verify-pin", input="9999\n")
    assert_clean_error(result, 8, "2 tries left")
    assert "9999" not in result.output
    invoke("verify-pin", input="9999\n")
    assert_clean_error(invoke("verify-pin", input="9999\n"), 7, "the PIN is blocked")
    assert "authentication PIN:  blocked" in invoke("status").stdout
    # Blocked: the command refuses before asking for (and sending) a PIN.
    assert_clean_error(invoke("verify-pin", input="1234\n"), 7, "the PIN is blocked")


@pytest.mark.pcsc
def test_pin_of_the_wrong_shape_costs_nothing(emulated_card: Insert) -> None:
    emulated_card()
    assert_clean_error(invoke("verify-pin", input="12ab\n"), 1, "exactly 4 digits")
    assert "3 of 3 tries left" in invoke("status").stdout


# -- emulate ------------------------------------------------------------------------------------


def test_list_residents() -> None:
    result = invoke("emulate", "--list-residents")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].startswith("yamada     山田　太郎  born 1985-04-01")


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--pin", "12345"], "--pin"),
        (["--sign-password", "abc"], "--sign-password"),
        (["--host", "192.0.2.7"], "--host"),
        (["--resident", "nobody"], "--resident"),
    ],
)
def test_emulate_refuses_bad_options(tmp_path: Path, args: list[str], hint: str) -> None:
    result = invoke("emulate", "--pki-dir", str(tmp_path), *args)
    assert result.exit_code == 2
    assert hint in result.stderr
    assert not any(tmp_path.iterdir())  # refused before any PKI work
    if hint in ("--pin", "--sign-password"):
        assert args[1] not in result.output  # a PIN is never echoed, not even a bad one


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """``idp card emulate`` as its own process, stopped with SIGTERM after the test."""
    process = subprocess.Popen(
        [IDP, "card", "emulate", "--pki-dir", str(tmp_path / "pki"), "--pin", "8642"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process
    if process.poll() is None:
        process.kill()
        process.wait(TIMEOUT)
    assert pcsc.wait_for_card(VPCD_READER, timeout=5, present=False)


@pytest.mark.pcsc
def test_emulate_serves_a_card_until_sigterm(
    emulator: subprocess.Popen[str], tmp_path: Path
) -> None:
    assert emulator.stdout is not None
    assert emulator.stdout.readline().strip() == "card inserted: resident=yamada reader port=35963"
    assert pcsc.wait_for_card(VPCD_READER, timeout=5)
    status = subprocess.run(
        [IDP, "card", "status"], capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert status.returncode == 0, status.stderr
    assert "authentication PIN:  3 of 3 tries left" in status.stdout
    assert (tmp_path / "pki" / "auth-ca.pem").exists()

    emulator.send_signal(signal.SIGTERM)
    out, err = emulator.communicate(timeout=TIMEOUT)
    assert emulator.returncode == 0, err
    assert "card removed: emulator stopped" in err
    assert "8642" not in out + err  # the PIN is never printed
    assert pcsc.wait_for_card(VPCD_READER, timeout=5, present=False)


@pytest.mark.pcsc
def test_emulate_keeps_the_same_credentials_across_runs(tmp_path: Path) -> None:
    pki_dir = tmp_path / "pki"
    serials = []
    for _ in range(2):
        process = subprocess.Popen(
            [IDP, "card", "emulate", "--pki-dir", str(pki_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdout is not None
            assert process.stdout.readline().startswith("card inserted:")
            assert pcsc.wait_for_card(VPCD_READER, timeout=5)
            status = invoke("status").stdout
            serials.append(next(line for line in status.splitlines() if "serial:" in line))
        finally:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=TIMEOUT)
        assert process.returncode == 0
        assert pcsc.wait_for_card(VPCD_READER, timeout=5, present=False)
    assert serials[0] == serials[1]
