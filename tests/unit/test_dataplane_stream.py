"""Read-ahead (stream.prefetch): same batches, in order, bounded, the source closed in every exit;
and encode's small first chunk for text formats."""

import threading
import time

import pyarrow as pa
import pytest

from gateway.dataplane import ARROW, JSONL, BatchStream, DataPlaneError, encode, encoder_for
from gateway.dataplane.encoders import FIRST_ROWS
from gateway.dataplane.errors import source_unavailable
from gateway.dataplane.stream import PREFETCH_DEPTH, prefetch


class Source:
    """Counts the batches read, remembers the threads that read and closed it."""

    def __init__(self, batches: int, rows: int = 10, fail_at: int | None = None) -> None:
        self.n, self.rows, self.fail_at = batches, rows, fail_at
        self.read = 0
        self.closed_in: str | None = None
        self.read_in: set[str] = set()

    def batches(self):
        for i in range(self.n):
            if i == self.fail_at:
                raise source_unavailable("the source broke midway")
            self.read += 1
            self.read_in.add(threading.current_thread().name)
            yield pa.record_batch({"id": list(range(i * self.rows, (i + 1) * self.rows))})

    def close(self) -> None:
        self.closed_in = threading.current_thread().name

    def stream(self, threadsafe: bool = True) -> BatchStream:
        schema = pa.schema([("id", pa.int64())])
        return BatchStream(schema, self.batches(), on_close=self.close, threadsafe=threadsafe)


def test_a_threadsafe_stream_is_read_in_another_thread_with_the_same_batches_in_order():
    source = Source(20)
    out = prefetch(source.stream()).read_all()
    assert out.column("id").to_pylist() == list(range(200))
    assert threading.current_thread().name not in source.read_in
    assert source.closed_in == "dataplane-prefetch"


def test_a_stream_not_marked_threadsafe_is_read_where_it_is():
    source = Source(3)
    stream = source.stream(threadsafe=False)
    assert prefetch(stream) is stream
    stream.read_all()
    assert source.read_in == {threading.current_thread().name}


def test_read_ahead_is_bounded_whatever_the_consumer_lags():
    source = Source(1000)
    stream = prefetch(source.stream())
    batches = iter(stream)
    next(batches)
    time.sleep(0.3)  # the reader runs ahead as far as it may
    # the one taken, the queue full, one more waiting to be put
    assert source.read <= 1 + PREFETCH_DEPTH + 1
    stream.close()
    assert source.closed_in == "dataplane-prefetch"


def test_leaving_an_encoded_stream_early_closes_the_source_and_ends_the_reader():
    source = Source(1000)
    chunks = encode(source.stream(), encoder_for(ARROW, source.stream(False).schema))
    next(chunks)
    next(chunks)
    chunks.close()
    assert source.closed_in is not None
    assert not [t for t in threading.enumerate() if t.name == "dataplane-prefetch"]
    assert source.read < 1000


def test_a_failure_of_the_source_midway_reaches_the_consumer_after_the_batches_before():
    source = Source(10, fail_at=4)
    seen = []
    with pytest.raises(DataPlaneError) as err:
        for batch in prefetch(source.stream()):
            seen.append(batch.num_rows)
    assert seen == [10] * 4
    assert err.value.status == 502
    assert source.closed_in == "dataplane-prefetch"


def test_the_first_jsonl_chunk_is_small_and_the_bytes_are_those_of_one_pass():
    table = pa.table({"id": list(range(5000)), "s": [f"v{i}" for i in range(5000)]})
    whole = encoder_for(JSONL, table.schema)
    expected = whole.batch(table.to_batches()[0])
    enc = encoder_for(JSONL, table.schema)
    chunks = list(encode(BatchStream(table.schema, table.to_batches()), enc))
    assert chunks[0].count(b"\n") == FIRST_ROWS
    assert b"".join(chunks) == expected and enc.rows == 5000
