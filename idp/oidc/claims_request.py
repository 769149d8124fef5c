"""The ``claims`` request parameter (OpenID Connect Core 5.5) and the release plan.

A *release plan* says which claims go where: ``{"userinfo": {claim: spec}, "id_token":
{claim: spec}}``. It is the ``claims`` parameter, normalised, with the claims of the requested
scopes merged into ``userinfo`` (so a scope keeps its usual meaning). A ``spec`` is ``None`` or
``{"essential": bool, "value": ..., "values": [...]}``; ``verified_claims`` is a list of
``{"verification": {...}, "claims": {claim: spec}}`` (OpenID Connect for Identity Assurance).

Rules:

- Every claim belongs to a consent item (:func:`idp.oidc.claims.item_of`). Asking for a claim
  asks for its item: the item is added to the request's scopes and shown on the consent page.
  A claim is released only where it was asked for (``id_token`` or ``userinfo``), and only if
  its item was granted.
- Claims of items the client is not registered for, and unknown claims, are dropped (never an
  error). ``sub`` with a ``value`` is kept for the ID token: a login by another resident then
  ends in ``login_required``.
- ``essential`` is recorded but changes nothing: an item the resident does not grant is not
  released, and the login still succeeds (OpenID Connect Core 5.5.1).
- Malformed JSON or members of the wrong type: :class:`ClaimsRequestError`
  (``invalid_request``); its message never repeats the client's input.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from idp.oidc.assurance import VERIFIABLE_CLAIMS, verified_claims
from idp.oidc.claims import Municipalities, claim_value, item_of, scope_claims
from idp.storage.residents import Resident

__all__ = [
    "MAX_LENGTH",
    "TARGETS",
    "ClaimsRequestError",
    "items_of_plan",
    "parse_claims",
    "plan_for",
    "release",
    "requested_sub",
    "restrict_plan",
]

#: Longest ``claims`` parameter accepted (characters).
MAX_LENGTH = 4096
TARGETS = ("userinfo", "id_token")
_MAX_VALUES = 32
_MAX_VERIFIED = 8
_SCALAR = (str, int, float, bool)


class ClaimsRequestError(ValueError):
    """The ``claims`` parameter is not a valid claims request (message says why)."""


def parse_claims(raw: Any) -> dict[str, Any]:
    """Validate and normalise a ``claims`` parameter (JSON text)."""
    if not isinstance(raw, str) or len(raw) > MAX_LENGTH:
        raise ClaimsRequestError(f"'claims' must be a JSON object of at most {MAX_LENGTH} chars")
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ClaimsRequestError("'claims' is not valid JSON") from exc
    if not isinstance(document, dict):
        raise ClaimsRequestError("'claims' must be a JSON object")
    plan: dict[str, Any] = {}
    for target in TARGETS:
        members = document.get(target)
        if members is None:
            continue
        if not isinstance(members, dict):
            raise ClaimsRequestError(f"'claims.{target}' must be an object")
        plan[target] = _members(members, f"claims.{target}")
    return plan


def _members(members: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for claim, spec in members.items():
        if claim == "verified_claims":
            requests = _verified_requests(spec, f"{where}.verified_claims")
            if requests:
                out[claim] = requests
            continue
        normalised = _spec(spec, f"{where} member")
        if item_of(claim) is not None or (claim == "sub" and normalised is not None):
            out[claim] = normalised
    return out


def _spec(spec: Any, where: str) -> dict[str, Any] | None:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise ClaimsRequestError(f"'{where}' must be null or an object")
    out: dict[str, Any] = {}
    if "essential" in spec:
        if not isinstance(spec["essential"], bool):
            raise ClaimsRequestError(f"'{where}.essential' must be a boolean")
        out["essential"] = spec["essential"]
    if "value" in spec:
        if not isinstance(spec["value"], _SCALAR):
            raise ClaimsRequestError(f"'{where}.value' must be a string, number or boolean")
        out["value"] = spec["value"]
    if "values" in spec:
        values = spec["values"]
        if (
            not isinstance(values, list)
            or len(values) > _MAX_VALUES
            or not all(isinstance(v, _SCALAR) for v in values)
        ):
            raise ClaimsRequestError(f"'{where}.values' must be a short array of scalars")
        out["values"] = list(values)
    return out or None


def _verified_requests(spec: Any, where: str) -> list[dict[str, Any]]:
    requests = spec if isinstance(spec, list) else [spec]
    if not requests or len(requests) > _MAX_VERIFIED:
        raise ClaimsRequestError(f"'{where}' must hold 1-{_MAX_VERIFIED} requests")
    out = []
    for request in requests:
        if not isinstance(request, dict):
            raise ClaimsRequestError(f"'{where}' must be an object or an array of objects")
        verification = request.get("verification")
        if not isinstance(verification, dict) or "trust_framework" not in verification:
            raise ClaimsRequestError(f"'{where}.verification.trust_framework' is required")
        claims = request.get("claims")
        if not isinstance(claims, dict) or not claims:
            raise ClaimsRequestError(f"'{where}.claims' must be a non-empty object")
        wanted = {
            claim: _spec(value, f"{where}.claims member")
            for claim, value in claims.items()
            if claim in VERIFIABLE_CLAIMS
        }
        if wanted:
            out.append({"verification": _verification(verification, where), "claims": wanted})
    return out


def _verification(verification: Mapping[str, Any], where: str) -> dict[str, Any]:
    framework = _spec(verification["trust_framework"], f"{where}.verification.trust_framework")
    out: dict[str, Any] = {"trust_framework": framework}
    if "time" in verification:
        out["time"] = _spec(verification["time"], f"{where}.verification.time")
    if "evidence" in verification:
        evidence = verification["evidence"]
        if evidence is not None and (
            not isinstance(evidence, list) or not all(isinstance(e, dict) for e in evidence)
        ):
            raise ClaimsRequestError(f"'{where}.verification.evidence' must be an array")
        out["evidence"] = [
            {"type": _spec(e.get("type"), f"{where}.verification.evidence.type")}
            for e in (evidence or [{}])
        ]
    return out


def plan_for(claims_request: Mapping[str, Any] | None, scopes: Iterable[str]) -> dict[str, Any]:
    """The release plan: ``claims_request`` with the claims of ``scopes`` added to userinfo."""
    plan: dict[str, Any] = {t: dict((claims_request or {}).get(t, {})) for t in TARGETS}
    for claim in scope_claims(scopes):
        plan["userinfo"].setdefault(claim, None)
    return {target: members for target, members in plan.items() if members}


def _claims_in(members: Mapping[str, Any]) -> Iterable[str]:
    for claim in members:
        if claim == "verified_claims":
            for request in members[claim]:
                yield from request["claims"]
        else:
            yield claim


def items_of_plan(plan: Mapping[str, Any]) -> set[str]:
    """The consent items the plan asks for."""
    items = set()
    for target in TARGETS:
        for claim in _claims_in(plan.get(target, {})):
            item = item_of(claim)
            if item is not None:
                items.add(item)
    return items


def restrict_plan(plan: Mapping[str, Any], allowed: Iterable[str]) -> dict[str, Any]:
    """The plan without claims whose item is not in ``allowed``."""
    allowed_items = set(allowed)

    def keep(claim: str) -> bool:
        item = item_of(claim)
        return claim == "sub" if item is None else item in allowed_items

    out: dict[str, Any] = {}
    for target in TARGETS:
        members: dict[str, Any] = {}
        for claim, spec in plan.get(target, {}).items():
            if claim == "verified_claims":
                requests = [
                    {**r, "claims": {c: s for c, s in r["claims"].items() if keep(c)}} for r in spec
                ]
                requests = [r for r in requests if r["claims"]]
                if requests:
                    members[claim] = requests
            elif keep(claim):
                members[claim] = spec
        if members:
            out[target] = members
    return out


def requested_sub(plan: Mapping[str, Any] | None) -> str | None:
    """The ``sub`` value the client insists on for the ID token, if any."""
    spec = (plan or {}).get("id_token", {}).get("sub")
    value = spec.get("value") if isinstance(spec, dict) else None
    return value if isinstance(value, str) else None


def release(
    plan: Mapping[str, Any] | None,
    target: str,
    resident: Resident,
    *,
    granted: Iterable[str],
    municipalities: Municipalities,
    today: date,
) -> dict[str, Any]:
    """The claims of ``plan[target]`` whose items are ``granted`` and that have a value.

    Without a plan (tokens from before the claims parameter), the granted scopes' claims go to
    userinfo as usual.
    """
    granted_items = set(granted)
    if plan is None:
        plan = plan_for(None, granted_items)
    out: dict[str, Any] = {}
    for claim, spec in plan.get(target, {}).items():
        if claim == "verified_claims":
            results = [
                result
                for request in spec
                if (
                    result := verified_claims(
                        request,
                        resident,
                        granted=granted_items,
                        municipalities=municipalities,
                        today=today,
                    )
                )
                is not None
            ]
            if results:
                out[claim] = results[0] if len(results) == 1 else results
            continue
        item = item_of(claim)
        if item is None or item not in granted_items:
            continue
        value = claim_value(resident, claim, municipalities=municipalities, today=today)
        if value is not None:
            out[claim] = value
    return out
