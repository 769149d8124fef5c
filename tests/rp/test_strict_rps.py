"""Strict third-party relying parties complete every protocol flow against a live provider.

``tests/rp/node/strict.mjs`` runs the same sequence through ``oauth4webapi`` (strict by
design) and through ``openid-client`` (non-repudiation checks on: ID token signatures verified
against the JWKS): a signed request object pushed with PAR (PKCE S256, state, nonce, the
``claims`` parameter asking for ``verified_claims``, a DPoP key), the resident's card login
with consent, the code grant with ``private_key_jwt`` and DPoP (ID token ``iss``/``aud``/
``nonce`` and the RFC 9207 ``iss`` checked by the library), userinfo with a DPoP proof,
refresh with rotation, introspection by a resource-server client, revocation, and the replay
of a rotated refresh token. The client requires PAR, signed request objects and DPoP, so a
flow that skipped any of them would fail here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from joserfc.jwk import ECKey, KeySet
from login_support import HttpBrowser, LiveServer, LoginPki, virtual_device_login
from node_process import NodeProcess

pytestmark = pytest.mark.node

NODE_DIR = Path(__file__).parent / "node"
REDIRECT_URI = "http://127.0.0.1:5003/strict/callback"
CLIENT_ID = "strict-rp"
RS_CLIENT_ID = "strict-api"
SCOPE = "openid name birthdate offline_access"
CLAIMS = {
    "userinfo": {
        "verified_claims": {
            "verification": {
                "trust_framework": None,
                "time": None,
                "evidence": [{"type": {"value": "electronic_signature"}}],
            },
            "claims": {"name": None, "birthdate": {"essential": True}},
        }
    }
}


@pytest.fixture(scope="session")
def node_dir(node_path: str) -> Path:
    """tests/rp/node with its locked dependencies installed."""
    if not (NODE_DIR / "node_modules" / "oauth4webapi").is_dir():
        npm = shutil.which("npm") or str(Path(node_path).with_name("npm"))
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300
        )
    return NODE_DIR


@pytest.fixture
def config_file(live: LiveServer, tmp_path: Path) -> Path:
    """The strict client (PAR, signed request objects and DPoP required) and a resource
    server registered on the live provider; the RP's configuration file."""
    from idp.oidc.clients import new_client
    from idp.storage.clients import add_client

    key = ECKey.generate_key("P-256", parameters={"kid": "strict-rp-1"}, private=True)
    with live.app.app_context():
        created = new_client(
            name="加賀市 電子申請（厳格）",
            redirect_uris=[REDIRECT_URI],
            auth_method="private_key_jwt",
            jwks=dict(KeySet([key]).as_dict(private=False)),
            scopes=("name", "birthdate", "offline_access"),
            client_id=CLIENT_ID,
            require_pushed_authorization_requests=True,
            require_signed_request_object=True,
            dpop_bound_access_tokens=True,
        )
        add_client(created.client)
        api = new_client(
            name="加賀市 API",
            redirect_uris=["https://api.kaga.example.jp/unused"],
            auth_method="client_secret_basic",
            client_id=RS_CLIENT_ID,
            resource_server=True,
        )
        add_client(api.client)
    path = tmp_path / "strict-rp.json"
    path.write_text(
        json.dumps(
            {
                "issuer": live.url,
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "jwk": key.as_dict(private=True),
                "rs_client_id": RS_CLIENT_ID,
                "rs_secret": api.client_secret,
                "scope": SCOPE,
                "claims": CLAIMS,
            }
        )
    )
    return path


class StrictRp(NodeProcess):
    def __init__(self, node_path: str, node_dir: Path, lib: str, config: Path) -> None:
        super().__init__([node_path, str(node_dir / "strict.mjs"), lib, str(config)])


@pytest.fixture(params=["oauth4webapi", "openid-client"])
def strict_rp(
    request: pytest.FixtureRequest, node_path: str, node_dir: Path, config_file: Path
) -> Iterator[StrictRp]:
    rp = StrictRp(node_path, node_dir, request.param, config_file)
    yield rp
    rp.close()


def test_every_flow_through_a_strict_rp(
    strict_rp: StrictRp, live: LiveServer, login_pki: LoginPki
) -> None:
    start = strict_rp.read()
    assert "error" not in start, start
    url = start["authorization_url"]
    assert url.startswith(live.url + "/authorize?") and "request_uri=" in url
    browser = HttpBrowser()
    started = browser.start(url)
    virtual_device_login(started.handoff_url, login_pki, "yamada")
    callback = browser.finish(started)
    assert callback.startswith(REDIRECT_URI + "?")

    result = strict_rp.callback(callback)
    assert "error" not in result, result
    assert strict_rp.process.returncode == 0

    claims = result["claims"]
    assert claims["iss"] == live.url and claims["aud"] == CLIENT_ID
    assert result["token_type"].lower() == "dpop"
    verified = result["userinfo"]["verified_claims"]
    assert verified["verification"]["trust_framework"] == "jp_jpki"
    assert verified["verification"]["evidence"][0]["type"] == "electronic_signature"
    assert verified["claims"]["birthdate"] and verified["claims"]["name"]
    assert result["userinfo"]["sub"] == claims["sub"]
    assert result["userinfo_after_refresh"]["sub"] == claims["sub"]

    assert result["rotated"] is True
    assert result["refreshed_token_type"].lower() == "dpop"
    introspected = result["introspected"]
    assert introspected["active"] is True and introspected["client_id"] == CLIENT_ID
    assert introspected["token_type"] == "DPoP" and "jkt" in introspected["cnf"]
    assert result["refresh_active_after_revocation"] is False
    assert result["replay_error"] == "invalid_grant"
