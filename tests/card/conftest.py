"""Shared card-layer fixtures: one test PKI per session (RSA key generation is slow)."""

from __future__ import annotations

import pytest

from idp.card.testpki import RESIDENTS, ResidentCredentials, TestPki


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return TestPki.generate()


@pytest.fixture(scope="session")
def yamada(pki: TestPki) -> ResidentCredentials:
    return pki.issue(RESIDENTS["yamada"])
