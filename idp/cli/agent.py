"""``idp card login <handoff URL>``: the desktop card-reader agent (flow C).

It plays the phone's part against the device API: fetches the challenge, shows who is asking
and which provider, reads the PIN's tries left first (and never spends the last try without an
explicit confirmation), asks PIN1 at a hidden prompt, has the card in the PC/SC reader sign,
and posts the response. On a first login (or a stale record) it also asks the signature
password and sends the signature certificate. The PIN and the password go to the card only:
they are never printed, logged or sent to the provider.

``--virtual <resident>`` (TEST ONLY) uses a virtual card of a test resident from the test PKI
in ``--pki-dir`` instead of a reader: the same APDUs and the same JPKI client, in process. It
is how ``make demo`` completes the card step without a reader.

Exit status: 0 signed in; the card errors' statuses of ``idp card`` (3 no pcscd, 4 no reader,
5 no card, 6 not a My Number card, 7 PIN blocked, 8 wrong PIN, 1 other card error); 9 the
provider refused the response; 10 the provider could not be reached or answered nonsense;
11 cancelled.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Final

import click

from idp.card.errors import CardError
from idp.card.jpki import JpkiClient
from idp.card.pin import PinKind
from idp.card.testpki import RESIDENTS
from idp.card.transport import InProcessTransport, Transport
from idp.handoff.device_client import (
    DeviceApiError,
    DeviceChallenge,
    DeviceClient,
    DeviceProtocolError,
    EnrollmentUnavailableError,
    LoginAbortedError,
    RequestsHttp,
    run_device_login,
)

__all__ = ["EXIT_CANCELLED", "EXIT_PROVIDER_REFUSED", "EXIT_PROVIDER_UNREACHABLE", "login"]

EXIT_PROVIDER_REFUSED: Final = 9
EXIT_PROVIDER_UNREACHABLE: Final = 10
EXIT_CANCELLED: Final = 11

DEFAULT_PKI_DIR: Final = Path("var/test-pki")

ITEM_NAMES: Final = {
    "name": "氏名 (name)",
    "address": "住所 (address)",
    "birthdate": "生年月日 (date of birth)",
    "gender": "性別 (gender)",
}

SECRET_LABELS: Final = {
    PinKind.AUTH: "利用者証明用暗証番号 / authentication PIN (4 digits)",
    PinKind.SIGN: "署名用パスワード / signature password (6-16 letters and digits)",
}

#: What to tell the person for each error code of the device API.
REFUSALS: Final = {
    "certificate_expired": "The card's certificate has expired (renew it at your municipality).",
    "certificate_not_yet_valid": "The card's certificate is not valid yet.",
    "certificate_revoked": "The card's certificate has been revoked.",
    "certificate_untrusted": "The card's certificate is not from a CA this provider trusts.",
    "certificate_wrong_purpose": "The card answered with the wrong certificate.",
    "signature_invalid": "The card's signature did not verify.",
    "revocation_unavailable": "The provider could not check the certificate's revocation status.",
    "revocation_stale": "The provider's revocation data is out of date: try again later.",
    "ocsp_response_invalid": "The provider could not check the certificate's revocation status.",
    "transaction_expired": "The sign-in has expired: start again from the service's page.",
    "transaction_not_found": "No such sign-in: check the URL, or start again from the service.",
    "transaction_closed": "This sign-in has already ended.",
    "nonce_used": "This sign-in was already answered.",
    "card_mismatch": "A different card was used part-way through: start again.",
}


def _app_version() -> str:
    try:
        return f"myna-idp-agent/{version('myna-idp')}"
    except PackageNotFoundError:  # running from a source tree without metadata
        return "myna-idp-agent/0"


class TerminalPrompts:
    """The agent's questions on the terminal (secrets at hidden prompts, on stderr)."""

    def show_request(self, challenge: DeviceChallenge) -> bool:
        name = challenge.client_name
        if challenge.client_name_en:
            name += f" ({challenge.client_name_en})"
        items = ", ".join(ITEM_NAMES.get(i, i) for i in challenge.requested_items) or "-"
        click.echo(f"Service / サービス:       {name}", err=True)
        click.echo(f"Provider / 認証基盤:      {challenge.origin}", err=True)
        click.echo(f"Asks for / 求める情報:    {items}", err=True)
        return click.confirm(
            "Sign in with your My Number card? / ログインしますか", default=True, err=True
        )

    def enrollment_needed(self, challenge: DeviceChallenge) -> None:
        click.echo(
            "First sign-in with this card (or the stored details are old): the signature "
            "password is needed to read your name, address, date of birth and gender from the "
            "card's signature certificate.\n"
            "初回のため、署名用電子証明書のパスワードも必要です。",
            err=True,
        )

    def show_signature(self, challenge: DeviceChallenge) -> bool:
        name = challenge.client_name_en or challenge.client_name
        text = challenge.sign.text if challenge.sign else ""
        click.echo(f"Service / サービス:       {name}", err=True)
        click.echo(f"To sign / 署名する内容:   {text}", err=True)
        return click.confirm(
            "Sign with your signature certificate? / 電子署名しますか", default=True, err=True
        )

    def ask_secret(self, kind: PinKind, tries_left: int) -> str:
        label = f"{SECRET_LABELS[kind]} [{tries_left} tries left]"
        value = click.prompt(label, hide_input=True, err=True, type=str)
        assert isinstance(value, str)
        return value

    def confirm_last_try(self, kind: PinKind) -> bool:
        what = "PIN" if kind is PinKind.AUTH else "signature password"
        click.echo(
            f"Only ONE try is left: a wrong {what} now blocks it (the municipality can reset "
            "it). 残り1回です。間違えるとロックされます。",
            err=True,
        )
        return click.confirm("Use the last try? / 最後の1回を使いますか", default=False, err=True)

    def wrong_secret(self, kind: PinKind, tries_left: int) -> None:
        what = "PIN" if kind is PinKind.AUTH else "signature password"
        click.echo(
            f"Wrong {what}: {tries_left} tries left. / 誤りです（残り{tries_left}回）", err=True
        )

    def bad_format(self, kind: PinKind, message: str) -> None:
        click.echo(message, err=True)


def _virtual_transport(resident: str, pki_dir: Path) -> Transport:
    from idp.card.testpki import TestPki
    from idp.card.virtual import VirtualCard

    pki = TestPki.load_or_generate(pki_dir)
    credentials = pki.issue(RESIDENTS[resident])
    pki.save(pki_dir)  # the same certificates and keys next time
    return InProcessTransport(VirtualCard.from_credentials(credentials, pki))


@click.command("login")
@click.argument("handoff_url")
@click.option("--reader", "reader_name", help="Reader name (or a unique part of it).")
@click.option(
    "--wait",
    type=click.FloatRange(0, 300),
    default=0.0,
    help="Seconds to wait for a card to be put on the reader.",
)
@click.option(
    "--virtual",
    "virtual_resident",
    type=click.Choice(list(RESIDENTS)),
    help="TEST ONLY: a virtual card of this test resident, in process (no reader).",
)
@click.option(
    "--pki-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_PKI_DIR,
    show_default=True,
    help="Test PKI directory for --virtual.",
)
def login(
    handoff_url: str,
    reader_name: str | None,
    wait: float,
    virtual_resident: str | None,
    pki_dir: Path,
) -> None:
    """Sign in to a web service with the My Number card in this computer's reader.

    HANDOFF_URL is the URL the sign-in page shows (``.../device/v1/transactions/...``).
    """
    from idp.cli.card import card_errors  # here, not at import: card.py registers this command

    http = RequestsHttp(user_agent=_app_version())
    try:
        client = DeviceClient(http, handoff_url, app_version=_app_version())
        challenge = client.fetch()
        with card_errors():
            transport: Transport
            if virtual_resident is not None:
                click.echo(f"TEST ONLY: virtual card of {virtual_resident}", err=True)
                transport = _virtual_transport(virtual_resident, pki_dir)
            else:
                from idp.card.pcsc import PcscTransport

                transport = PcscTransport(reader_name, wait_seconds=wait)
            try:
                outcome = run_device_login(
                    client, JpkiClient(transport), TerminalPrompts(), challenge=challenge
                )
            except EnrollmentUnavailableError as exc:
                raise CardError(
                    "This card has no signature certificate (holders under 15), so it cannot "
                    "be registered for sign-in."
                ) from exc
            finally:
                close = getattr(transport, "close", None)
                if close is not None:
                    close()
    except DeviceApiError as exc:
        reason = REFUSALS.get(exc.code, exc.message or exc.code)
        click.echo(f"Error: the provider refused the sign-in ({exc.code}): {reason}", err=True)
        raise click.exceptions.Exit(EXIT_PROVIDER_REFUSED) from exc
    except DeviceProtocolError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise click.exceptions.Exit(EXIT_PROVIDER_UNREACHABLE) from exc
    except LoginAbortedError as exc:
        click.echo("Cancelled. / 中止しました。", err=True)
        raise click.exceptions.Exit(EXIT_CANCELLED) from exc
    finally:
        http.close()
    registered = " (card registered)" if outcome.enrolled else ""
    click.echo(f"Signed in{registered}: continue in your browser. / ブラウザに戻ってください。")
