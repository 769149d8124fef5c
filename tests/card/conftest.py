"""Shared card-layer fixtures: one test PKI per session (RSA key generation is slow), and fresh
virtual cards / JPKI clients per test built from it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from idp.card.jpki import JpkiClient
from idp.card.testpki import RESIDENTS, ResidentCredentials, TestPki
from idp.card.transport import InProcessTransport
from idp.card.virtual import VirtualCard

CardFactory = Callable[..., VirtualCard]


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return TestPki.generate()


@pytest.fixture(scope="session")
def yamada(pki: TestPki) -> ResidentCredentials:
    return pki.issue(RESIDENTS["yamada"])


@pytest.fixture(scope="session")
def kobayashi(pki: TestPki) -> ResidentCredentials:
    """A resident under 15: an authentication certificate only."""
    creds = pki.issue(RESIDENTS["kobayashi"])
    assert creds.sign_certificate is None
    return creds


@pytest.fixture
def make_card(pki: TestPki, yamada: ResidentCredentials) -> CardFactory:
    """``make_card(creds=yamada, pin="1234", sign_password="ABC123")``: a fresh card."""

    def factory(creds: ResidentCredentials | None = None, **kwargs: str) -> VirtualCard:
        return VirtualCard.from_credentials(creds or yamada, pki, **kwargs)

    return factory


@pytest.fixture
def card(make_card: CardFactory) -> VirtualCard:
    """A fresh card for yamada, PIN 1234, signature password ABC123."""
    return make_card()


@pytest.fixture
def transport(card: VirtualCard) -> InProcessTransport:
    return InProcessTransport(card)


@pytest.fixture
def client(transport: InProcessTransport) -> JpkiClient:
    return JpkiClient(transport)
