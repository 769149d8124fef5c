"""Drawing a QR code as inline SVG markup (the only module that imports ``qrcode``).

The page embeds the markup directly (no image request, nothing from a CDN). Each dark run of a
row becomes one rectangle of a single ``<path>``, which keeps a frame of the login QR (version
6, about 100 characters) to a few kilobytes; the quiet zone is part of the white background.

A caller may fix the **mask pattern** (0-7). Choosing the best of the eight by the standard's
penalty score is most of the drawing time (about 14 ms against 3 ms for one frame of the login
QR here), and the login page draws a frame per waiting page per second; any mask decodes, and
the login QR changes its mask with every frame (``t % 8``), so a frame whose mask happens to
scan badly is gone a second later.
"""

from __future__ import annotations

from html import escape
from typing import Final

import qrcode
from qrcode.constants import ERROR_CORRECT_M

__all__ = ["QUIET_ZONE", "qr_matrix", "qr_svg"]

QUIET_ZONE: Final = 4
"""Light modules around the code (ISO/IEC 18004 asks for four)."""


def qr_matrix(content: str, *, mask: int | None = None) -> list[list[bool]]:
    """The module matrix of ``content`` (error correction M), quiet zone included.

    ``mask``: the mask pattern 0-7; None picks the best one (slower).
    """
    if mask is not None and not 0 <= mask <= 7:
        raise ValueError("mask must be 0-7")
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_M, border=QUIET_ZONE, mask_pattern=mask)
    code.add_data(content)
    code.make(fit=True)
    matrix = code.get_matrix()
    return [[bool(cell) for cell in row] for row in matrix]


def qr_svg(content: str, *, title: str | None = None, mask: int | None = None) -> str:
    """SVG markup of the QR code for ``content``; it scales to its container's width."""
    matrix = qr_matrix(content, mask=mask)
    size = len(matrix)
    path: list[str] = []
    for y, row in enumerate(matrix):
        x = 0
        while x < size:
            if not row[x]:
                x += 1
                continue
            start = x
            while x < size and row[x]:
                x += 1
            path.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
    label = f"<title>{escape(title)}</title>" if title else ""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" '
        f'class="qr-code" shape-rendering="crispEdges" role="img">{label}'
        f'<rect width="{size}" height="{size}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(path)}"/></svg>'
    )
