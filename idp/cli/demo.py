"""``idp demo``: the whole login on one machine, without root, a card reader or a compiler.

TEST ONLY. It prepares ``var/demo`` (secrets, an SQLite database, an embedded Redis, the demo
relying party's key) and the test PKI in ``var/test-pki`` (CAs, a certificate pair for every
test resident, CRLs), registers the demo relying party, enrolls 山田　太郎 so that his login
needs PIN1 only (the others enroll on their first login, with the signature password), then runs
the provider (``--idp-port``, default 5000), the demo relying party (``--rp-port``, 5001, a
separate process that only talks HTTP to the provider) and the phone simulator
(``--phone-port``, 5002, ``python -m phone_simulator``: a separate process on the public device
API only) until Ctrl-C.

The card step: click the QR code on the login page (demo only: it opens the phone simulator
with the current frame), or complete the handoff URL with the virtual card of a test resident,
in process (the same APDUs and the same JPKI client as with a reader)::

    idp card login --virtual yamada <handoff URL>     # PIN 1234 (signature password ABC123)
"""

from __future__ import annotations

import hashlib
import json
import secrets
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Final

import click
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from idp.card import oids
from idp.card.certs import parse_basic4
from idp.card.testpki import RESIDENTS, TestPki

if TYPE_CHECKING:  # the web stack is imported when the command runs, not with the CLI
    from flask import Flask

    from idp.storage.residents import CertificateFacts

DEMO_CLIENT_ID: Final = "demo-rp"
DEFAULT_VAR: Final = Path("var/demo")
DEFAULT_PKI: Final = Path("var/test-pki")
PRE_ENROLLED: Final = ("yamada",)
DEMO_SCOPES: Final = ("name", "address", "birthdate", "gender", "sign")
"""The demo relying party (the forms tool) signs applications: it is registered for ``sign``."""


def _secrets(var: Path) -> dict[str, str]:
    path = var / "secrets.json"
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8"))
        assert isinstance(data, dict)
        return {str(k): str(v) for k, v in data.items()}
    data = {
        "idp_secret_key": secrets.token_urlsafe(48),
        "idp_pairwise_secret": secrets.token_urlsafe(48),
        "rp_secret_key": secrets.token_urlsafe(48),
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    path.chmod(0o600)
    return data


def _test_pki(pki_dir: Path, var: Path) -> tuple[TestPki, list[Path]]:
    pki = TestPki.load_or_generate(pki_dir)
    for resident in RESIDENTS.values():
        pki.issue(resident)
    pki.save(pki_dir)
    now = datetime.now(UTC)
    crls = []
    for kind in ("auth", "sign"):
        crl = pki.crl(
            kind,
            this_update=now - timedelta(minutes=1),
            next_update=now + timedelta(days=7),
        )
        path = var / f"{kind}.crl.pem"
        path.write_bytes(crl.public_bytes(Encoding.PEM))
        crls.append(path.resolve())
    return pki, crls


def _rp_key(var: Path) -> dict[str, Any]:
    from joserfc.jwk import ECKey, KeySet

    private = var / "rp-key.json"
    if not private.exists():
        key = ECKey.generate_key("P-256", parameters={"kid": "demo-rp-1"}, private=True)
        private.write_text(json.dumps(key.as_dict(private=True)), encoding="utf-8")
        private.chmod(0o600)
    key = ECKey.import_key(json.loads(private.read_text(encoding="utf-8")))
    return dict(KeySet([key]).as_dict(private=False))


def _facts(
    certificate: x509.Certificate, issuer: x509.Certificate, policy: str
) -> CertificateFacts:
    from idp.storage.residents import CertificateFacts

    return CertificateFacts(
        sha256_hex=hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest(),
        issuer=issuer.subject.rfc4514_string(),
        serial_hex=f"{certificate.serial_number:x}",
        not_after=certificate.not_valid_after_utc,
        policy_oid=policy,
    )


def _pre_enroll(pki: TestPki, key: str) -> None:
    """Store a test resident as if their card had enrolled (the test PKI is trusted here)."""
    from idp.storage.residents import (
        Basic4Record,
        enroll_resident,
        find_resident_by_auth_certificate,
    )

    creds = pki.issue(RESIDENTS[key])
    auth = _facts(creds.auth_certificate, pki.auth_ca.certificate, oids.AUTH_POLICY)
    if find_resident_by_auth_certificate(auth.sha256_hex) is not None:
        return
    assert creds.sign_certificate is not None
    basic4 = parse_basic4(creds.sign_certificate)
    enroll_resident(
        basic4=Basic4Record(
            name=basic4.name,
            address=basic4.address,
            birthdate=basic4.birthdate,
            gender=basic4.gender,
            sex_code=basic4.sex_code,
            name_substitution=basic4.name_substitution,
            address_substitution=basic4.address_substitution,
        ),
        auth_certificate=auth,
        sign_certificate=_facts(creds.sign_certificate, pki.sign_ca.certificate, oids.SIGN_POLICY),
        verified_at=datetime.now(UTC),
    )


def _seed(app: Flask, pki: TestPki, jwks: dict[str, Any], rp_url: str) -> None:
    from flask_migrate import upgrade

    from idp.extensions import MIGRATIONS_DIR
    from idp.oidc.clients import new_client
    from idp.storage.clients import add_client, get_client, remove_client

    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR))
        redirect_uri = f"{rp_url}/callback"
        signed_out = f"{rp_url}/signed-out"
        backchannel = f"{rp_url}/backchannel-logout"
        existing = get_client(DEMO_CLIENT_ID)
        if existing is not None and (
            existing.redirect_uris != [redirect_uri]
            or existing.post_logout_redirect_uris != [signed_out]
            or existing.backchannel_logout_uri != backchannel
            or existing.jwks != jwks
            or set(existing.allowed_scopes) != set(DEMO_SCOPES)
        ):
            remove_client(DEMO_CLIENT_ID)
            existing = None
        if existing is None:
            created = new_client(
                name="加賀市 電子申請（デモ）",
                name_en="Kaga City e-Application (demo)",
                redirect_uris=[redirect_uri],
                auth_method="private_key_jwt",
                jwks=jwks,
                scopes=DEMO_SCOPES,
                client_id=DEMO_CLIENT_ID,
                post_logout_redirect_uris=[signed_out],
                backchannel_logout_uri=backchannel,
                backchannel_logout_session_required=True,
            )
            add_client(created.client)
        for key in PRE_ENROLLED:
            _pre_enroll(pki, key)


BANNER = """
================================================================================
 myna-idp demo (TEST ONLY: test CAs, virtual cards, development servers)
================================================================================
 Relying party (加賀市 電子申請 デモ):  {rp}/
 Identity provider (issuer):           {idp}
   discovery: {idp}/.well-known/openid-configuration
 Phone simulator (the resident's phone): {phone}/

 1. Open {rp}/ and press 「マイナンバーカードでログイン」.
 2. With the phone: click the QR code on the login page. The phone simulator opens
    with that frame, shows who is asking and the verification code; choose a test
    resident's card there, enter the PIN on its PIN pad.
    Or with the desktop agent: the login page also shows a command
    `idp card login <handoff URL>`. Run it with a virtual card instead of a reader:

      .venv/bin/idp card login --virtual yamada <handoff URL>

    yamada (山田　太郎) is enrolled: PIN1 only.
    suzuki, takahashi, ito, tanaka: first login also asks the signature password.
    kobayashi is 9 years old: no signature certificate, so no enrollment.

    Test PIN (利用者証明用暗証番号): 1234
    Test signature password (署名用パスワード): ABC123
 3. Back in the browser: consent, and the relying party shows the verified claims.

 The forms tool (電子申請フォーム): {rp}/forms -> 人間ドック助成金申請. Sign in with the
 card, the identity block fills itself; fill in the rest, review, 「カードで署名して提出」:
 the phone shows the text, enter the signature password ABC123. Staff: {rp}/staff
 (submissions, .p7s downloads, CSV).

 Ctrl-C stops the servers. Data: {var}  Test PKI: {pki}
================================================================================
"""


@click.command()
@click.option("--idp-port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--rp-port", default=5001, show_default=True, type=click.IntRange(1, 65535))
@click.option("--phone-port", default=5002, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--var-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_VAR,
    show_default=True,
)
@click.option(
    "--pki-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_PKI,
    show_default=True,
)
@click.option("--setup-only", is_flag=True, help="Prepare and seed, then exit (no servers).")
def demo(
    idp_port: int, rp_port: int, phone_port: int, var_dir: Path, pki_dir: Path, setup_only: bool
) -> None:
    """Run the local demo: the provider, the demo relying party and test residents (TEST ONLY)."""
    from werkzeug.serving import make_server

    from idp.app import create_app

    var = var_dir.resolve()
    var.mkdir(parents=True, exist_ok=True)
    idp_url = f"http://127.0.0.1:{idp_port}"
    rp_url = f"http://127.0.0.1:{rp_port}"
    phone_url = f"http://127.0.0.1:{phone_port}"
    keys = _secrets(var)
    pki, crls = _test_pki(pki_dir, var)
    jwks = _rp_key(var)
    pki_abs = pki_dir.resolve()
    app = create_app(
        {
            "ISSUER": idp_url,
            "SECRET_KEY": keys["idp_secret_key"],
            "PAIRWISE_SECRET": keys["idp_pairwise_secret"],
            "DATABASE_URL": f"sqlite:///{var / 'idp.sqlite3'}",
            "REDIS_EMBEDDED_PATH": str(var / "redis.db"),
            "JPKI_AUTH_ANCHORS": [str(pki_abs / "auth-ca.pem")],
            "JPKI_SIGN_ANCHORS": [str(pki_abs / "sign-ca.pem")],
            "JPKI_CRL_FILES": [str(path) for path in crls],
            "DEMO_VIRTUAL_CARD": True,
            "DEMO_PHONE_URL": phone_url,
        }
    )
    _seed(app, pki, jwks, rp_url)
    rp_config = var / "rp-config.json"
    rp_config.write_text(
        json.dumps(
            {
                "ISSUER": idp_url,
                "CLIENT_ID": DEMO_CLIENT_ID,
                "KEY_FILE": str(var / "rp-key.json"),
                "REDIRECT_URI": f"{rp_url}/callback",
                "SECRET_KEY": keys["rp_secret_key"],
                "FORMS_DB": str(var / "forms.sqlite3"),
                "SIGN_CA_FILE": str(pki_abs / "sign-ca.pem"),
            }
        ),
        encoding="utf-8",
    )
    rp_config.chmod(0o600)
    if setup_only:
        click.echo(f"demo prepared in {var} (test PKI in {pki_abs})")
        return

    server = make_server("127.0.0.1", idp_port, app, threaded=True)
    rp = subprocess.Popen(  # noqa: S603 (our own module, fixed arguments)
        [
            sys.executable,
            "-m",
            "relying_party_demo",
            "serve",
            "--port",
            str(rp_port),
            "--config",
            str(rp_config),
        ]
    )
    phone = subprocess.Popen(  # noqa: S603 (our own module, fixed arguments)
        [
            sys.executable,
            "-m",
            "phone_simulator",
            "serve",
            "--port",
            str(phone_port),
            "--provider",
            idp_url,
            "--pki-dir",
            str(pki_abs),
        ]
    )
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    click.echo(
        BANNER.format(rp=rp_url, idp=idp_url, phone=phone_url, var=var, pki=pki_abs), err=True
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
        for child in (rp, phone):
            child.terminate()
        for child in (rp, phone):
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("demo stopped", err=True)
