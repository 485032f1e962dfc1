"""The pull's reply body: large chunks go to the server in bounded views, bytes unchanged."""

import asyncio
import threading

from gateway.transfers import views


class _Pull:
    def __init__(self, chunks):
        self.chunks, self.closed = list(chunks), 0

    def next(self):
        return self.chunks.pop(0) if self.chunks else None

    def close(self):
        self.closed += 1


async def _pieces(pull) -> list:
    return [piece async for piece in views._body(pull)]


def _drain(pull) -> list:
    # A loop of its own in a thread of its own: another test's loop may be running in this one.
    out: list = []
    worker = threading.Thread(target=lambda: out.append(asyncio.run(_pieces(pull))))
    worker.start()
    worker.join()
    return out[0]


def test_large_chunks_are_sent_in_views_of_at_most_send_bytes_and_in_order():
    big = bytes(range(256)) * (views.SEND_BYTES // 256 * 2 + 3)  # two full views and a rest
    view = memoryview(bytes(range(200)) * (views.SEND_BYTES // 100))
    small = b"tail"
    pull = _Pull([big, small, view])
    pieces = _drain(pull)
    assert all(len(p) <= views.SEND_BYTES for p in pieces)
    assert b"".join(pieces) == big + small + view.tobytes()
    assert [len(p) for p in pieces[:4]] == [views.SEND_BYTES, views.SEND_BYTES, 768, 4]
    assert pieces[3] is small  # a chunk that fits goes as it is
    assert pull.closed == 1  # the end still closes the pull once
