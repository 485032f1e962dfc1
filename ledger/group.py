"""Group commit: many concurrent appends, one transaction and one durable commit per batch.

`GroupCommitter.append` blocks until its entry is committed (durable: the database's own
commit, fsync included), so an acknowledged entry is never lost; concurrent callers are batched
by one committer thread into a single transaction (`ledger.store.append_many`), so N waiting
appends cost one commit instead of N. For evidence that is not part of another transaction:
the gateway's request handlers record their entry inside their own transaction instead.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from typing import TYPE_CHECKING

from ledger.entry import Entry
from ledger.keys import Signer

if TYPE_CHECKING:
    from sqlalchemy import Engine

_STOP = object()


class GroupCommitter:
    """A committer thread that appends queued entries in batches of up to `max_batch`.

    `on_batch`, if given, is called with the number of entries of each batch once they are
    durable (e.g. a metrics histogram); what it raises is ignored: it never fails an append.
    """

    def __init__(
        self,
        engine: Engine,
        signer: Signer,
        *,
        max_batch: int = 1000,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._engine = engine
        self._signer = signer
        self._max_batch = max_batch
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ledger-group-commit", daemon=True)
        self._thread.start()

    def append(self, *, type: str, data: dict, time: datetime) -> Entry:
        """Append an entry and return it once committed; raise what refused it."""
        future: Future = Future()
        self._queue.put((type, data, time, future))
        return future.result()

    def close(self) -> None:
        """Finish the queued appends and stop the thread."""
        self._queue.put(_STOP)
        self._thread.join()

    def _run(self) -> None:
        from ledger.store import append_many

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
                with self._engine.begin() as conn:
                    results = append_many(
                        conn, [(t, d, at) for t, d, at, _ in batch], signer=self._signer
                    )
            except BaseException as exc:  # noqa: BLE001 - every waiter learns the failure
                for *_, future in batch:
                    future.set_exception(exc)
                continue
            if self._on_batch is not None:
                try:
                    self._on_batch(sum(isinstance(r, Entry) for r in results))
                except Exception:  # noqa: BLE001 - an observer never fails the appends
                    pass
            # Committed: only now are the entries acknowledged.
            for (*_, future), result in zip(batch, results, strict=True):
                if isinstance(result, Entry):
                    future.set_result(result)
                else:
                    future.set_exception(result)
