"""The ``idp`` command: ``idp card ...`` (card tools), the server commands, ``idp keys`` and
``idp audit``.

Each command group lives in its own module and is attached here; importing this package has no
side effects beyond building the click groups.
"""

from __future__ import annotations

import click

from idp.cli.card import card
from idp.cli.demo import demo
from idp.cli.keys import audit, keys
from idp.cli.server import register_server_commands


@click.group()
@click.version_option(package_name="myna-idp")
def main() -> None:
    """myna-idp: OpenID Connect sign-in with the My Number card."""


main.add_command(card)
main.add_command(demo)
main.add_command(keys)
main.add_command(audit)
register_server_commands(main)
