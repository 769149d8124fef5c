"""OpenID Connect Back-Channel Logout 1.0: logout tokens and their delivery.

A logout token is a JWT signed like the client's ID tokens (its
``id_token_signed_response_alg``, the current key, ``kid`` in the header) with
``typ: logout+jwt`` and the claims ``iss aud iat exp jti sub sid events`` (``events`` =
``{"http://schemas.openid.net/event/backchannel-logout": {}}``; never a ``nonce``). ``sub`` is
the client's pairwise subject, ``sid`` the session id that client saw in its ID tokens.

Delivery: one ``POST`` (``application/x-www-form-urlencoded``, ``logout_token=...``) to each
client's registered ``backchannel_logout_uri``, all clients at once, redirects not followed,
each bounded by ``IDP_BACKCHANNEL_LOGOUT_TIMEOUT`` seconds. A 2xx answer counts as delivered;
anything else (non-2xx, timeout, connection refused) is logged, counted in
``myna_backchannel_logouts{result}`` and reported back -- never retried, never waited on
longer than the timeout, so a dead relying party cannot hold a resident's logout.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Final

import requests
from joserfc import jwt

from idp.extensions import get_settings
from idp.oidc.clients import OAuthClient, load_client
from idp.oidc.server import get_keyring
from idp.oidc.subject import pairwise_sub
from idp.ops.metrics import BACKCHANNEL_LOGOUTS

__all__ = [
    "LOGOUT_EVENT",
    "LOGOUT_TOKEN_TTL",
    "Delivery",
    "Notice",
    "deliver_logout",
    "logout_token",
]

log = logging.getLogger(__name__)

LOGOUT_EVENT: Final = "http://schemas.openid.net/event/backchannel-logout"
#: Seconds a logout token is valid (relying parties reject it afterwards).
LOGOUT_TOKEN_TTL: Final = 120
_MAX_PARALLEL: Final = 8


@dataclass(frozen=True)
class Notice:
    """Tell ``client_id`` that the resident's session ``sid`` (as that client knows it) ended."""

    client_id: str
    resident_id: str
    sid: str


@dataclass(frozen=True)
class Delivery:
    """The outcome for one notice: ``result`` is ``delivered`` or why it failed."""

    client_id: str
    result: str

    @property
    def ok(self) -> bool:
        return self.result == "delivered"


def logout_token(client: OAuthClient, *, resident_id: str, sid: str) -> str:
    """A signed logout token for ``client`` about the resident's session ``sid``."""
    settings = get_settings()
    alg = str(client.id_token_signed_response_alg or settings.default_id_token_alg)
    active = get_keyring().signing_key(alg)
    now = int(time.time())
    claims = {
        "iss": settings.issuer,
        "aud": client.get_client_id(),
        "iat": now,
        "exp": now + LOGOUT_TOKEN_TTL,
        "jti": secrets.token_urlsafe(16),
        "sub": pairwise_sub(
            settings.pairwise_secret, sector=client.sector, resident_id=resident_id
        ),
        "sid": sid,
        "events": {LOGOUT_EVENT: {}},
    }
    header = {"alg": active.alg, "kid": active.kid, "typ": "logout+jwt"}
    return jwt.encode(header, claims, active.key)


def _post(uri: str, token: str, timeout: float) -> str:
    try:
        answer = requests.post(
            uri,
            data={"logout_token": token},
            timeout=(timeout, timeout),
            allow_redirects=False,
            headers={"Cache-Control": "no-cache"},
        )
    except requests.Timeout:
        return "timeout"
    except requests.RequestException:
        return "unreachable"
    return "delivered" if 200 <= answer.status_code < 300 else "refused"


def deliver_logout(notices: Sequence[Notice]) -> list[Delivery]:
    """Send a logout token for each notice whose client registered a ``backchannel_logout_uri``
    (clients without one are skipped); the outcomes, at most one timeout later."""
    jobs: list[tuple[str, str, str]] = []
    for notice in notices:
        client = load_client(notice.client_id)
        uri = client.row.backchannel_logout_uri if client is not None else None
        if client is None or not uri:
            continue
        token = logout_token(client, resident_id=notice.resident_id, sid=notice.sid)
        jobs.append((notice.client_id, uri, token))
    if not jobs:
        return []
    timeout = float(get_settings().backchannel_logout_timeout)
    pool = ThreadPoolExecutor(max_workers=min(_MAX_PARALLEL, len(jobs)))
    try:
        futures = [pool.submit(_post, uri, token, timeout) for _, uri, token in jobs]
        # Connect and read are each bounded by the timeout; queued posts add rounds.
        rounds = -(-len(jobs) // _MAX_PARALLEL)
        wait(futures, timeout=rounds * 2 * timeout + 1)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    deliveries = []
    for (client_id, _, _), future in zip(jobs, futures, strict=True):
        result = future.result() if future.done() and not future.cancelled() else "timeout"
        BACKCHANNEL_LOGOUTS.labels(result=result).inc()
        if result != "delivered":
            log.warning("back-channel logout to client %s failed: %s", client_id, result)
        deliveries.append(Delivery(client_id, result))
    return deliveries
