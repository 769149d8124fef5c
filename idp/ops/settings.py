"""The ``IDP_*`` settings of :mod:`idp.ops`, validated like the rest (:mod:`idp.config`).

They arrive through ``Settings.extra`` (every config key that ``idp.config.DEFAULTS`` does not
name), so this package needs no change to the shared settings class. A bad value raises
:class:`~idp.config.ConfigError` from ``create_app``, listing every problem.

==============================  ===================  ===========================================
variable                        default              meaning
==============================  ===================  ===========================================
``IDP_CSP_REPORT_ONLY``         ``false``            send the policy as
                                                     ``Content-Security-Policy-Report-Only``
``IDP_CSP_REPORT_URI``          unset                ``report-uri`` of the policy
``IDP_HSTS_MAX_AGE``            ``31536000``         ``Strict-Transport-Security`` max-age on an
                                                     https issuer; ``0`` sends none
``IDP_TRUSTED_PROXIES``         loopback             addresses/networks whose ``X-Forwarded-*``
                                                     headers count (with
                                                     ``IDP_TRUSTED_PROXY_COUNT``)
``IDP_ACCESS_LOG``              ``true``             one log line per request (no query string)
==============================  ===================  ===========================================
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from flask import Flask

from idp.config import ConfigError
from idp.extensions import get_settings
from idp.storage.ephemeral import SENTINEL_SCHEME, SentinelUrl

__all__ = ["DEFAULT_TRUSTED_PROXIES", "OpsSettings", "get_ops_settings", "load_ops_settings"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_TRUSTED_PROXIES: Final = ("127.0.0.0/8", "::1/128")
_EXTENSION: Final = "myna.ops_settings"
_MAX_HSTS: Final = 2 * 365 * 24 * 3600


@dataclass(frozen=True)
class OpsSettings:
    csp_report_only: bool = False
    csp_report_uri: str | None = None
    hsts_max_age: int = 365 * 24 * 3600
    trusted_proxies: tuple[Network, ...] = ()
    access_log: bool = True

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any], *, redis_url: str | None = None) -> OpsSettings:
        problems: list[str] = []
        if redis_url is not None and redis_url.startswith(SENTINEL_SCHEME):
            # Checked here so that a bad Sentinel URL stops the start, not the first request.
            try:
                SentinelUrl.parse(redis_url)
            except ValueError as exc:
                problems.append(f"IDP_REDIS_URL: {exc}")
        report_only = _boolean("CSP_REPORT_ONLY", extra.get("CSP_REPORT_ONLY", False), problems)
        report_uri = extra.get("CSP_REPORT_URI") or None
        if report_uri is not None and (
            not isinstance(report_uri, str)
            or not report_uri.startswith(("https://", "http://", "/"))
            or any(c in report_uri for c in " ;,'\"\r\n")
        ):
            problems.append(
                "IDP_CSP_REPORT_URI must be a URL or an absolute path without ; , or quotes"
            )
            report_uri = None
        hsts = extra.get("HSTS_MAX_AGE", 365 * 24 * 3600)
        if isinstance(hsts, bool) or not isinstance(hsts, int | str):
            problems.append("IDP_HSTS_MAX_AGE must be a number of seconds")
            hsts = 0
        try:
            hsts = int(hsts)
        except ValueError:
            problems.append("IDP_HSTS_MAX_AGE must be a number of seconds")
            hsts = 0
        if not 0 <= hsts <= _MAX_HSTS:
            problems.append(f"IDP_HSTS_MAX_AGE must be between 0 and {_MAX_HSTS}")
        proxies = _networks(extra.get("TRUSTED_PROXIES"), problems)
        access_log = _boolean("ACCESS_LOG", extra.get("ACCESS_LOG", True), problems)
        if problems:
            raise ConfigError(problems)
        return cls(
            csp_report_only=report_only,
            csp_report_uri=report_uri,
            hsts_max_age=hsts,
            trusted_proxies=proxies,
            access_log=access_log,
        )


def load_ops_settings(app: Flask) -> OpsSettings:
    """Validate this package's settings for ``app`` and attach them to it."""
    shared = get_settings(app)
    settings = OpsSettings.from_extra(shared.extra, redis_url=shared.redis_url)
    app.extensions[_EXTENSION] = settings
    return settings


def get_ops_settings(app: Flask) -> OpsSettings:
    settings = app.extensions[_EXTENSION]
    assert isinstance(settings, OpsSettings)
    return settings


def _boolean(name: str, value: Any, problems: list[str]) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
    problems.append(f"IDP_{name} must be true or false")
    return False


def _networks(value: Any, problems: list[str]) -> tuple[Network, ...]:
    if value is None:
        value = DEFAULT_TRUSTED_PROXIES
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    if not isinstance(value, list | tuple):
        problems.append("IDP_TRUSTED_PROXIES must be a list of addresses or networks")
        return ()
    networks: list[Network] = []
    for item in value:
        try:
            networks.append(ipaddress.ip_network(str(item), strict=False))
        except ValueError:
            problems.append(f"IDP_TRUSTED_PROXIES: {item!r} is not an address or network")
    return tuple(networks)
