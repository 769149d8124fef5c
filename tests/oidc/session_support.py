"""Helpers for the session and logout tests: a browser that keeps the session cookie, card
logins that finish in that browser, and a real HTTP server that receives logout tokens."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from joserfc import jwt
from joserfc.jwk import KeySet
from provider_support import CapturingLogin, RelyingParty, callback_params

from idp.oidc.authorize import finish_authorization
from idp.oidc.claims import ACR_CARD_PIN, AMR_CARD_PIN

COOKIE = "myna-session"  # the loopback (http) issuer's name


def session_cookie(rp: RelyingParty) -> str | None:
    """The session cookie ``rp``'s browser (its test client) holds, or None."""
    cookie = rp.http.get_cookie(COOKIE)
    return cookie.value if cookie is not None else None


def card_login(
    rp: RelyingParty,
    login: CapturingLogin,
    resident_id: str,
    *,
    auth_time: int | None = None,
    acr: str = ACR_CARD_PIN,
    **params: str | None,
) -> tuple[Any, dict[str, list[str]]]:
    """A full card login in ``rp``'s browser: /authorize goes to the (capturing) card login,
    which finishes in the same browser (its cookies sent, the session cookie kept)."""
    request = rp.authorization_request(**params)
    response = rp.authorize(request)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    callback = finish_in_browser(rp, login.last, resident_id, auth_time=auth_time, acr=acr)
    assert callback.status_code == 302, callback.get_data(as_text=True)[:300]
    return request, callback_params(callback.headers["Location"])


def finish_in_browser(
    rp: RelyingParty,
    ctx: Any,
    resident_id: str,
    *,
    auth_time: int | None = None,
    acr: str = ACR_CARD_PIN,
) -> Any:
    """``finish_authorization`` as the card login calls it, in ``rp``'s browser."""
    current = session_cookie(rp)
    headers = {"Cookie": f"{COOKIE}={current}"} if current else {}
    with rp.app.test_request_context(headers=headers):
        response = finish_authorization(
            ctx,
            resident_id=resident_id,
            granted_scopes=ctx.scopes,
            auth_time=auth_time if auth_time is not None else int(time.time()),
            amr=AMR_CARD_PIN,
            acr=acr,
        )
    for header in response.headers.getlist("Set-Cookie"):
        name, _, rest = header.partition("=")
        if name == COOKIE:
            rp.http.set_cookie(COOKIE, rest.split(";", 1)[0], domain="localhost")
    return response


def id_token_of(rp: RelyingParty, request: Any, params: dict[str, list[str]]) -> str:
    """Redeem the callback's code; the ID token."""
    response = rp.token_request(params["code"][0], request.verifier)
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["id_token"])


def verified_claims(rp: RelyingParty, token: str, *, typ: str | None = None) -> dict[str, Any]:
    """The claims of ``token`` verified with the provider's published JWKS (header ``typ``
    checked when given)."""
    keys = KeySet.import_key_set(rp.http.get("/jwks.json").get_json())
    decoded = jwt.decode(token, keys, algorithms=["ES256", "RS256", "PS256"])
    if typ is not None:
        assert decoded.header.get("typ") == typ, decoded.header
    return dict(decoded.claims)


@dataclass
class Receiver:
    """What the back-channel logout receiver got: one dict of form fields per POST."""

    posts: list[dict[str, list[str]]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    url: str = ""

    def tokens(self) -> list[str]:
        return [post["logout_token"][0] for post in self.posts]


@contextmanager
def logout_receiver(status: int = 200, delay: float = 0.0) -> Iterator[Receiver]:
    """A real HTTP server on a free loopback port that records logout-token POSTs."""
    receiver = Receiver(status=status, delay=delay)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode()
            assert self.headers.get("Content-Type") == "application/x-www-form-urlencoded"
            receiver.posts.append(parse_qs(body))
            if receiver.delay:
                time.sleep(receiver.delay)
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/backchannel-logout"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
