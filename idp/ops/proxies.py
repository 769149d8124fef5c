"""Forwarded headers count only when they come from a configured proxy.

Behind a reverse proxy, ``IDP_TRUSTED_PROXY_COUNT`` (> 0) makes the app apply Werkzeug's
``ProxyFix`` (:mod:`idp.app`): the client address, scheme and host are taken from the last
``X-Forwarded-For``/``-Proto``/``-Host`` entries the proxies added. That alone trusts whoever
connects: a client reaching the app's port directly could claim any address (and so dodge the
per-address rate limits). :class:`TrustedProxies` sits in front of ``ProxyFix`` and drops every
``X-Forwarded-*`` and ``Forwarded`` header unless the connection comes from an address in
``IDP_TRUSTED_PROXIES`` (default: loopback). A connection over a Unix socket (no peer address)
comes from this machine and counts as the proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["TrustedProxies"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """WSGI middleware: forwarded headers only from ``networks`` (see the module docstring)."""

    def __init__(self, app: WSGIApplication, networks: Iterable[Network]) -> None:
        self.app = app
        self.networks = tuple(networks)

    def trusted(self, remote_addr: str | None) -> bool:
        if not remote_addr:
            return True  # a Unix socket: only this machine can connect
        try:
            address = ipaddress.ip_address(remote_addr)
        except ValueError:
            return True  # a socket path, not an address
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        if not self.trusted(environ.get("REMOTE_ADDR")):
            for key in [k for k in environ if k.startswith("HTTP_X_FORWARDED_")]:
                del environ[key]
            environ.pop("HTTP_FORWARDED", None)
        return self.app(environ, start_response)
