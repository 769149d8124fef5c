"""What a resident can change from the account portal, and how each change races a login.

- :func:`revoke_service` removes the consent to one service and ends that service's sessions
  (back-channel logout through :func:`idp.oidc.sessions.end_client_sessions`). A login of that
  service in flight asks for consent again: the consent page is shown when the remembered
  consent is gone, so nothing is released without a fresh consent.
- :func:`delete_account` deletes the resident's verified data (every personal value is
  emptied), card links and consents in one database transaction under a row lock on the
  resident, and ends every session before and after it. Kept for legal audit: the
  hash-chained release log (:mod:`idp.storage.audit`: client, item *names*, time, the
  account's opaque id; no value) and the emptied row its records point to (marked
  ``erased``, so every lookup treats the account as gone, and the next login with the same
  card makes a new account with new pairwise subjects).
- :func:`lock_resident` is what a finishing login takes: the same row lock. **Delete wins**: a
  login that locks after the delete finds no resident and ends with the ``account_deleted``
  page; a login that locked first finishes, and the delete that follows deletes what it wrote
  and ends the session it made. Nothing is left half-written either way.
- :func:`request_refresh` marks the verified data for re-reading: the next card login (the one
  the portal starts at once) asks for the signature certificate as enrolment does
  (:func:`idp.account.enrollment.resident_for_card` sees the mark).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Final

from sqlalchemy import delete

from idp.account.portal_locks import lock_resident
from idp.oidc.sessions import LogoutReport, end_all_sessions, end_client_sessions
from idp.storage.base import db
from idp.storage.consents import Consent, revoke_consent
from idp.storage.residents import ERASED, CardCredential

__all__ = [
    "DeletionReport",
    "delete_account",
    "request_refresh",
    "revoke_service",
]

log = logging.getLogger(__name__)
audit_log: Final = logging.getLogger("idp.audit")

REFRESH_MARK: Final = "refresh_requested"
#: The birthdate column is not nullable: an erased row holds this placeholder.
ERASED_BIRTHDATE: Final = date(1, 1, 1)


def revoke_service(resident_id: str, client_id: str) -> tuple[bool, LogoutReport]:
    """Withdraw the consent to ``client_id`` and end its sessions; (was there a consent, the
    logout report)."""
    had_consent = revoke_consent(resident_id, client_id)
    report = end_client_sessions(resident_id, client_id)
    log.info(
        "portal: consent to %s withdrawn (%s); %s",
        client_id,
        "was active" if had_consent else "none active",
        report,
    )
    return had_consent, report


@dataclass(frozen=True)
class DeletionReport:
    """What deleting an account did."""

    deleted: bool
    logout: LogoutReport


def delete_account(resident_id: str, *, now: datetime | None = None) -> DeletionReport:
    """Delete the account (see the module docstring); ``deleted`` False if it was gone."""
    moment = now or datetime.now(UTC)
    first = end_all_sessions(resident_id)
    resident = lock_resident(resident_id)
    if resident is None:
        db.session.rollback()
        return DeletionReport(False, first)
    db.session.execute(delete(Consent).where(Consent.resident_id == resident_id))
    db.session.execute(delete(CardCredential).where(CardCredential.resident_id == resident_id))
    resident.name = ""
    resident.address = ""
    resident.birthdate = ERASED_BIRTHDATE
    resident.gender = ""
    resident.sex_code = ""
    resident.name_substitution = ""
    resident.address_substitution = ""
    resident.verified_at = moment
    resident.evidence = {"type": ERASED, "erased_at": moment.isoformat()}
    db.session.commit()
    db.session.expunge_all()
    audit_log.info(
        "account deleted",
        extra={"event": "account_deleted", "account": resident_id, "at": moment.isoformat()},
    )
    # A login that locked the row before us may have opened a session meanwhile.
    second = end_all_sessions(resident_id)
    return DeletionReport(True, _merge(first, second))


def _merge(first: LogoutReport, second: LogoutReport) -> LogoutReport:
    return LogoutReport(
        sessions_ended=first.sessions_ended + second.sessions_ended,
        notified=(*first.notified, *second.notified),
        failed=(*first.failed, *second.failed),
    )


def request_refresh(resident_id: str, *, now: datetime | None = None) -> bool:
    """Mark the verified data to be read again from the card at the next login."""
    resident = lock_resident(resident_id)
    if resident is None:
        db.session.rollback()
        return False
    evidence = dict(resident.evidence) if isinstance(resident.evidence, dict) else {}
    evidence[REFRESH_MARK] = (now or datetime.now(UTC)).isoformat()
    resident.evidence = evidence
    db.session.commit()
    return True
