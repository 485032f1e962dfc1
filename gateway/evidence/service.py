"""Evidence: every state change and decision becomes a ledger entry in the same transaction.

`record` appends inside the caller's transaction and `commit` makes the change and its entry
durable together; if either fails, the whole change is rolled back and the caller gets a 503
problem, so nothing (no state change, no data) escapes without its evidence.
"""

from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.core import clock
from gateway.core.errors import Problem
from ledger import Entry, LedgerError, Signer
from ledger import store as ledger_store

log = structlog.get_logger("gateway.evidence")


def evidence_unavailable(exc: Exception) -> Problem:
    """Return the 503 problem for evidence that could not be written."""
    return Problem(
        503,
        "evidence-unavailable",
        "Evidence could not be recorded",
        "the ledger entry for this request could not be written, so nothing was changed or "
        "delivered; retry later",
    )


def record(session: Session, signer: Signer, *, type: str, data: dict[str, Any]) -> Entry:
    """Append an entry inside the session's transaction; it is durable only when that commits."""
    try:
        return ledger_store.append(
            session.connection(), type=type, data=data, time=clock.now(), signer=signer
        )
    except (SQLAlchemyError, LedgerError) as exc:
        session.rollback()
        log.error("ledger append failed", type=type, error=str(exc))
        raise evidence_unavailable(exc) from exc


def commit(session: Session) -> None:
    """Commit the change and its evidence together, or roll both back and raise 503."""
    try:
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        log.error("commit with evidence failed", error=str(exc))
        raise evidence_unavailable(exc) from exc
