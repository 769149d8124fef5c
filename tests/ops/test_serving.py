"""The production stack on loopback: nginx (docs/deploy/nginx.conf, TLS) -> gunicorn
(idp.ops.gunicorn_conf, 2 gthread workers) -> the provider on PostgreSQL and Redis.

The provider runs with production settings (an https issuer, real secrets, no testing mode);
its schema, first signing key and client are made with the ``idp`` commands of the runbook.
"""

from __future__ import annotations

import http.client
import json
import queue
import re
import secrets
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet
from login_support import HttpBrowser, LoginPki, dispose, make_login_app, virtual_device_login
from ops_support import Child, LoopbackTls, base_environment, free_port, listening, require_binary
from provider_support import pkce_pair

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[2]
NGINX_CONF = ROOT / "docs" / "deploy" / "nginx.conf"
IDP = Path(sys.executable).with_name("idp")
CLIENT_ID = "rp-behind-nginx"
REDIRECT_URI = "https://rp.example.jp/callback"


def nginx_site(
    *, https_port: int, http_port: int, upstream: int, tls: LoopbackTls, directory: Path
) -> str:
    """docs/deploy/nginx.conf with the lines marked ``# test:`` pointed at this test."""
    replacements = {
        "upstream": f"server 127.0.0.1:{upstream};",
        "http listen": f"listen 127.0.0.1:{http_port};",
        "https listen": f"listen 127.0.0.1:{https_port} ssl http2;",
        "certificate": f"ssl_certificate {tls.certificate};",
        "key": f"ssl_certificate_key {tls.key};",
        "access log": f"access_log {directory / 'access.log'} myna_idp;",
        "drop": None,
    }
    seen: dict[str, int] = {}
    lines = []
    for line in NGINX_CONF.read_text().splitlines():
        marker = re.search(r"#\s*test:\s*([a-z ]+?)\s*(?:;.*)?$", line)
        if marker is None:
            lines.append(line)
            continue
        what = marker.group(1)
        assert what in replacements, f"unknown test marker {what!r} in {NGINX_CONF}"
        seen[what] = seen.get(what, 0) + 1
        replacement = replacements[what]
        if replacement is not None:
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(indent + replacement)
    assert seen == {
        "upstream": 1,
        "http listen": 1,
        "https listen": 1,
        "certificate": 1,
        "key": 1,
        "access log": 2,
        "drop": 3,
    }, seen
    return "\n".join(lines) + "\n"


def nginx_main(directory: Path, site: Path) -> str:
    """A main nginx.conf for one foreground process that writes only under ``directory``."""
    return f"""
daemon off;
master_process off;
worker_processes 1;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} info;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    client_body_temp_path {directory / "client_body"};
    proxy_temp_path {directory / "proxy"};
    fastcgi_temp_path {directory / "fastcgi"};
    uwsgi_temp_path {directory / "uwsgi"};
    scgi_temp_path {directory / "scgi"};
    include {site};
}}
"""


@dataclass
class Stack:
    issuer: str
    ca: Path
    directory: Path
    login_pki: LoginPki
    client_key: ECKey
    gunicorn: Child
    nginx: Child
    http_port: int
    https_port: int

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # REQUESTS_CA_BUNDLE would win over session.verify
        session.verify = str(self.ca)
        return session

    def url(self, path: str) -> str:
        return self.issuer + path


def _idp(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [str(IDP), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    database_url: str,
    redis_url: str,
    shared_pki: Any,
) -> Iterator[Stack]:
    nginx = require_binary("nginx", "/usr/sbin")
    directory = tmp_path_factory.mktemp("serving")
    login_pki = LoginPki.create(directory / "pki", shared_pki)
    tls = LoopbackTls.create(directory / "tls")
    https_port, http_port, app_port = free_port(), free_port(), free_port()
    issuer = f"https://127.0.0.1:{https_port}"

    # An empty, migrated schema (the same helper as every provider test).
    dispose(make_login_app(database_url, redis_url, login_pki))
    env = base_environment() | {
        "IDP_ISSUER": issuer,
        "IDP_SECRET_KEY": secrets.token_urlsafe(48),
        "IDP_PAIRWISE_SECRET": secrets.token_urlsafe(48),
        "IDP_DATABASE_URL": database_url,
        "IDP_REDIS_URL": redis_url,
        "IDP_REDIS_PREFIX": f"test:serving:{uuid.uuid4().hex}:",
        "IDP_TRUSTED_PROXY_COUNT": "1",
        "IDP_JPKI_AUTH_ANCHORS": json.dumps([str(login_pki.auth_anchor)]),
        "IDP_JPKI_SIGN_ANCHORS": json.dumps([str(login_pki.sign_anchor)]),
        "IDP_JPKI_CRL_FILES": json.dumps(
            [str(login_pki.crl_path("auth")), str(login_pki.crl_path("sign"))]
        ),
    }
    # The runbook's deployment steps.
    _idp(env, "db", "upgrade")
    _idp(env, "keys", "rotate", "--alg", "ES256")
    client_key = ECKey.generate_key("P-256", parameters={"kid": "rp-1"}, private=True)
    jwks = directory / "rp-jwks.json"
    jwks.write_text(json.dumps(KeySet([client_key]).as_dict(private=False)))
    _idp(
        env,
        *("clients", "add", "--name", "加賀市 電子申請", "--client-id", CLIENT_ID),
        *("--redirect-uri", REDIRECT_URI, "--auth-method", "private_key_jwt"),
        *("--jwks-file", str(jwks)),
    )

    gunicorn = Child(
        "gunicorn",
        [
            sys.executable,
            *("-m", "gunicorn", "-c", "python:idp.ops.gunicorn_conf"),
            *("--bind", f"127.0.0.1:{app_port}", "--workers", "2", "--threads", "8"),
        ],
        directory=directory,
        env=env,
    )
    site = directory / "myna-idp.conf"
    site.write_text(
        nginx_site(
            https_port=https_port,
            http_port=http_port,
            upstream=app_port,
            tls=tls,
            directory=directory,
        )
    )
    main = directory / "nginx.conf"
    main.write_text(nginx_main(directory, site))
    argv = [nginx, "-p", str(directory), "-c", str(main), "-e", str(directory / "error.log")]
    checked = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30, check=False)
    assert checked.returncode == 0, checked.stderr
    server = Child("nginx", argv, directory=directory)
    try:
        server.wait_for(lambda: listening(https_port), timeout=10, what="HTTPS port")
        gunicorn.wait_for(lambda: listening(app_port), timeout=20, what="listening port")
        yield Stack(
            issuer=issuer,
            ca=tls.ca,
            directory=directory,
            login_pki=login_pki,
            client_key=client_key,
            gunicorn=gunicorn,
            nginx=server,
            http_port=http_port,
            https_port=https_port,
        )
    finally:
        server.stop()
        gunicorn.stop(timeout=20)


def test_discovery_over_tls(stack: Stack) -> None:
    response = stack.session().get(stack.url("/.well-known/openid-configuration"), timeout=10)
    assert response.status_code == 200
    document = response.json()
    assert document["issuer"] == stack.issuer
    assert document["token_endpoint"] == stack.issuer + "/token"
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "public, max-age=3600"
    assert "nginx/" not in response.headers.get("Server", "")  # server_tokens off
    # nginx's $request_id reaches the app and comes back.
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["X-Request-ID"])
    jwks = stack.session().get(document["jwks_uri"], timeout=10).json()
    assert [key["alg"] for key in jwks["keys"]] == ["ES256", "ES256"]  # active and next


def test_plain_http_is_redirected(stack: Stack) -> None:
    response = requests.get(
        f"http://127.0.0.1:{stack.http_port}/authorize?x=1", allow_redirects=False, timeout=10
    )
    assert response.status_code == 301
    assert response.headers["Location"].startswith("https://127.0.0.1")


def _events(response: requests.Response, into: queue.Queue[dict[str, Any] | None]) -> None:
    """Read server-sent events as they arrive; None when the stream ends."""
    try:
        name = None
        for line in response.iter_lines(chunk_size=1, decode_unicode=True):
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and name == "status":
                document = json.loads(line.split(":", 1)[1])
                document["received"] = time.monotonic()
                into.put(document)
    except requests.RequestException:
        pass
    finally:
        into.put(None)


def _next_state(events: queue.Queue[dict[str, Any] | None], timeout: float = 10) -> str | None:
    event = events.get(timeout=timeout)
    return None if event is None else str(event["state"])


def test_login_with_qr_and_event_stream_through_nginx(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(stack.ca))  # the device's own session
    browser = HttpBrowser()
    browser.session.trust_env = False
    browser.session.verify = str(stack.ca)
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid name address birthdate gender",
        "state": state,
        "nonce": nonce,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    started = browser.start(stack.url("/authorize?" + urlencode(query)))
    cookie = next(c for c in browser.session.cookies if c.name.startswith("__Host-"))
    assert cookie.secure and cookie.path == "/" and not cookie.domain_specified

    # The status stream: it must deliver each event while the connection stays open.
    events: queue.Queue[dict[str, Any] | None] = queue.Queue()
    stream = browser.session.get(
        stack.url(f"/login/{started.transaction_id}/events"), stream=True, timeout=(5, 30)
    )
    assert stream.status_code == 200
    assert stream.headers["Content-Type"].startswith("text/event-stream")
    reader = threading.Thread(target=_events, args=(stream, events), daemon=True)
    reader.start()
    assert _next_state(events) == "created"

    # The phone: the browser's current QR frame, picked up through the device API.
    frame = browser.session.get(stack.url(f"/login/{started.transaction_id}/qr"), timeout=10)
    assert frame.status_code == 200
    content = frame.json()["content"]
    assert content.startswith(stack.issuer)
    phone = stack.session()
    picked = phone.post(stack.url("/device/v1/pickup"), json={"qr": content}, timeout=10)
    assert picked.status_code == 200, picked.text
    pickup_seen = time.monotonic()
    event = events.get(timeout=10)
    assert event is not None and event["state"] == "picked_up"
    assert event["received"] - pickup_seen < 5  # streamed, not held back by the proxy
    handoff_url = picked.json()["handoff_url"]
    assert handoff_url.startswith(stack.issuer + "/device/v1/transactions/")

    outcome = virtual_device_login(handoff_url, stack.login_pki, "yamada")
    assert outcome.status == "verified"
    seen = []
    while (next_state := _next_state(events)) is not None:
        seen.append(next_state)
    assert seen[-1] == "card_verified", seen
    reader.join(timeout=5)
    stream.close()

    callback = browser.finish(started)
    params = parse_qs(urlsplit(callback).query)
    assert callback.startswith(REDIRECT_URI)
    assert params["iss"] == [stack.issuer] and params["state"] == [state]
    code = params["code"][0]

    now = int(time.time())
    assertion = jwt.encode(
        {"alg": "ES256", "kid": "rp-1"},
        {
            "iss": CLIENT_ID,
            "sub": CLIENT_ID,
            "aud": stack.issuer + "/token",
            "iat": now,
            "exp": now + 60,
            "jti": secrets.token_urlsafe(16),
        },
        stack.client_key,
    )
    token = stack.session().post(
        stack.url("/token"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
        timeout=10,
    )
    assert token.status_code == 200, token.text
    assert token.headers["Cache-Control"] == "no-store"
    tokens = token.json()
    userinfo = stack.session().get(
        stack.url("/userinfo"),
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=10,
    )
    assert userinfo.status_code == 200 and userinfo.json()["name"] == "山田　太郎"

    # Nothing of this login in any log of the stack.
    secret_values = {
        "code": code,
        "state": state,
        "nonce": nonce,
        "verifier": verifier,
        "challenge": challenge,
        "assertion": assertion,
        "access token": tokens["access_token"],
        "id token": tokens["id_token"],
        "name": "山田",
        "transaction id": started.transaction_id,
        "handoff id": handoff_url.rsplit("/", 1)[1],
        "QR frame": urlsplit(content).path.rsplit("/", 1)[1],
    }
    time.sleep(0.2)  # let the access logs reach their files
    logs = {
        "gunicorn": stack.gunicorn.output(),
        "nginx access": (stack.directory / "access.log").read_text(),
    }
    for where, text in logs.items():
        for what, value in secret_values.items():
            assert value not in text, f"{what} in the {where} log"
    lines = [json.loads(line) for line in logs["gunicorn"].splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "idp.access"]
    assert any(line["endpoint"] == "oidc.token" and line["status"] == 200 for line in access)
    assert all(re.fullmatch(r"[0-9a-f]{32}", line["request_id"]) for line in access)
    assert '"GET /authorize HTTP/1.1" 303' in logs["nginx access"]
    assert '"GET /login/-/events HTTP/1.1" 200' in logs["nginx access"]
    assert '"POST /device/v1/transactions/-/response HTTP/1.1" 200' in logs["nginx access"]
    assert any(line["path"] == "/login/<transaction_id>/events" for line in access)


def _status(port: int, path: str, source: str, ca: Path) -> int:
    context = ssl.create_default_context(cafile=str(ca))
    connection = http.client.HTTPSConnection(
        "127.0.0.1", port, source_address=(source, 0), context=context, timeout=10
    )
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


def test_probes_and_metrics_only_for_the_monitoring_network(stack: Stack) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert _status(stack.https_port, path, "127.0.0.1", stack.ca) == 200, path
        assert _status(stack.https_port, path, "127.0.0.2", stack.ca) == 403, path
    ready = stack.session().get(stack.url("/readyz"), timeout=10).json()
    assert ready["status"] == "ready", ready


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_add_up_every_worker(stack: Stack) -> None:
    session = stack.session()
    labels = {"endpoint": "oidc.jwks", "method": "GET", "status": "200"}
    first = session.get(stack.url("/metrics"), timeout=10).text
    before = _metric(first, "myna_http_requests_total", **labels)
    for _ in range(40):
        # A new connection to nginx each time; nginx spreads them over its upstream connections.
        response = requests.get(stack.url("/jwks.json"), verify=str(stack.ca), timeout=10)
        assert response.status_code == 200
    text = session.get(stack.url("/metrics"), timeout=10).text
    assert _metric(text, "myna_http_requests_total", **labels) == before + 40
    # The multiprocess collector answered (the per-process default collectors are absent).
    assert "python_gc_objects_collected_total" not in text
    assert "myna_http_request_duration_seconds_bucket" in text
