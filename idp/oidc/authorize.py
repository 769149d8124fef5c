"""The seam between the authorization endpoint and the card login.

1. ``GET|POST /authorize`` resolves a pushed request (``request_uri``) or a signed request
   object (``request``) and the client's policies (:mod:`pushed`), validates the request
   completely (Authlib + :mod:`request_checks`) and builds an :class:`AuthorizationContext`.
   Errors: a redirect to the registered URI with ``error``, ``state`` and ``iss``, or an error
   page when there is no safe URI.
2. It hands the context to the login starter registered with :func:`register_login_starter`
   (a ``callable(ctx) -> Response``, e.g. the card login page); without one, a 503 page.
3. When the resident has logged in and consented, the login code calls
   :func:`finish_authorization` (code issued, release recorded, redirect with ``code``,
   ``state``, ``iss``) or :func:`deny_authorization` (redirect with an error).

The context is plain data (``to_dict``/``from_dict``) so the login transaction can keep it in
Redis and finish on another instance.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import Flask, Response, current_app

from idp.extensions import get_settings, get_store
from idp.oidc import errors
from idp.oidc.claims import SIGN, SUPPORTED_SCOPES
from idp.oidc.claims_request import (
    items_of_plan,
    parse_claims,
    plan_for,
    requested_sub,
    restrict_plan,
)
from idp.oidc.clients import OAuthClient
from idp.oidc.grants import AuthenticatedResident
from idp.oidc.pushed import resolve_authorization_request
from idp.oidc.server import get_server
from idp.oidc.sessions import (
    SessionInfo,
    acr_satisfies,
    client_sid,
    current_session,
    end_session,
    hint_audience,
    open_session,
    record_client,
    session_amr,
    set_session_cookie,
    verify_id_token_hint,
)
from idp.oidc.sign_transactions import SignTransactionStore
from idp.oidc.subject import pairwise_sub
from idp.storage.audit import record_release
from idp.storage.consents import get_consent
from idp.storage.ephemeral import StoreUnavailableError

__all__ = [
    "AuthorizationContext",
    "LoginStarter",
    "begin_authorization",
    "deny_authorization",
    "finish_authorization",
    "register_login_starter",
]

log = logging.getLogger(__name__)

LoginStarter = Callable[["AuthorizationContext"], Response]
_STARTER = "myna.login_starter"

#: Errors the login code may end an authorization with (see deny_authorization).
DENIAL_ERRORS = frozenset(
    {
        "access_denied",
        "login_required",
        "consent_required",
        "interaction_required",
        "account_selection_required",
        "temporarily_unavailable",
        "server_error",
    }
)


def _new_request_id() -> str:
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class AuthorizationContext:
    """A fully validated authorization request, as the login flow needs it."""

    client_id: str
    client_name: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str
    nonce: str
    code_challenge: str
    code_challenge_method: str
    prompt: tuple[str, ...] = ()
    max_age: int | None = None
    login_hint: str | None = None
    acr_values: tuple[str, ...] = ()
    ui_locales: tuple[str, ...] = ()
    client_name_en: str | None = None
    #: The client's registered logo (an https URL checked at registration), if any.
    client_logo_uri: str | None = None
    request_id: str = field(default_factory=_new_request_id)
    #: The release plan when the request had a ``claims`` parameter (:mod:`claims_request`);
    #: its items are already in ``scopes``.
    claims: dict[str, Any] | None = None
    #: RFC 9449 section 10: the DPoP key thumbprint the code will be bound to.
    dpop_jkt: str | None = None
    #: The signature transaction (scope ``sign``, :mod:`idp.oidc.sign_transactions`) this
    #: request names; checked once, at ``/authorize`` (not part of :meth:`to_params`).
    sign_transaction_id: str | None = None
    #: The request's ``id_token_hint`` (checked against the provider session, not replayed).
    id_token_hint: str | None = None

    @property
    def requested_items(self) -> tuple[str, ...]:
        """The consent items asked for (every scope but ``openid``, including those the
        ``claims`` parameter implies), in request order."""
        return tuple(s for s in self.scopes if s != "openid")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (tuples become lists)."""
        data = asdict(self)
        for name in ("scopes", "prompt", "acr_values", "ui_locales"):
            data[name] = list(data[name])
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuthorizationContext:
        """The inverse of :meth:`to_dict`; ``ValueError`` on anything malformed."""
        try:
            max_age = data.get("max_age")
            if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int)):
                raise TypeError("max_age")
            claims = data.get("claims")
            if claims is not None and not isinstance(claims, dict):
                raise TypeError("claims")
            return cls(
                client_id=_text(data, "client_id"),
                client_name=_text(data, "client_name"),
                redirect_uri=_text(data, "redirect_uri"),
                scopes=_texts(data, "scopes"),
                state=_text(data, "state"),
                nonce=_text(data, "nonce"),
                code_challenge=_text(data, "code_challenge"),
                code_challenge_method=_text(data, "code_challenge_method"),
                prompt=_texts(data, "prompt"),
                max_age=max_age,
                login_hint=_optional_text(data, "login_hint"),
                acr_values=_texts(data, "acr_values"),
                ui_locales=_texts(data, "ui_locales"),
                client_name_en=_optional_text(data, "client_name_en"),
                client_logo_uri=_optional_text(data, "client_logo_uri"),
                request_id=_text(data, "request_id"),
                claims=claims,
                dpop_jkt=_optional_text(data, "dpop_jkt"),
                sign_transaction_id=_optional_text(data, "sign_transaction_id"),
                id_token_hint=_optional_text(data, "id_token_hint"),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed authorization context: {exc}") from exc

    def to_params(self) -> dict[str, str]:
        """The authorization request parameters (to validate the request again at the end)."""
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.scopes),
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.code_challenge,
            "code_challenge_method": self.code_challenge_method,
        }
        if self.max_age is not None:
            params["max_age"] = str(self.max_age)
        if self.login_hint:
            params["login_hint"] = self.login_hint
        if self.acr_values:
            params["acr_values"] = " ".join(self.acr_values)
        if self.ui_locales:
            params["ui_locales"] = " ".join(self.ui_locales)
        if self.claims is not None:
            params["claims"] = json.dumps(self.claims, ensure_ascii=False, separators=(",", ":"))
        if self.dpop_jkt:
            params["dpop_jkt"] = self.dpop_jkt
        return params


def register_login_starter(app: Flask, starter: LoginStarter) -> None:
    """Make ``starter`` the login that ``/authorize`` hands valid requests to."""
    app.extensions[_STARTER] = starter


def begin_authorization() -> Response:
    """The ``/authorize`` view: validate, build the context, answer from the provider session
    when it satisfies the request (:func:`_session_decision`), else start the card login."""
    settings = get_settings()
    server = get_server()
    try:
        # The provider decides prompt=none itself (below), from its session: Authlib's own
        # check would refuse every prompt=none without an end user.
        grant = server.get_consent_grant(
            resolve_authorization_request(server), end_user=_DECIDED_BY_PROVIDER
        )
        ctx = _context_from_grant(grant)
    except OAuth2Error as error:
        return errors.authorization_error_response(error, issuer=settings.issuer)
    try:
        session = current_session()
        problem = _session_decision(ctx, session)
    except StoreUnavailableError:
        log.error("store unavailable while reading the provider session")
        return deny_authorization(ctx, "temporarily_unavailable")
    if problem is None:
        assert session is not None
        return finish_authorization(
            ctx,
            resident_id=session.resident_id,
            granted_scopes=ctx.scopes,
            auth_time=session.auth_time,
            amr=session_amr(session.sid),
            acr=session.acr,
            session=session,
        )
    if "none" in ctx.prompt:
        code, description = problem
        return deny_authorization(ctx, code, description)
    starter = current_app.extensions.get(_STARTER)
    if starter is None:
        log.error("no login starter registered; /authorize cannot continue")
        return errors.error_page(
            "temporarily_unavailable", "No login method is configured.", status=503
        )
    # The hint has done its work; the login transaction does not carry it.
    response = starter(replace(ctx, id_token_hint=None))
    assert isinstance(response, Response)
    return response


#: What ``/authorize`` tells Authlib about the end user (truthy: the provider decides).
_DECIDED_BY_PROVIDER = object()


def _session_decision(
    ctx: AuthorizationContext, session: SessionInfo | None
) -> tuple[str, str] | None:
    """None when ``session`` answers the request without any interaction; otherwise the error
    a ``prompt=none`` request ends with (any other request goes to the card login)."""
    if session is None:
        return "login_required", "There is no provider session."
    if "login" in ctx.prompt or "select_account" in ctx.prompt:
        return "login_required", "prompt asks for a new login."
    if ctx.max_age is not None and (
        ctx.max_age == 0 or time.time() - session.auth_time > ctx.max_age
    ):
        return "login_required", "The authentication is older than max_age."
    if not acr_satisfies(session.acr, ctx.acr_values):
        return "login_required", "The session's authentication is weaker than acr_values."
    server = get_server()
    sub = _sub_for(server, ctx.client_id, session.resident_id)
    if ctx.id_token_hint is not None:
        claims = verify_id_token_hint(ctx.id_token_hint)
        if claims is None or hint_audience(claims) != ctx.client_id:
            return "login_required", "The id_token_hint is not an ID token issued to this client."
        if claims["sub"] != sub:
            return "login_required", "The id_token_hint names another resident."
    wanted_sub = requested_sub(ctx.claims)
    if wanted_sub is not None and wanted_sub != sub:
        return "login_required", "The session belongs to another resident than the requested sub."
    if SIGN in ctx.scopes:
        return "login_required", "A signature needs the card."
    if _consent_needed(session.resident_id, ctx):
        return "consent_required", "The resident has not consented to every requested item."
    return None


def _consent_needed(resident_id: str, ctx: AuthorizationContext) -> bool:
    """Whether the consent page must be shown (``prompt=consent``, or an item not consented)."""
    if "consent" in ctx.prompt:
        return True
    items = ctx.requested_items
    if not items:
        return False
    consent = get_consent(resident_id, ctx.client_id)
    return consent is None or not set(items) <= set(consent.scopes)


def finish_authorization(
    ctx: AuthorizationContext,
    *,
    resident_id: str,
    granted_scopes: Sequence[str],
    auth_time: int,
    amr: Sequence[str],
    acr: str,
    session: SessionInfo | None = None,
) -> Response:
    """Issue the code for a logged-in, consenting resident and redirect back to the client.

    ``granted_scopes`` must be a subset of ``ctx.scopes`` (``openid`` is always included).
    An ``auth_time`` older than the request's ``max_age`` ends in ``login_required``.
    Records a release row (who, which client, which items, when) with every code it issues.

    Without ``session`` (a card login just happened) it opens a provider session and sets its
    cookie on the redirect: the browser's current session is refreshed in place when it is the
    same resident's, ended (with back-channel logout) when it is another resident's. With
    ``session`` (answered from the session) the code joins that session. Either way the
    client is recorded in the session and the ID token carries its ``sid``.
    """
    granted = _granted(ctx, granted_scopes)
    settings = get_settings()
    if ctx.max_age is not None and time.time() - auth_time > ctx.max_age + settings.clock_leeway:
        return deny_authorization(
            ctx, "login_required", "The authentication is older than max_age."
        )
    server = get_server()
    wanted_sub = requested_sub(ctx.claims)
    if wanted_sub is not None and wanted_sub != _sub_for(server, ctx.client_id, resident_id):
        return deny_authorization(
            ctx, "login_required", "The card belongs to another resident than the requested sub."
        )
    request = _replay_request(ctx, settings.endpoint("/authorize"))
    cookie_secret: str | None = None
    try:
        if session is None:
            session, cookie_secret = _open_session(resident_id, int(auth_time), acr, amr)
    except StoreUnavailableError:
        log.error("store unavailable while opening the provider session")
        return deny_authorization(ctx, "temporarily_unavailable")
    user = AuthenticatedResident(
        resident_id=resident_id,
        granted_scopes=granted,
        auth_time=int(auth_time),
        amr=tuple(amr),
        acr=acr,
        request_id=ctx.request_id,
        sid=client_sid(session.sid, ctx.client_id),
    )
    try:
        grant = server.get_authorization_grant(request)
        redirect_uri = grant.validate_authorization_request()
        status, _, headers = grant.create_authorization_response(redirect_uri, user)
        # Recorded once the code exists and before it is delivered: if recording fails, the
        # request fails and the code (never seen by the client) expires unused.
        record_release(
            resident_id=resident_id,
            client_id=ctx.client_id,
            items=[s for s in granted if s != "openid"],
            request_id=ctx.request_id,
        )
        record_client(session, ctx.client_id)
    except OAuth2Error as error:
        error.state = ctx.state
        return errors.authorization_error_response(error, issuer=settings.issuer)
    except StoreUnavailableError:
        log.error("store unavailable while issuing a code")
        return deny_authorization(ctx, "temporarily_unavailable")
    response = server.handle_response(status, "", headers)
    server.issuer.add_issuer_parameter(server, response)
    response.headers["Cache-Control"] = "no-store"
    assert isinstance(response, Response)
    if cookie_secret is not None:
        set_session_cookie(response, cookie_secret)
    return response


def _open_session(
    resident_id: str, auth_time: int, acr: str, amr: Sequence[str]
) -> tuple[SessionInfo, str | None]:
    """The session of a card login that just happened (see :func:`finish_authorization`)."""
    previous = current_session()
    if previous is not None and previous.resident_id != resident_id:
        end_session(previous.sid)
        previous = None
    return open_session(
        resident_id=resident_id, auth_time=auth_time, acr=acr, amr=amr, replace=previous
    )


def deny_authorization(
    ctx: AuthorizationContext, error: str = "access_denied", description: str | None = None
) -> Response:
    """End the authorization with ``error``: redirect to the client with ``state`` and ``iss``."""
    if error not in DENIAL_ERRORS:
        raise ValueError(f"{error!r} is not an error the login may end with")
    settings = get_settings()
    client = get_server().query_client(ctx.client_id)
    redirect_uri = (
        ctx.redirect_uri if client and client.check_redirect_uri(ctx.redirect_uri) else None
    )
    oauth = errors.oauth_error(error, description, state=ctx.state, redirect_uri=redirect_uri)
    return errors.authorization_error_response(oauth, issuer=settings.issuer)


def _sub_for(server: Any, client_id: str, resident_id: str) -> str | None:
    client = server.query_client(client_id)
    if client is None:
        return None
    return pairwise_sub(
        server.settings.pairwise_secret, sector=client.sector, resident_id=resident_id
    )


def _scopes_and_plan(
    client: OAuthClient, scopes: tuple[str, ...], raw_claims: Any
) -> tuple[tuple[str, ...], dict[str, Any] | None]:
    """The request's scopes plus the items its ``claims`` parameter asks for, and the plan."""
    if raw_claims in (None, ""):
        return scopes, None
    plan = restrict_plan(plan_for(parse_claims(raw_claims), scopes), client.allowed_items())
    extra = sorted(items_of_plan(plan) - set(scopes), key=SUPPORTED_SCOPES.index)
    return (*scopes, *extra), plan


def _context_from_grant(grant: Any) -> AuthorizationContext:
    data = grant.request.payload.data
    client = grant.request.client
    max_age = data.get("max_age")
    scopes, plan = _scopes_and_plan(client, tuple(grant.request.scope.split()), data.get("claims"))
    return AuthorizationContext(
        client_id=client.get_client_id(),
        client_name=client.name,
        client_name_en=client.name_en,
        client_logo_uri=client.logo_uri,
        redirect_uri=grant.redirect_uri,
        scopes=scopes,
        claims=plan,
        state=data["state"],
        nonce=data["nonce"],
        code_challenge=data["code_challenge"],
        code_challenge_method=data["code_challenge_method"],
        prompt=tuple(str(data.get("prompt") or "").split()),
        max_age=int(max_age) if max_age not in (None, "") else None,
        login_hint=data.get("login_hint") or None,
        acr_values=tuple(str(data.get("acr_values") or "").split()),
        ui_locales=tuple(str(data.get("ui_locales") or "").split()),
        dpop_jkt=data.get("dpop_jkt") or None,
        sign_transaction_id=_sign_transaction(client, scopes, data, grant.redirect_uri),
        id_token_hint=str(data.get("id_token_hint") or "") or None,
    )


def _sign_transaction(
    client: OAuthClient, scopes: tuple[str, ...], data: Mapping[str, Any], redirect_uri: str
) -> str | None:
    """The ``sign_transaction_id`` of a request with scope ``sign``: it must name an unexpired,
    unsigned transaction of this client (``invalid_request``, redirected, otherwise)."""
    value = data.get("sign_transaction_id") or None
    if value is None and SIGN not in scopes:
        return None
    state = data.get("state")
    if value is None:
        raise errors.oauth_error(
            "invalid_request",
            "Scope 'sign' needs 'sign_transaction_id'.",
            state=state,
            redirect_uri=redirect_uri,
        )
    if SIGN not in scopes:
        raise errors.oauth_error(
            "invalid_request",
            "'sign_transaction_id' needs scope 'sign'.",
            state=state,
            redirect_uri=redirect_uri,
        )
    store = SignTransactionStore(get_store())
    transaction = store.get(str(value))
    if (
        transaction is None
        or transaction.client_id != client.get_client_id()
        or transaction.expired(time.time())
        or store.is_claimed(transaction.id)
    ):
        raise errors.oauth_error(
            "invalid_request",
            "'sign_transaction_id' is unknown, expired or already used.",
            state=state,
            redirect_uri=redirect_uri,
        )
    return transaction.id


def _replay_request(ctx: AuthorizationContext, uri: str) -> OAuth2Request:
    request = OAuth2Request("GET", uri)
    request.payload = BasicOAuth2Payload(ctx.to_params())
    return request


def _granted(ctx: AuthorizationContext, granted_scopes: Sequence[str]) -> tuple[str, ...]:
    extra = set(granted_scopes) - set(ctx.scopes)
    if extra:
        raise ValueError(f"scopes not requested: {sorted(extra)}")
    wanted = set(granted_scopes) | {"openid"}
    return tuple(s for s in ctx.scopes if s in wanted)


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data[name]
    if not isinstance(value, str):
        raise TypeError(name)
    return value


def _optional_text(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise TypeError(name)
    return value


def _texts(data: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = data.get(name, ())
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise TypeError(name)
    return tuple(value)
