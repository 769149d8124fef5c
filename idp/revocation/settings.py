"""The ``IDP_*`` settings of the revocation data, validated like the rest (:mod:`idp.config`).

They arrive through ``Settings.extra``; :meth:`RevocationSettings.from_extra` turns them into
typed values and raises :class:`~idp.config.ConfigError` listing every problem, so a bad value
stops ``create_app`` (``idp.handoff.trust.init_trust`` calls it).

===========================  ==========  ======================================================
variable                     default     meaning
===========================  ==========  ======================================================
``IDP_JPKI_CRL_FILES``       none        CRL files (PEM or DER), a JSON list or paths joined
                                         by ``:``
``IDP_JPKI_CRL_URLS``        none        CRL URLs (http or https), a JSON list or space-separated
``IDP_CRL_REFRESH_SECONDS``  ``3600``    seconds between refreshes (earlier when a CRL's nextUpdate
                                         comes first; jittered by up to 10 %)
``IDP_CRL_RETRY_SECONDS``    ``60``      seconds before retrying after a failed fetch
``IDP_CRL_FETCH_TIMEOUT``    ``30``      seconds for one CRL download
``IDP_CRL_GRACE``            ``300``     seconds a CRL stays usable past its nextUpdate
``IDP_CRL_MAX_AGE``          ``172800``  staleness limit: seconds after its thisUpdate a CRL stops
                                         being usable, whatever its nextUpdate says
``IDP_OCSP_URL``             none        OCSP responder (http or https), asked before the CRLs
``IDP_OCSP_TIMEOUT``         ``5``       seconds for one OCSP query
``IDP_OCSP_CACHE_MAX_AGE``   ``300``     longest time an OCSP answer is reused (within its
                                         thisUpdate..nextUpdate)
===========================  ==========  ======================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from idp.config import ConfigError

__all__ = ["RevocationSettings"]


@dataclass(frozen=True)
class RevocationSettings:
    crl_files: tuple[Path, ...] = ()
    crl_urls: tuple[str, ...] = ()
    crl_refresh_seconds: float = 3600.0
    crl_retry_seconds: float = 60.0
    crl_fetch_timeout: float = 30.0
    crl_grace_seconds: float = 300.0
    crl_max_age_seconds: float = 172800.0
    ocsp_url: str | None = None
    ocsp_timeout: float = 5.0
    ocsp_cache_max_age: float = 300.0

    @property
    def has_crls(self) -> bool:
        return bool(self.crl_files or self.crl_urls)

    @property
    def has_source(self) -> bool:
        return self.has_crls or self.ocsp_url is not None

    @classmethod
    def from_extra(cls, extra: Mapping[str, Any]) -> RevocationSettings:
        problems: list[str] = []
        files = _paths(extra.get("JPKI_CRL_FILES"), problems)
        urls = _urls("JPKI_CRL_URLS", extra.get("JPKI_CRL_URLS"), problems)
        ocsp = extra.get("OCSP_URL") or None
        ocsp_url: str | None = None
        if ocsp is not None:
            checked = _urls("OCSP_URL", [ocsp] if isinstance(ocsp, str) else ocsp, problems)
            if len(checked) == 1:
                ocsp_url = checked[0]
            elif checked:
                problems.append("IDP_OCSP_URL must be one URL")
        defaults = cls()
        numbers = {
            name: _seconds(name, extra.get(name), default, minimum, problems)
            for name, default, minimum in (
                ("CRL_REFRESH_SECONDS", defaults.crl_refresh_seconds, 1.0),
                ("CRL_RETRY_SECONDS", defaults.crl_retry_seconds, 0.1),
                ("CRL_FETCH_TIMEOUT", defaults.crl_fetch_timeout, 0.1),
                ("CRL_GRACE", defaults.crl_grace_seconds, 0.0),
                ("CRL_MAX_AGE", defaults.crl_max_age_seconds, 1.0),
                ("OCSP_TIMEOUT", defaults.ocsp_timeout, 0.1),
                ("OCSP_CACHE_MAX_AGE", defaults.ocsp_cache_max_age, 0.0),
            )
        }
        if problems:
            raise ConfigError(problems)
        return cls(
            crl_files=files,
            crl_urls=urls,
            crl_refresh_seconds=numbers["CRL_REFRESH_SECONDS"],
            crl_retry_seconds=numbers["CRL_RETRY_SECONDS"],
            crl_fetch_timeout=numbers["CRL_FETCH_TIMEOUT"],
            crl_grace_seconds=numbers["CRL_GRACE"],
            crl_max_age_seconds=numbers["CRL_MAX_AGE"],
            ocsp_url=ocsp_url,
            ocsp_timeout=numbers["OCSP_TIMEOUT"],
            ocsp_cache_max_age=numbers["OCSP_CACHE_MAX_AGE"],
        )


def _paths(value: Any, problems: list[str]) -> tuple[Path, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        return tuple(Path(part) for part in value.split(os.pathsep) if part)
    if isinstance(value, list | tuple) and all(isinstance(p, str | os.PathLike) for p in value):
        return tuple(Path(part) for part in value)
    problems.append("IDP_JPKI_CRL_FILES must be a list of paths")
    return ()


def _urls(name: str, value: Any, problems: list[str]) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        value = value.split()
    if not isinstance(value, list | tuple):
        problems.append(f"IDP_{name} must be a list of http(s) URLs")
        return ()
    urls: list[str] = []
    for item in value:
        parts = urlsplit(str(item)) if isinstance(item, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            problems.append(f"IDP_{name}: each entry must be an http(s) URL")
            continue
        urls.append(str(item))
    return tuple(urls)


def _seconds(name: str, value: Any, default: float, minimum: float, problems: list[str]) -> float:
    if value is None:
        return default
    if isinstance(value, bool):
        problems.append(f"IDP_{name} must be a number of seconds")
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        problems.append(f"IDP_{name} must be a number of seconds")
        return default
    if not number >= minimum or number == float("inf"):
        problems.append(f"IDP_{name} must be at least {minimum:g} seconds")
        return default
    return number
