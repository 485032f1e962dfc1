"""Group commit: many concurrent appends, one transaction and one durable commit per batch.

`GroupCommitter.append` blocks until its entry is committed (durable: the database's own
commit, fsync included), so an acknowledged entry is never lost; concurrent callers are batched
by one committer thread into a single transaction (`ledger.store.append_many`), so N waiting
appends cost one commit instead of N.

`submit` is the same with the caller's own writes joined to its entry, in the same transaction:
`claim(conn)` runs first and says whether the entry may be appended at all (a conditional
update of the caller's state, e.g. a quota; False: nothing of the item is written and `submit`
returns None), and `after(conn, entry)` writes what names the entry (e.g. a row keeping its
seq), or returns that write as `(statement, parameters)`: the batch's returned writes of one
statement run as one executemany. The item's state change and its evidence commit together or
not at all.

A batch that fails is rolled back whole and its items are retried one by one, each in its own
transaction, so that one failing item fails only itself. `on_batch(size)` and
`on_committed(last_seq)` are called on the committer thread after a batch commits and its
waiters are released (metrics, checkpoints: off the callers' path).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ledger.entry import Entry
from ledger.keys import Signer

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

_STOP = object()
log = logging.getLogger(__name__)


@dataclass
class _Item:
    type: str
    data: dict
    time: datetime
    claim: Callable[[Connection], bool] | None
    after: Callable[[Connection, Entry], Any] | None
    future: Future


class GroupCommitter:
    """A committer thread that appends queued entries in batches of up to `max_batch`."""

    def __init__(
        self,
        engine: Engine,
        signer: Signer,
        *,
        max_batch: int = 1000,
        on_batch: Callable[[int], None] | None = None,
        on_committed: Callable[[int], None] | None = None,
    ) -> None:
        self._engine = engine
        self._signer = signer
        self._max_batch = max_batch
        self._on_batch = on_batch
        self._on_committed = on_committed
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ledger-group-commit", daemon=True)
        self._thread.start()

    def append(self, *, type: str, data: dict, time: datetime) -> Entry:
        """Append an entry and return it once committed; raise what refused it."""
        entry = self.submit(type=type, data=data, time=time)
        assert entry is not None  # no claim: never refused that way
        return entry

    def submit(
        self,
        *,
        type: str,
        data: dict,
        time: datetime,
        claim: Callable[[Connection], bool] | None = None,
        after: Callable[[Connection, Entry], Any] | None = None,
    ) -> Entry | None:
        """Append an entry with the caller's writes; return it once committed, None when
        `claim` refused (nothing written); raise what failed the transaction."""
        if not self._thread.is_alive():
            raise RuntimeError("the ledger's group committer has stopped")
        future: Future = Future()
        self._queue.put(_Item(type, data, time, claim, after, future))
        return future.result()

    def close(self) -> None:
        """Finish the queued appends and stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                batch.append(item)
            try:
                outcome = self._commit(batch)
            except BaseException as exc:  # noqa: BLE001 - every waiter learns the failure
                if len(batch) == 1:
                    batch[0].future.set_exception(exc)
                    continue
                outcome = []
                for item in batch:  # one by one: a failing item fails only itself
                    try:
                        outcome.extend(self._commit([item]))
                    except BaseException as one:  # noqa: BLE001
                        item.future.set_exception(one)
            # Committed: only now are the entries acknowledged.
            last = 0
            for item, result in outcome:
                if isinstance(result, BaseException):
                    item.future.set_exception(result)
                else:
                    item.future.set_result(result)
                    if result is not None:
                        last = max(last, result.seq)
            self._after_batch(len(batch), last)

    def _commit(self, batch: list[_Item]) -> list[tuple[_Item, Entry | None | BaseException]]:
        """Run the batch in one transaction; return each item's entry, None or refusal."""
        from ledger.store import append_many

        with self._engine.begin() as conn:
            admitted = [item for item in batch if item.claim is None or item.claim(conn)]
            results = append_many(
                conn, [(i.type, i.data, i.time) for i in admitted], signer=self._signer
            )
            if any(isinstance(r, ValueError) for r in results) and any(
                i.claim is not None or i.after is not None for i in admitted
            ):
                # An item's writes may not stay without its entry: undo the lot, then retry
                # one by one (the caller's loop), where the refused item fails alone.
                raise next(r for r in results if isinstance(r, ValueError))
            deferred: dict[int, tuple[Any, list]] = {}  # by statement: its rows, in order
            for item, result in zip(admitted, results, strict=True):
                if isinstance(result, Entry) and item.after is not None:
                    write = item.after(conn, result)
                    if write is not None:
                        statement, parameters = write
                        deferred.setdefault(id(statement), (statement, []))[1].append(parameters)
            for statement, rows in deferred.values():
                conn.execute(statement, rows)
        by_item: dict[int, Entry | ValueError] = {
            id(i): r for i, r in zip(admitted, results, strict=True)
        }
        return [(item, by_item.get(id(item))) for item in batch]

    def _after_batch(self, size: int, last_seq: int) -> None:
        for hook, value in ((self._on_batch, size), (self._on_committed, last_seq)):
            if hook is None or (hook is self._on_committed and not last_seq):
                continue
            try:
                hook(value)
            except Exception:  # noqa: BLE001 - a hook never stops the committer
                log.exception("ledger group-commit hook %r failed", hook)
