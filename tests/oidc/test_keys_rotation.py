"""Signing key rotation with overlap, scheduled rotation, encryption at rest (docs/keys.md)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError
from joserfc.jwk import KeySet
from provider_support import (
    ISSUER,
    CapturingLogin,
    RelyingParty,
    enroll_test_resident,
    install_capturing_login,
)
from sqlalchemy import text

from idp.app import create_app
from idp.config import ConfigError
from idp.extensions import close_connections, get_settings
from idp.oidc.keys import (
    KeyEncryptionError,
    KeyStorageError,
    RotationRefusedError,
    RotationResult,
    encrypt_stored_keys,
    prepare_signing_keys,
    retire_delay,
    rotate_if_due,
    rotate_signing_key,
)
from idp.oidc.server import get_keyring
from idp.storage.base import db, utcnow
from idp.storage.keys import KeyState, SigningKey, list_signing_keys


def id_token(rp: RelyingParty, login: CapturingLogin, resident_id: str) -> str:
    request, params = rp.login(login, resident_id)
    body = rp.token_request(params["code"][0], request.verifier).get_json()
    token = body["id_token"]
    assert isinstance(token, str)
    return token


def jwks(rp: RelyingParty) -> KeySet:
    return KeySet.import_key_set(rp.http.get("/jwks.json").get_json())


def published(rp: RelyingParty) -> set[str]:
    return {key["kid"] for key in rp.http.get("/jwks.json").get_json()["keys"]}


def states(alg: str = "ES256") -> dict[str, str]:
    """kid -> state of every key of ``alg`` (inside an app context)."""
    return {key.kid: key.state for key in list_signing_keys(alg)}


def kid_in(state: KeyState, alg: str = "ES256") -> str:
    (kid,) = [kid for kid, value in states(alg).items() if value == state]
    return kid


def backdate(days: int) -> None:
    """Pretend every key was created and activated ``days`` ago."""
    for key in list_signing_keys():
        key.created_at -= timedelta(days=days)
        key.activates_at -= timedelta(days=days)
    db.session.commit()


def test_first_use_creates_an_active_and_a_next_key(app: Flask, rp: RelyingParty) -> None:
    assert len(published(rp)) == 2
    with app.app_context():
        assert sorted(states().values()) == ["active", "next"]
        upcoming = next(k for k in list_signing_keys() if k.state == KeyState.NEXT)
        prepublish = timedelta(seconds=get_settings().key_prepublish_seconds)
        assert upcoming.activates_at == upcoming.created_at + prepublish


def test_tokens_signed_before_a_rotation_verify_after_it(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    before = id_token(rp, login, resident_id)
    with app.app_context():
        old_kid, next_kid = kid_in(KeyState.ACTIVE), kid_in(KeyState.NEXT)
        settings = get_settings()
        later = utcnow() + timedelta(seconds=settings.key_prepublish_seconds)
        rotated = rotate_signing_key("ES256", settings, now=later)
    assert jwt.decode(before, jwks(rp)).header["kid"] == old_kid  # still verifies
    after = id_token(rp, login, resident_id)
    assert jwt.decode(after, jwks(rp)).header["kid"] == next_kid == rotated.active_kid
    assert published(rp) == {old_kid, next_kid, rotated.next_kid}
    with app.app_context():
        assert states() == {
            old_kid: "retiring",
            next_kid: "active",
            rotated.next_kid: "next",
        }
        retiring = db.session.get(SigningKey, old_kid)
        assert retiring is not None and retiring.retires_at == later + retire_delay(settings)


def test_the_retire_delay_covers_every_token_the_key_signed(app: Flask) -> None:
    with app.app_context():
        settings = get_settings()
    delay = retire_delay(settings).total_seconds()
    longest = max(settings.id_token_ttl, 120)  # logout tokens live 120 s
    assert delay == settings.key_cache_seconds + longest + settings.clock_leeway
    assert retire_delay(replace(settings, id_token_ttl=3600)).total_seconds() > 3600


def test_the_next_key_is_published_before_it_signs(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    token = id_token(rp, login, resident_id)
    with app.app_context():
        next_kid = kid_in(KeyState.NEXT)
    assert next_kid in published(rp)
    assert jwt.decode(token, jwks(rp)).header["kid"] != next_kid


def test_expired_old_keys_leave_the_jwks_and_lose_their_private_part(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    old_token = id_token(rp, login, resident_id)
    with app.app_context():
        settings = get_settings()
        old_kid = kid_in(KeyState.ACTIVE)
        rotate_signing_key("ES256", settings, force=True)
    assert old_kid in published(rp)
    with app.app_context():
        # Time passes until every token the old key signed has expired.
        retiring = db.session.get(SigningKey, old_kid)
        assert retiring is not None and retiring.retires_at is not None
        retiring.retires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert old_kid not in published(rp)
    with pytest.raises(InvalidKeyIdError):  # its tokens no longer verify (they expired anyway)
        jwt.decode(old_token, jwks(rp))
    with app.app_context():
        # Loading the keys retired it for good.
        assert states()[old_kid] == "retired"
        retired = db.session.get(SigningKey, old_kid)
        assert retired is not None and retired.private_key_pem == ""


def test_a_rotation_is_refused_until_the_next_key_was_published_long_enough(app: Flask) -> None:
    with app.app_context():
        settings = get_settings()
        get_keyring().signing_key("ES256")
        before = states()
        with pytest.raises(RotationRefusedError, match="IDP_KEY_PREPUBLISH_SECONDS"):
            rotate_signing_key("ES256", settings)
        assert states() == before  # nothing changed
        almost = utcnow() + timedelta(seconds=settings.key_prepublish_seconds - 60)
        with pytest.raises(RotationRefusedError):
            rotate_signing_key("ES256", settings, now=almost)


def test_a_due_rotation_happens_when_the_app_loads_its_keys(
    app_factory: Callable[..., Flask], login_for: Callable[[Flask], CapturingLogin]
) -> None:
    app = app_factory(KEY_ROTATION_DAYS=30)
    login = login_for(app)
    rp = RelyingParty(app)
    with app.app_context():
        resident = enroll_test_resident().id
    first = id_token(rp, login, resident)
    with app.app_context():
        old_kid, next_kid = kid_in(KeyState.ACTIVE), kid_in(KeyState.NEXT)
        backdate(29)
        assert not rotate_if_due("ES256", get_settings()).rotated  # 29 days: not yet
        backdate(2)
    second = id_token(rp, login, resident)  # the token endpoint loads the keys: rotation due
    keys = jwks(rp)
    assert jwt.decode(first, keys).header["kid"] == old_kid
    assert jwt.decode(second, keys).header["kid"] == next_kid
    with app.app_context():
        assert states()[old_kid] == "retiring"
        assert not rotate_if_due("ES256", get_settings()).rotated  # once only


def test_no_scheduled_rotation_when_the_interval_is_zero(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(KEY_ROTATION_DAYS=0)
    with app.app_context():
        get_keyring().signing_key("ES256")
        backdate(3650)
        assert not rotate_if_due("ES256", get_settings()).rotated


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_two_instances_rotating_at_once_rotate_once(app_factory: Callable[..., Flask]) -> None:
    instances = [app_factory(KEY_ROTATION_DAYS=30) for _ in range(2)]
    with instances[0].app_context():
        get_keyring().signing_key("ES256")
        old_kid, next_kid = kid_in(KeyState.ACTIVE), kid_in(KeyState.NEXT)
        backdate(31)
    workers = 8
    barrier = threading.Barrier(workers)
    results: list[RotationResult] = []
    signers: list[str] = []
    failures: list[BaseException] = []

    def run(index: int) -> None:
        app = instances[index % 2]
        try:
            with app.app_context():
                barrier.wait()
                if index % 4 == 0:  # some through the key ring (lazily), some as the timer does
                    signers.append(get_keyring().signing_key("ES256").kid)
                else:
                    results.append(rotate_if_due("ES256", get_settings()))
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    with instances[0].app_context():
        final = states()
    assert sorted(final.values()) == ["active", "next", "retiring"]  # three keys, not four
    assert final[old_kid] == "retiring" and final[next_kid] == "active"
    assert set(signers) == {next_kid}
    assert sum(result.rotated for result in results) <= 1
    assert {result.active_kid for result in results} == {next_kid}


# -- encryption at rest ------------------------------------------------------------------------

KEK = "k" * 40


def stored_private_keys(app: Flask) -> list[str]:
    """The private key column as the database holds it."""
    with app.app_context():
        rows = db.session.execute(text("SELECT private_key_pem FROM signing_keys")).all()
    return [str(row[0]) for row in rows]


def test_the_database_holds_no_pem_private_key_with_a_kek(
    app_factory: Callable[..., Flask], login_for: Callable[[Flask], CapturingLogin]
) -> None:
    app = app_factory(KEY_ENCRYPTION_KEY=KEK)
    login = login_for(app)
    rp = RelyingParty(app)
    with app.app_context():
        resident = enroll_test_resident().id
    token = id_token(rp, login, resident)
    assert jwt.decode(token, jwks(rp)).header["alg"] == "ES256"
    column = stored_private_keys(app)
    assert len(column) == 2
    for value in column:
        assert value.startswith("aes256gcm.v1.")
        assert "PRIVATE KEY" not in value and "MII" not in value  # no PEM, no base64 DER


def test_a_wrapped_key_moved_to_another_kid_does_not_open(
    app_factory: Callable[..., Flask],
) -> None:
    app = app_factory(KEY_ENCRYPTION_KEY=KEK)
    with app.app_context():
        get_keyring().signing_key("ES256")
        active, upcoming = (
            db.session.get(SigningKey, kid_in(state)) for state in (KeyState.ACTIVE, KeyState.NEXT)
        )
        assert active is not None and upcoming is not None
        active.private_key_pem = upcoming.private_key_pem  # the associated data is the kid
        db.session.commit()
        with pytest.raises(KeyStorageError, match="altered or moved"):
            get_keyring().signing_key("ES256")


def test_a_wrong_or_missing_kek_stops_the_start(
    app_factory: Callable[..., Flask], db_url: str, redis_url: str
) -> None:
    app = app_factory(KEY_ENCRYPTION_KEY=KEK)
    with app.app_context():
        get_keyring().signing_key("ES256")
        kid = kid_in(KeyState.ACTIVE)
    production = {
        "ISSUER": ISSUER,
        "SECRET_KEY": "s" * 40,
        "PAIRWISE_SECRET": "p" * 40,
        "DATABASE_URL": db_url,
        "REDIS_URL": redis_url,
    }
    with pytest.raises(KeyEncryptionError) as wrong:
        create_app({**production, "KEY_ENCRYPTION_KEY": "w" * 40})
    assert isinstance(wrong.value, ConfigError)
    assert any(kid in problem and "wrong" in problem for problem in wrong.value.problems)
    with pytest.raises(KeyEncryptionError) as missing:
        create_app(production)
    assert any("set IDP_KEY_ENCRYPTION_KEY" in problem for problem in missing.value.problems)
    started = create_app({**production, "KEY_ENCRYPTION_KEY": KEK})  # the right one starts
    close_connections(started)


def test_the_kek_can_come_from_a_file(
    app_factory: Callable[..., Flask],
    same_database: Callable[..., Flask],
    tmp_path: Path,
) -> None:
    path = tmp_path / "kek"
    path.write_text(KEK + "\n")
    app = app_factory(KEY_ENCRYPTION_KEY_FILE=str(path))
    with app.app_context():
        assert get_settings().key_encryption_key == KEK.encode()
        kid = get_keyring().signing_key("ES256").kid
    assert all(value.startswith("aes256gcm.v1.") for value in stored_private_keys(app))
    other = same_database(KEY_ENCRYPTION_KEY=KEK)  # the same key given directly opens them
    with other.app_context():
        assert get_keyring().signing_key("ES256").kid == kid


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"KEY_ENCRYPTION_KEY": KEK, "KEY_ENCRYPTION_KEY_FILE": "/etc/kek"}, "not both"),
        ({"KEY_ENCRYPTION_KEY_FILE": "/nonexistent/kek"}, "cannot be read"),
        ({"KEY_ENCRYPTION_KEY": "short"}, "at least 32"),
        ({"KEY_PREPUBLISH_SECONDS": 300}, "longer than IDP_JWKS_MAX_AGE"),
        ({"KEY_ROTATION_DAYS": -1}, "IDP_KEY_ROTATION_DAYS"),
        ({"KEY_ENCRYPTION_KEY_PREVIOUS": KEK}, "needs IDP_KEY_ENCRYPTION_KEY"),
    ],
)
def test_bad_key_settings_stop_the_start(config: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as error:
        create_app({"TESTING": True, **config})
    assert any(fragment in problem for problem in error.value.problems)


def test_plaintext_keys_are_wrapped_when_a_kek_arrives(
    app_factory: Callable[..., Flask], same_database: Callable[..., Flask]
) -> None:
    plain = app_factory()
    with plain.app_context():
        kid = get_keyring().signing_key("ES256").kid
    for value in stored_private_keys(plain):
        assert value.startswith("-----BEGIN PRIVATE KEY-----")
    # At start (what create_app does outside tests), and idempotent as `idp keys encrypt`.
    wrapped = same_database(KEY_ENCRYPTION_KEY=KEK)
    prepare_signing_keys(wrapped, get_settings(wrapped))
    assert all(value.startswith("aes256gcm.v1.") for value in stored_private_keys(wrapped))
    with wrapped.app_context():
        assert encrypt_stored_keys(get_settings()) == 0
        assert get_keyring().signing_key("ES256").kid == kid  # the same key, now wrapped
    with plain.app_context(), pytest.raises(KeyStorageError):
        get_keyring().signing_key("ES256")  # without the key-encryption key: unreadable


def test_changing_the_kek_with_the_previous_one_alongside(
    app_factory: Callable[..., Flask], same_database: Callable[..., Flask]
) -> None:
    old, new = "o" * 40, "n" * 40
    first = app_factory(KEY_ENCRYPTION_KEY=old)
    with first.app_context():
        kid = get_keyring().signing_key("ES256").kid
    too_early = same_database(KEY_ENCRYPTION_KEY=new)
    with pytest.raises(KeyEncryptionError):  # the new key alone opens nothing yet
        prepare_signing_keys(too_early, get_settings(too_early))
    changing = same_database(KEY_ENCRYPTION_KEY=new, KEY_ENCRYPTION_KEY_PREVIOUS=old)
    with changing.app_context():
        assert get_keyring().signing_key("ES256").kid == kid  # opens under the previous key
    prepare_signing_keys(changing, get_settings(changing))  # the start re-wraps
    with changing.app_context():
        assert encrypt_stored_keys(get_settings()) == 0
    only_new = same_database(KEY_ENCRYPTION_KEY=new)
    prepare_signing_keys(only_new, get_settings(only_new))  # starts with the new key alone
    with only_new.app_context():
        assert get_keyring().signing_key("ES256").kid == kid
    with pytest.raises(KeyEncryptionError):  # the old key no longer opens them
        prepare_signing_keys(first, get_settings(first))


@pytest.fixture
def login_for() -> Callable[[Flask], CapturingLogin]:
    return install_capturing_login


@pytest.fixture
def same_database(db_url: str, redis_url: str) -> Iterator[Callable[..., Flask]]:
    """Another instance on the test database as it is (``app_factory`` empties it)."""
    apps: list[Flask] = []

    def build(**overrides: object) -> Flask:
        config = {"TESTING": True, "DATABASE_URL": db_url, "REDIS_URL": redis_url}
        application = create_app({**config, "KEY_CACHE_SECONDS": 0, **overrides})
        apps.append(application)
        return application

    yield build
    for application in apps:
        close_connections(application)


def test_a_compromised_key_leaves_the_jwks_at_once(
    app: Flask, rp: RelyingParty, login: CapturingLogin, resident_id: str
) -> None:
    leaked_token = id_token(rp, login, resident_id)
    with app.app_context():
        leaked, upcoming = kid_in(KeyState.ACTIVE), kid_in(KeyState.NEXT)
        result = rotate_signing_key("ES256", get_settings(), compromised=True)
    assert result.active_kid == upcoming
    assert leaked not in published(rp)
    with pytest.raises(InvalidKeyIdError):
        jwt.decode(leaked_token, jwks(rp))
    assert jwt.decode(id_token(rp, login, resident_id), jwks(rp)).header["kid"] == upcoming
    with app.app_context():
        row = db.session.get(SigningKey, leaked)
        assert row is not None and row.state == "retired" and row.private_key_pem == ""
