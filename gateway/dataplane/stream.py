"""The unit of the data plane: a stream of Arrow record batches with a schema known up front.

A `BatchStream` is single-use and closes its source when exhausted, when closed, or when left
through `with`. Every source yields at most `batch_size` rows per batch, and holds at most a few
batches in memory at a time, whatever the size of the data.
"""

from __future__ import annotations

import io
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa

DEFAULT_BATCH_SIZE = 16_384
PREFETCH_DEPTH = 2  # batches read ahead of the encoder, at most (constant memory)


def _use_a_returning_allocator() -> None:
    """Make Arrow allocate from the system allocator, unless the operator chose a pool.

    pyarrow's default, mimalloc, keeps freed segments: streaming 2M rows peaked at 230-330 MB
    with it and at about 160 MB with jemalloc or the system allocator, at the same speed
    within noise (tests/e2e/test_dataplane_memory.py, tests/bench/bench_dataplane.py). In the
    gateway, whose streams run on several threads (the read-ahead, the server's worker
    threads), jemalloc's per-thread arenas held more: a 1M-row pull through `dsgw serve`
    peaked at 311 MB with jemalloc and 258 MB with the system allocator, at the same rate
    within noise (tests/bench/bench_transfer.py), and 258 MB only when the pool is chosen
    before pyarrow makes its default one: gateway/__init__.py sets ARROW_DEFAULT_MEMORY_POOL
    to "system" unless the operator set it, and this call covers the data plane imported
    without the gateway package's start. An operator's choice is left as it is.
    """
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    pa.set_memory_pool(pa.system_memory_pool())


_use_a_returning_allocator()


class BatchStream:
    """A schema and an iterator of record batches of that schema; a context manager.

    `threadsafe`: the source may be read (and closed) from a thread other than the one that
    opened it, so `prefetch` may read it ahead in a thread of its own. False unless a source
    says so (an SQLite connection, say, belongs to its thread).
    """

    def __init__(
        self,
        schema: pa.Schema,
        batches: Iterable[pa.RecordBatch],
        *,
        on_close: Callable[[], None] | None = None,
        threadsafe: bool = False,
    ) -> None:
        self.schema = schema
        self._batches = iter(batches)
        self._on_close = on_close
        self._closed = False
        self.threadsafe = threadsafe

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            for batch in self._batches:
                if batch.num_rows:
                    yield batch
        finally:
            self.close()

    def close(self) -> None:
        """Release the source (connection, file, response); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        close = getattr(self._batches, "close", None)
        if close is not None:
            close()
        if self._on_close is not None:
            self._on_close()

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def map(self, schema: pa.Schema, fn: Callable[[pa.RecordBatch], pa.RecordBatch]) -> BatchStream:
        """Return a stream of `fn(batch)` for each batch, of `schema`; closing it closes this."""
        return BatchStream(
            schema, (fn(b) for b in self), on_close=self.close, threadsafe=self.threadsafe
        )

    def read_all(self) -> pa.Table:
        """Return the whole stream as one table (tests and small data only)."""
        return pa.Table.from_batches(list(self), schema=self.schema)


def rebatch(batches: Iterable[pa.RecordBatch], batch_size: int) -> Iterator[pa.RecordBatch]:
    """Yield the rows of `batches` again in batches of at most `batch_size` rows."""
    for batch in batches:
        if batch.num_rows <= batch_size:
            yield batch
            continue
        for start in range(0, batch.num_rows, batch_size):
            yield batch.slice(start, batch_size)


def slice_stream(stream: BatchStream, offset: int, limit: int | None) -> BatchStream:
    """Return the rows `offset` .. `offset + limit` of `stream` (a page), without buffering."""

    def rows() -> Iterator[pa.RecordBatch]:
        skip, left = offset, limit
        for batch in stream:
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                continue
            batch, skip = batch.slice(skip), 0
            if left is not None:
                batch = batch.slice(0, left)
                left -= batch.num_rows
            if batch.num_rows:
                yield batch
            if left == 0:
                return

    return BatchStream(stream.schema, rows(), on_close=stream.close, threadsafe=stream.threadsafe)


def prefetch(stream: BatchStream, depth: int = PREFETCH_DEPTH) -> BatchStream:
    """Return `stream` read ahead by a thread of its own, at most `depth` batches ahead.

    The source is read (and its batches computed: obligations, say) while the caller encodes
    and sends the batches before: Arrow's readers and kernels release the GIL, so on two cores
    the two overlap. Memory stays constant: the queue holds `depth` batches. The source is used
    and closed only in that thread; closing the returned stream stops the thread and waits for
    it to have closed the source. A failure of the source is raised to the caller, in order.
    A stream that is not `threadsafe` is returned as it is.
    """
    if not stream.threadsafe:
        return stream
    slots: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item: tuple) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for batch in stream:
                if not put(("batch", batch)):
                    break
            else:
                put(("end", None))
        except BaseException as err:  # handed to the reader, raised there
            put(("error", err))
        finally:
            stream.close()

    worker = threading.Thread(target=read, name="dataplane-prefetch", daemon=True)

    def batches() -> Iterator[pa.RecordBatch]:
        worker.start()
        while True:
            kind, item = slots.get()
            if kind == "batch":
                yield item
            elif kind == "end":
                return
            else:
                raise item

    def close() -> None:
        stop.set()
        if worker.is_alive():
            while worker.is_alive():
                try:  # unblock a put at once
                    slots.get(timeout=0.05)
                except queue.Empty:
                    pass
            worker.join()
        elif worker.ident is None:  # never started: the source is this thread's to close
            stream.close()

    return BatchStream(stream.schema, batches(), on_close=close, threadsafe=False)


class ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte chunks (a COPY, a response body).

    `read(n)` returns n bytes unless the chunks end first: Arrow's readers take a short read
    as a small block, so each read fills its buffer.
    """

    def __init__(self, chunks: Iterable[bytes | memoryview]) -> None:
        self._chunks = iter(chunks)
        self._rest = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view):
            if not len(self._rest):
                try:
                    self._rest = memoryview(next(self._chunks)).cast("B")
                except StopIteration:
                    break
                continue
            n = min(len(view) - filled, len(self._rest))
            view[filled : filled + n] = self._rest[:n]
            self._rest = self._rest[n:]
            filled += n
        return filled
