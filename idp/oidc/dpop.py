"""DPoP (RFC 9449): proof validation, the ``jti`` replay cache, server nonces.

A proof is checked in this order (RFC 9449 section 4.3); the first failure answers
``invalid_dpop_proof`` (``use_dpop_nonce`` for a missing or stale nonce, with a fresh
``DPoP-Nonce`` header):

1. exactly one ``DPoP`` header, a compact JWS of at most 8 KiB;
2. header ``typ`` = ``dpop+jwt``, ``alg`` asymmetric (:data:`DPOP_ALGS`; for ``fapi2`` clients
   PS256 / ES256 / Ed25519), ``jwk`` a public RSA / EC / OKP key;
3. the signature verifies with that ``jwk``;
4. ``htm`` = the request method, ``htu`` = the endpoint URL (query and fragment ignored), both
   derived from the issuer, never from the request's ``Host``;
5. ``iat`` at most ``IDP_DPOP_PROOF_MAX_AGE`` seconds old and not in the future (leeway
   ``IDP_CLOCK_LEEWAY``); ``jti`` 1-255 characters;
6. at a resource (userinfo): ``ath`` = base64url(SHA-256(access token));
7. with ``IDP_DPOP_NONCE_REQUIRED``: ``nonce`` is a current server nonce;
8. ``jti`` not seen before for this key (Redis ``SET NX`` for as long as the proof is valid).

Server nonces are stateless: base64url(HMAC-SHA256(secret key, "dpop-nonce" | period)),
with a period of ``IDP_DPOP_NONCE_LIFETIME`` seconds; the current and the previous period's
nonces are accepted, so every instance that shares the secret accepts every nonce.

The key's RFC 7638 thumbprint (``jkt``) is what tokens are bound to (``cnf.jkt``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import g
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry
from joserfc.jws import JWSRegistry

from idp.config import Settings
from idp.oidc.client_auth import ASSERTION_ALGS, jose_header
from idp.oidc.errors import OAuth2Error, oauth_error
from idp.storage.ephemeral import EphemeralStore

__all__ = ["DPOP_ALGS", "DPoPProof", "DPoPVerifier", "current_proof", "require_binding"]

#: Algorithms accepted for DPoP proofs: asymmetric only.
DPOP_ALGS: tuple[str, ...] = ASSERTION_ALGS

_MAX_PROOF = 8 * 1024
_MAX_HEADER = 4 * 1024
_PUBLIC_KTYS = {"RSA", "EC", "OKP"}
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "k", "oth"}
_G_PROOF = "myna_dpop_proof"


@dataclass(frozen=True)
class DPoPProof:
    """A verified proof: the key's thumbprint, the proof's ``jti`` and ``alg``."""

    jkt: str
    jti: str
    alg: str


def current_proof() -> DPoPProof | None:
    """The proof verified for the current request (None if the request had none)."""
    proof = g.get(_G_PROOF)
    return proof if isinstance(proof, DPoPProof) else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class DPoPVerifier:
    """Checks DPoP proofs for one app (settings + its Redis store)."""

    def __init__(self, settings: Settings, store: Callable[[], EphemeralStore]) -> None:
        self._settings = settings
        self._store = store

    # -- nonces -------------------------------------------------------------------------

    def nonce(self, now: float | None = None) -> str:
        """The server nonce of the current period."""
        return self._nonce_for(int((now or time.time()) // self._settings.dpop_nonce_lifetime))

    def _nonce_for(self, period: int) -> str:
        key = self._settings.secret_key.encode()
        return _b64(hmac.new(key, f"dpop-nonce|{period}".encode(), hashlib.sha256).digest())

    def _nonce_ok(self, value: Any, now: float) -> bool:
        if not isinstance(value, str):
            return False
        period = int(now // self._settings.dpop_nonce_lifetime)
        return any(
            hmac.compare_digest(value.encode(), self._nonce_for(p).encode())
            for p in (period, period - 1)
        )

    # -- proofs -------------------------------------------------------------------------

    def check(
        self,
        headers: Any,
        *,
        method: str,
        url: str,
        access_token: str | None = None,
        algs: Sequence[str] = DPOP_ALGS,
        resource: bool = False,
    ) -> DPoPProof | None:
        """Verify the request's ``DPoP`` header; None if there is none.

        ``resource`` selects the error form: 401 with a ``WWW-Authenticate: DPoP`` challenge
        (a resource such as userinfo) or 400 (the authorization server's endpoints).
        """
        values = headers.getlist("DPoP") if hasattr(headers, "getlist") else []
        if not values:
            if access_token is not None:
                raise self._error("invalid_dpop_proof", "Missing DPoP proof.", resource)
            return None
        if len(values) > 1:
            raise self._error("invalid_dpop_proof", "More than one DPoP header.", resource)
        now = time.time()
        proof, claims = self._verify(values[0], algs, resource)
        self._check_claims(claims, method=method, url=url, now=now, resource=resource)
        if access_token is not None:
            expected = _b64(hashlib.sha256(access_token.encode()).digest())
            if not isinstance(claims.get("ath"), str) or not hmac.compare_digest(
                claims["ath"].encode(), expected.encode()
            ):
                raise self._error(
                    "invalid_dpop_proof", "The proof's ath does not match the token.", resource
                )
        if self._settings.dpop_nonce_required and not self._nonce_ok(claims.get("nonce"), now):
            raise self._error("use_dpop_nonce", "Use the server's DPoP nonce.", resource)
        digest = hashlib.sha256(f"{proof.jkt}|{proof.jti}".encode()).hexdigest()
        ttl = self._settings.dpop_proof_max_age + self._settings.clock_leeway + 1
        if not self._store().add_once(f"dpop-jti:{digest}", ttl=ttl):
            raise self._error("invalid_dpop_proof", "The DPoP proof was already used.", resource)
        setattr(g, _G_PROOF, proof)
        return proof

    def _verify(
        self, value: str, algs: Sequence[str], resource: bool
    ) -> tuple[DPoPProof, dict[str, Any]]:
        if len(value) > _MAX_PROOF or value.count(".") != 2:
            raise self._error("invalid_dpop_proof", "The DPoP proof is not a JWS.", resource)
        header = jose_header(value)
        if header.get("typ") != "dpop+jwt":
            raise self._error(
                "invalid_dpop_proof", "The DPoP proof typ must be dpop+jwt.", resource
            )
        alg = header.get("alg")
        if alg not in algs:
            raise self._error(
                "invalid_dpop_proof", "The DPoP proof algorithm is not allowed.", resource
            )
        jwk = header.get("jwk")
        if (
            not isinstance(jwk, dict)
            or jwk.get("kty") not in _PUBLIC_KTYS
            or _PRIVATE_MEMBERS & jwk.keys()
        ):
            raise self._error(
                "invalid_dpop_proof", "The DPoP proof jwk must be a public key.", resource
            )
        try:
            key = JWKRegistry.import_key(jwk)
            registry = JWSRegistry(algorithms=[str(alg)])
            registry.max_header_length = _MAX_HEADER  # the header carries the whole jwk
            token = jwt.decode(value, key, registry=registry)
            jkt = key.thumbprint()
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise self._error(
                "invalid_dpop_proof", "The DPoP proof signature is invalid.", resource
            ) from exc
        claims = dict(token.claims)
        jti = claims.get("jti")
        if not isinstance(jti, str) or not 0 < len(jti) <= 255:
            raise self._error("invalid_dpop_proof", "The DPoP proof needs a jti.", resource)
        return DPoPProof(jkt=jkt, jti=jti, alg=str(alg)), claims

    def _check_claims(
        self, claims: dict[str, Any], *, method: str, url: str, now: float, resource: bool
    ) -> None:
        if claims.get("htm") != method:
            raise self._error("invalid_dpop_proof", "The DPoP proof htm does not match.", resource)
        if not _same_url(claims.get("htu"), url):
            raise self._error("invalid_dpop_proof", "The DPoP proof htu does not match.", resource)
        iat = claims.get("iat")
        if isinstance(iat, bool) or not isinstance(iat, int | float):
            raise self._error("invalid_dpop_proof", "The DPoP proof needs an iat.", resource)
        if iat > now + self._settings.clock_leeway or (
            now - iat > self._settings.dpop_proof_max_age + self._settings.clock_leeway
        ):
            raise self._error(
                "invalid_dpop_proof", "The DPoP proof iat is outside the window.", resource
            )

    def _error(self, code: str, description: str, resource: bool) -> OAuth2Error:
        headers: list[tuple[str, str]] = []
        if code == "use_dpop_nonce":
            headers.append(("DPoP-Nonce", self.nonce()))
        if resource:
            algs = " ".join(DPOP_ALGS)
            headers.append(
                (
                    "WWW-Authenticate",
                    f'DPoP error="{code}", error_description="{description}", algs="{algs}"',
                )
            )
            return oauth_error(code, description, status=401, headers=headers)
        return oauth_error(code, description, headers=headers or None)


def _same_url(htu: Any, expected: str) -> bool:
    if not isinstance(htu, str) or len(htu) > 2048:
        return False
    got, want = urlsplit(htu), urlsplit(expected)
    return (
        got.scheme.lower() == want.scheme.lower()
        and got.netloc.lower() == want.netloc.lower()
        and (got.path or "/") == (want.path or "/")
    )


def require_binding(client: Any, bound_jkt: str | None) -> None:
    """At the token endpoint, once the client is known: a client that requires DPoP sent a
    proof; a ``fapi2`` client used a FAPI 2.0 algorithm; a code or refresh token bound to a key
    (``dpop_jkt``, public clients' refresh tokens) comes with a proof of that key."""
    proof = current_proof()
    if proof is None and client.requires_dpop:
        raise oauth_error("invalid_request", "This client must send a DPoP proof.")
    if proof is not None and proof.alg not in client.signing_algs(DPOP_ALGS):
        raise oauth_error("invalid_dpop_proof", "The DPoP proof algorithm is not allowed.")
    if bound_jkt is not None and (proof is None or proof.jkt != bound_jkt):
        raise oauth_error("invalid_grant", "The grant is bound to another DPoP key.")
