"""The request path's sequencer: exchanges append their evidence in batches, one commit each.

An exchange decides (OPA), reads its rows, then hands its evidence to this process's
`GroupCommitter` (ledger/group.py): the committer thread claims the exchange's quota with one
conditional statement, appends the entry and keeps the decision row, for every exchange queued
meanwhile, in one transaction and one durable commit. The caller's reply leaves only once its
batch is committed, so nothing is delivered without durable evidence; an exchange whose claim
no longer holds (the quota was used meanwhile, the contract or product changed) writes nothing
and is decided again.

Checkpoints are cut on the committer thread after a batch is acknowledged, not by requests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from gateway.core import clock, metrics
from gateway.evidence.service import commit, evidence_unavailable, maybe_checkpoint
from ledger import Entry, LedgerError, parse_rfc3339
from ledger import store as ledger_store
from ledger.group import GroupCommitter

if TYPE_CHECKING:
    from gateway.context import Gateway

log = structlog.get_logger("gateway.evidence")
_lock = threading.Lock()


def sequencer(gateway: Gateway) -> GroupCommitter:
    """Return the gateway's sequencer, starting it at the first use."""
    if gateway.sequencer is None:
        with _lock:
            if gateway.sequencer is None:
                gateway.sequencer = GroupCommitter(
                    gateway.engine,
                    gateway.signer,
                    max_batch=256,
                    on_batch=metrics.observe_append_batch,
                    on_committed=_Checkpointer(gateway),
                )
    return gateway.sequencer


def close(gateway: Gateway) -> None:
    """Finish the queued appends and stop the sequencer (at shutdown)."""
    if gateway.sequencer is not None:
        gateway.sequencer.close()
        gateway.sequencer = None


def submit(
    gateway: Gateway,
    *,
    type: str,
    data: dict[str, Any],
    claim: Callable[[Connection], bool] | None = None,
    after: Callable[[Connection, Entry], Any] | None = None,
) -> Entry | None:
    """Append `type`/`data` with the caller's `claim` and `after` writes; return the committed
    entry, or None when the claim refused. A failed transaction is the 503 evidence problem."""
    try:
        entry = sequencer(gateway).submit(
            type=type, data=data, time=clock.now(), claim=claim, after=after
        )
    except (SQLAlchemyError, LedgerError, RuntimeError) as exc:
        log.error("sequenced append failed", type=type, error=f"{exc.__class__.__name__}: {exc}")
        raise evidence_unavailable(exc) from exc
    if entry is not None:
        metrics.count_committed([type])
    return entry


class _Checkpointer:
    """Cut a checkpoint after a batch when one is due, remembering the latest one it saw so
    that a batch costs no query until one may be due."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.covered: int | None = None  # the size of the latest checkpoint seen
        self.since = clock.now()  # its time (now, until one is read)

    def __call__(self, last_seq: int) -> None:
        settings = self.gateway.settings
        if self.covered is not None and last_seq - self.covered < settings.checkpoint_every:
            if (clock.now() - self.since).total_seconds() < settings.checkpoint_seconds:
                return
        with self.gateway.sessions() as session:
            cut = maybe_checkpoint(session, self.gateway.signer, last_seq)
            if cut is not None:
                commit(session)
            latest = cut or ledger_store.latest_checkpoint(session.connection())
            self.covered = latest["size"] if latest else 0
            self.since = parse_rfc3339(latest["time"]) if latest else clock.now()
