"""The row lock a finishing login and an account deletion both take (delete wins).

A login that reaches its end (consent stored, code issued, release recorded) calls
:func:`lock_resident` first; :func:`idp.account.portal_actions.delete_account` takes the same
lock. Whichever comes second waits for the first to commit: a login after a delete finds no
resident and ends on the ``account_deleted`` page; a delete after a login deletes what the
login wrote and ends the session it opened.
"""

from __future__ import annotations

from sqlalchemy import select

from idp.storage.base import db
from idp.storage.residents import Resident, is_erased

__all__ = ["lock_resident"]


def lock_resident(resident_id: str) -> Resident | None:
    """Lock the resident's row until the session's next commit or rollback (``SELECT ... FOR
    UPDATE`` on PostgreSQL; SQLite serialises writers itself) and return it, or None if the
    resident is gone or deleted their account."""
    query = select(Resident).where(Resident.id == resident_id).with_for_update()
    resident = db.session.scalars(query.execution_options(populate_existing=True)).first()
    return None if resident is None or is_erased(resident) else resident
