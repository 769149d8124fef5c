"""Checks shared by the i18n and browser tests: a Japanese page shows no English msgid."""

from __future__ import annotations

import functools
import html as html_module
import re
from pathlib import Path

from babel.messages.pofile import read_po

__all__ = ["assert_translated", "english_sentences"]

ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def english_sentences() -> tuple[str, ...]:
    """The msgids of both packages that are sentences (three words or more), as shown in HTML:
    placeholders split them into the fixed pieces around them."""
    pieces: set[str] = set()
    for package in ("idp", "relying_party_demo"):
        path = ROOT / package / "translations" / "ja" / "LC_MESSAGES" / "messages.po"
        with path.open("rb") as handle:
            for message in read_po(handle):
                if not message.id or not isinstance(message.id, str):
                    continue
                for piece in re.split(r"%\(\w+\)s", message.id):
                    piece = piece.strip()
                    if len(piece) >= 15 and len(piece.split()) >= 3:
                        pieces.add(piece)
    return tuple(sorted(pieces))


def assert_translated(page_html: str, locale: str, name: str = "page") -> None:
    """On a Japanese page, no English sentence of the catalogs appears (text, attributes, the
    data attributes login.js reads); on an English page, ``<html lang="en">``."""
    match = re.search(r'<html lang="([a-z]+)"', page_html)
    assert match and match.group(1) == locale, f"{name}: html lang is not {locale}"
    if locale != "ja":
        return
    text = html_module.unescape(page_html)
    leaked = [sentence for sentence in english_sentences() if sentence in text]
    assert not leaked, f"{name} (ja) shows untranslated English: {leaked}"
