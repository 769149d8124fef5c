"""``idp keys list|rotate|encrypt`` (signing keys) and ``idp audit verify`` (the release log).

Both groups build the app from the ``IDP_*`` environment like the server commands
(:mod:`idp.cli.server`) and work inside its app context. See docs/keys.md.
"""

from __future__ import annotations

from datetime import datetime

import click

from idp.cli.server import app_context

__all__ = ["audit", "keys"]

_ALGS = click.Choice(["ES256", "RS256", "PS256"])


def _time(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


@click.group()
def keys() -> None:
    """ID-token signing keys: rotation with overlap, encryption at rest."""


@keys.command("list")
def keys_list() -> None:
    """List keys: state, kid, alg, created, activated (or may activate), retire-after."""
    from idp.storage.keys import KeyState, list_signing_keys

    with app_context():
        click.echo("state\tkid\talg\tcreated\tactivates\tretire-after")
        for key in list_signing_keys():
            activates = _time(key.activates_at) if key.state != KeyState.RETIRED else "-"
            click.echo(
                f"{key.state}\t{key.kid}\t{key.alg}\t{_time(key.created_at)}\t"
                f"{activates}\t{_time(key.retires_at)}"
            )


@keys.command("rotate")
@click.option("--alg", "algs", type=_ALGS, multiple=True, help="Default: every algorithm in use.")
@click.option(
    "--if-due",
    is_flag=True,
    help="Only rotate keys older than IDP_KEY_ROTATION_DAYS (for a timer); create missing keys.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Promote the next key even if published for less than IDP_KEY_PREPUBLISH_SECONDS "
    "(after a key compromise: relying parties with an old JWKS cache refetch on the new kid).",
)
@click.option(
    "--compromised",
    is_flag=True,
    help="The active key leaked: promote the next key now and unpublish the old one at once "
    "(its tokens stop verifying; relying parties must log residents in again).",
)
def keys_rotate(algs: tuple[str, ...], if_due: bool, force: bool, compromised: bool) -> None:
    """Promote the next key to active, retire the active one once its tokens have expired,
    and publish a new next key."""
    from idp.extensions import get_settings
    from idp.oidc.keys import (
        RotationRefusedError,
        algorithms_in_use,
        rotate_if_due,
        rotate_signing_key,
    )

    if if_due and (force or compromised):
        raise click.UsageError("--if-due excludes --force and --compromised")
    with app_context():
        settings = get_settings()
        for alg in algs or algorithms_in_use(settings):
            try:
                if if_due:
                    result = rotate_if_due(alg, settings)
                else:
                    result = rotate_signing_key(alg, settings, force=force, compromised=compromised)
            except RotationRefusedError as exc:
                raise click.ClickException(str(exc)) from exc
            if not result.rotated:
                click.echo(f"{alg}: not due; {result.active_kid} signs, next {result.next_kid}")
                continue
            retiring = ""
            if result.retiring_kid and compromised:
                retiring = f"; {result.retiring_kid} retired and unpublished"
            elif result.retiring_kid:
                retiring = f"; {result.retiring_kid} verifies until {_time(result.retires_at)}"
            click.echo(
                f"{alg}: {result.active_kid} signs now{retiring}; next {result.next_kid} published"
            )


@keys.command("encrypt")
def keys_encrypt() -> None:
    """Wrap stored private keys under IDP_KEY_ENCRYPTION_KEY(_FILE) (AES-256-GCM)."""
    from idp.extensions import get_settings
    from idp.oidc.keys import KeyStorageError, encrypt_stored_keys

    with app_context():
        try:
            count = encrypt_stored_keys(get_settings())
        except KeyStorageError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"{count} key(s) wrapped")


@click.group()
def audit() -> None:
    """The release log (append-only, hash-chained)."""


@audit.command("verify")
def audit_verify() -> None:
    """Walk the release chain; exit 1 at the first broken link."""
    from idp.storage.audit import verify_chain

    with app_context():
        report = verify_chain()
    if report.broken is not None:
        raise click.ClickException(
            f"release log broken at sequence {report.broken.seq}: {report.broken.reason} "
            f"({report.records} record(s) before it verified)"
        )
    click.echo(
        f"release log intact: {report.records} record(s), head {report.head_seq} {report.head_hash}"
    )
