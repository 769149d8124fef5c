"""Revocation data: CRLs fetched and refreshed in the background, OCSP answers cached.

The checks themselves are pure and live in :mod:`idp.card.validation` (``crl``, ``ocsp``); this
package does the I/O around them (HTTP, files, Redis, a thread and the clock):

- :mod:`idp.revocation.settings` -- the ``IDP_*`` variables, typed and validated;
- :mod:`idp.revocation.crls` -- CRL sources, refreshed and verified against the anchors;
- :mod:`idp.revocation.ocsp_cache` -- OCSP answers cached within their validity in Redis;
- :mod:`idp.revocation.data` -- the app's revocation source and its refresher thread.

It sits between ``idp.oidc`` and ``idp.storage`` in the layers contract (pyproject.toml) and
imports nothing from Flask: ``idp.handoff.trust`` attaches it to the app.
"""

from idp.revocation.data import RevocationData
from idp.revocation.settings import RevocationSettings

__all__ = ["RevocationData", "RevocationSettings"]
