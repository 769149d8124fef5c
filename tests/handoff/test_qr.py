"""The rotating QR code: the HMAC construction, frame parsing, the window, the SVG drawing.

Pure functions, no services. The HMAC construction is checked against the test vector
published for BankID's animated QR code (same construction: lowercase hex HMAC-SHA256 keyed
with the secret over the decimal seconds).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from idp.handoff.pages import app_link
from idp.handoff.qr import (
    CODE_HEX,
    SKEW,
    Frame,
    QrError,
    check_frame,
    frame_at,
    frame_code,
    frame_mac,
    new_qr_secret,
    new_qr_token,
    parse_frame,
    verification_code,
)
from idp.handoff.qr_image import QUIET_ZONE, qr_matrix, qr_svg

ISSUER = "https://id.city.example.jp"

# BankID's published animated-QR example (secret used as its UTF-8 bytes).
BANKID_SECRET = b"d28db9a7-4cde-429e-a983-359be676944c"


def test_hmac_construction_matches_the_bankid_vector() -> None:
    zero = frame_mac(BANKID_SECRET, 0)
    one = frame_mac(BANKID_SECRET, 1)
    assert len(zero) == 64 and zero == zero.lower()
    assert zero.startswith("dc69358e") and zero.endswith("cdac9bf8")
    assert one.startswith("949d559b") and one.endswith("1adcbce2")
    # a frame carries the first 32 hex characters of that MAC
    assert frame_code(BANKID_SECRET, 0) == zero[:CODE_HEX]


def test_tokens_and_secrets_are_fresh_and_sized() -> None:
    tokens = {new_qr_token() for _ in range(50)}
    assert len(tokens) == 50 and all(re.fullmatch(r"[A-Za-z0-9_-]{22}", t) for t in tokens)
    secret = new_qr_secret()
    assert len(bytes.fromhex(secret)) == 32 and secret != new_qr_secret()


def test_frame_url_and_parse_round_trip() -> None:
    secret = bytes.fromhex(new_qr_secret())
    frame = frame_at(new_qr_token(), secret, start=1_000, now=1_012.7)
    assert frame.t == 12
    url = frame.url(ISSUER)
    assert url == f"{ISSUER}/m/{frame.token}?t=12&c={frame_code(secret, 12)}"
    assert parse_frame(url, ISSUER) == frame


@pytest.mark.parametrize(
    "content",
    [
        None,
        42,
        "",
        "x" * 600,
        "https://evil.example/m/AAAAAAAAAAAAAAAAAAAAAA?t=1&c=" + "0" * 32,
        ISSUER + "/x/AAAAAAAAAAAAAAAAAAAAAA?t=1&c=" + "0" * 32,
        ISSUER + "/m/short?t=1&c=" + "0" * 32,
        ISSUER + "/m/AAAAAAAAAAAAAAAAAAAAAA/extra?t=1&c=" + "0" * 32,
        ISSUER + "/m/AAAAAAAAAAAAAAAAAAAAAA?t=01&c=" + "0" * 32,
        ISSUER + "/m/AAAAAAAAAAAAAAAAAAAAAA?t=-1&c=" + "0" * 32,
        ISSUER + "/m/AAAAAAAAAAAAAAAAAAAAAA?t=12345678&c=" + "0" * 32,
        ISSUER + "/m/AAAAAAAAAAAAAAAAAAAAAA?t=1&c=" + "0" * 31,
        ISSUER + "/m/AAAAAAAAAAAAAAAAAAAAAA?t=1&c=" + "A" * 32,
        ISSUER + "/m/AAAAAAAAAAAAAAAAAAAAAA?t=1",
        ISSUER + "/m/AAAAAAAAAAAAAAAAAAAAAA?t=1&c=" + "0" * 32 + "&x=1",
        ISSUER + "/m/AAAAAAAAAAAAAAAAAAAAAA?t=1&t=2&c=" + "0" * 32,
        ISSUER + "/m/AAAAAAAAAAAAAAAAAAAAAA?t=1&c=" + "0" * 32 + "#frag",
        ISSUER + ":8443/m/AAAAAAAAAAAAAAAAAAAAAA?t=1&c=" + "0" * 32,
        "http://[::1/m/AAAAAAAAAAAAAAAAAAAAAA?t=1&c=" + "0" * 32,
    ],
)
def test_malformed_frames(content: object) -> None:
    with pytest.raises(QrError) as caught:
        parse_frame(content, ISSUER)
    assert caught.value.code == "qr_malformed"


@given(st.text(max_size=200))
def test_parse_frame_never_crashes(content: str) -> None:
    try:
        parse_frame(content, ISSUER)
    except QrError as error:
        assert error.code == "qr_malformed"


def test_window_and_skew() -> None:
    secret = bytes.fromhex(new_qr_secret())
    start = 10_000
    frame = frame_at("A" * 22, secret, start, now=start + 3.2)
    assert frame.t == 3
    for now in (start + 3, start + 3.99, start + 8.0, start + 2.0):  # -SKEW .. +window
        check_frame(frame, secret=secret, start=start, now=now, window=5)
    for now in (start + 8.01, start + 60, start + 3 - SKEW - 0.01):
        with pytest.raises(QrError) as caught:
            check_frame(frame, secret=secret, start=start, now=now, window=5)
        assert caught.value.code == "qr_stale"


def test_forged_and_other_transactions_frames() -> None:
    mine, other = bytes.fromhex(new_qr_secret()), bytes.fromhex(new_qr_secret())
    start = 10_000
    frame = frame_at("A" * 22, mine, start, now=start + 1)
    # the other transaction's secret does not accept it, and a changed t or code is forged
    for secret, candidate in (
        (other, frame),
        (mine, Frame(frame.token, frame.t + 1, frame.code)),
        (mine, Frame(frame.token, frame.t, "0" * 32)),
    ):
        with pytest.raises(QrError) as caught:
            check_frame(candidate, secret=secret, start=start, now=start + 1, window=5)
        assert caught.value.code == "qr_forged"
    # forged is reported before stale: a bad code long after is still forged
    with pytest.raises(QrError) as caught:
        check_frame(
            Frame(frame.token, 0, "f" * 32), secret=mine, start=start, now=start + 999, window=5
        )
    assert caught.value.code == "qr_forged"
    with pytest.raises(QrError) as caught:
        check_frame(frame, secret=mine, start=None, now=start + 1, window=5)
    assert caught.value.code == "qr_stale"


def test_verification_code_is_four_digits_per_secret() -> None:
    codes = {verification_code(bytes.fromhex(new_qr_secret())) for _ in range(200)}
    assert all(re.fullmatch(r"[0-9]{4}", code) for code in codes)
    assert len(codes) > 150  # spread over 10,000 values
    secret = bytes.fromhex(new_qr_secret())
    assert verification_code(secret) == verification_code(secret)


def test_app_link_percent_encodes_the_frame_and_return() -> None:
    frame = f"{ISSUER}/m/{'A' * 22}?t=3&c={'0' * 32}"
    page = f"{ISSUER}/login/xyz"
    assert app_link(frame) == (
        "myna-idp://handoff?qr=https%3A%2F%2Fid.city.example.jp%2Fm%2F"
        + "A" * 22
        + "%3Ft%3D3%26c%3D"
        + "0" * 32
    )
    assert app_link(frame, page).endswith("&return=https%3A%2F%2Fid.city.example.jp%2Flogin%2Fxyz")


# -- the SVG ---------------------------------------------------------------------------------------


def _svg_modules(svg: str) -> set[tuple[int, int]]:
    """The dark modules drawn by qr_svg's path (each run is 'M x y h n v1 h-n z')."""
    path = re.search(r'<path fill="#000" d="([^"]*)"', svg)
    assert path
    dark = set()
    for x, y, n in re.findall(r"M(\d+) (\d+)h(\d+)v1h-\3z", path.group(1)):
        for dx in range(int(n)):
            dark.add((int(x) + dx, int(y)))
    assert re.sub(r"M\d+ \d+h(\d+)v1h-\1z", "", path.group(1)) == ""  # nothing else in it
    return dark


def test_svg_draws_exactly_the_dark_modules() -> None:
    content = f"{ISSUER}/m/{new_qr_token()}?t=123&c={'a' * 32}"
    matrix = qr_matrix(content)
    svg = qr_svg(content, title="QR <code> & more")
    size = len(matrix)
    assert f'viewBox="0 0 {size} {size}"' in svg
    assert _svg_modules(svg) == {
        (x, y) for y, row in enumerate(matrix) for x, dark in enumerate(row) if dark
    }
    # quiet zone: the border is light
    assert not any(matrix[y][x] for y in range(QUIET_ZONE) for x in range(size))
    # the finder pattern's corner is where the standard puts it
    assert matrix[QUIET_ZONE][QUIET_ZONE] and matrix[QUIET_ZONE][QUIET_ZONE + 6]
    assert "<title>QR &lt;code&gt; &amp; more</title>" in svg
    assert "<script" not in svg and len(svg) < 10_000


def test_different_frames_draw_different_codes() -> None:
    token = new_qr_token()
    one = qr_svg(f"{ISSUER}/m/{token}?t=1&c={'a' * 32}")
    two = qr_svg(f"{ISSUER}/m/{token}?t=2&c={'a' * 32}")
    assert one != two


def test_fixed_masks_draw_valid_alternatives() -> None:
    content = f"{ISSUER}/m/{new_qr_token()}?t=9&c={'b' * 32}"
    matrices = [qr_matrix(content, mask=mask) for mask in range(8)]
    assert len({len(m) for m in matrices}) == 1  # same version whatever the mask
    assert len({str(m) for m in matrices}) == 8  # each mask draws another pattern
    assert qr_matrix(content) in matrices  # the automatic choice is one of them
    with pytest.raises(ValueError):
        qr_matrix(content, mask=8)
    assert _svg_modules(qr_svg(content, mask=3)) == {
        (x, y) for y, row in enumerate(matrices[3]) for x, dark in enumerate(row) if dark
    }
