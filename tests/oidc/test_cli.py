"""``idp db upgrade`` and ``idp clients ...`` (``idp keys``: tests/cli/test_keys_cli.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from flask import Flask
from joserfc.jwk import ECKey, KeySet

from idp.cli import main
from idp.storage.clients import get_client


@pytest.fixture
def run(app: Flask, db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``idp ...`` against the test database (the ``app`` fixture emptied it)."""
    monkeypatch.setenv("IDP_ISSUER", "http://localhost:5000")
    monkeypatch.setenv("IDP_SECRET_KEY", "c" * 40)
    monkeypatch.setenv("IDP_PAIRWISE_SECRET", "d" * 40)
    monkeypatch.setenv("IDP_DATABASE_URL", db_url)
    monkeypatch.setenv("IDP_REDIS_URL", redis_url)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_db_upgrade_is_idempotent(run) -> None:  # type: ignore[no-untyped-def]
    result = run("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "database at head" in result.output


def test_add_list_remove_clients(run, app: Flask, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    jwks_file = tmp_path / "rp.jwks.json"
    key = ECKey.generate_key("P-256", private=True)
    jwks_file.write_text(json.dumps(KeySet([key]).as_dict(private=False)))

    result = run(
        "clients",
        "add",
        "--name",
        "加賀市 電子申請",
        "--redirect-uri",
        "https://forms.kaga.example.jp/callback",
        "--auth-method",
        "private_key_jwt",
        "--jwks-file",
        str(jwks_file),
        "--alg",
        "PS256",
        "--client-id",
        "kaga-forms",
        "--scope",
        "name",
        "--scope",
        "birthdate",
    )
    assert result.exit_code == 0, result.output
    assert "client_id: kaga-forms" in result.output
    assert "client_secret" not in result.output

    result = run(
        "clients",
        "add",
        "--name",
        "legacy",
        "--redirect-uri",
        "https://legacy.example.jp/cb",
        "--auth-method",
        "client_secret_basic",
        "--client-id",
        "legacy",
    )
    assert result.exit_code == 0, result.output
    secret = result.output.split("client_secret: ")[1].split()[0]
    assert len(secret) >= 40

    with app.app_context():
        stored = get_client("legacy")
        assert stored is not None and stored.client_secret_hash is not None
        assert secret not in stored.client_secret_hash
        forms = get_client("kaga-forms")
        assert forms is not None
        assert forms.allowed_scopes == ["name", "birthdate"]
        assert forms.id_token_signed_response_alg == "PS256"

    listing = run("clients", "list").output
    assert "kaga-forms\tprivate_key_jwt\tPS256\t加賀市 電子申請" in listing
    assert "legacy\tclient_secret_basic" in listing

    assert run("clients", "remove", "legacy").exit_code == 0
    assert "legacy" not in run("clients", "list").output
    missing = run("clients", "remove", "legacy")
    assert missing.exit_code == 1
    assert "no client legacy" in missing.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--redirect-uri", "http://rp.example.jp/cb", "--auth-method", "none"], "https"),
        (["--redirect-uri", "https://rp.example.jp/cb#x", "--auth-method", "none"], "fragment"),
        (
            ["--redirect-uri", "https://rp.example.jp/cb", "--auth-method", "private_key_jwt"],
            "jwks",
        ),
        (
            [
                "--redirect-uri",
                "https://a.example.jp/cb",
                "--redirect-uri",
                "https://b.example.jp/cb",
                "--auth-method",
                "none",
            ],
            "sector",
        ),
        (
            [
                "--redirect-uri",
                "https://rp.example.jp/cb",
                "--auth-method",
                "none",
                "--scope",
                "email",
            ],
            "unknown scopes",
        ),
    ],
)
def test_unsafe_registrations_are_refused(run, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    result = run("clients", "add", "--name", "x", *args)
    assert result.exit_code == 1
    assert message in result.output


def test_symmetric_or_private_keys_are_refused(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    private = ECKey.generate_key("P-256", private=True)
    for name, jwks in {
        "oct": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]},
        "private": KeySet([private]).as_dict(private=True),
    }.items():
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(jwks))
        result = run(
            "clients",
            "add",
            "--name",
            "x",
            "--redirect-uri",
            "https://rp.example.jp/cb",
            "--auth-method",
            "private_key_jwt",
            "--jwks-file",
            str(path),
        )
        assert result.exit_code == 1, name
        assert "jwks" in result.output


def test_commands_refuse_to_run_without_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):  # noqa: TID251 - the test controls the environment
        if name.startswith("IDP_"):
            monkeypatch.delenv(name)
    result = CliRunner().invoke(main, ["clients", "list"])
    assert result.exit_code == 1
    assert "IDP_ISSUER" in result.output


def test_fapi2_and_protocol_settings(run, app: Flask, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--profile fapi2, PAR / signed request objects / DPoP required, resource servers."""
    jwks_file = tmp_path / "rp.jwks.json"
    jwks_file.write_text(
        json.dumps(KeySet([ECKey.generate_key("P-256", private=True)]).as_dict(private=False))
    )
    base = ["clients", "add", "--redirect-uri", "https://rp.example.jp/cb"]
    jwt_client = ["--auth-method", "private_key_jwt", "--jwks-file", str(jwks_file)]

    fapi = run(*base, *jwt_client, "--name", "FAPI", "--client-id", "fapi", "--profile", "fapi2")
    assert fapi.exit_code == 0, fapi.output
    flags = run(
        *base,
        *jwt_client,
        "--name",
        "flags",
        "--client-id",
        "flags",
        "--require-par",
        "--require-signed-request-object",
        "--dpop",
    )
    assert flags.exit_code == 0, flags.output
    by_uri = run(
        *base,
        "--auth-method",
        "private_key_jwt",
        "--jwks-uri",
        "https://rp.example.jp/jwks.json",
        "--name",
        "by-uri",
        "--client-id",
        "by-uri",
    )
    assert by_uri.exit_code == 0, by_uri.output
    rs = run(
        *base,
        "--auth-method",
        "client_secret_basic",
        "--name",
        "API",
        "--client-id",
        "api",
        "--resource-server",
    )
    assert rs.exit_code == 0, rs.output

    with app.app_context():
        stored = {cid: get_client(cid) for cid in ("fapi", "flags", "by-uri", "api")}
    fapi_row, flags_row, uri_row, api_row = stored.values()
    assert fapi_row is not None and fapi_row.profile == "fapi2"
    assert flags_row is not None and flags_row.profile is None
    assert flags_row.require_pushed_authorization_requests
    assert flags_row.require_signed_request_object and flags_row.dpop_bound_access_tokens
    assert uri_row is not None and uri_row.jwks_uri == "https://rp.example.jp/jwks.json"
    assert uri_row.jwks is None and not uri_row.require_pushed_authorization_requests
    assert api_row is not None and api_row.resource_server and not api_row.dpop_bound_access_tokens

    listing = run("clients", "list").output.splitlines()
    settings = {line.split("\t")[0]: line.split("\t")[-1] for line in listing}
    assert settings == {
        "fapi": "fapi2",
        "flags": "par,signed-request-object,dpop",
        "by-uri": "-",
        "api": "resource-server",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--auth-method", "client_secret_basic", "--profile", "fapi2"], "private_key_jwt"),
        (["--auth-method", "none", "--profile", "fapi1"], "fapi1"),
    ],
)
def test_fapi2_needs_private_key_jwt(run, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    result = run(
        "clients", "add", "--name", "x", "--redirect-uri", "https://rp.example.jp/cb", *args
    )
    assert result.exit_code != 0
    assert message in result.output
