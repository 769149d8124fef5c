"""Every resident text is in both catalogs: what ``pybabel extract`` finds in the code and the
templates (Babel's own extractors), translated in Japanese and English, nothing empty."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from idp.oidc.errors import ERRORS

ROOT = Path(__file__).resolve().parents[1]
METHODS = [
    ("**/migrations/**", "ignore"),
    ("**.py", "python"),
    ("**/templates/**.html", "jinja2.ext:babel_extract"),
]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "N_": None}
PACKAGES = ("idp", "relying_party_demo")


def extracted(package: str) -> dict[str, str]:
    """msgid -> where it was found, for one package."""
    found: dict[str, str] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        ROOT / package, METHODS, keywords=KEYWORDS, options_map={"**.html": {}}
    ):
        ids = message if isinstance(message, tuple) else (message,)
        for msgid in ids:
            if msgid:
                found.setdefault(msgid, f"{package}/{filename}:{lineno}")
    return found


def catalog(package: str, locale: str) -> Catalog:
    path = ROOT / package / "translations" / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


@pytest.mark.parametrize("package", PACKAGES)
def test_extraction_finds_the_texts(package: str) -> None:
    found = extracted(package)
    assert len(found) > 40, sorted(found)  # the extractor did run over code and templates
    assert any(where.endswith(".html:" + where.rsplit(":", 1)[1]) for where in found.values())
    assert any(".py:" in where for where in found.values())


@pytest.mark.parametrize("locale", ["ja", "en"])
@pytest.mark.parametrize("package", PACKAGES)
def test_every_msgid_used_is_translated(package: str, locale: str) -> None:
    messages = catalog(package, locale)
    missing = {
        msgid: where
        for msgid, where in extracted(package).items()
        if messages.get(msgid) is None or not messages.get(msgid).string
    }
    assert not missing, f"add to {package}/translations/{locale}: {missing}"


@pytest.mark.parametrize("locale", ["ja", "en"])
def test_oauth_error_page_sentences_are_translated(locale: str) -> None:
    messages = catalog("idp", locale)
    for code, spec in ERRORS.items():
        entry = messages.get(spec.message_en)
        assert entry is not None and entry.string, code
    if locale == "ja":
        for spec in ERRORS.values():
            assert messages.get(spec.message_en).string == spec.message_ja


@pytest.mark.parametrize("locale", ["ja", "en"])
@pytest.mark.parametrize("package", PACKAGES)
def test_no_entry_is_empty_or_fuzzy_and_placeholders_match(package: str, locale: str) -> None:
    for message in catalog(package, locale):
        if not message.id:
            continue
        assert message.string, f"empty msgstr for {message.id!r}"
        assert not message.fuzzy, message.id
        wanted = sorted(re.findall(r"%\(\w+\)s", str(message.id)))
        assert sorted(re.findall(r"%\(\w+\)s", str(message.string))) == wanted, message.id


@pytest.mark.parametrize("package", PACKAGES)
def test_japanese_entries_are_japanese(package: str) -> None:
    """A Japanese msgstr that is just the English msgid again is an untranslated text."""
    for message in catalog(package, "ja"):
        if message.id and re.search(r"[A-Za-z]{3,} [A-Za-z]{2,}", str(message.id)):
            assert message.string != message.id, f"untranslated: {message.id!r}"
            assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", str(message.string)), message.id
