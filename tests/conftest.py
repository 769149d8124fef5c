"""Service fixtures for the whole suite (see docs/testing.md).

``make test`` starts the services (scripts/services.sh) and exports their ``MYNA_TEST_*``
variables. A test marked with a service marker runs only when that variable is set. Without it
the test is skipped — unless ``CI`` is set: in CI a missing service is a failure, never a skip.

=========  ======================  =====================================================
marker     variable                service
=========  ======================  =====================================================
pcsc       MYNA_TEST_PCSC          pcscd with the vsmartcard-vpcd readers
opensc     MYNA_TEST_PCSC          the same, driven by OpenSC's command-line tools
redis      MYNA_TEST_REDIS_URL     Redis (``redis_url`` fixture)
postgres   MYNA_TEST_DATABASE_URL  PostgreSQL (``database_url`` fixture)
browser    MYNA_TEST_CHROMIUM      headless Chromium (``chromium_path`` fixture)
node       MYNA_TEST_NODE          Node.js (``node_path`` fixture)
=========  ======================  =====================================================

``emulated_card`` inserts a fresh ``VirtualCard`` into vpcd's first reader for one test. Every
removal waits until pcscd's reader monitor has counted it (``pcsc.card_events``), not merely
until the reader reads as empty: after a card is lost while a connection to it is still open,
closing that connection marks the reader empty before the monitor has seen the card go, and a
card inserted in that gap is never powered up (see ``pcsc.wait_for_card``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from idp.card.testpki import RESIDENTS, ResidentCredentials, TestPki
from idp.card.virtual import VirtualCard
from idp.card.vpcd import CardSlot, VpcdBridge

SERVICE_VARIABLES = {
    "pcsc": "MYNA_TEST_PCSC",
    "opensc": "MYNA_TEST_PCSC",
    "redis": "MYNA_TEST_REDIS_URL",
    "postgres": "MYNA_TEST_DATABASE_URL",
    "browser": "MYNA_TEST_CHROMIUM",
    "node": "MYNA_TEST_NODE",
}

VPCD_READER = "Virtual PCD 00 00"
VPCD_PORT = 35963
CARD_EVENT_TIMEOUT = 5.0


def _environment(name: str) -> str:
    return os.environ.get(name, "")  # noqa: TID251 - tests read the service variables


def require_service(marker: str) -> str:
    """The value of ``marker``'s service variable; skip (fail under CI) when it is unset."""
    variable = SERVICE_VARIABLES[marker]
    value = _environment(variable)
    if not value:
        message = f"{marker}: {variable} is not set (run `make test`, see docs/testing.md)"
        if _environment("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return value


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in SERVICE_VARIABLES:
        if item.get_closest_marker(marker) is not None:
            require_service(marker)


@pytest.fixture(scope="session")
def redis_url() -> str:
    return require_service("redis")


@pytest.fixture(scope="session")
def database_url() -> str:
    return require_service("postgres")


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A test that takes ``db_url`` runs twice: on a SQLite file and on the PostgreSQL test
    database (a module may narrow it by defining its own ``db_url``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'idp.sqlite3'}"
    url = request.getfixturevalue("database_url")
    assert isinstance(url, str)
    return url


@pytest.fixture(scope="session")
def chromium_path() -> str:
    return require_service("browser")


@pytest.fixture(scope="session")
def node_path() -> str:
    return require_service("node")


# -- virtual card in vpcd's reader ------------------------------------------------------------


@dataclass
class EmulatedCard:
    """A ``VirtualCard`` inserted into ``reader`` through a running ``VpcdBridge``.

    ``slot`` is what the bridge serves: the card itself, or a wrapper around it (``serve``).
    ``events`` is pcscd's insertion/removal count for the reader once it had seen this card.
    """

    card: VirtualCard
    slot: CardSlot
    bridge: VpcdBridge
    credentials: ResidentCredentials
    pki: TestPki
    reader: str = VPCD_READER
    events: int | None = None
    removed: bool = False

    def remove(self) -> None:
        """Take the card out, unless the test already has (``bridge.stop()``), and wait until
        pcscd's reader monitor has counted the removal. Only the first call waits."""
        from idp.card import pcsc

        if self.removed:
            return
        self.removed = True
        self.bridge.stop()
        if self.events is None:
            return  # pcscd never saw this card: no removal to wait for
        assert pcsc.wait_for_card(
            self.reader, timeout=CARD_EVENT_TIMEOUT, present=False, since=self.events
        ), "pcscd's reader monitor did not see the card go"


@pytest.fixture(scope="session")
def emulation_pki() -> TestPki:
    return TestPki.generate()


@pytest.fixture
def emulated_card(emulation_pki: TestPki) -> Iterator[Callable[..., EmulatedCard]]:
    """Factory: ``emulated_card(resident="yamada", pin=..., sign_password=..., serve=None)``
    inserts a fresh card (fresh PIN counters) and waits for pcscd to see it; removed after the
    test. ``serve`` wraps the card before it goes into the reader (e.g. a card that stalls)."""
    require_service("pcsc")
    from idp.card import pcsc

    inserted: list[EmulatedCard] = []

    def insert(
        resident: str = "yamada",
        *,
        pin: str = "1234",
        sign_password: str = "ABC123",
        serve: Callable[[VirtualCard], CardSlot] | None = None,
    ) -> EmulatedCard:
        for previous in inserted:
            previous.remove()
        if pcsc.card_present(VPCD_READER):
            pytest.fail(
                f"{VPCD_READER} already holds a card that this test did not insert "
                "(is `idp card emulate` running?)",
                pytrace=False,
            )
        credentials = emulation_pki.issue(RESIDENTS[resident])
        card = VirtualCard.from_credentials(
            credentials, emulation_pki, pin=pin, sign_password=sign_password
        )
        slot = card if serve is None else serve(card)
        bridge = VpcdBridge(slot, port=VPCD_PORT).start()
        emulated = EmulatedCard(card, slot, bridge, credentials, emulation_pki)
        inserted.append(emulated)
        assert bridge.wait_connected(CARD_EVENT_TIMEOUT), "could not connect to vpcd"
        assert pcsc.wait_for_card(VPCD_READER, timeout=CARD_EVENT_TIMEOUT), (
            "pcscd did not report the card"
        )
        emulated.events = pcsc.card_events(VPCD_READER)
        return emulated

    yield insert
    for emulated in inserted:
        emulated.remove()
