"""A strict third-party relying party: ``openid-client`` (npm) against a live provider.

The Node RP discovers the provider, sends the browser with PKCE S256, state and nonce,
redeems the code with ``private_key_jwt`` and verifies the ID token's signature (non-repudiation
checks on), ``iss``, ``aud``, ``nonce`` and the RFC 9207 ``iss`` of the callback; then reads
userinfo. ``npm ci`` installs the locked dependencies on first use.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from joserfc.jwk import ECKey, KeySet
from login_support import HttpBrowser, LiveServer, LoginPki, register_client, virtual_device_login
from node_process import NodeProcess

pytestmark = pytest.mark.node

NODE_DIR = Path(__file__).parent / "node"
REDIRECT_URI = "http://127.0.0.1:5002/callback"
CLIENT_ID = "node-rp"


@pytest.fixture(scope="session")
def node_rp(node_path: str) -> Path:
    """tests/rp/node with its locked dependencies installed."""
    if not (NODE_DIR / "node_modules" / "openid-client").is_dir():
        npm = shutil.which("npm") or str(Path(node_path).with_name("npm"))
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300
        )
    return NODE_DIR / "rp.mjs"


class NodeRp(NodeProcess):
    def __init__(self, node_path: str, script: Path, issuer: str, key_file: Path) -> None:
        args = [node_path, str(script), issuer, CLIENT_ID, REDIRECT_URI, str(key_file)]
        super().__init__(args, timeout=30)


@pytest.fixture
def key_file(live: LiveServer, tmp_path: Path) -> Path:
    key = ECKey.generate_key("P-256", parameters={"kid": "node-rp-1"}, private=True)
    path = tmp_path / "node-rp-key.json"
    path.write_text(json.dumps(key.as_dict(private=True)))
    register_client(
        live.app,
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        jwks=KeySet([key]).as_dict(private=False),
        name="清瀬市 電子申請",
    )
    return path


@pytest.fixture
def node(node_path: str, node_rp: Path, live: LiveServer, key_file: Path) -> Iterator[NodeRp]:
    rp = NodeRp(node_path, node_rp, live.url, key_file)
    yield rp
    rp.close()


def resident_login(authorization_url: str, login_pki: LoginPki) -> str:
    browser = HttpBrowser()
    started = browser.start(authorization_url)
    virtual_device_login(started.handoff_url, login_pki, "suzuki")
    return browser.finish(started)


def test_openid_client_full_flow(node: NodeRp, live: LiveServer, login_pki: LoginPki) -> None:
    start = node.read()
    url = start["authorization_url"]
    params = parse_qs(urlsplit(url).query)
    assert params["code_challenge_method"] == ["S256"]
    callback = resident_login(url, login_pki)
    assert callback.startswith(REDIRECT_URI + "?")
    answer = node.callback(callback)
    assert "error" not in answer, answer
    assert node.process.returncode == 0
    claims, userinfo = answer["claims"], answer["userinfo"]
    assert claims["iss"] == live.url and claims["aud"] == CLIENT_ID
    assert claims["amr"] == ["hwk", "sc", "pin", "mfa"]
    assert claims["acr"] == "urn:myna-idp:acr:jpki-card-pin"
    assert userinfo["sub"] == claims["sub"]
    assert userinfo["name"] == "鈴木　花子" and userinfo["birthdate"] == "1952-11-20"
    assert userinfo["gender"] == "female"
    assert userinfo["address"]["formatted"].startswith("石川県加賀市山中温泉")


def test_openid_client_rejects_a_wrong_iss_in_the_callback(
    node: NodeRp, login_pki: LoginPki
) -> None:
    callback = resident_login(node.read()["authorization_url"], login_pki)
    parts = urlsplit(callback)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    params["iss"] = "https://evil.example"
    answer = node.callback(f"{REDIRECT_URI}?{urlencode(params)}")
    assert node.process.returncode == 1
    assert answer["code"] == "OAUTH_INVALID_RESPONSE", answer
    assert '"iss"' in (answer["cause"] or ""), answer
