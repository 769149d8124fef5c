"""Test support for the account portal: a resident's browser signing in with a virtual card.

:class:`PortalBrowser` drives ``/account`` through a Flask test client (cookies kept, its own
User-Agent): ``/account/login`` -> ``/authorize`` -> the login page -> the device (a virtual
card in process, :func:`login_support.device_login`) -> ``continue`` -> ``/account/callback``.
:class:`LogoutReceiver` is a relying party's back-channel logout endpoint on loopback.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, request
from flask.testing import FlaskClient
from login_support import LiveServer, LoginPki, device_login, virtual_card

from idp.card.testpki import ResidentCredentials
from idp.handoff.device_client import DeviceOutcome, FixedPrompts

_HANDOFF = re.compile(r"idp card login ([^\s<]+)")
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def path_of(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class PortalBrowser:
    """A resident's browser on the provider (a Flask test client with a fixed User-Agent)."""

    def __init__(
        self, app: Flask, *, http: FlaskClient | None = None, user_agent: str = "PortalTest/1"
    ) -> None:
        self.app = app
        self.http = http or app.test_client()
        self.user_agent = user_agent
        self.last_outcome: DeviceOutcome | None = None

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"User-Agent": self.user_agent, **(extra or {})}

    def get(self, path: str, **headers: str) -> Any:
        return self.http.get(path, headers=self._headers(headers))

    def post(self, path: str, data: dict[str, str], **headers: str) -> Any:
        return self.http.post(path, data=data, headers=self._headers(headers))

    def start_login(self, next_path: str = "/account") -> tuple[str, str]:
        """``/account/login`` up to the login page: (transaction id, handoff URL)."""
        response = self.get(f"/account/login?next={next_path}")
        assert response.status_code == 303, response.get_data(as_text=True)
        response = self.get(path_of(response.headers["Location"]))
        assert response.status_code == 303, response.get_data(as_text=True)
        page_path = path_of(response.headers["Location"])
        page = self.get(page_path)
        assert page.status_code == 200, page.get_data(as_text=True)
        handoff = _HANDOFF.search(page.get_data(as_text=True))
        assert handoff, page.get_data(as_text=True)
        return page_path.rsplit("/", 1)[1], handoff.group(1)

    def finish_login(self, transaction_id: str) -> Any:
        """After the card: ``continue`` -> the callback; the callback's answer."""
        response = self.get(f"/login/{transaction_id}/continue")
        assert response.status_code == 302, response.get_data(as_text=True)
        location = response.headers["Location"]
        assert urlsplit(location).path == "/account/callback", location
        return self.get(path_of(location))

    def login(
        self,
        login_pki: LoginPki,
        credentials: ResidentCredentials,
        *,
        next_path: str = "/account",
        prompts: FixedPrompts | None = None,
    ) -> Any:
        """A whole portal sign-in with the resident's virtual card; the callback's answer."""
        transaction_id, handoff = self.start_login(next_path)
        _, card = virtual_card(login_pki, credentials)
        self.last_outcome = device_login(self.app, handoff, card, prompts)
        return self.finish_login(transaction_id)

    def page(self, path: str) -> str:
        response = self.get(path)
        assert response.status_code == 200, (path, response.status_code, response.headers)
        return str(response.get_data(as_text=True))

    @staticmethod
    def csrf(html: str) -> str:
        match = _CSRF.search(html)
        assert match, html
        return match.group(1)


class LogoutReceiver:
    """A relying party's back-channel logout URI on loopback, recording each logout token."""

    def __init__(self, status: int = 200) -> None:
        self.tokens: list[str] = []
        self._lock = threading.Lock()
        receiver = Flask("logout-receiver")

        @receiver.post("/backchannel-logout")
        def logout() -> tuple[str, int]:
            with self._lock:
                self.tokens.append(request.form.get("logout_token", ""))
            return "", status

        self.server = LiveServer(lambda _url: receiver)
        self.uri = self.server.url + "/backchannel-logout"

    def stop(self) -> None:
        self.server.stop()
