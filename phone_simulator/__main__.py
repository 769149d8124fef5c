"""``python -m phone_simulator serve``: run the phone simulator (TEST ONLY, development server).

    python -m phone_simulator serve --provider http://127.0.0.1:5000 --pki-dir var/test-pki

``--provider`` (repeatable) names the provider origins the simulated app trusts; the cards come
from the test PKI in ``--pki-dir`` (``idp demo`` writes it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from phone_simulator.app import create_app


@click.group()
def main() -> None:
    """The phone simulator."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5002, show_default=True, type=click.IntRange(1, 65535))
@click.option("--provider", "providers", multiple=True, required=True, help="Trusted origin.")
@click.option(
    "--pki-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("var/test-pki"),
    show_default=True,
)
def serve(host: str, port: int, providers: tuple[str, ...], pki_dir: Path) -> None:
    """Run the simulator until Ctrl-C."""
    app = create_app({"PROVIDERS": list(providers), "PKI_DIR": str(pki_dir)})
    app.run(host=host, port=port, threaded=True, use_reloader=False)


if __name__ == "__main__":
    sys.exit(main())
