"""Login transactions between the browser and a card device (a phone, or the desktop agent).

- ``transaction``: the transaction in Redis, its states, the browser-binding cookie.
- ``device_api``: the ``/device/v1`` JSON API the device talks to.
- ``login``: verification of a card response (validation, nonce, enrollment rounds).
- ``pages``: the login page, its status, consent, cancel and retry (the browser side).
- ``qr`` / ``qr_image``: the rotating QR code's frames and their drawing as inline SVG.
- ``events``: the login page's live status (server-sent events over Redis pub/sub).
- ``ratelimit``: counters on transaction creation and pickups.
- ``trust``: anchors and CRLs from settings.
- ``device_client``: the device side (fetch challenge, drive the card, post the response),
  shared by the desktop agent, the demo and the tests; it imports nothing from Flask.

Importing this package has no side effects; :func:`init_app` wires it into an app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["init_app"]


def init_app(app: Flask) -> None:
    """Register the device API and the login pages, and make the card login the login starter."""
    from idp.handoff import device_api, pages, trust
    from idp.oidc.authorize import register_login_starter

    trust.init_trust(app)
    app.register_blueprint(device_api.bp)
    app.register_blueprint(pages.bp)
    register_login_starter(app, pages.start_login)
