"""Evidence: every state change and decision becomes a ledger entry in the same transaction.

`record` appends inside the caller's transaction and `commit` makes the change and its entry
durable together; if either fails, the whole change is rolled back and the caller gets a 503
problem, so nothing (no state change, no data) escapes without its evidence.
"""

from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.core import clock, metrics
from gateway.core.errors import Problem
from ledger import Entry, LedgerError, Signer, parse_rfc3339
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
        entry = ledger_store.append(
            session.connection(), type=type, data=data, time=clock.now(), signer=signer
        )
        maybe_checkpoint(session, signer, entry.seq)
        session.info.setdefault(metrics.ENTRY_TYPES, []).append(type)  # counted at commit
        return entry
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


@dataclass(frozen=True)
class CheckpointPolicy:
    """When to sign a checkpoint: every `every` entries or `seconds` seconds, whichever first."""

    origin: str
    every: int = 1000
    seconds: float = 300.0


CHECKPOINT_POLICY = "ledger_checkpoints"  # the key of the policy in Session.info


def maybe_checkpoint(session: Session, signer: Signer, seq: int) -> dict | None:
    """Cut a checkpoint in the session's transaction if one is due after entry `seq`."""
    policy: CheckpointPolicy | None = session.info.get(CHECKPOINT_POLICY)
    if policy is None:
        return None
    conn = session.connection()
    latest = ledger_store.latest_checkpoint(conn)
    since = latest["time"] if latest else None
    if latest is None:
        first = ledger_store.get_entry(conn, 1)
        since = first.time if first else None
    covered = latest["size"] if latest else 0
    due = seq - covered >= policy.every
    if not due and since is not None:
        age = (clock.now() - parse_rfc3339(since)).total_seconds()
        due = seq > covered and age >= policy.seconds
    if not due:
        return None
    return ledger_store.cut_checkpoint(conn, signer=signer, origin=policy.origin, time=clock.now())


def cut_checkpoint_now(session: Session, signer: Signer, *, origin: str) -> dict | None:
    """Sign a checkpoint of the whole ledger now and commit; None if the latest covers it."""
    try:
        cp = ledger_store.cut_checkpoint(
            session.connection(), signer=signer, origin=origin, time=clock.now()
        )
    except (SQLAlchemyError, LedgerError) as exc:
        session.rollback()
        log.error("checkpoint failed", error=str(exc))
        raise evidence_unavailable(exc) from exc
    commit(session)
    return cp


def checkpoint_info(settings) -> dict:
    """Return the Session.info that makes `record` cut checkpoints as `settings` ask."""
    policy = CheckpointPolicy(
        origin=settings.origin,
        every=settings.checkpoint_every,
        seconds=settings.checkpoint_seconds,
    )
    return {CHECKPOINT_POLICY: policy}


class SigningKeyMismatch(RuntimeError):
    """The gateway's key file is not the ledger's active key (e.g. a retired key restored)."""


def check_signing_key(session: Session, signer: Signer) -> None:
    """Raise SigningKeyMismatch unless `signer` is the key the ledger says must sign next."""
    active = ledger_store.active_kid(session.connection())
    if active is not None and active != signer.kid:
        raise SigningKeyMismatch(
            f"the gateway key {signer.kid} is not the ledger's active key {active}: entries it "
            "signed would fail verification (was a retired key restored? see `dsgw keys rotate`)"
        )
