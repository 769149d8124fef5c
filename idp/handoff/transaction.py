"""The login transaction: one authorization request waiting for a card, kept in Redis.

A transaction ties together three parties that never share a session:

- the **browser** that started the authorization request (bound by a cookie: a random browser
  key whose SHA-256 is stored in the transaction; ``__Host-`` prefixed and ``Secure`` when the
  issuer is https, a plain name on an http loopback development issuer);
- the **device** that holds the card (desktop agent now, a phone later), which knows only the
  unguessable ``handoff_id`` from the handoff URL;
- the **challenge** the card signs, bound to the issuer origin, a fresh nonce, the transaction
  id and the purpose (:class:`idp.card.challenge.Challenge`).

States::

    created --device GET--> picked_up --login response--> card_verified --consent--> finished
                                 |                              ^
                                 +--unknown card / stale--> enroll_needed --enroll response--+
    card verified with a sign transaction --> sign_needed --sign response--> card_verified
    any open state --bad card response--> failed;  --browser cancels--> cancelled
    past expires_at: expired (computed; the record lingers GRACE seconds to say so)

The resident may extend a login that is still open (WCAG 2.2.1, timing adjustable):
:meth:`TransactionStore.extend` moves ``expires_at`` to ``now + ttl``, at most
:data:`MAX_EXTENSIONS` times and never past ``created_at +`` :data:`MAX_LIFETIME` seconds.

Each round's nonce is also stored under its own key and taken with ``GETDEL`` when the device
answers, so a response can be verified at most once (a replay finds no nonce). Updates are
compare-and-set on a ``version`` field (one Lua script), so the device and the browser cannot
overwrite each other's transitions.

The phone finds the transaction through its rotating QR code (:mod:`idp.handoff.qr`): the record
holds ``qr_token``, ``qr_secret`` and ``qr_start``, and ``qr:<token>`` points to the transaction.
:meth:`TransactionStore.pick_up` moves ``created`` to ``picked_up`` by that compare-and-set, so of
two phones racing exactly one wins.

Every state change is published on the Redis channel ``login-events:<transaction id>``
(:meth:`TransactionStore.update` is the one place that writes a state), so whichever instance
serves the browser's event stream (:mod:`idp.handoff.events`) learns of it at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any, Final

from redis.exceptions import RedisError

from idp.card.challenge import Challenge, new_nonce
from idp.handoff.qr import new_qr_secret, new_qr_token, verification_code
from idp.oidc.authorize import AuthorizationContext
from idp.storage.ephemeral import EphemeralStore, StoreUnavailableError

__all__ = [
    "GRACE_SECONDS",
    "MAX_EXTENSIONS",
    "MAX_LIFETIME",
    "BrowserBinding",
    "ExtensionRefusedError",
    "LoginTransaction",
    "TransactionConflictError",
    "TransactionStore",
    "TxState",
    "cookie_name",
    "events_channel",
    "new_browser_key",
]

log = logging.getLogger(__name__)

GRACE_SECONDS: Final = 120
"""How long an expired or ended transaction is kept to answer "expired" / "finished"."""

ID_BYTES: Final = 32
BROWSER_KEY_BYTES: Final = 32
MAX_RETRIES: Final = 3
#: How often one login may be extended, and the absolute limit on its life (seconds).
MAX_EXTENSIONS: Final = 3
MAX_LIFETIME: Final = 20 * 60
#: An extension that would add less than this share of the TTL (the clock is still nearly
#: full: 30 s of the default 300) is not counted, whatever second boundary the request falls on.
MIN_EXTENSION_GAIN_SHARE: Final = 10

_CAS: Final = """
local current = redis.call('GET', KEYS[1])
if not current then return -1 end
local ok, decoded = pcall(cjson.decode, current)
if not ok or decoded['version'] ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
"""


class TxState(StrEnum):
    CREATED = "created"
    PICKED_UP = "picked_up"
    ENROLL_NEEDED = "enroll_needed"
    SIGN_NEEDED = "sign_needed"
    CARD_VERIFIED = "card_verified"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"
    EXPIRED = "expired"


#: States in which a device may fetch the challenge and answer it.
DEVICE_STATES: Final = frozenset(
    {TxState.CREATED, TxState.PICKED_UP, TxState.ENROLL_NEEDED, TxState.SIGN_NEEDED}
)
#: States after which nothing more happens.
FINAL_STATES: Final = frozenset(
    {TxState.FINISHED, TxState.CANCELLED, TxState.FAILED, TxState.EXPIRED}
)


class TransactionConflictError(Exception):
    """Someone else changed the transaction between our read and our write."""


class ExtensionRefusedError(Exception):
    """The login cannot be extended: ``reason`` is ``expired``, ``finished`` (a final state)
    or ``limit`` (extended too often, or at the absolute limit already)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def events_channel(transaction_id: str) -> str:
    """The pub/sub channel (before the store's prefix) of one transaction's state changes."""
    return f"login-events:{transaction_id}"


def _token() -> str:
    return secrets.token_urlsafe(ID_BYTES)


def new_browser_key() -> str:
    """A fresh browser key for the binding cookie."""
    return secrets.token_urlsafe(BROWSER_KEY_BYTES)


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def cookie_name(issuer: str) -> str:
    """``__Host-myna-login`` on an https issuer; ``myna-login`` on http loopback development."""
    return "__Host-myna-login" if issuer.startswith("https://") else "myna-login"


@dataclass(frozen=True)
class BrowserBinding:
    """The browser key from the cookie, checked against a transaction in constant time."""

    key: str

    def owns(self, transaction: LoginTransaction) -> bool:
        return hmac.compare_digest(_hash(self.key), transaction.browser_hash)

    def csrf_token(self, transaction: LoginTransaction, secret: str) -> str:
        """A form token bound to this browser and this transaction."""
        mac = hmac.new(
            secret.encode("utf-8"),
            f"csrf|{transaction.id}|{self.key}".encode(),
            hashlib.sha256,
        ).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def check_csrf(self, transaction: LoginTransaction, secret: str, token: str) -> bool:
        return hmac.compare_digest(self.csrf_token(transaction, secret), token)


@dataclass(frozen=True)
class LoginTransaction:
    """One login. ``context`` is the authorization request (``AuthorizationContext.to_dict``)."""

    id: str
    handoff_id: str
    origin: str
    context: dict[str, Any]
    browser_hash: str
    created_at: int
    expires_at: int
    state: str
    purpose: str
    nonce: str
    locale: str
    version: int = 0
    resident_id: str | None = None
    auth_time: int | None = None
    #: SHA-256 of the authentication certificate verified in the login round (enrollment must
    #: then use the same card).
    auth_cert_sha256: str | None = None
    #: The resident the card is linked to when the record is only stale (refresh), else None.
    known_resident_id: str | None = None
    failure: str | None = None
    retries: int = 0
    enrollment: str | None = None
    #: The rotating QR (idp.handoff.qr): its token, its secret (hex), when it was first shown.
    qr_token: str = ""
    qr_secret: str = ""
    qr_start: int | None = None
    #: The signing round (flow E): ``sign_transaction_id``, ``text``, ``digest`` (base64url)
    #: and ``to_be_signed`` (base64 DER of the CMS signed attributes).
    sign: dict[str, str] | None = None
    #: How often the resident extended the login (:meth:`TransactionStore.extend`).
    extensions: int = 0

    @property
    def qr_key(self) -> bytes:
        return bytes.fromhex(self.qr_secret)

    @property
    def verification_code(self) -> str:
        """The four digits shown on the computer and on the phone."""
        return verification_code(self.qr_key)

    @property
    def ctx(self) -> AuthorizationContext:
        return AuthorizationContext.from_dict(self.context)

    def status(self, now: float) -> TxState:
        """The state, with ``expired`` for a transaction still waiting for the card past its
        expiry. A verified card may finish consent until the record itself is gone."""
        state = TxState(self.state)
        if state in DEVICE_STATES and now >= self.expires_at:
            return TxState.EXPIRED
        return state

    def challenge(self) -> Challenge:
        """What the card must sign in the current round."""
        return Challenge(
            origin=self.origin, nonce=self.nonce, transaction_id=self.id, purpose=self.purpose
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: bytes) -> LoginTransaction:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("transaction record is not an object")
        return cls(**data)


class TransactionStore:
    """Create, read and update login transactions in the ephemeral store."""

    def __init__(self, store: EphemeralStore, *, ttl: int) -> None:
        self._store = store
        self.ttl = ttl
        self._cas = store.client.register_script(_CAS)

    @property
    def store(self) -> EphemeralStore:
        """The ephemeral store the transactions live in."""
        return self._store

    # -- keys ---------------------------------------------------------------------------------

    @staticmethod
    def _record(transaction_id: str) -> str:
        return f"login:{transaction_id}"

    @staticmethod
    def _handoff(handoff_id: str) -> str:
        return f"handoff:{handoff_id}"

    @staticmethod
    def _nonce(transaction_id: str) -> str:
        return f"login-nonce:{transaction_id}"

    @staticmethod
    def _qr(qr_token: str) -> str:
        return f"qr:{qr_token}"

    # -- create / read ------------------------------------------------------------------------

    def create(
        self,
        ctx: AuthorizationContext,
        *,
        origin: str,
        browser: BrowserBinding,
        locale: str,
        now: float | None = None,
        retries: int = 0,
    ) -> LoginTransaction:
        """A new transaction in state ``created`` with a fresh login challenge."""
        created = int(now if now is not None else time.time())
        transaction = LoginTransaction(
            id=_token(),
            handoff_id=_token(),
            origin=origin,
            context=ctx.to_dict(),
            browser_hash=_hash(browser.key),
            created_at=created,
            expires_at=created + self.ttl,
            state=TxState.CREATED,
            purpose="login",
            nonce=new_nonce(),
            locale=locale,
            retries=retries,
            qr_token=new_qr_token(),
            qr_secret=new_qr_secret(),
        )
        keep = self.ttl + GRACE_SECONDS
        self._store.put(self._record(transaction.id), transaction.to_json(), ttl=keep)
        self._store.put(self._handoff(transaction.handoff_id), transaction.id, ttl=keep)
        self._store.put(self._qr(transaction.qr_token), transaction.id, ttl=keep)
        self._store.put(self._nonce(transaction.id), transaction.nonce, ttl=self.ttl)
        return transaction

    def get(self, transaction_id: str) -> LoginTransaction | None:
        if not _plausible_id(transaction_id):
            return None
        raw = self._store.get(self._record(transaction_id))
        if raw is None:
            return None
        try:
            return LoginTransaction.from_json(raw)
        except (ValueError, TypeError):
            return None

    def by_handoff(self, handoff_id: str) -> LoginTransaction | None:
        if not _plausible_id(handoff_id):
            return None
        transaction_id = self._store.get(self._handoff(handoff_id))
        if transaction_id is None:
            return None
        transaction = self.get(transaction_id.decode("ascii", "replace"))
        if transaction is None or not hmac.compare_digest(transaction.handoff_id, handoff_id):
            return None
        return transaction

    def by_qr(self, qr_token: str) -> LoginTransaction | None:
        """The transaction whose QR token this is (the phone's way in)."""
        if not _plausible_id(qr_token):
            return None
        transaction_id = self._store.get(self._qr(qr_token))
        if transaction_id is None:
            return None
        transaction = self.get(transaction_id.decode("ascii", "replace"))
        if transaction is None or not hmac.compare_digest(transaction.qr_token, qr_token):
            return None
        return transaction

    # -- updates ------------------------------------------------------------------------------

    def update(self, transaction: LoginTransaction, **changes: Any) -> LoginTransaction:
        """Write ``changes`` if nobody changed the transaction since it was read."""
        updated = replace(transaction, version=transaction.version + 1, **changes)
        now = int(time.time())
        keep = max(1, updated.expires_at + GRACE_SECONDS - now)
        try:
            result = self._cas(
                keys=[self._store.key(self._record(transaction.id))],
                args=[transaction.version, updated.to_json(), keep],
            )
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(f"Redis failed: {type(exc).__name__}") from exc
        if int(result) != 1:
            raise TransactionConflictError(transaction.id)
        if updated.state != transaction.state:
            self.announce(updated, updated.state)
        return updated

    def announce(self, transaction: LoginTransaction, state: str) -> None:
        """Publish ``state`` (a new state, or the transient ``checking``) to the event streams.

        A failed publish is logged, not raised: the change itself is stored, and the page's
        stream re-reads the record on its next heartbeat (and polling is the fallback).
        """
        message = json.dumps(
            {"state": state, "reason": transaction.failure, "version": transaction.version},
            separators=(",", ":"),
        )
        try:
            self._store.publish(events_channel(transaction.id), message)
        except StoreUnavailableError as exc:
            log.warning("login %s: state %s not published: %s", transaction.id[:8], state, exc)

    def mark_qr_shown(self, transaction: LoginTransaction, now: float) -> LoginTransaction:
        """Set ``qr_start`` the first time the QR is shown (later calls change nothing)."""
        for _ in range(5):
            if transaction.qr_start is not None:
                return transaction
            try:
                return self.update(transaction, qr_start=int(now))
            except TransactionConflictError:
                fresh = self.get(transaction.id)
                if fresh is None:
                    return transaction
                transaction = fresh
        raise TransactionConflictError(transaction.id)

    def pick_up(self, transaction: LoginTransaction) -> LoginTransaction | None:
        """Move ``created`` to ``picked_up``; None if someone else picked it up first.

        The write is the versioned compare-and-set, so of any number of concurrent callers
        exactly one gets the transaction back. A conflict caused by another change (the page
        switching language, the QR being shown) is retried on the fresh record.
        """
        for _ in range(10):
            if TxState(transaction.state) is not TxState.CREATED:
                return None
            try:
                return self.update(transaction, state=TxState.PICKED_UP)
            except TransactionConflictError:
                fresh = self.get(transaction.id)
                if fresh is None:
                    return None
                transaction = fresh
        raise TransactionConflictError(transaction.id)

    def extend(self, transaction: LoginTransaction, now: float | None = None) -> LoginTransaction:
        """Give the resident ``ttl`` more seconds from now (bounded, see the module docstring).

        Raises :class:`ExtensionRefusedError`. The device's keys (handoff, QR, the open
        round's nonce) live as long as the record."""
        moment = time.time() if now is None else now
        for _ in range(10):
            state = transaction.status(moment)
            if state is TxState.EXPIRED:
                raise ExtensionRefusedError("expired")
            if state in FINAL_STATES:
                raise ExtensionRefusedError("finished")
            new_expiry = min(int(moment) + self.ttl, transaction.created_at + MAX_LIFETIME)
            if transaction.extensions >= MAX_EXTENSIONS:
                raise ExtensionRefusedError("limit")
            min_gain = max(2, self.ttl // MIN_EXTENSION_GAIN_SHARE)
            if new_expiry - transaction.expires_at < min_gain:
                if transaction.expires_at >= transaction.created_at + MAX_LIFETIME:
                    raise ExtensionRefusedError("limit")
                return transaction  # (nearly) as much time as an extension gives: not counted
            try:
                updated = self.update(
                    transaction, expires_at=new_expiry, extensions=transaction.extensions + 1
                )
            except TransactionConflictError:
                fresh = self.get(transaction.id)
                if fresh is None:
                    raise ExtensionRefusedError("expired") from None
                transaction = fresh
                continue
            keep = max(1, new_expiry + GRACE_SECONDS - int(moment))
            self._store.put(self._handoff(updated.handoff_id), updated.id, ttl=keep)
            self._store.put(self._qr(updated.qr_token), updated.id, ttl=keep)
            if TxState(updated.state) in DEVICE_STATES:
                self._extend_key(self._nonce(updated.id), max(1, new_expiry - int(moment)))
            return updated
        raise TransactionConflictError(transaction.id)

    def _extend_key(self, name: str, ttl: int) -> None:
        """A new TTL for ``name`` if it still exists (a used nonce stays used)."""
        try:
            self._store.client.expire(self._store.key(name), ttl)
        except (RedisError, OSError) as exc:
            raise StoreUnavailableError(f"Redis failed: {type(exc).__name__}") from exc

    def take_nonce(self, transaction: LoginTransaction) -> str | None:
        """The current round's nonce, removed (``GETDEL``): None if already used or expired."""
        raw = self._store.take(self._nonce(transaction.id))
        return None if raw is None else raw.decode("ascii", "replace")

    def new_round(
        self, transaction: LoginTransaction, *, purpose: str, **changes: Any
    ) -> LoginTransaction:
        """Move to a new challenge round (``purpose``) with a fresh nonce."""
        nonce = new_nonce()
        updated = self.update(transaction, purpose=purpose, nonce=nonce, **changes)
        left = updated.expires_at - int(time.time())
        if left > 0:
            self._store.put(self._nonce(transaction.id), nonce, ttl=left)
        return updated

    def discard_nonce(self, transaction: LoginTransaction) -> None:
        """Remove the current nonce (the transaction ended)."""
        self._store.delete(self._nonce(transaction.id))

    def claim_finish(self, transaction: LoginTransaction) -> bool:
        """True for exactly one caller: the one that may issue the code for this login."""
        return self._store.add_once(f"login-finish:{transaction.id}", ttl=self.ttl + GRACE_SECONDS)


def _plausible_id(value: str) -> bool:
    return 16 <= len(value) <= 64 and all(c.isalnum() or c in "-_" for c in value)
