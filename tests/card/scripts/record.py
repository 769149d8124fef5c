"""Recorded APDU scripts of the JPKI client, and the scenarios that produce them.

Each ``<name>.apdu`` file here is what ``JpkiClient`` sent to a fresh ``VirtualCard`` (yamada,
PIN 1234, password ABC123) for one scenario, and what the card answered: ``>`` lines are
commands, ``<`` lines responses, ``#`` lines comments. ``test_jpki_client.py`` replays them
through ``ScriptTransport``, so any change in the client's APDU sequence fails the test until
the scripts are recorded again (and the diff reviewed):

    .venv/bin/python tests/card/scripts/record.py

Recording makes a new test PKI, so certificates and signatures change on every run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from idp.card.errors import WrongPinError
from idp.card.jpki import JpkiClient, PinKind
from idp.card.testpki import RESIDENTS, TestPki
from idp.card.transport import InProcessTransport, RecordingTransport
from idp.card.virtual import VirtualCard

SCRIPTS_DIR = Path(__file__).parent
MESSAGE = b"recorded challenge: https://idp.example.jp login"
DIGEST_INFO = (
    bytes.fromhex("3031300D060960864801650304020105000420") + hashlib.sha256(MESSAGE).digest()
)
PIN = "1234"
SIGN_PASSWORD = "ABC123"
WRONG_PIN = "9999"


def _wrong_pin(client: JpkiClient) -> int:
    try:
        client.verify_pin(PinKind.AUTH, WRONG_PIN)
    except WrongPinError as exc:
        return exc.tries_left
    raise AssertionError("the wrong PIN was accepted")


@dataclass(frozen=True)
class Scenario:
    description: str
    run: Callable[[JpkiClient], object]


SCENARIOS: dict[str, Scenario] = {
    "login-known-certificate": Scenario(
        "authenticate(DIGEST_INFO, PIN): login when the server already has the certificate",
        lambda client: client.authenticate(DIGEST_INFO, PIN),
    ),
    "login-reading-certificate": Scenario(
        "login(DIGEST_INFO, PIN): read the authentication certificate, then authenticate",
        lambda client: client.login(DIGEST_INFO, PIN),
    ),
    "pin-status": Scenario(
        "pin_status(): tries left on PIN1 and the signature password",
        lambda client: client.pin_status(),
    ),
    "enrollment": Scenario(
        "enroll(DIGEST_INFO, SIGN_PASSWORD): signature certificate and a signature with its key",
        lambda client: client.enroll(DIGEST_INFO, SIGN_PASSWORD),
    ),
    "token-info": Scenario(
        "read_token_info(): the token label",
        lambda client: client.read_token_info(),
    ),
    "wrong-pin": Scenario(
        "verify_pin(AUTH, WRONG_PIN): one wrong PIN1",
        _wrong_pin,
    ),
}


def format_script(description: str, script: list[tuple[bytes, bytes]]) -> str:
    lines = [f"# {description}", "# recorded from VirtualCard by tests/card/scripts/record.py"]
    for command, response in script:
        lines += [f"> {command.hex().upper()}", f"< {response.hex().upper()}"]
    return "\n".join(lines) + "\n"


def parse_script(text: str) -> list[tuple[bytes, bytes]]:
    """The (command, response) pairs of a script file; strict about alternation."""
    script: list[tuple[bytes, bytes]] = []
    command: bytes | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        marker, _, payload = line.partition(" ")
        value = bytes.fromhex(payload)
        if marker == ">" and command is None:
            command = value
        elif marker == "<" and command is not None:
            script.append((command, value))
            command = None
        else:
            raise ValueError(f"line {number}: expected {'<' if command else '>'}")
    if command is not None:
        raise ValueError("a command without a response at the end")
    return script


def load_script(name: str) -> list[tuple[bytes, bytes]]:
    return parse_script((SCRIPTS_DIR / f"{name}.apdu").read_text(encoding="ascii"))


def record(name: str, card: VirtualCard) -> list[tuple[bytes, bytes]]:
    recorder = RecordingTransport(InProcessTransport(card))
    SCENARIOS[name].run(JpkiClient(recorder))
    return recorder.script


def main() -> None:
    pki = TestPki.generate()
    creds = pki.issue(RESIDENTS["yamada"])
    for name, scenario in SCENARIOS.items():
        card = VirtualCard.from_credentials(creds, pki, pin=PIN, sign_password=SIGN_PASSWORD)
        script = record(name, card)
        path = SCRIPTS_DIR / f"{name}.apdu"
        path.write_text(format_script(scenario.description, script), encoding="ascii")
        print(f"{path}: {len(script)} APDUs")


if __name__ == "__main__":
    main()
