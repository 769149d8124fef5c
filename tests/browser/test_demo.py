"""``idp demo`` in Chromium: the provider, the demo relying party and the phone simulator as
the demo starts them (their own processes, an embedded Redis, SQLite), and the demo's shortcut:
clicking the QR code on the login page opens the phone simulator with the current frame."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 90.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Demo:
    idp: str
    rp: str
    phone: str


def wait_until_up(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"idp demo exited with {process.returncode}", pytrace=False)
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not come up", pytrace=False)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    ports = {name: free_port() for name in ("idp", "rp", "phone")}
    command = [
        sys.executable,
        "-c",
        "import sys; from idp.cli import main; sys.exit(main())",
        "demo",
        "--idp-port",
        str(ports["idp"]),
        "--rp-port",
        str(ports["rp"]),
        "--phone-port",
        str(ports["phone"]),
        "--var-dir",
        str(tmp_path / "demo"),
        "--pki-dir",
        str(tmp_path / "pki"),
    ]
    log = (tmp_path / "demo.log").open("wb")
    process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    urls = Demo(*(f"http://127.0.0.1:{ports[name]}" for name in ("idp", "rp", "phone")))
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        wait_until_up(urls.idp + "/.well-known/openid-configuration", process, deadline)
        wait_until_up(urls.rp + "/", process, deadline)
        wait_until_up(urls.phone + "/", process, deadline)
        yield urls
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
    banner = (tmp_path / "demo.log").read_text(encoding="utf-8", errors="replace")
    assert f"Phone simulator (the resident's phone): {urls.phone}/" in banner
    assert "demo stopped" in banner


def test_clicking_the_qr_in_the_demo_opens_the_phone_simulator(desktop: Page, demo: Demo) -> None:
    desktop.goto(demo.rp + "/")
    desktop.click("#login")
    expect(desktop.locator("#qr-image svg")).to_be_visible()
    code = desktop.locator("#verification-code").inner_text().strip()
    qr = desktop.locator("#qr-image")
    expect(qr).to_have_attribute("data-demo-phone", demo.phone)
    expect(qr).to_have_attribute("role", "button")
    with desktop.expect_popup() as opened:
        qr.click()
    phone = opened.value
    phone.set_viewport_size({"width": 390, "height": 844})
    expect(phone).to_have_url(re.compile(re.escape(demo.phone) + r"/flow/"))
    expect(phone.locator("#screen")).to_have_attribute("data-step", "confirm")
    expect(phone.locator("#verification-code")).to_have_text(code)
    expect(desktop.locator("#qr-area")).to_be_hidden()
    phone.click("#continue")
    for digit in "1234":  # yamada is enrolled by the demo: PIN1 only
        phone.click(f'#pinpad [data-digit="{digit}"]')
    phone.click("#ok")
    expect(phone.locator("#screen")).to_have_attribute("data-step", "done")
    desktop.click('button[value="approve"]')
    expect(desktop).to_have_url(demo.rp + "/me")
    expect(desktop.locator("body")).to_contain_text("山田　太郎")
