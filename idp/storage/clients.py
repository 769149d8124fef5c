"""Registered relying parties (OAuth clients) and the queries on them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, String, Text, false, select, text
from sqlalchemy.orm import Mapped, mapped_column

from idp.storage.base import Base, UtcDateTime, db, utcnow

__all__ = ["Client", "add_client", "get_client", "list_clients", "remove_client"]


class Client(Base):
    """A relying party. ``name`` is the Japanese display name shown to residents."""

    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    logo_uri: Mapped[str | None] = mapped_column(Text)
    redirect_uris: Mapped[list[str]] = mapped_column(JSON)
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    client_secret_hash: Mapped[str | None] = mapped_column(String(200))
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    jwks_uri: Mapped[str | None] = mapped_column(Text)
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(16), default="ES256")
    sector_identifier: Mapped[str | None] = mapped_column(String(255))
    allowed_scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    # Security settings (migration 0002; see docs/integrators.md, "Client settings").
    #: A named profile that switches several settings on at once: None or "fapi2".
    profile: Mapped[str | None] = mapped_column(String(16))
    #: Authorization requests only by reference to a pushed request (RFC 9126).
    require_pushed_authorization_requests: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    #: Authorization requests only as signed request objects (RFC 9101).
    require_signed_request_object: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    #: Token requests only with a DPoP proof; access tokens always sender-constrained (RFC 9449).
    dpop_bound_access_tokens: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    #: A resource server: may introspect any access token, not only its own (RFC 7662).
    resource_server: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    # Logout settings (migration 0003; see docs/sessions.md).
    #: Exact URIs the resident may be sent back to after RP-initiated logout.
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(
        JSON, default=list, server_default=text("'[]'")
    )
    #: Where logout tokens are POSTed (OpenID Connect Back-Channel Logout 1.0), or None.
    backchannel_logout_uri: Mapped[str | None] = mapped_column(Text)
    #: The client needs ``sid`` in logout tokens (always sent here; recorded for discovery).
    backchannel_logout_session_required: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )

    def __repr__(self) -> str:
        return f"<Client {self.client_id} {self.token_endpoint_auth_method}>"


def get_client(client_id: str) -> Client | None:
    """The client with ``client_id``, or None."""
    return db.session.get(Client, client_id)


def list_clients() -> list[Client]:
    """All clients, oldest first."""
    return list(db.session.scalars(select(Client).order_by(Client.created_at, Client.client_id)))


def add_client(client: Client) -> Client:
    """Insert ``client`` (validated by the caller) and commit."""
    db.session.add(client)
    db.session.commit()
    return client


def remove_client(client_id: str) -> bool:
    """Delete the client; True if it existed."""
    client = db.session.get(Client, client_id)
    if client is None:
        return False
    db.session.delete(client)
    db.session.commit()
    return True
