"""The demo relying party's Flask app.

Configuration (``RP_*`` environment variables, or ``create_app(config)``):

=================  ==========================================================================
RP_ISSUER          the provider's issuer URL (discovery at ``<issuer>/.well-known/...``)
RP_CLIENT_ID       the client id registered at the provider
RP_KEY_FILE        this RP's private key as a JWK (JSON) file, for ``private_key_jwt``
RP_REDIRECT_URI    the callback URL registered at the provider (``.../callback``)
RP_SECRET_KEY      the key that signs this app's session cookie
RP_SCOPE           default ``openid name address birthdate gender``
RP_EXPECTED_ACR    the ``acr`` the ID token must carry (default: the provider's card + PIN)
RP_FORMS_DB        the forms tool's SQLite file (default ``var/forms.sqlite3``)
RP_SIGN_CA_FILE    the JPKI signature CA (PEM) that signer certificates must chain to; without
                   it the forms tool cannot accept signed submissions
RP_POST_LOGOUT_REDIRECT_URI
                   where the provider sends the browser after "sign out" (registered at the
                   provider as a post-logout redirect URI; default ``<RP origin>/signed-out``)
=================  ==========================================================================

Sign-out is RP-initiated logout: the local login ends and the browser goes to the provider's
``end_session_endpoint`` with the ID token as ``id_token_hint``, ``client_id``, the
post-logout redirect URI and a ``state`` checked on return. The provider signs the resident
out and tells every other service of that session by back-channel logout; this RP receives
those at ``POST /backchannel-logout`` (register that URL as its ``backchannel_logout_uri``),
validates the logout token (:mod:`relying_party_demo.backchannel`) and ends the local login
whose ``sid`` it names.

The forms tool (``/forms``, ``/staff``: :mod:`relying_party_demo.forms_views`, docs/forms.md)
lives in the same app and uses the same login.

The login is the authorization code flow with PKCE (S256), ``state`` and ``nonce`` (Authlib
generates and checks them), ``private_key_jwt`` client authentication with this RP's own EC
key, RFC 9207 ``iss`` checked on the callback, and the ID token's signature (JWKS), ``iss``,
``aud``, ``nonce``, ``exp`` and ``acr`` checked before the userinfo is read.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from authlib.integrations.base_client import OAuthError
from authlib.integrations.flask_client import OAuth
from authlib.oauth2.rfc7523 import PrivateKeyJWT, private_key_jwt_sign
from cryptography import x509
from flask import Flask, Response, redirect, render_template, request, session, url_for
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from relying_party_demo import form_texts, forms_views
from relying_party_demo.backchannel import EndedSessions, LogoutTokenError, validate
from relying_party_demo.sign_api import SignApi

__all__ = ["DEFAULT_ACR", "DEFAULT_SCOPE", "create_app"]

DEFAULT_SCOPE = "openid name address birthdate gender"
DEFAULT_ACR = "urn:myna-idp:acr:jpki-card-pin"

#: The claims the profile page shows, in order (labels and gender values from the catalogs).
PROFILE_ITEMS = ("name", "address", "birthdate", "gender")
GENDERS = frozenset({"male", "female", "other"})


VERIFIED_CLAIMS_REQUEST = {
    "userinfo": {
        "verified_claims": {
            "verification": {"trust_framework": None, "time": None},
            "claims": {"name": None, "address": None, "birthdate": None, "gender": None},
        }
    }
}
"""Asked for when discovery advertises verified_claims: when the card verified the items."""

ASSERTION_LIFETIME = 60
"""Seconds a client assertion is valid (Authlib's default is an hour; providers refuse that)."""


class ShortLivedPrivateKeyJWT(PrivateKeyJWT):  # type: ignore[misc]
    """``private_key_jwt`` with a short ``exp`` and a fresh ``jti`` per token request."""

    def sign(self, auth: Any, token_endpoint: str) -> str:
        return str(
            private_key_jwt_sign(
                auth.client_secret,
                client_id=auth.client_id,
                token_endpoint=token_endpoint,
                alg=self.alg,
                header={"kid": auth.client_secret.kid} if auth.client_secret.kid else None,
                expires_in=ASSERTION_LIFETIME,
            )
        )


class ConfigurationError(Exception):
    """The demo RP is missing a setting."""


def _load_key(path: str) -> ECKey | RSAKey:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("kty") == "EC":
        return ECKey.import_key(data)
    return RSAKey.import_key(data)


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """The demo RP. ``config`` overrides the ``RP_*`` environment (keys without the prefix)."""
    app = Flask(__name__)
    form_texts.init_app(app)
    app.config.update(SCOPE=DEFAULT_SCOPE, EXPECTED_ACR=DEFAULT_ACR, FORMS_DB="var/forms.sqlite3")
    app.config.from_prefixed_env("RP")
    if config:
        app.config.update(config)
    missing = [
        name
        for name in ("ISSUER", "CLIENT_ID", "KEY_FILE", "REDIRECT_URI", "SECRET_KEY")
        if not app.config.get(name)
    ]
    if missing:
        raise ConfigurationError("missing settings: " + ", ".join(f"RP_{n}" for n in missing))
    issuer = str(app.config["ISSUER"]).rstrip("/")
    if not app.config.get("POST_LOGOUT_REDIRECT_URI"):
        parts = urlsplit(str(app.config["REDIRECT_URI"]))
        app.config["POST_LOGOUT_REDIRECT_URI"] = f"{parts.scheme}://{parts.netloc}/signed-out"
    ended = EndedSessions()
    app.extensions["rp.ended_sessions"] = ended
    app.config.update(
        ISSUER=issuer,
        SESSION_COOKIE_NAME="rp_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=str(app.config["REDIRECT_URI"]).startswith("https://"),
    )
    oauth = OAuth(app)
    key = _load_key(str(app.config["KEY_FILE"]))
    client = oauth.register(
        "myna",
        client_id=app.config["CLIENT_ID"],
        client_secret=key,
        server_metadata_url=issuer + "/.well-known/openid-configuration",
        client_kwargs={
            "scope": app.config["SCOPE"],
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "private_key_jwt",
        },
        client_auth_methods=[ShortLivedPrivateKeyJWT(alg="ES256")],
    )

    sign_ca_file = app.config.get("SIGN_CA_FILE")
    sign_ca = (
        x509.load_pem_x509_certificate(Path(str(sign_ca_file)).read_bytes())
        if sign_ca_file
        else None
    )
    forms_views.install(
        app,
        client=client,
        sign_api=SignApi(issuer, str(app.config["CLIENT_ID"]), key, "ES256"),
        sign_ca=sign_ca,
    )

    @app.before_request
    def forget_ended_login() -> None:
        """A login the provider ended (back-channel logout) is over here too."""
        profile = session.get("profile")
        if isinstance(profile, dict) and ended.ended(profile.get("sid")):
            session.clear()

    @app.get("/")
    def index() -> str:
        return render_template("rp/index.html", profile=session.get("profile"))

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        session.pop("profile", None)
        session.pop("drafts", None)
        session.pop("signing", None)
        after = request.values.get("next", "")
        if after.startswith("/") and not after.startswith("//") and "\\" not in after:
            session["after_login"] = after
        else:
            session.pop("after_login", None)
        extra: dict[str, str] = {}
        metadata = client.load_server_metadata()
        if metadata.get("claims_parameter_supported") and metadata.get("verified_claims_supported"):
            # OpenID Connect for Identity Assurance: when the provider verified the items
            extra["claims"] = json.dumps(VERIFIED_CLAIMS_REQUEST, separators=(",", ":"))
        return client.authorize_redirect(app.config["REDIRECT_URI"], **extra)

    @app.get("/callback")
    def callback() -> Any:
        signing = session.get("signing")
        if isinstance(signing, dict) and request.args.get("state") == signing.get("state"):
            return _signing_callback(signing)
        error = request.args.get("error")
        if error:
            return _failure(error, request.args.get("error_description"), 400)
        if request.args.get("iss") != issuer:  # RFC 9207: the answer comes from our provider
            return _failure("invalid_issuer", "iss is missing or not the expected issuer", 400)
        try:
            token = client.authorize_access_token(
                claims_options={
                    "iss": {"essential": True, "value": issuer},
                    "aud": {"essential": True, "value": app.config["CLIENT_ID"]},
                    "acr": {"essential": True, "value": app.config["EXPECTED_ACR"]},
                    "sub": {"essential": True},
                    "auth_time": {"essential": True},
                }
            )
            userinfo = client.userinfo(token=token)
        except OAuthError as exc:
            return _failure(exc.error or "oauth_error", exc.description, 400)
        except JoseError as exc:  # the ID token's signature or a claim check failed
            return _failure("invalid_id_token", f"{exc.error}: {exc.description}", 400)
        id_token = token["userinfo"]
        if userinfo.get("sub") != id_token["sub"]:
            return _failure("invalid_userinfo", "userinfo sub differs from the ID token", 400)
        session["profile"] = {
            "sub": id_token["sub"],
            "acr": id_token.get("acr"),
            "amr": list(id_token.get("amr") or []),
            "auth_time": id_token.get("auth_time"),
            "sid": id_token.get("sid"),
            "claims": {k: v for k, v in userinfo.items() if k != "sub"},
        }
        # Kept for RP-initiated logout (id_token_hint).
        session["id_token"] = token.get("id_token")
        return redirect(session.pop("after_login", None) or url_for("profile"))

    def _signing_callback(signing: dict[str, Any]) -> Any:
        error = request.args.get("error")
        if error:
            session.pop("signing", None)
            return forms_views.signing_failed(error, request.args.get("error_description"))
        if request.args.get("iss") != issuer:
            session.pop("signing", None)
            return forms_views.signing_failed("invalid_issuer", None)
        try:
            token = client.authorize_access_token(
                claims_options={
                    "iss": {"essential": True, "value": issuer},
                    "aud": {"essential": True, "value": app.config["CLIENT_ID"]},
                    "acr": {"essential": True, "value": app.config["EXPECTED_ACR"]},
                    "sub": {"essential": True},
                }
            )
        except (OAuthError, JoseError):
            session.pop("signing", None)
            return forms_views.signing_failed("invalid_id_token", None)
        return forms_views.finish_signing(signing, dict(token["userinfo"]))

    @app.get("/me")
    def profile() -> Any:
        profile = session.get("profile")
        if profile is None:
            return redirect(url_for("index"))
        claims = profile["claims"]
        rows = []
        lang = form_texts.current_locale()
        for scope in PROFILE_ITEMS:
            if scope not in claims:
                continue
            value = claims[scope]
            if scope == "address" and isinstance(value, dict):
                value = value.get("formatted", "")
            if scope == "gender" and value in GENDERS:
                value = form_texts.text(str(value), lang)
            rows.append((scope, form_texts.text(scope, lang), value))
        return render_template("rp/profile.html", profile=profile, rows=rows)

    @app.post("/logout")
    def logout() -> Any:
        """Sign out here, then at the provider (RP-initiated logout)."""
        hint = session.get("id_token")
        session.clear()
        end_session = client.load_server_metadata().get("end_session_endpoint")
        if not end_session:
            return redirect(url_for("index"))
        state = secrets.token_urlsafe(16)
        session["logout_state"] = state
        params = {
            "client_id": app.config["CLIENT_ID"],
            "post_logout_redirect_uri": app.config["POST_LOGOUT_REDIRECT_URI"],
            "state": state,
        }
        if isinstance(hint, str):
            params["id_token_hint"] = hint
        return redirect(f"{end_session}?{urlencode(params)}")

    @app.get("/signed-out")
    def signed_out() -> Any:
        """Back from the provider's logout; ``state`` must be the one this browser sent."""
        expected = session.pop("logout_state", None)
        if expected is None or request.args.get("state") != expected:
            return _failure("invalid_state", "the sign-out answer does not match", 400)
        return redirect(url_for("index"))

    @app.post("/backchannel-logout")
    def backchannel_logout() -> Response:
        """The provider's logout token: validate it, end the login of its ``sid``."""
        metadata = client.load_server_metadata()
        try:
            claims = validate(
                request.form.get("logout_token"),
                jwks=client.fetch_jwk_set(),
                algorithms=metadata.get("id_token_signing_alg_values_supported") or ["ES256"],
                issuer=issuer,
                client_id=str(app.config["CLIENT_ID"]),
                registry=ended,
            )
        except LogoutTokenError as exc:
            body = json.dumps({"error": "invalid_request", "error_description": str(exc)})
            response = Response(body, status=400, mimetype="application/json")
        else:
            ended.end(str(claims["sid"]))
            response = Response("", status=200)
        response.headers["Cache-Control"] = "no-store"
        return response

    def _failure(code: str, description: str | None, status: int) -> Response:
        body = render_template("rp/error.html", code=code, description=description or "")
        return Response(body, status=status, mimetype="text/html")

    return app


def new_secret() -> str:
    return secrets.token_urlsafe(32)
