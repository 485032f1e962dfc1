"""A running stream's watch on its transfer: it reads the transfer's state at its first batch,
again at the batch after a move made in this process, else at most every WATCH_SECONDS (not
before each batch)."""

from contextlib import contextmanager
from types import SimpleNamespace

import pyarrow as pa
import pytest

from gateway.dataplane import BatchStream
from gateway.transfers import flows

TRANSFER = "trf_watched"


class FakeEngine:
    """Answers the watch's one query (state, token generation) and counts how often it ran."""

    def __init__(self) -> None:
        self.state, self.generation, self.reads = "STARTED", 1, 0

    @contextmanager
    def connect(self):
        engine = self

        class Conn:
            def execute(self, _statement):
                engine.reads += 1
                return SimpleNamespace(one_or_none=lambda: (engine.state, engine.generation))

        yield Conn()


def _stream(batches: int) -> BatchStream:
    batch = pa.record_batch({"id": pa.array(range(10), pa.int64())})
    return BatchStream(batch.schema, [batch] * batches, threadsafe=True)


@pytest.fixture
def engine():
    return FakeEngine()


def _watched(engine: FakeEngine, batches: int = 100):
    gateway = SimpleNamespace(engine=engine)
    return flows._watch(gateway, TRANSFER, 1, _stream(batches))  # type: ignore[arg-type]


def test_a_stream_does_not_read_its_transfer_state_before_every_batch(engine, monkeypatch):
    monkeypatch.setattr(flows, "WATCH_SECONDS", 3600.0)
    assert sum(b.num_rows for b in _watched(engine)) == 1000
    assert engine.reads == 1  # 100 batches, no move: the first batch's query (one per batch before)


def test_a_move_in_this_process_stops_the_stream_at_its_next_batch(engine, monkeypatch):
    monkeypatch.setattr(flows, "WATCH_SECONDS", 3600.0)
    batches = iter(_watched(engine))
    next(batches), next(batches)
    engine.state = "SUSPENDED"  # committed by the suspend ...
    flows._moved(TRANSFER)  # ... which then tells this process's streams
    with pytest.raises(flows.Stopped, match="SUSPENDED"):
        next(batches)
    assert engine.reads == 2  # the first batch's, and the one after the move


def test_a_transfer_moved_before_its_stream_began_stops_it_at_the_first_batch(engine, monkeypatch):
    monkeypatch.setattr(flows, "WATCH_SECONDS", 3600.0)
    stream = _watched(engine)
    engine.state = "TERMINATED"  # between the data endpoint's check and the first batch
    flows._moved(TRANSFER)  # no stream of it counted yet: nothing to tell
    with pytest.raises(flows.Stopped, match="TERMINATED"):
        next(iter(stream))


def test_a_move_through_another_process_is_seen_once_the_watch_interval_passed(engine, monkeypatch):
    monkeypatch.setattr(flows, "WATCH_SECONDS", 0.0)  # the interval always passed
    batches = iter(_watched(engine))
    next(batches)
    engine.generation = 2  # resumed elsewhere: a newer attempt, no move seen here
    with pytest.raises(flows.Stopped):
        next(batches)


def test_a_closed_stream_leaves_no_count_behind(engine):
    never = _watched(engine)
    never.close()  # a stream never begun (the consumer left at once) is never counted
    assert TRANSFER not in flows._MOVES and TRANSFER not in flows._STREAMS
    stream = _watched(engine, batches=3)
    batches = iter(stream)
    next(batches)
    assert TRANSFER in flows._MOVES and flows._STREAMS[TRANSFER] == 1
    list(batches)
    flows._moved(TRANSFER)  # a move after the end counts nothing
    assert TRANSFER not in flows._MOVES and TRANSFER not in flows._STREAMS
    early = _watched(engine)
    next(iter(early))
    early.close()
    assert TRANSFER not in flows._MOVES and TRANSFER not in flows._STREAMS
