"""``idp card ...``: look at readers and cards, and serve a virtual test card to pcscd.

- ``idp card readers``: the PC/SC readers and whether each holds a card.
- ``idp card status``: what a JPKI card shows without a PIN (tries left, certificates).
- ``idp card verify-pin``: check a PIN typed at a hidden prompt (a wrong one costs a try).
- ``idp card emulate``: a virtual My Number card for a test resident, inserted into vpcd's
  ``Virtual PCD 00 00`` reader until SIGINT/SIGTERM.

Card-layer errors become one line on stderr and an exit status (see ``EXIT_CODES``); no
tracebacks. A PIN is never printed or logged.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import FrameType

import click
from cryptography import x509

from idp.card.errors import (
    CardContentError,
    CardError,
    CardFileNotFoundError,
    CardRemovedError,
    NoCardError,
    NoReaderError,
    PcscUnavailableError,
    PinBlockedError,
    PinFormatError,
    SecurityStatusError,
    WrongPinError,
)
from idp.card.jpki import JpkiClient, TokenKind, UnsupportedTokenError
from idp.card.pin import PinKind, encode_auth_pin, encode_sign_password
from idp.card.testpki import RESIDENTS, VARIANTS, TestPki
from idp.card.virtual import VirtualCard
from idp.card.vpcd import LOOPBACK_HOSTS, VpcdBridge
from idp.cli.agent import login as login_command

EXIT_CARD_ERROR = 1
EXIT_NO_PCSCD = 3
EXIT_NO_READER = 4
EXIT_NO_CARD = 5
EXIT_NOT_JPKI = 6
EXIT_PIN_BLOCKED = 7
EXIT_WRONG_PIN = 8

#: Error class -> (exit status, what to say; None = the error's own text). First match wins.
EXIT_CODES: tuple[tuple[type[CardError], int, str | None], ...] = (
    (PcscUnavailableError, EXIT_NO_PCSCD, "pcscd (the PC/SC service) is not running"),
    (NoReaderError, EXIT_NO_READER, None),
    (NoCardError, EXIT_NO_CARD, None),
    (CardRemovedError, EXIT_NO_CARD, None),
    (CardFileNotFoundError, EXIT_NOT_JPKI, "this is not a My Number card (no JPKI application)"),
    (UnsupportedTokenError, EXIT_NOT_JPKI, None),
    (PinBlockedError, EXIT_PIN_BLOCKED, "the PIN is blocked (the municipality can reset it)"),
    (WrongPinError, EXIT_WRONG_PIN, None),
    (CardError, EXIT_CARD_ERROR, None),
)

DEFAULT_PKI_DIR = Path("var/test-pki")
VPCD_DEFAULT_PORT = 35963


@contextmanager
def card_errors() -> Iterator[None]:
    """Report card-layer errors as one ``Error: ...`` line on stderr and exit with the status
    from ``EXIT_CODES`` (no traceback)."""
    try:
        yield
    except CardError as exc:
        for error_class, code, message in EXIT_CODES:
            if isinstance(exc, error_class):
                click.echo(f"Error: {message or exc}", err=True)
                raise click.exceptions.Exit(code) from exc
        raise  # unreachable: CardError is the last row


@click.group()
def card() -> None:
    """Card reader tools and the virtual test card."""


card.add_command(login_command)


@card.command()
def readers() -> None:
    """List the PC/SC readers and whether each holds a card."""
    from idp.card import pcsc

    with card_errors():
        names = pcsc.list_readers()
        if not names:
            raise NoReaderError("pcscd is running but knows no reader")
        for name in names:
            state = "card present" if pcsc.card_present(name) else "no card"
            click.echo(f"{name}: {state}")


def _describe(certificate: x509.Certificate) -> list[str]:
    return [
        f"  subject:  {certificate.subject.rfc4514_string()}",
        f"  issuer:   {certificate.issuer.rfc4514_string()}",
        f"  serial:   {certificate.serial_number:X}",
        f"  valid:    {_when(certificate.not_valid_before_utc)} .. "
        f"{_when(certificate.not_valid_after_utc)}",
    ]


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _certificate(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise CardContentError("the card holds a file that is not a DER certificate") from exc


def _tries(client: JpkiClient, kind: PinKind) -> str:
    tries = client.pin_tries(kind)
    return "blocked" if tries == 0 else f"{tries} of {kind.max_tries} tries left"


TOKEN_KINDS = {
    TokenKind.CARD: "My Number card",
    TokenKind.ANDROID: "smartphone JPKI (Android)",
    TokenKind.IPHONE: "smartphone JPKI (iPhone)",
}


@card.command()
@click.option("--reader", "reader_name", help="Reader name (or a unique part of it).")
def status(reader_name: str | None) -> None:
    """Show the card's PIN tries and certificates (no PIN needed, no try spent)."""
    from idp.card.pcsc import PcscTransport

    with card_errors(), PcscTransport(reader_name) as transport:
        client = JpkiClient(transport)
        client.select_ap()
        lines = [f"reader: {transport.reader}", f"ATR:    {transport.atr.hex(' ').upper()}"]
        token = client.read_token_info()
        token.check_supported()
        kind = TOKEN_KINDS.get(token.kind, "unknown JPKI token")
        lines.append(f"card:   {kind} (JPKI token label {token.label!r})")
        lines.append(f"authentication PIN:  {_tries(client, PinKind.AUTH)}")
        lines.append(f"signature password:  {_tries(client, PinKind.SIGN)}")
        lines.append("authentication certificate:")
        lines += _describe(_certificate(client.read_auth_certificate()))
        lines.append("authentication CA:")
        lines += _describe(_certificate(client.read_auth_ca()))
        try:
            sign_ca = client.read_sign_ca()
        except (CardFileNotFoundError, SecurityStatusError):
            lines.append("signature CA: none on this card")
        else:
            lines.append("signature CA:")
            lines += _describe(_certificate(sign_ca))
        lines.append(
            "signature certificate: not shown; the card releases it only after the "
            "signature password is entered"
        )
    click.echo("\n".join(lines))


@card.command("verify-pin")
@click.option("--reader", "reader_name", help="Reader name (or a unique part of it).")
@click.option(
    "--signature", is_flag=True, help="Check the signature password, not the authentication PIN."
)
def verify_pin(reader_name: str | None, signature: bool) -> None:
    """Check a PIN on the card (prompted, hidden). A wrong PIN costs one try."""
    kind = PinKind.SIGN if signature else PinKind.AUTH
    from idp.card.pcsc import PcscTransport

    label = "Authentication PIN" if kind is PinKind.AUTH else "Signature password"
    with card_errors(), PcscTransport(reader_name) as transport:
        client = JpkiClient(transport)
        client.select_ap()
        if client.pin_tries(kind) == 0:
            raise PinBlockedError(0x63C0)
        secret = click.prompt(label, hide_input=True, err=True)
        client.verify_pin(kind, secret)
    click.echo(f"{label}: correct")


# -- emulate -----------------------------------------------------------------------------------


def _list_residents() -> None:
    for resident in RESIDENTS.values():
        click.echo(
            f"{resident.key:<10} {resident.name}  born {resident.birthdate.isoformat()}  "
            f"{resident.municipality}, {resident.prefecture}"
        )


@card.command()
@click.option("--resident", type=click.Choice(list(RESIDENTS)), default="yamada", show_default=True)
@click.option(
    "--variant",
    type=click.Choice(VARIANTS),
    default="good",
    show_default=True,
    help="Certificate variant (all but 'good' fail validation in a different way).",
)
@click.option("--pin", default="1234", help="Authentication PIN, 4 digits (test default).")
@click.option("--sign-password", default="ABC123", help="Signature password (test default).")
@click.option("--host", default="127.0.0.1", show_default=True, help="vpcd host (loopback).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=VPCD_DEFAULT_PORT,
    show_default=True,
    help="vpcd port (35963 = Virtual PCD 00 00, 35964 = Virtual PCD 00 01).",
)
@click.option(
    "--pki-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_PKI_DIR,
    show_default=True,
    help="Test PKI directory (generated on first use).",
)
@click.option("--list-residents", is_flag=True, help="List the test residents and exit.")
def emulate(
    resident: str,
    variant: str,
    pin: str,
    sign_password: str,
    host: str,
    port: int,
    pki_dir: Path,
    list_residents: bool,
) -> None:
    """Insert a virtual My Number card into vpcd's reader until Ctrl-C / SIGTERM.

    Needs pcscd with vsmartcard-vpcd (port 35963 is reader "Virtual PCD 00 00"). TEST ONLY:
    the card's keys come from the unprotected test PKI in --pki-dir.
    """
    if list_residents:
        _list_residents()
        return
    if host not in LOOPBACK_HOSTS:
        raise click.BadParameter("vpcd is only ever reached on loopback", param_hint="--host")
    for check, value, hint in (
        (encode_auth_pin, pin, "--pin"),
        (encode_sign_password, sign_password, "--sign-password"),
    ):
        try:
            check(value)
        except PinFormatError as exc:
            raise click.BadParameter(str(exc), param_hint=hint) from exc

    pki = TestPki.load_or_generate(pki_dir)
    credentials = pki.issue(RESIDENTS[resident], variant=variant)
    pki.save(pki_dir)  # the same certificates and keys next time
    virtual_card = VirtualCard.from_credentials(
        credentials, pki, pin=pin, sign_password=sign_password
    )

    stopping = threading.Event()

    def inserted() -> None:
        click.echo(f"card inserted: resident={resident} reader port={port}")

    def removed() -> None:
        if not stopping.is_set():
            click.echo("card removed: vpcd closed the connection; reconnecting", err=True)

    bridge = VpcdBridge(
        virtual_card, host=host, port=port, on_connect=inserted, on_disconnect=removed
    )

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    click.echo(f"waiting for vpcd on {host}:{port} (pcscd with vsmartcard-vpcd)", err=True)
    bridge.start()
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        stopping.set()
        bridge.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("card removed: emulator stopped", err=True)
