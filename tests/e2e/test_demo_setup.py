"""``idp demo --setup-only``: prepares var/ and seeds the database, twice without harm."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import create_engine, text

from idp.cli import main


def test_demo_setup_is_repeatable(tmp_path: Path) -> None:
    var, pki = tmp_path / "demo", tmp_path / "pki"
    args = ["demo", "--setup-only", "--var-dir", str(var), "--pki-dir", str(pki)]
    for _ in range(2):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
    for name in ("auth-ca.pem", "sign-ca.pem", "residents/yamada.good.auth.pem"):
        assert (pki / name).is_file()
    for name in ("auth.crl.pem", "sign.crl.pem", "rp-key.json", "secrets.json", "rp-config.json"):
        assert (var / name).is_file()
    config = json.loads((var / "rp-config.json").read_text())
    assert config["CLIENT_ID"] == "demo-rp" and config["ISSUER"] == "http://127.0.0.1:5000"
    engine = create_engine(f"sqlite:///{var / 'idp.sqlite3'}")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM clients")).scalar() == 1
        assert connection.execute(text("SELECT name FROM residents")).scalars().all() == [
            "山田　太郎"
        ]
        assert connection.execute(text("SELECT count(*) FROM card_credentials")).scalar() == 2
    engine.dispose()
