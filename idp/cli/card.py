"""``idp card ...``: readers, status, emulate, login (filled in by the card tools work)."""

from __future__ import annotations

import click


@click.group()
def card() -> None:
    """Card reader tools and the virtual card."""
