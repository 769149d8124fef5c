"""``verified_claims`` (OpenID Connect for Identity Assurance 1.0) from the JPKI enrollment.

The basic-4 items were verified by a signature of the resident's My Number card: its JPKI
signature certificate (issued by J-LIS under the 公的個人認証法, the JPKI Act) carries them,
and the provider validated the certificate and the signature at enrollment. That maps to:

.. code-block:: json

    {"verification": {
        "trust_framework": "jp_jpki",
        "time": "<when the provider verified the certificate, UTC>",
        "evidence": [{"type": "electronic_signature", "signature_type": "jp_jpki",
                      "issuer": "<signature CA, RFC 4514>", "serial_number": "<hex>",
                      "created_at": "<when the card signed, UTC>"}]},
     "claims": {"name": "...", "birthdate": "..."}}

``jp_jpki`` is this provider's own trust framework identifier (no registered identifier names
JPKI yet). ``trust_framework`` is always returned; ``time`` and ``evidence`` only when the
request names them (data minimisation). A request whose ``trust_framework`` asks for another
``value``/``values``, or whose evidence asks for another ``type``, is not answered (no
``verified_claims`` rather than a mismatching one). Only the basic-4 claims can be verified
claims; each is released only if its consent item was granted.

The serial number identifies the resident's signature certificate: it is the same for every
relying party, so two services that both receive evidence can link their records. It is sent
only to a client that asks for ``evidence`` in its request (documented in docs/integrators.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from idp.oidc.claims import Municipalities, claim_value, item_of
from idp.storage.residents import Resident

__all__ = [
    "EVIDENCE_TYPES",
    "SIGNATURE_TYPE",
    "TRUST_FRAMEWORK",
    "VERIFIABLE_CLAIMS",
    "verified_claims",
]

TRUST_FRAMEWORK = "jp_jpki"
EVIDENCE_TYPES: tuple[str, ...] = ("electronic_signature",)
SIGNATURE_TYPE = "jp_jpki"
VERIFIABLE_CLAIMS: tuple[str, ...] = (
    "name",
    "family_name",
    "given_name",
    "address",
    "birthdate",
    "gender",
)


def _accepts(spec: Mapping[str, Any] | None, actual: str) -> bool:
    """A request constraint (``value`` / ``values``) accepts ``actual``; null accepts all."""
    if not spec:
        return True
    if "value" in spec and spec["value"] != actual:
        return False
    return "values" not in spec or actual in spec["values"]


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _evidence(resident: Resident) -> dict[str, Any] | None:
    stored = resident.evidence or {}
    issuer, serial = stored.get("issuer"), stored.get("serial_hex")
    if not isinstance(issuer, str) or not isinstance(serial, str):
        return None
    evidence: dict[str, Any] = {
        "type": "electronic_signature",
        "signature_type": SIGNATURE_TYPE,
        "issuer": issuer,
        "serial_number": serial,
    }
    created = stored.get("verified_at")
    try:
        evidence["created_at"] = _utc(datetime.fromisoformat(str(created)))
    except ValueError:
        pass
    return evidence


def verified_claims(
    request: Mapping[str, Any],
    resident: Resident,
    *,
    granted: set[str],
    municipalities: Municipalities,
    today: date,
) -> dict[str, Any] | None:
    """The answer to one normalised ``verified_claims`` request, or None if there is none."""
    wanted = request["verification"]
    if not _accepts(wanted.get("trust_framework"), TRUST_FRAMEWORK):
        return None
    claims: dict[str, Any] = {}
    for claim in request["claims"]:
        if claim in VERIFIABLE_CLAIMS and item_of(claim) in granted:
            value = claim_value(resident, claim, municipalities=municipalities, today=today)
            if value is not None:
                claims[claim] = value
    if not claims:
        return None
    verification: dict[str, Any] = {"trust_framework": TRUST_FRAMEWORK}
    if "time" in wanted:
        verification["time"] = _utc(resident.verified_at)
    if "evidence" in wanted:
        if not any(_accepts(e.get("type"), "electronic_signature") for e in wanted["evidence"]):
            return None
        evidence = _evidence(resident)
        if evidence is None:
            return None
        verification["evidence"] = [evidence]
    return {"verification": verification, "claims": claims}
