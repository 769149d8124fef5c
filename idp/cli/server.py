"""Server commands: ``idp serve``, ``idp db``, ``idp clients``, ``idp keys``."""

from __future__ import annotations

import click


def register_server_commands(group: click.Group) -> None:
    """Attach the server command groups to ``group``."""
