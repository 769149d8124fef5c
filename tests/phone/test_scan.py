"""What the simulated phone accepts from its camera or paste box, before any request."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phone_simulator.qr import ScanError, read_scan
from phone_simulator.texts import TEXTS, error_key

IDP = "https://idp.example.jp"
TOKEN = "AbCdEfGhIjKlMnOpQrStUv"
CODE = "0123456789abcdef0123456789abcdef"
FRAME = f"{IDP}/m/{TOKEN}?t=12&c={CODE}"


def test_a_frame_of_a_known_provider_is_read() -> None:
    scanned = read_scan(f"  {FRAME}\n", [IDP])
    assert scanned.frame_url == FRAME and scanned.origin == IDP and scanned.return_url is None


def test_an_app_link_carries_the_frame_and_a_return_url_on_the_same_provider() -> None:
    back = f"{IDP}/login/abc"
    link = f"myna-idp://handoff?qr={quote(FRAME, safe='')}&return={quote(back, safe='')}"
    scanned = read_scan(link, [IDP + "/"])
    assert scanned.frame_url == FRAME and scanned.return_url == back


@pytest.mark.parametrize(
    "back", ["https://evil.example/login/abc", f"{IDP}/authorize?x=1", "javascript:alert(1)"]
)
def test_a_return_url_elsewhere_is_dropped(back: str) -> None:
    link = f"myna-idp://handoff?qr={quote(FRAME, safe='')}&return={quote(back, safe='')}"
    assert read_scan(link, [IDP]).return_url is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("https://idp.example.com/m/" + TOKEN + f"?t=1&c={CODE}", "qr_unknown_provider"),
        ("http://idp.example.jp/m/" + TOKEN + f"?t=1&c={CODE}", "qr_unknown_provider"),
        (f"{IDP}/m/{TOKEN}?t=01&c={CODE}", "qr_malformed"),
        (f"{IDP}/m/{TOKEN}?t=1&c={CODE.upper()}", "qr_malformed"),
        (f"{IDP}/m/{TOKEN}?t=1&c={CODE}&x=1", "qr_malformed"),
        (f"{IDP}/m/{TOKEN}?t=1&t=2&c={CODE}", "qr_malformed"),
        (f"{IDP}/m/{TOKEN}/x?t=1&c={CODE}", "qr_malformed"),
        (f"{IDP}/m/short?t=1&c={CODE}", "qr_malformed"),
        (f"{IDP}/m/{TOKEN}?t=1&c={CODE}#frag", "qr_malformed"),
        (f"https://user@idp.example.jp/m/{TOKEN}?t=1&c={CODE}", "qr_malformed"),
        ("https://idp.example.jp:99999/m/x", "qr_malformed"),
        ("myna-idp://handoff", "qr_malformed"),
        (f"myna-idp://other?qr={quote(FRAME, safe='')}", "qr_malformed"),
        ("WIFI:S:home;T:WPA;P:secret;;", "qr_malformed"),
        ("", "qr_malformed"),
        ("https://idp.example.jp/m/" + "A" * 3000, "qr_malformed"),
        (f"{IDP}/m/{TOKEN}?t=1&c={CODE}\x00", "qr_malformed"),
    ],
)
def test_anything_else_is_refused_on_the_phone(text: str, code: str) -> None:
    with pytest.raises(ScanError) as caught:
        read_scan(text, [IDP])
    assert caught.value.code == code


@given(st.text(max_size=300))
def test_any_text_is_read_or_refused_with_a_code(text: str) -> None:
    try:
        scanned = read_scan(text, [IDP])
    except ScanError as error:
        assert error_key(error.code) != "error_default"
    else:
        assert scanned.origin == IDP


def test_every_text_exists_in_both_languages() -> None:
    assert set(TEXTS["ja"]) == set(TEXTS["en"])
    for locale in ("ja", "en"):
        assert all(value.strip() for value in TEXTS[locale].values())
