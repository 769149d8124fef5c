"""Two providers behind one interface, so one table of bad requests runs against both.

A :class:`Target` is an OpenID provider seen from the outside: its discovered endpoints, the
same six clients registered on it (same client ids, redirect URIs and key type), plain HTTP
requests, and a headless code flow. :class:`OurTarget` drives this provider through Flask's test
client (a capturing login stands in for the card); :class:`PeerTarget` drives node-oidc-provider
(``tests/peer/node/provider.mjs``) over loopback HTTP. :func:`outcome` reduces any answer to
``(kind, error, status)``: ``redirect`` (an error sent to the client's redirect URI), ``page``
(an error shown to the user), ``json`` (an error body), or ``accepted``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import requests
from flask import Flask
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from protocol_support import ALL_ITEMS, consent, set_client
from provider_support import RelyingParty, enroll_test_resident, install_capturing_login
from session_support import finish_in_browser

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPE = "openid name address birthdate gender"
PEER_DIR = Path(__file__).parents[1] / "peer" / "node"


@dataclass(frozen=True)
class ClientSpec:
    role: str
    client_id: str
    redirect_uri: str
    auth_method: str
    flags: Mapping[str, bool] = field(default_factory=dict)


#: The clients both providers register: role -> spec.
CLIENTS: dict[str, ClientSpec] = {
    spec.role: spec
    for spec in (
        ClientSpec("jwt", "diff-jwt", "https://rp.example.jp/callback", "private_key_jwt"),
        ClientSpec("public", "diff-public", "https://p.example.jp/cb", "none"),
        ClientSpec("secret", "diff-secret", "https://s.example.jp/cb", "client_secret_basic"),
        ClientSpec(
            "par",
            "diff-par",
            "https://par.example.jp/cb",
            "private_key_jwt",
            {"require_pushed_authorization_requests": True},
        ),
        ClientSpec(
            "jar",
            "diff-jar",
            "https://jar.example.jp/cb",
            "private_key_jwt",
            {"require_signed_request_object": True},
        ),
        ClientSpec(
            "dpop",
            "diff-dpop",
            "https://dpop.example.jp/cb",
            "private_key_jwt",
            {"dpop_bound_access_tokens": True},
        ),
    )
}


@dataclass
class Answer:
    """An HTTP answer from either provider."""

    status: int
    headers: dict[str, str]  # lower-case names
    text: str

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None

    @property
    def location(self) -> str:
        return self.headers.get("location", "")


@dataclass
class Browser:
    """A user agent with a provider session: its cookie jar, the ID token per client role."""

    jar: Any
    id_tokens: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    kind: str  # redirect | page | json | accepted | other
    error: str
    status: int

    def __str__(self) -> str:
        return f"{self.kind} {self.error or '-'} {self.status}"

    @classmethod
    def parse(cls, text: str) -> Outcome:
        kind, error, status = text.split()
        return cls(kind, "" if error == "-" else error, int(status))

    @property
    def rejected(self) -> bool:
        return self.kind != "accepted"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, b64(hashlib.sha256(verifier.encode()).digest())


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


class Target:
    """What every case is written against."""

    name = ""
    issuer = ""
    endpoints: dict[str, str]
    keys: dict[str, ECKey]
    secrets: dict[str, str]

    # -- to implement ---------------------------------------------------------------------

    def send(
        self,
        method: str,
        url: str,
        *,
        query: Sequence[tuple[str, str]] | None = None,
        form: Mapping[str, str] | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        raise NotImplementedError

    def code(self, role: str = "jwt", **overrides: str | None) -> tuple[str, str]:
        """(code, PKCE verifier) of a completed login with this authorization request."""
        raise NotImplementedError

    def offline(self, role: str = "jwt") -> dict[str, Any]:
        """The token response of a code flow that granted offline_access."""
        raise NotImplementedError

    def dpop_nonce(self) -> str | None:
        return None

    def browser_login(self, roles: Sequence[str] = ("jwt",)) -> Browser:
        """A browser that logged in (and consented) with each of ``roles`` in turn: its
        provider session, and the ID token each client got."""
        raise NotImplementedError

    def authorize_in(self, browser: Browser, role: str = "jwt", **overrides: str | None) -> Answer:
        """/authorize in ``browser`` (its session cookie sent)."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------

    def client(self, role: str) -> ClientSpec:
        return CLIENTS[role]

    def url(self, endpoint: str) -> str:
        return self.endpoints[endpoint]

    def get(self, endpoint: str, query: Sequence[tuple[str, str]] | Mapping[str, str]) -> Answer:
        items = list(query.items()) if isinstance(query, Mapping) else list(query)
        return self.send("GET", self.url(endpoint), query=items)

    def auth_request(
        self, role: str = "jwt", **overrides: str | None
    ) -> tuple[dict[str, str], str]:
        spec = self.client(role)
        verifier, challenge = pkce_pair()
        params: dict[str, str | None] = {
            "response_type": "code",
            "client_id": spec.client_id,
            "redirect_uri": spec.redirect_uri,
            "scope": SCOPE,
            "state": secrets.token_urlsafe(16),
            "nonce": secrets.token_urlsafe(16),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}, verifier

    def authorize(self, role: str = "jwt", **overrides: str | None) -> Answer:
        params, _ = self.auth_request(role, **overrides)
        return self.get("authorization", params)

    def assertion(
        self, role: str = "jwt", *, key: Any = None, alg: str = "ES256", **claims: Any
    ) -> str:
        spec = self.client(role)
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": spec.client_id,
            "sub": spec.client_id,
            "aud": self.url("token"),
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        signer = key if key is not None else self.keys[role]
        return jwt.encode({"alg": alg, "kid": self.keys[role].kid}, body, signer, algorithms=[alg])

    def client_auth(self, role: str) -> tuple[dict[str, str], dict[str, str]]:
        spec = self.client(role)
        if spec.auth_method == "private_key_jwt":
            return {
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion(role),
            }, {}
        if spec.auth_method == "client_secret_basic":
            pair = f"{spec.client_id}:{self.secrets[role]}".encode()
            return {}, {"authorization": "Basic " + base64.b64encode(pair).decode()}
        return {"client_id": spec.client_id}, {}

    def post(
        self,
        endpoint: str,
        form: Mapping[str, str],
        *,
        role: str | None = "jwt",
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        """POST ``form`` to an endpoint, authenticated as ``role`` (None: unauthenticated)."""
        body = dict(form)
        all_headers = dict(headers or {})
        if role is not None:
            auth_form, auth_headers = self.client_auth(role)
            body = {**auth_form, **body}
            all_headers.update(auth_headers)
        return self.send("POST", self.url(endpoint), form=body, headers=all_headers)

    def redeem(
        self,
        code: str,
        verifier: str | None,
        role: str = "jwt",
        *,
        headers: Mapping[str, str] | None = None,
        **extra: str | None,
    ) -> Answer:
        form: dict[str, str | None] = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.client(role).redirect_uri,
            "code_verifier": verifier,
        }
        form.update(extra)
        clean = {k: v for k, v in form.items() if v is not None}
        return self.post("token", clean, role=role, headers=headers)

    def refresh(self, token: str, role: str = "jwt", **extra: str) -> Answer:
        form = {"grant_type": "refresh_token", "refresh_token": token, **extra}
        return self.post("token", form, role=role)

    def request_object(
        self, role: str, params: Mapping[str, Any], *, key: Any = None, **claims: Any
    ) -> str:
        spec = self.client(role)
        now = int(time.time())
        body: dict[str, Any] = {
            **params,
            "iss": spec.client_id,
            "aud": self.issuer,
            "client_id": spec.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": secrets.token_urlsafe(8),
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        header = {"alg": "ES256", "kid": self.keys[role].kid, "typ": "oauth-authz-req+jwt"}
        return jwt.encode(header, body, key if key is not None else self.keys[role])

    def dpop_proof(
        self,
        key: Any,
        *,
        htm: str = "POST",
        htu: str | None = None,
        access_token: str | None = None,
        header: Mapping[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        body: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": htm,
            "htu": htu or self.url("token"),
            "iat": int(time.time()),
            "nonce": self.dpop_nonce(),
        }
        if access_token is not None:
            body["ath"] = b64(hashlib.sha256(access_token.encode()).digest())
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        protected: dict[str, Any] = {
            "typ": "dpop+jwt",
            "alg": "ES256",
            "jwk": key.as_dict(private=False),
        }
        protected.update(header or {})
        return jwt.encode(protected, body, key)

    def redirect_uris(self) -> list[str]:
        return [spec.redirect_uri for spec in CLIENTS.values()]


def outcome(target: Target, answer: Answer) -> Outcome:
    """What an answer amounts to."""
    if answer.status in (301, 302, 303, 307):
        location = answer.location
        if any(location.startswith(uri) for uri in target.redirect_uris()):
            split = urlsplit(location)
            params = parse_qs(split.query or split.fragment)
            if "error" in params:
                return Outcome("redirect", params["error"][0], answer.status)
        return Outcome("accepted", "", answer.status)
    content_type = answer.headers.get("content-type", "")
    if "html" in content_type:
        match = re.search(r'id="error-code">([^<]*)<', answer.text)
        if match:
            return Outcome("page", match.group(1).strip(), answer.status)
    body = answer.json()
    if isinstance(body, dict) and "error" in body:
        return Outcome("json", str(body["error"]), answer.status)
    if answer.status < 400:
        return Outcome("accepted", "", answer.status)
    return Outcome("other", "", answer.status)


# == this provider =============================================================================


class OurTarget(Target):
    name = "ours"

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.login = install_capturing_login(app)
        self.issuer = str(app.config["ISSUER"])
        with app.app_context():
            self.resident = enroll_test_resident().id
        self.rps: dict[str, RelyingParty] = {}
        self.keys = {}
        self.secrets = {}
        for spec in CLIENTS.values():
            rp = RelyingParty(
                app,
                auth_method=spec.auth_method,
                scopes=ALL_ITEMS,
                redirect_uri=spec.redirect_uri,
                name=spec.role,
                client_id=spec.client_id,
            )
            if spec.flags:
                set_client(app, rp, **spec.flags)
            self.rps[spec.role] = rp
            self.keys[spec.role] = rp.key
            if rp.client_secret:
                self.secrets[spec.role] = rp.client_secret
        metadata = app.test_client().get("/.well-known/openid-configuration").get_json()
        self.endpoints = {
            "authorization": metadata["authorization_endpoint"],
            "token": metadata["token_endpoint"],
            "par": metadata["pushed_authorization_request_endpoint"],
            "introspection": metadata["introspection_endpoint"],
            "revocation": metadata["revocation_endpoint"],
            "userinfo": metadata["userinfo_endpoint"],
        }

    def send(
        self,
        method: str,
        url: str,
        *,
        query: Sequence[tuple[str, str]] | None = None,
        form: Mapping[str, str] | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        path = urlsplit(url).path
        if query:
            path += "?" + urlencode(list(query))
        client = self.app.test_client()
        data: Any = body if body is not None else (dict(form) if form is not None else None)
        response = client.open(path, method=method, data=data, headers=dict(headers or {}))
        return Answer(
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            response.get_data(as_text=True),
        )

    def code(self, role: str = "jwt", **overrides: str | None) -> tuple[str, str]:
        params, verifier = self.auth_request(role, **overrides)
        answer = self.get("authorization", params)
        assert answer.status == 200, answer.text[:300]
        callback = self.rps[role].finish(self.login.last, self.resident)
        assert callback.status_code == 302
        return query_of(callback.headers["Location"])["code"][0], verifier

    def offline(self, role: str = "jwt") -> dict[str, Any]:
        consent(self.app, self.resident, self.rps[role], ["name", "offline_access"])
        code, verifier = self.code(role, scope="openid name offline_access")
        body = self.redeem(code, verifier, role).json()
        assert "refresh_token" in body, body
        return dict(body)

    def browser_login(self, roles: Sequence[str] = ("jwt",)) -> Browser:
        http = self.app.test_client()
        browser = Browser(http)
        for role in roles:
            rp = self.rps[role]
            consent(self.app, self.resident, rp, ["name", "address", "birthdate", "gender"])
            params, verifier = self.auth_request(role)
            answer = self.authorize_in(browser, role, **params)
            if answer.status == 200:  # the card login (no session yet)
                in_browser = SimpleNamespace(app=self.app, http=http)  # what finish_in_browser uses
                callback = finish_in_browser(in_browser, self.login.last, self.resident)  # type: ignore[arg-type]
                location = callback.headers["Location"]
            else:  # answered from the session
                location = answer.location
            code = query_of(location)["code"][0]
            browser.id_tokens[role] = self.redeem(code, verifier, role).json()["id_token"]
        return browser

    def authorize_in(self, browser: Browser, role: str = "jwt", **overrides: str | None) -> Answer:
        params, _ = self.auth_request(role, **overrides)
        response = browser.jar.get("/authorize?" + urlencode(params))
        return Answer(
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            response.get_data(as_text=True),
        )

    def dpop_nonce(self) -> str | None:
        from idp.oidc.server import get_server

        with self.app.app_context():
            return str(get_server(self.app).dpop.nonce())


# == node-oidc-provider ========================================================================


class PeerProcess:
    """``node provider.mjs`` on a free loopback port with :data:`CLIENTS` and fresh keys."""

    def __init__(self, node_path: str, workdir: Path) -> None:
        self.keys = {
            role: ECKey.generate_key("P-256", parameters={"kid": f"{role}-key"}, private=True)
            for role in CLIENTS
        }
        self.secrets = {"secret": secrets.token_urlsafe(32)}
        clients = []
        for spec in CLIENTS.values():
            entry: dict[str, Any] = {
                "client_id": spec.client_id,
                "redirect_uris": [spec.redirect_uri],
                "token_endpoint_auth_method": spec.auth_method,
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "id_token_signed_response_alg": "ES256",
                "scope": " ".join(["openid", *ALL_ITEMS]),
                **spec.flags,
            }
            if spec.auth_method == "private_key_jwt":
                entry["jwks"] = KeySet([self.keys[spec.role]]).as_dict(private=False)
                entry["token_endpoint_auth_signing_alg"] = "ES256"
                entry["request_object_signing_alg"] = "ES256"
            if spec.auth_method == "client_secret_basic":
                entry["client_secret"] = self.secrets["secret"]
            clients.append(entry)
        config = workdir / "peer-clients.json"
        config.write_text(json.dumps(clients))
        self.process = subprocess.Popen(
            [node_path, str(PEER_DIR / "provider.mjs"), str(config), "0"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line, "node-oidc-provider did not start"
        self.issuer = str(json.loads(line)["issuer"])
        metadata = requests.get(self.issuer + "/.well-known/openid-configuration", timeout=10)
        self.metadata = metadata.json()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


class PeerTarget(Target):
    name = "peer"

    def __init__(self, peer: PeerProcess) -> None:
        self.peer = peer
        self.issuer = peer.issuer
        self.keys = peer.keys
        self.secrets = peer.secrets
        metadata = peer.metadata
        self.endpoints = {
            "authorization": metadata["authorization_endpoint"],
            "token": metadata["token_endpoint"],
            "par": metadata["pushed_authorization_request_endpoint"],
            "introspection": metadata["introspection_endpoint"],
            "revocation": metadata["revocation_endpoint"],
            "userinfo": metadata["userinfo_endpoint"],
        }

    def send(
        self,
        method: str,
        url: str,
        *,
        query: Sequence[tuple[str, str]] | None = None,
        form: Mapping[str, str] | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
    ) -> Answer:
        if query:
            url += "?" + urlencode(list(query))
        http = session or requests.Session()
        response = http.request(
            method,
            url,
            data=body if body is not None else form,
            headers=dict(headers or {}),
            allow_redirects=False,
            timeout=30,
        )
        return Answer(
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            response.text,
        )

    def code(self, role: str = "jwt", **overrides: str | None) -> tuple[str, str]:
        params, verifier = self.auth_request(role, **overrides)
        return self.follow(self.url("authorization") + "?" + urlencode(params)), verifier

    def browser_login(self, roles: Sequence[str] = ("jwt",)) -> Browser:
        browser = Browser(requests.Session())
        for role in roles:
            params, verifier = self.auth_request(role)
            url = self.url("authorization") + "?" + urlencode(params)
            code = self.follow(url, browser.jar)
            browser.id_tokens[role] = self.redeem(code, verifier, role).json()["id_token"]
        return browser

    def authorize_in(self, browser: Browser, role: str = "jwt", **overrides: str | None) -> Answer:
        params, _ = self.auth_request(role, **overrides)
        return self.send(
            "GET", self.url("authorization"), query=list(params.items()), session=browser.jar
        )

    def follow(self, url: str, session: requests.Session | None = None) -> str:
        """Follow the interaction redirects to the client's callback: its code."""
        session = session or requests.Session()
        for _ in range(6):
            answer = self.send("GET", url, session=session)
            assert answer.status in (302, 303), (answer.status, answer.text[:300])
            url = urljoin(url, answer.location)
            if not url.startswith(self.issuer):
                params = query_of(url)
                assert "code" in params, params
                return params["code"][0]
        raise AssertionError("no callback after the interaction")

    def offline(self, role: str = "jwt") -> dict[str, Any]:
        code, verifier = self.code(role, scope="openid name offline_access", prompt="consent")
        body = self.redeem(code, verifier, role).json()
        assert "refresh_token" in body, body
        return dict(body)
