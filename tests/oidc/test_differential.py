"""The negative-test matrix run differentially: this provider and node-oidc-provider.

Every row of :data:`matrix_cases.ROWS` is sent to both providers, each with the same six
clients. This provider must answer exactly what the row records (error, how it is delivered,
status); the peer must answer what the row records for it (so a change in either shows up);
and a case the peer rejects must never be accepted here. Rows where we are stricter or the
error codes differ are listed in ``docs/negative-matrix.md``.

The peer job runs on its own (``make test`` runs ``pytest -m peer`` after the main run)::

    .venv/bin/pytest -m peer tests/oidc/test_differential.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from differential_support import PEER_DIR, OurTarget, Outcome, PeerProcess, PeerTarget, outcome
from flask import Flask
from matrix_cases import ROWS, Row, render_table

pytestmark = [pytest.mark.peer, pytest.mark.node]

DOC = Path(__file__).parents[2] / "docs" / "negative-matrix.md"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """This provider's side runs on SQLite (the main job covers PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'idp.sqlite3'}"


@pytest.fixture(scope="session")
def peer(node_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PeerProcess]:
    if not (PEER_DIR / "node_modules" / "oidc-provider").is_dir():
        npm = shutil.which("npm") or str(Path(node_path).with_name("npm"))
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=PEER_DIR, check=True, timeout=300
        )
    process = PeerProcess(node_path, tmp_path_factory.mktemp("peer"))
    yield process
    process.close()


@pytest.fixture
def ours(app_factory: Callable[..., Flask]) -> OurTarget:
    return OurTarget(app_factory())


@pytest.mark.parametrize("matrix_row", ROWS, ids=[r.name for r in ROWS])
def test_differential_case(matrix_row: Row, ours: OurTarget, peer: PeerProcess) -> None:
    mine = outcome(ours, matrix_row.build(ours))
    target = PeerTarget(peer)
    theirs = outcome(target, matrix_row.build(target))
    if os.environ.get("MYNA_MATRIX_SHOW"):  # noqa: TID251 - a developer switch
        print(f"\nROW {matrix_row.name} | {mine} | {theirs}")
        return
    assert not (theirs.rejected and not mine.rejected), f"the peer rejects, we accept: {theirs}"
    assert str(mine) == str(Outcome.parse(matrix_row.ours)), "our answer changed"
    assert str(theirs) == str(Outcome.parse(matrix_row.peer)), "the peer's answer changed"


def test_a_browser_session_answers_prompt_none_on_both(ours: OurTarget, peer: PeerProcess) -> None:
    """The control for the session rows: the same browser gets a code silently."""
    for target in (ours, PeerTarget(peer)):
        browser = target.browser_login()
        answer = target.authorize_in(browser, prompt="none")
        assert outcome(target, answer).kind == "accepted", (target.name, answer.location)
        assert "code=" in answer.location


def test_the_differential_matrix_is_big_enough_and_documented() -> None:
    names = [r.name for r in ROWS]
    assert len(names) >= 60 and len(set(names)) == len(names)
    assert render_table() in DOC.read_text(), "regenerate: python -c 'matrix_cases.render_table()'"


def test_shared_names_mean_the_same_case() -> None:
    """A row named like a case of test_matrix.py expects the same error from us."""
    from test_matrix import CASES

    ours = {c.name: c.error for c in CASES}
    for r in ROWS:
        if r.name in ours:
            assert Outcome.parse(r.ours).error == ours[r.name], r.name
