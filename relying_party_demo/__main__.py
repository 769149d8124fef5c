"""``python -m relying_party_demo``: run the demo RP, or make its key pair.

- ``python -m relying_party_demo keygen PRIVATE.json PUBLIC-JWKS.json``: an EC P-256 key for
  ``private_key_jwt`` (the public JWKS is what the provider registers).
- ``python -m relying_party_demo serve [--host H] [--port P] [--config FILE]``: the app
  (``RP_*`` settings, or a JSON file of the same names without the prefix).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from joserfc.jwk import ECKey, KeySet

from relying_party_demo.app import ConfigurationError, create_app


@click.group()
def main() -> None:
    """The demo relying party."""


@main.command()
@click.argument("private_path", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("public_path", type=click.Path(dir_okay=False, path_type=Path))
def keygen(private_path: Path, public_path: Path) -> None:
    """Write a new EC P-256 private JWK and its public JWKS (kept if they already exist)."""
    if private_path.exists() and public_path.exists():
        click.echo(f"keeping {private_path}")
        return
    key = ECKey.generate_key("P-256", parameters={"kid": "demo-rp-1", "use": "sig"}, private=True)
    private_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.write_text(json.dumps(key.as_dict(private=True)), encoding="utf-8")
    private_path.chmod(0o600)
    public_path.write_text(json.dumps(KeySet([key]).as_dict(private=False)), encoding="utf-8")
    click.echo(f"wrote {private_path} and {public_path}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5001, show_default=True, type=int)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON settings (ISSUER, CLIENT_ID, KEY_FILE, REDIRECT_URI, SECRET_KEY) over RP_*.",
)
def serve(host: str, port: int, config_file: Path | None) -> None:
    """Run the demo RP (development server)."""
    config = json.loads(config_file.read_text(encoding="utf-8")) if config_file else None
    try:
        app = create_app(config)
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from exc
    app.run(host=host, port=port, use_reloader=False)


if __name__ == "__main__":
    sys.exit(main())
