"""Server commands: ``idp serve``, ``idp db upgrade``, ``idp clients ...`` (keys: idp.cli.keys).

Each command builds the app with :func:`idp.app.create_app` (so settings come from the
``IDP_*`` environment) and works inside its app context.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from flask import Flask

__all__ = ["app_context", "register_server_commands"]


def _app() -> Flask:
    # Imported when a command runs: `idp card ...` (the desktop agent) needs no web stack.
    from idp.app import create_app
    from idp.config import ConfigError

    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException("\n  ".join(["invalid configuration:", *exc.problems])) from exc


@contextmanager
def app_context() -> Iterator[Flask]:
    """The app, inside its app context; connections closed afterwards."""
    from idp.extensions import close_connections

    app = _app()
    try:
        with app.app_context():
            yield app
    finally:
        close_connections(app)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--debug/--no-debug", default=False)
def serve(host: str, port: int, debug: bool) -> None:
    """Run the development server (production: gunicorn 'idp.app:create_app()')."""
    app = _app()
    app.run(host=host, port=port, debug=debug, use_reloader=False)


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema to ``revision``."""
    from flask_migrate import upgrade

    from idp.extensions import MIGRATIONS_DIR

    with app_context():
        upgrade(directory=str(MIGRATIONS_DIR), revision=revision)
    click.echo(f"database at {revision}")


@click.group()
def clients() -> None:
    """Registered relying parties."""


@clients.command("add")
@click.option("--name", required=True, help="Display name (Japanese), shown to residents.")
@click.option("--name-en", default=None, help="English display name.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, required=True)
@click.option(
    "--auth-method",
    type=click.Choice(["private_key_jwt", "client_secret_basic", "none"]),
    required=True,
)
@click.option("--jwks-file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--jwks-uri", default=None)
@click.option("--alg", type=click.Choice(["ES256", "RS256", "PS256"]), default="ES256")
@click.option("--sector-identifier", default=None)
@click.option("--scope", "scopes", multiple=True, help="Allowed basic-4 scope (repeatable).")
@click.option("--client-id", default=None, help="Choose the client id (default: random).")
@click.option("--logo-uri", default=None)
@click.option(
    "--post-logout-redirect-uri",
    "post_logout_redirect_uris",
    multiple=True,
    help="Where RP-initiated logout may return to (exact match; repeatable).",
)
@click.option("--backchannel-logout-uri", default=None, help="Where logout tokens are POSTed.")
@click.option(
    "--backchannel-logout-session-required/--no-backchannel-logout-session-required",
    default=False,
)
@click.option(
    "--profile",
    type=click.Choice(["fapi2"]),
    default=None,
    help="FAPI 2.0 security profile: PAR, PKCE, private_key_jwt, DPoP, short codes.",
)
@click.option(
    "--require-par/--no-require-par",
    default=False,
    help="Only pushed authorization requests (RFC 9126).",
)
@click.option(
    "--require-signed-request-object/--no-require-signed-request-object",
    default=False,
    help="Only signed request objects (RFC 9101).",
)
@click.option(
    "--dpop/--no-dpop",
    "dpop_bound",
    default=False,
    help="DPoP-bound access tokens only (RFC 9449).",
)
@click.option(
    "--resource-server/--no-resource-server",
    default=False,
    help="May call the introspection endpoint (RFC 7662).",
)
def clients_add(
    name: str,
    name_en: str | None,
    redirect_uris: tuple[str, ...],
    auth_method: str,
    jwks_file: Path | None,
    jwks_uri: str | None,
    alg: str,
    sector_identifier: str | None,
    scopes: tuple[str, ...],
    client_id: str | None,
    logo_uri: str | None,
    post_logout_redirect_uris: tuple[str, ...],
    backchannel_logout_uri: str | None,
    backchannel_logout_session_required: bool,
    profile: str | None,
    require_par: bool,
    require_signed_request_object: bool,
    dpop_bound: bool,
    resource_server: bool,
) -> None:
    """Register a relying party; prints its client id (and secret, once)."""
    from idp.oidc.clients import ClientRegistrationError, new_client
    from idp.storage.clients import add_client, get_client

    jwks: dict[str, Any] | None = None
    if jwks_file is not None:
        try:
            jwks = json.loads(jwks_file.read_text())
        except ValueError as exc:
            raise click.ClickException(f"{jwks_file}: not JSON") from exc
    with app_context():
        try:
            created = new_client(
                name=name,
                name_en=name_en,
                redirect_uris=redirect_uris,
                auth_method=auth_method,
                jwks=jwks,
                jwks_uri=jwks_uri,
                id_token_alg=alg,
                sector_identifier=sector_identifier,
                scopes=scopes or ("name", "address", "birthdate", "gender"),
                client_id=client_id,
                logo_uri=logo_uri,
                post_logout_redirect_uris=post_logout_redirect_uris,
                backchannel_logout_uri=backchannel_logout_uri,
                backchannel_logout_session_required=backchannel_logout_session_required,
                profile=profile,
                require_pushed_authorization_requests=require_par,
                require_signed_request_object=require_signed_request_object,
                dpop_bound_access_tokens=dpop_bound,
                resource_server=resource_server,
            )
        except ClientRegistrationError as exc:
            raise click.ClickException(str(exc)) from exc
        if get_client(created.client.client_id) is not None:
            raise click.ClickException(f"client {created.client.client_id} already exists")
        add_client(created.client)
        click.echo(f"client_id: {created.client.client_id}")
        if created.client_secret is not None:
            click.echo(f"client_secret: {created.client_secret}  (shown once; store it now)")


@clients.command("list")
def clients_list() -> None:
    """List relying parties."""
    from idp.storage.clients import list_clients

    with app_context():
        for client in list_clients():
            uris = " ".join(client.redirect_uris)
            settings = [
                label
                for label, on in (
                    (client.profile or "", bool(client.profile)),
                    ("par", client.require_pushed_authorization_requests),
                    ("signed-request-object", client.require_signed_request_object),
                    ("dpop", client.dpop_bound_access_tokens),
                    ("resource-server", client.resource_server),
                )
                if on
            ]
            click.echo(
                f"{client.client_id}\t{client.token_endpoint_auth_method}\t"
                f"{client.id_token_signed_response_alg}\t{client.name}\t{uris}\t"
                f"{','.join(settings) or '-'}"
            )


@clients.command("remove")
@click.argument("client_id")
def clients_remove(client_id: str) -> None:
    """Remove a relying party (its release history is kept)."""
    from idp.storage.clients import remove_client

    with app_context():
        if not remove_client(client_id):
            raise click.ClickException(f"no client {client_id}")
        click.echo(f"removed {client_id}")


def register_server_commands(group: click.Group) -> None:
    """Attach the server command groups to ``group``."""
    group.add_command(serve)
    group.add_command(db)
    group.add_command(clients)
