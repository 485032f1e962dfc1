"""A pull the consumer breaks off mid-stream, over a real hypercorn: recorded as interrupted with
the rows, bytes and digest of what was sent, and the unsent part of the reservation released."""

import asyncio
import dataclasses
import hashlib
import socket
import threading
import time
from contextlib import contextmanager

import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

from gateway.app import build_gateway, create_app
from gateway.transfers import flows as transfer_flows
from tests.e2e.test_transfers import entries, start, transfer_world, usage

# Rows large enough that the stream cannot sit whole in the sockets' buffers (~24 MB).
PAD = "x" * 1000
ROWS = [{"id": i, "district": "海淀", "note": PAD} for i in range(24_000)]
FIELDS = [{"name": "id"}, {"name": "district"}, {"name": "note"}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _served(settings):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    gateway = build_gateway(dataclasses.replace(settings, issuer=url))
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    app = create_app(gateway=gateway)
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(serve(app, config, shutdown_trigger=stop.wait)),
        daemon=True,
    )
    thread.start()
    for _ in range(200):
        try:
            httpx.get(f"{url}/health", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    try:
        yield url, gateway
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        gateway.policy.close()
        gateway.engine.dispose()


@pytest.fixture
def served(settings):
    with _served(settings) as (url, gateway):
        with httpx.Client(base_url=url, timeout=60) as http:
            yield http, gateway


def test_a_pull_broken_off_mid_stream_is_recorded_as_interrupted_with_what_was_sent(
    served, settings, monkeypatch
):
    http, gateway = served
    # Batches of 1 MB: what the gateway produced after the consumer left stays well below all.
    monkeypatch.setattr(transfer_flows, "BATCH_ROWS", 1000)
    world = transfer_world(http, settings, rows=ROWS, fields=FIELDS, quota_rows=50_000)
    body = start(world).json()
    assert body["reserved_rows"] == 50_000  # the whole quota left is held
    received = 0
    with httpx.Client(timeout=60) as consumer:
        with consumer.stream(
            "GET",
            body["data"]["endpoint"],
            headers={"Authorization": f"Bearer {body['data']['token']}"},
        ) as response:
            assert response.status_code == 200
            for chunk in response.iter_raw():
                received += len(chunk)
                if received > 100_000:
                    break  # the consumer goes away with the stream under way
    deadline = time.monotonic() + 60
    while True:
        found = world.consumer.call("GET", f"/transfers/{body['id']}").json()
        if found["state"] != "STARTED":
            break
        assert time.monotonic() < deadline, found
        time.sleep(0.1)
    assert found["state"] == "TERMINATED" and found["receipt"] is None
    interrupted = entries(gateway, "transfer.interrupted")[-1].body["data"]
    assert interrupted["transfer"] == body["id"]
    assert interrupted["reason"] == "the client closed the stream"
    assert 0 < interrupted["rows"] < len(ROWS)
    assert received <= interrupted["bytes"] < 24_000 * 1000
    assert (found["rows"], found["bytes"], found["sha256"]) == (
        interrupted["rows"],
        interrupted["bytes"],
        interrupted["sha256"],
    )
    assert entries(gateway, "transfer.completed") == []
    # Metered for the rows that left, the rest of the reservation released.
    assert usage(gateway, world.deal["id"]) == (interrupted["rows"], 1)


def test_a_pull_suspended_mid_stream_stops_at_the_next_batch_and_resumes_whole(
    served, settings, monkeypatch
):
    http, gateway = served
    monkeypatch.setattr(transfer_flows, "BATCH_ROWS", 1000)
    world = transfer_world(http, settings, rows=ROWS, fields=FIELDS, quota_rows=50_000)
    body = start(world).json()
    broken = False
    with httpx.Client(timeout=60) as consumer:
        with consumer.stream(
            "GET",
            body["data"]["endpoint"],
            headers={"Authorization": f"Bearer {body['data']['token']}"},
        ) as response:
            chunks = response.iter_raw()
            received = len(next(chunks))
            suspended = world.merchant.call("POST", f"/transfers/{body['id']}/suspend")
            assert suspended.status_code == 200, suspended.text
            try:
                for chunk in chunks:
                    received += len(chunk)
            except httpx.TransportError:
                broken = True  # the gateway cut the stream off
    assert broken or received < len(ROWS) * len(PAD)
    found = world.consumer.call("GET", f"/transfers/{body['id']}").json()
    assert found["state"] == "SUSPENDED"
    interrupted = entries(gateway, "transfer.interrupted")[-1].body["data"]
    assert interrupted["state"] == "SUSPENDED" and "SUSPENDED" in interrupted["reason"]
    assert 0 < interrupted["rows"] < len(ROWS)

    resumed = world.consumer.call("POST", f"/transfers/{body['id']}/resume")
    assert resumed.status_code == 200, resumed.text
    again = http.get(
        resumed.json()["data"]["endpoint"],
        headers={"Authorization": f"Bearer {resumed.json()['data']['token']}"},
    )
    assert again.status_code == 200
    done = world.consumer.call("GET", f"/transfers/{body['id']}").json()
    assert done["state"] == "COMPLETED" and done["rows"] == len(ROWS)
    assert done["sha256"] == hashlib.sha256(again.content).hexdigest()
    # Both attempts streamed from the first row: the rows are metered once (the most an attempt
    # sent), not the sum of the attempts; the call once.
    assert usage(gateway, world.deal["id"]) == (len(ROWS), 1)
