"""Accessibility checks for any page in headless Chromium, for every browser test to use.

- :func:`assert_accessible`: axe-core (npm, pinned in ``tests/browser/node/package-lock.json``,
  installed with ``npm ci`` on first use) run in the page against WCAG 2.0/2.1/2.2 A and AA;
  zero violations or the test fails with each rule, its help text and the elements.
  axe is evaluated through Playwright (the DevTools protocol), so the pages' strict CSP stays
  as it is.
- :func:`assert_reflows`: at 320 CSS px wide (400 % zoom of a 1280 px window) nothing scrolls
  sideways and the named controls are fully inside the viewport.
- :func:`assert_text_resizes`: with the text at 200 % (the root font size; all our sizes are
  in ``rem``/``em``) nothing scrolls sideways and the controls stay visible.
- :func:`tab_through`: the elements Tab reaches, in order, each with whether its focus is
  visible (an outline or box-shadow under ``:focus-visible``); stops when focus leaves the
  page or comes round again, so a keyboard trap shows as a short cycle.

Usage (the account portal's tests too)::

    from a11y_support import assert_accessible
    assert_accessible(page, "portal overview (ja)")
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

__all__ = [
    "assert_accessible",
    "assert_reflows",
    "assert_text_resizes",
    "axe_source",
    "tab_through",
]

NODE_DIR = Path(__file__).resolve().parent / "node"
AXE_FILE = NODE_DIR / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]


@functools.cache
def axe_source() -> str:
    """axe-core's browser bundle (``npm ci`` in tests/browser/node on first use)."""
    if not AXE_FILE.is_file():
        npm = shutil.which("npm")
        assert npm, "npm is needed for axe-core (tests/browser/node)"
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300
        )
    return AXE_FILE.read_text(encoding="utf-8")


_RUN = """async (options) => {
  const result = await window.axe.run(document, options);
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 6).map((n) => n.target.join(" ") + " :: " + (n.failureSummary || "")),
  }));
}"""


def assert_accessible(page: Page, name: str, *, disable: tuple[str, ...] = ()) -> None:
    """No WCAG 2.2 A/AA violation on ``page`` as it is now (axe-core)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    options: dict[str, Any] = {"runOnly": {"type": "tag", "values": WCAG_TAGS}}
    if disable:
        options["rules"] = {rule: {"enabled": False} for rule in disable}
    violations = page.evaluate(_RUN, options)
    assert not violations, f"{name}: {len(violations)} axe violation(s):\n" + json.dumps(
        violations, indent=1, ensure_ascii=False
    )


def _overflow(page: Page) -> int:
    return int(
        page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
    )


def _assert_controls_inside(page: Page, name: str, controls: tuple[str, ...]) -> None:
    width = page.evaluate("() => document.documentElement.clientWidth")
    for selector in controls:
        locator = page.locator(selector).first
        assert locator.is_visible(), f"{name}: {selector} is not visible"
        box = locator.bounding_box()
        assert box is not None, f"{name}: {selector} has no box"
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (
            f"{name}: {selector} is cut off ({box}, viewport {width})"
        )


def assert_reflows(page: Page, name: str, controls: tuple[str, ...]) -> None:
    """WCAG 1.4.10: at 320 CSS px (the page is resized and restored) no horizontal scrolling,
    and ``controls`` fully visible."""
    before = page.viewport_size
    page.set_viewport_size({"width": 320, "height": 640})
    try:
        assert _overflow(page) <= 0, f"{name}: scrolls sideways at 320 px by {_overflow(page)} px"
        _assert_controls_inside(page, name, controls)
    finally:
        if before:
            page.set_viewport_size(before)


def assert_text_resizes(page: Page, name: str, controls: tuple[str, ...]) -> None:
    """WCAG 1.4.4: text at 200 % without loss (no sideways scrolling, controls visible)."""
    page.evaluate("() => { document.documentElement.style.fontSize = '200%'; }")
    try:
        assert _overflow(page) <= 0, f"{name}: scrolls sideways with 200 % text"
        _assert_controls_inside(page, name, controls)
    finally:
        page.evaluate("() => { document.documentElement.style.fontSize = ''; }")


_FOCUSED = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) { return null; }
  const style = getComputedStyle(el);
  const visible = (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2)
    || (style.boxShadow && style.boxShadow !== "none");
  const label = (el.id ? "#" + el.id : el.tagName.toLowerCase())
    + (el.getAttribute("name") ? "[name=" + el.getAttribute("name") + "]" : "")
    + (el.getAttribute("value") && el.tagName === "BUTTON" ? "[value=" + el.value + "]" : "");
  return { label: label, text: (el.innerText || el.value || "").trim().slice(0, 40),
           visible: visible, matches: el.matches(":focus-visible") };
}"""


def tab_through(page: Page, limit: int = 60) -> list[dict[str, Any]]:
    """Press Tab from the top of the page until focus leaves the document or repeats."""
    page.evaluate("() => { if (document.activeElement) { document.activeElement.blur(); } }")
    page.evaluate("() => window.scrollTo(0, 0)")
    seen: list[dict[str, Any]] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused = page.evaluate(_FOCUSED)
        if focused is None or (seen and focused == seen[0]):
            break
        seen.append(focused)
    return seen
