"""Logs: request ids, JSON lines, and nothing secret or personal, ever."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography.hazmat.primitives.serialization import Encoding
from flask import Flask
from login_support import (
    LiveServer,
    LoginPki,
    dispose,
    full_login,
    make_login_app,
    virtual_card,
)
from provider_support import RelyingParty

from idp.handoff.device_client import FixedPrompts
from idp.ops.logs import JsonFormatter
from idp.ops.redaction import MASK, RedactingFilter, redact

CERT_B64 = (
    "MIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJRTESMBAGA1UEChMJQmFs"
    "dGltb3JlMRMwEQYDVQQLEwpDeWJlclRydXN0MSIwIAYDVQQDExlCYWx0aW1vcmUgQ3liZXJUcnVzdCBSb290"
)
JWT = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhYmMiLCJub25jZSI6Im4ifQ.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("verify pin=1234", "1234"),
        ("PIN: 4321 entered", "4321"),
        ('{"pin": "9876"}', "9876"),
        ("sign_password=ABC123", "ABC123"),
        ("APDU 00 20 00 81 04 31 32 33 34", "31 32 33 34"),
        ("APDU 0020008104313233343536", "31323334"),
        (f"certificate {CERT_B64}", CERT_B64[:40]),
        (f"-----BEGIN CERTIFICATE-----\n{CERT_B64}\n-----END CERTIFICATE-----", CERT_B64[:20]),
        ("der 30820122300d06092a864886f70d01010105000382010f003082010a0282010100c3", "3082"),
        (f"id_token {JWT}", JWT[:30]),
        (f"Authorization: Bearer {'Ab3' * 15}", "Ab3Ab3"),
        ("Authorization: Basic ZGVtby1ycDpzZWNyZXQ=", "ZGVtby1ycDpzZWNyZXQ"),
        ("GET /callback?code=SplxlOBeZQQYbYS6WxSbIA&state=af0ifjsldkj", "SplxlOBeZQQYbYS6WxSbIA"),
        ("GET /callback?code=SplxlOBeZQQYbYS6WxSbIA&state=af0ifjsldkj", "af0ifjsldkj"),
        ("code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "dBjftJeZ4CVP"),
        ("client_assertion=abc.def.ghi", "abc.def.ghi"),
        ("access_token=2YotnFZFEjr1zCsicMWpAA", "2YotnFZFEjr1zCsicMWpAA"),
        ("token 2YotnFZFEjr1zCsicMWpAA2YotnFZFEjr1zCsicMWpAA", "2YotnFZFEjr1zCsicMWpAA"),
        ("nonce=n-0S6_WzA2Mj", "n-0S6_WzA2Mj"),
        ("resident 山田　太郎", "山田"),
        ("address 石川県加賀市大聖寺南町ニ４１番地", "加賀市"),
        ("ﾔﾏﾀﾞ ﾀﾛｳ", "ﾔﾏﾀﾞ"),
        ("Basic4(name='Yamada Taro', address='Kaga', birthdate=datetime.date(1985, 4, 1))", "1985"),
        ("Basic4(name='Yamada Taro', address='Kaga')", "Yamada"),
        ('{"birthdate": "1985-04-01", "gender": "male"}', "1985-04-01"),
        ('{"birthdate": "1985-04-01", "gender": "male"}', "male"),
        ("number 123456789012 read", "123456789012"),
        ("number 1234-5678-9012 read", "5678"),
        ("sub=b3JnYW5pc2F0aW9u", "b3JnYW5pc2F0aW9u"),
    ],
)
def test_redact_removes(text: str, secret: str) -> None:
    redacted = redact(text)
    assert secret not in redacted, redacted
    assert MASK in redacted


@pytest.mark.parametrize(
    "text",
    [
        "login abcdefgh failed: certificate_revoked",
        "ephemeral store unavailable: Redis failed: ConnectionError",
        "database unavailable: OperationalError",
        "POST /device/v1/pickup 429 3.2ms",
        'File "/usr/lib/python3.11/site-packages/authlib/oauth2/rfc6749/authorization_server.py"',
        "OAuth2AuthorizationServer refused the request: invalid_client",
        "CRL past nextUpdate for 2 anchor(s) at 2025-01-01T00:00:00Z",
        "Running upgrade 0001 -> 0002, DPoP required, resource server",
        "card connected to vpcd on 127.0.0.1:35963",
    ],
)
def test_redact_keeps_what_operators_need(text: str) -> None:
    assert redact(text) == text


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def handler() -> Iterator[ListHandler]:
    handler = ListHandler()
    logger = logging.getLogger("tests.ops.filter")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield handler
    logger.removeHandler(handler)


def test_the_filter_redacts_message_arguments_and_traceback(handler: ListHandler) -> None:
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("tests.ops.filter")
    try:
        raise ValueError(f"bad token {JWT}")
    except ValueError:
        logger.exception("pin=%s for %s with %s", "2580", "山田　太郎", CERT_B64)
    [record] = handler.records
    formatted = logging.Formatter("%(message)s").format(record)
    assert "2580" not in formatted and "山田" not in formatted and CERT_B64[:30] not in formatted
    assert JWT[:30] not in formatted
    assert "ValueError: bad token [redacted]" in formatted
    assert "pin=[redacted] for [redacted] with [redacted]" in formatted


def test_json_lines(handler: ListHandler) -> None:
    logger = logging.getLogger("tests.ops.filter")
    logger.warning("card %s refused", CERT_B64, extra={"endpoint": "device.post_response"})
    line = JsonFormatter().format(handler.records[-1])
    document = json.loads(line)
    assert document["level"] == "WARNING"
    assert document["logger"] == "tests.ops.filter"
    assert document["message"] == "card [redacted] refused"
    assert document["endpoint"] == "device.post_response"
    assert document["ts"].endswith("+00:00")
    assert "\n" not in line


@pytest.mark.redis
def test_every_record_is_redacted_once_an_app_exists(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    """The record factory: any logger, any handler (here pytest's), not only ours."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("some.library").info("sent Authorization: Bearer %s", "Zz9" * 15)
    assert "Zz9Zz9" not in caplog.text
    assert "sent Authorization: [redacted]" in caplog.text


@pytest.mark.redis
class TestRequestIds:
    def test_generated_and_echoed(self, app: Flask) -> None:
        first = app.test_client().get("/healthz").headers["X-Request-ID"]
        second = app.test_client().get("/healthz").headers["X-Request-ID"]
        assert len(first) == 22 and first != second

    def test_a_well_formed_id_is_kept(self, app: Flask) -> None:
        offered = "lb-7f3a.9c_01"
        response = app.test_client().get("/healthz", headers={"X-Request-ID": offered})
        assert response.headers["X-Request-ID"] == offered

    @pytest.mark.parametrize(
        "offered", ["a" * 65, "has space", "semi;colon", "日本語", "", "a\tb", "<script>"]
    )
    def test_a_malformed_id_is_replaced(self, app: Flask, offered: str) -> None:
        response = app.test_client().get("/healthz", headers={"X-Request-ID": offered})
        echoed = response.headers["X-Request-ID"]
        assert echoed != offered and len(echoed) == 22

    def test_records_made_in_a_request_carry_its_id(
        self, app: Flask, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO, logger="idp.access")
        response = app.test_client().get("/no/such/page", headers={"X-Request-ID": "req-42"})
        assert response.status_code == 404
        [record] = [r for r in caplog.records if r.name == "idp.access"]
        assert record.request_id == "req-42"  # type: ignore[attr-defined]
        assert record.getMessage().startswith("GET /no/such/page 404 ")
        document = json.loads(JsonFormatter().format(record))
        assert document["request_id"] == "req-42"
        assert document["status"] == 404 and document["endpoint"] == "unmatched"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.redis
def test_a_real_login_leaves_no_secret_in_the_logs(
    app: Flask, login_pki: LoginPki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    leaked: dict[str, str] = {}

    @app.get("/test/leak")
    def leak() -> str:
        log = logging.getLogger("idp.test")
        log.info("tokens %s %s code=%s", leaked["access_token"], leaked["id_token"], "c0de")
        try:
            raise RuntimeError(f"failed with assertion {leaked['assertion']}")
        except RuntimeError:
            log.exception("resident %s born %s", "山田　太郎", "birthdate=1985-04-01")
        return "ok"

    rp = RelyingParty(app)
    credentials = login_pki.credentials("yamada")
    _, card = virtual_card(login_pki, credentials, pin="8642", sign_password="XYZ789")
    request, params, _ = full_login(
        rp, card, prompts=FixedPrompts(pin="8642", sign_password="XYZ789")
    )
    code = params["code"][0]
    assertion = rp.assertion()
    response = rp.token_request(code, request.verifier, assertion=assertion)
    assert response.status_code == 200
    tokens = response.get_json()
    userinfo = rp.userinfo(tokens["access_token"]).get_json()
    assert userinfo["name"] == "山田　太郎"
    leaked.update(access_token=tokens["access_token"], id_token=tokens["id_token"])
    leaked["assertion"] = assertion
    assert app.test_client().get("/test/leak").status_code == 200

    secrets = {
        "PIN": "8642",
        "signature password": "XYZ789",
        "code": code,
        "state": request.state,
        "nonce": request.params["nonce"],
        "code_verifier": request.verifier,
        "code_challenge": request.params["code_challenge"],
        "client assertion": assertion,
        "access token": tokens["access_token"],
        "id token": tokens["id_token"],
        "certificate": _b64(credentials.auth_certificate.public_bytes(Encoding.DER))[:60],
        "sign certificate": _b64(credentials.sign_certificate.public_bytes(Encoding.DER))[:60],  # type: ignore[union-attr]
        "name": "山田",
        "address": "加賀市",
        "birthdate": "1985-04-01",
        "sub": userinfo["sub"],
    }
    assert caplog.records, "the flow logged nothing at all"
    assert any(r.name == "idp.access" for r in caplog.records)
    outputs = [caplog.text] + [JsonFormatter().format(r) for r in caplog.records]
    for what, value in secrets.items():
        for output in outputs:
            assert value not in output, f"{what} reached the log: {output[:300]}"


@pytest.mark.redis
def test_the_http_server_request_line_is_redacted(
    tmp_path: Path, redis_url: str, login_pki: LoginPki
) -> None:
    """werkzeug's own access log prints the query string; the record factory cleans it."""
    server = LiveServer(
        lambda issuer: make_login_app(
            f"sqlite:///{tmp_path / 'idp.sqlite3'}", redis_url, login_pki, ISSUER=issuer
        )
    )
    handler = ListHandler()
    werkzeug_log = logging.getLogger("werkzeug")
    werkzeug_log.addHandler(handler)
    level = werkzeug_log.level
    werkzeug_log.setLevel(logging.INFO)
    try:
        rp = RelyingParty(server.app)
        request = rp.authorization_request()
        query: dict[str, Any] = dict(request.params)
        response = requests.get(
            server.url + "/authorize", params=query, allow_redirects=False, timeout=10
        )
        assert response.status_code == 303
    finally:
        werkzeug_log.removeHandler(handler)
        werkzeug_log.setLevel(level)
        server.stop()
        dispose(server.app)
    lines = [r.getMessage() for r in handler.records]
    assert any("/authorize?" in line and "client_id=" in line for line in lines), lines
    for line in lines:
        for value in (request.state, request.params["nonce"], request.params["code_challenge"]):
            assert value not in line, line
