"""Transfers end to end against the real OPA, databases, S3 server and HTTP server: pull with a
data token, push to the consumer's sink, the stream's evidence, the states, the quota."""

import hashlib
import io
import json
import threading
import time
import uuid

import jwt
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq
import pytest
from jwt.algorithms import OKPAlgorithm

from gateway.demo import FIELDS
from gateway.transfers import flows as transfer_flows
from ledger import store as ledger_store
from tests.e2e.world import OFFER, PURPOSE, build_world
from tests.support import http_source, s3

ROWS = [
    {
        "name": f"居民{i}",
        "phone": f"1380000{i:04d}",
        "id_card": f"11010119900101{i:04d}",
        "district": "海淀" if i % 2 else "朝阳",
        "score": 600 + i,
    }
    for i in range(40)
]


@pytest.fixture
def world(client, settings):
    return transfer_world(client, settings)


def transfer_world(client, settings, rows=ROWS, fields=FIELDS, quota_rows=1000):
    """The demo's cast, a resource of `rows`, a product offering file delivery, a contract."""
    world = build_world(client, settings.state_dir)
    resource = world.add_resource(
        name="residents", domain="finance", grade="general", level="L3", fields=fields, rows=rows
    )
    world.files = world.publish(
        resource=resource,
        offers=[{**OFFER, "quota_rows": quota_rows}],
        name="residents as files",
        authorisation_id=resource["authorisation_id"],
        delivery_modes=["api", "file"],
    )
    world.deal = world.contract(world.files["offers"][0]["id"])
    world.stranger = world.register("stranger", ["consumer"])
    return world


def start(world, party=None, headers=None, **body):
    """POST /transfers under the world's contract; return the raw response."""
    party = party or world.consumer
    return party.client.post(
        "/transfers",
        json={"contract_id": world.deal["id"], "purpose": PURPOSE, **body},
        headers={"Authorization": f"Bearer {party.token()}", **(headers or {})},
    )


def pull(world, started: dict, token: str | None = None):
    """GET the transfer's data endpoint with its data token (or `token`)."""
    data = started["data"]
    return world.client.get(
        data["endpoint"], headers={"Authorization": f"Bearer {token or data['token']}"}
    )


def entries(gateway, type_: str | None = None) -> list:
    with gateway.engine.connect() as conn:
        found = list(ledger_store.iter_entries(conn))
    return [e for e in found if type_ is None or e.body["type"] == type_]


def usage(gateway, contract_id: str) -> tuple[int, int]:
    from gateway.negotiation.models import Contract

    with gateway.sessions() as session:
        contract = session.get(Contract, contract_id)
        return contract.rows_used, contract.calls_used


def wait_until_done(world, transfer_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = world.consumer.call("GET", f"/transfers/{transfer_id}").json()
        if found["state"] in ("COMPLETED", "TERMINATED"):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


# -- pull ------------------------------------------------------------------------------------


def test_a_pull_streams_the_masked_rows_and_the_consumer_recomputes_the_ledgers_digest(
    world, gateway
):
    started = start(world)
    assert started.status_code == 201, started.text
    body = started.json()
    assert body["state"] == "STARTED" and body["type"] == "pull"
    assert body["data"]["endpoint"].endswith(f"/transfers/{body['id']}/data")
    assert body["reserved_rows"] == 1000
    assert usage(gateway, world.deal["id"]) == (1000, 1)  # reserved at start
    began = entries(gateway, "transfer.started")[-1]
    assert began.body["data"]["transfer"] == body["id"]
    assert began.body["data"]["decision"] == body["decision_id"]

    got = pull(world, body)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("application/jsonl")
    received = got.content
    digest = hashlib.sha256(received).hexdigest()  # the consumer's own count
    rows = [json.loads(line) for line in received.decode().splitlines()]
    assert len(rows) == len(ROWS)
    assert rows[0]["phone"] != ROWS[0]["phone"] and rows[0]["phone"].startswith("138")
    assert rows[0]["district"] == ROWS[0]["district"]

    done = world.consumer.call("GET", f"/transfers/{body['id']}").json()
    assert done["state"] == "COMPLETED"
    assert (done["rows"], done["bytes"], done["sha256"]) == (len(ROWS), len(received), digest)
    completed = entries(gateway, "transfer.completed")[-1]
    assert completed.seq > began.seq
    assert completed.body["data"]["sha256"] == digest
    assert completed.body["data"]["rows"] == len(ROWS)
    assert completed.body["data"]["bytes"] == len(received)
    assert done["receipt"]["seq"] == completed.seq
    assert done["receipt"]["body"]["data"]["sha256"] == digest
    assert done["data"] is None  # no token in a read
    # Metering: the rows delivered are kept, the rest of the reservation released; one call.
    assert usage(gateway, world.deal["id"]) == (len(ROWS), 1)
    # A transfer delivers once.
    again = pull(world, body)
    assert again.status_code == 409
    assert again.json()["type"] == "urn:dsgw:problem:transfer-state-conflict"


def _table(media: str, data: bytes) -> pa.Table:
    if media == "text/csv":
        return pa_csv.read_csv(io.BytesIO(data))
    if media == "application/vnd.apache.arrow.stream":
        return pa_ipc.open_stream(io.BytesIO(data)).read_all()
    return pq.read_table(io.BytesIO(data))


@pytest.mark.parametrize(
    "media",
    ["text/csv", "application/vnd.apache.arrow.stream", "application/vnd.apache.parquet"],
)
def test_a_pull_in_each_format_carries_the_digest_of_its_bytes(world, gateway, media):
    body = start(world, format=media, limit=7, fields=["phone", "score"]).json()
    assert body["reserved_rows"] == 7
    got = pull(world, body)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith(media)
    table = _table(media, got.content)
    assert table.num_rows == 7 and "phone" in table.column_names
    done = world.consumer.call("GET", f"/transfers/{body['id']}").json()
    assert done["sha256"] == hashlib.sha256(got.content).hexdigest()
    assert entries(gateway, "transfer.completed")[-1].body["data"]["sha256"] == done["sha256"]
    assert usage(gateway, world.deal["id"]) == (7, 1)


# -- the data token --------------------------------------------------------------------------


def _forged(gateway, started: dict, **claims) -> str:
    """A data token signed by the gateway's own key with some claims changed."""
    real = jwt.decode(started["data"]["token"], options={"verify_signature": False})
    return jwt.encode(
        {**real, **claims},
        OKPAlgorithm.from_jwk(gateway.signer.private_jwk()),
        algorithm="EdDSA",
        headers={"kid": gateway.signer.kid, "typ": "edr+jwt"},
    )


def test_the_data_endpoint_takes_only_its_own_live_token(world, gateway):
    one = start(world, limit=3).json()
    other = start(world, limit=3).json()
    claims = jwt.decode(one["data"]["token"], options={"verify_signature": False})
    assert claims["transfer"] == one["id"] and claims["contract"] == world.deal["id"]
    assert claims["sub"] == world.consumer.id and claims["aud"] == one["data"]["endpoint"]
    assert claims["exp"] - claims["iat"] <= 600

    bare = world.client.get(one["data"]["endpoint"])
    assert bare.status_code == 401
    access = pull(world, one, token=world.consumer.token())
    assert access.status_code == 401 and "access token" in access.json()["detail"]
    expired = pull(world, one, token=_forged(gateway, one, exp=int(time.time()) - 60))
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    junk = pull(world, one, token="not-a-jwt")
    assert junk.status_code == 401
    before = len(entries(gateway, "transfer.refused"))
    crossed = pull(world, one, token=other["data"]["token"])
    assert crossed.status_code == 403
    assert crossed.json()["type"] == "urn:dsgw:problem:transfer-token-mismatch"
    refused = entries(gateway, "transfer.refused")
    assert len(refused) == before + 1
    assert refused[-1].body["data"]["reason"] == "TOKEN_OF_ANOTHER_TRANSFER"
    assert refused[-1].body["data"]["transfer"] == one["id"]
    # Nothing was delivered by any of them: each still pulls once with its own token.
    assert pull(world, one).status_code == 200
    assert pull(world, other).status_code == 200


def test_a_suspended_or_terminated_transfer_refuses_its_token_and_a_resume_retires_it(
    world, gateway
):
    body = start(world, limit=5).json()
    suspended = world.consumer.call("POST", f"/transfers/{body['id']}/suspend")
    assert suspended.status_code == 200 and suspended.json()["state"] == "SUSPENDED"
    refused = pull(world, body)
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:dsgw:problem:transfer-state-conflict"
    assert entries(gateway, "transfer.refused")[-1].body["data"]["reason"] == "STATE_SUSPENDED"

    resumed = world.merchant.call("POST", f"/transfers/{body['id']}/resume")  # the provider
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["state"] == "STARTED"
    assert entries(gateway, "transfer.resumed")[-1].body["data"]["by"] == world.merchant.id
    assert resumed.json()["data"] is not None  # the resumed pull's new token
    retired = pull(world, body)
    assert retired.status_code == 401 and "retired" in retired.json()["detail"]
    fresh = {"data": resumed.json()["data"]}
    assert pull(world, fresh).status_code == 200
    # The reservation and the call were counted once, across the resume.
    assert usage(gateway, world.deal["id"]) == (5, 1)

    ended = start(world, limit=5).json()
    terminated = world.consumer.call(
        "POST", f"/transfers/{ended['id']}/terminate", json={"reason": "no longer needed"}
    )
    assert terminated.status_code == 200 and terminated.json()["state"] == "TERMINATED"
    assert pull(world, ended).status_code == 409
    entry = entries(gateway, "transfer.terminated")[-1].body["data"]
    assert entry["released_rows"] == 5 and entry["reason"] == "no longer needed"
    assert usage(gateway, world.deal["id"]) == (5, 2)  # the terminated one's rows released


# -- states ----------------------------------------------------------------------------------


def test_illegal_transitions_are_409_transfer_state_conflict(world):
    body = start(world, limit=2).json()
    for action in ("resume",):
        wrong = world.consumer.call("POST", f"/transfers/{body['id']}/{action}")
        assert wrong.status_code == 409, wrong.text
        assert wrong.json()["type"] == "urn:dsgw:problem:transfer-state-conflict"
        assert wrong.json()["current_state"] == "STARTED"
    assert world.consumer.call("POST", f"/transfers/{body['id']}/terminate").status_code == 200
    for action in ("suspend", "resume", "terminate"):
        wrong = world.consumer.call("POST", f"/transfers/{body['id']}/{action}")
        assert wrong.status_code == 409, (action, wrong.text)
        assert wrong.json()["type"] == "urn:dsgw:problem:transfer-state-conflict"
        assert wrong.json()["allowed_actions"] == []


def test_a_transfer_is_unknown_to_strangers_and_read_by_parties_and_auditors(world):
    body = start(world, limit=2).json()
    for party in (world.stranger, world.holder):
        assert party.call("GET", f"/transfers/{body['id']}").status_code == 404
        assert party.call("POST", f"/transfers/{body['id']}/terminate").status_code == 404
        listed = party.call("GET", "/transfers", params={"contract_id": world.deal["id"]})
        assert listed.status_code == 200 and listed.json()["items"] == []
    for party in (world.consumer, world.merchant, world.auditor):
        assert party.call("GET", f"/transfers/{body['id']}").status_code == 200
        listed = party.call("GET", "/transfers", params={"contract_id": world.deal["id"]})
        assert [t["id"] for t in listed.json()["items"]] == [body["id"]]
    assert world.auditor.call("POST", f"/transfers/{body['id']}/suspend").status_code == 403
    # Only the consumer of a contract starts a transfer under it, as for an exchange.
    assert start(world, party=world.stranger).status_code == 404


def test_a_revoked_contract_does_not_resume_and_the_denial_is_recorded(world, gateway):
    body = start(world, limit=4).json()
    assert world.consumer.call("POST", f"/transfers/{body['id']}/suspend").status_code == 200
    revoked = world.merchant.call("POST", f"/contracts/{world.deal['id']}/revoke")
    assert revoked.status_code == 200, revoked.text
    resumed = world.consumer.call("POST", f"/transfers/{body['id']}/resume")
    assert resumed.status_code == 403, resumed.text
    assert resumed.json()["type"] == "urn:dsgw:problem:policy-denied"
    denied = entries(gateway, "transfer.denied")[-1].body["data"]
    assert denied["transfer"] == body["id"] and denied["decision"] == resumed.json()["decision_id"]
    assert world.consumer.call("GET", f"/transfers/{body['id']}").json()["state"] == "SUSPENDED"


def test_a_transfer_the_policy_denies_is_recorded_and_reserves_nothing(world, gateway):
    denied = start(world, purpose="marketing")
    assert denied.status_code == 403, denied.text
    entry = entries(gateway, "transfer.denied")[-1].body["data"]
    assert entry["decision"] == denied.json()["decision_id"] and entry["type"] == "pull"
    assert usage(gateway, world.deal["id"]) == (0, 0)


def test_a_pull_with_a_sink_and_a_push_without_one_are_refused(world):
    assert start(world, sink={"type": "http", "url": "http://x.test/"}).status_code == 422
    assert start(world, type="push").status_code == 422
    secret = "s3cr3t-" + uuid.uuid4().hex
    bad = start(world, type="push", sink={"type": "object", "bucket": "B!", "key": "k.csv",
                                          "secret": {"access_key_id": "a",
                                                     "secret_access_key": secret}})  # fmt: skip
    assert bad.status_code == 422 and secret not in bad.text


# -- push ------------------------------------------------------------------------------------


def _everything_recorded(gateway) -> str:
    """Every table of the gateway's database and the whole ledger, as text."""
    from sqlalchemy import inspect, text

    out = []
    with gateway.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            out += [repr(tuple(r)) for r in conn.execute(text(f'SELECT * FROM "{table}"'))]
    return "\n".join(out)


def test_a_push_to_the_consumers_s3_bucket_lands_the_bytes_the_ledger_describes(world, gateway):
    server = s3.shared()
    bucket = f"consumer-{uuid.uuid4().hex[:8]}"
    server.create_bucket(bucket)
    key = "in/residents.parquet"
    started = start(
        world,
        type="push",
        format="application/vnd.apache.parquet",
        sink={"type": "object", "endpoint": server.endpoint, "bucket": bucket, "key": key,
              "secret": server.secret()},
    )  # fmt: skip
    assert started.status_code == 201, started.text
    assert started.json()["state"] == "STARTED" and started.json()["data"] is None
    done = wait_until_done(world, started.json()["id"])
    assert done["state"] == "COMPLETED", done
    with server.filesystem().open_input_file(f"{bucket}/{key}") as f:
        stored = f.read()
    digest = hashlib.sha256(stored).hexdigest()
    assert (done["sha256"], done["bytes"], done["rows"]) == (digest, len(stored), len(ROWS))
    assert done["location"] == f"s3://{bucket}/{key}"
    completed = entries(gateway, "transfer.completed")[-1].body["data"]
    assert completed["sha256"] == digest and completed["location"] == f"s3://{bucket}/{key}"
    assert done["receipt"]["body"]["data"]["sha256"] == digest
    assert pq.read_table(io.BytesIO(stored)).num_rows == len(ROWS)
    assert "secret" not in done["sink"]
    # The credentials are in no reply, no table, no ledger entry.
    recorded = _everything_recorded(gateway) + started.text + json.dumps(done)
    assert s3.SECRET_KEY not in recorded and s3.ACCESS_KEY not in recorded
    assert usage(gateway, world.deal["id"]) == (len(ROWS), 1)


def test_a_push_to_the_consumers_http_endpoint_sends_the_bytes_the_ledger_describes(world, gateway):
    server = http_source.shared()
    name = f"t-{uuid.uuid4().hex[:8]}"
    signature = f"presigned-{uuid.uuid4().hex}"
    started = start(
        world,
        type="push",
        format="text/csv",
        limit=11,
        sink={"type": "http", "url": f"{server.url}/bearer/upload/{name}?sig={signature}",
              "auth": {"kind": "bearer"}, "secret": {"token": server.token}},
    )  # fmt: skip
    assert started.status_code == 201, started.text
    done = wait_until_done(world, started.json()["id"])
    assert done["sink"]["url"] == f"{server.url}/bearer/upload/{name}"  # a query may be a key
    assert done["state"] == "COMPLETED", done
    body = server.uploads[name]["body"]
    assert hashlib.sha256(body).hexdigest() == done["sha256"]
    assert entries(gateway, "transfer.completed")[-1].body["data"]["sha256"] == done["sha256"]
    assert pa_csv.read_csv(io.BytesIO(body)).num_rows == 11
    recorded = _everything_recorded(gateway) + json.dumps(done) + started.text
    assert server.token not in recorded and signature not in recorded
    assert usage(gateway, world.deal["id"]) == (11, 1)


def test_a_push_the_sink_refuses_is_interrupted_and_its_reservation_released(world, gateway):
    server = http_source.shared()
    started = start(
        world,
        type="push",
        limit=9,
        sink={"type": "http", "url": f"{server.url}/bearer/upload/refused",
              "auth": {"kind": "bearer"}, "secret": {"token": "wrong-token"}},
    )  # fmt: skip
    assert started.status_code == 201, started.text
    done = wait_until_done(world, started.json()["id"])
    assert done["state"] == "TERMINATED" and done["receipt"] is None
    interrupted = entries(gateway, "transfer.interrupted")[-1].body["data"]
    assert interrupted["transfer"] == done["id"] and "401" in interrupted["reason"]
    assert interrupted["sha256"] == done["sha256"] and interrupted["rows"] == done["rows"]
    rows, calls = usage(gateway, world.deal["id"])
    assert calls == 1 and rows == done["rows"]  # what left, not the whole reservation


# -- idempotency -----------------------------------------------------------------------------


def test_a_retried_transfer_with_its_key_is_the_same_transfer_metered_once(world, gateway):
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = start(world, headers=key, limit=6)
    again = start(world, headers=key, limit=6)
    assert first.status_code == 201 and again.status_code == 201, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["data"]["token"]  # a fresh token for the same transfer
    assert usage(gateway, world.deal["id"]) == (6, 1)
    assert len(entries(gateway, "transfer.started")) == 1
    other = start(world, headers=key, limit=7)
    assert other.status_code == 422
    assert other.json()["type"] == "urn:dsgw:problem:idempotency-key-reused"
    assert pull(world, again.json()).status_code == 200
    assert usage(gateway, world.deal["id"]) == (6, 1)


def test_an_idempotency_key_is_the_subjects_own_and_forgotten_after_its_retention(world, gateway):
    from datetime import timedelta

    from sqlalchemy import update

    from gateway.core import clock
    from gateway.core.idempotency import RETENTION_SECONDS, IdempotencyKey

    key = {"Idempotency-Key": "shared-key"}
    mine = start(world, headers=key, limit=2)
    assert mine.status_code == 201
    # The same key and body from someone else is that one's own request (here: refused).
    theirs = start(world, party=world.stranger, headers=key, limit=2)
    assert theirs.status_code == 404
    with gateway.engine.begin() as conn:
        kept = conn.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.key == "shared-key")
            .values(expires_at=clock.now() - timedelta(seconds=1))
        )
        assert kept.rowcount == 2
    assert RETENTION_SECONDS == 24 * 3600
    # Past its retention, the key is free again: another body makes another transfer.
    later = start(world, headers=key, limit=3)
    assert later.status_code == 201 and later.json()["id"] != mine.json()["id"]


def test_a_retried_exchange_with_its_key_returns_the_stored_reply_delivered_once(world, gateway):
    key = {"Idempotency-Key": "exchange-1"}
    body = {"contract_id": world.deal["id"], "purpose": PURPOSE, "limit": 3}

    def post(payload):
        return world.client.post(
            "/exchanges",
            json=payload,
            headers={"Authorization": f"Bearer {world.consumer.token()}", **key},
        )

    first, again = post(body), post(body)
    assert first.status_code == 200 and again.status_code == 200, again.text
    assert again.json() == first.json()
    assert len(entries(gateway, "exchange.delivered")) == 1
    assert usage(gateway, world.deal["id"]) == (3, 1)
    reused = post({**body, "limit": 4})
    assert reused.status_code == 422
    assert reused.json()["type"] == "urn:dsgw:problem:idempotency-key-reused"
    # A denial is a result too: replayed, not decided twice.
    key["Idempotency-Key"] = "exchange-2"
    denied = {**body, "purpose": "marketing"}
    one, two = post(denied), post(denied)
    assert one.status_code == two.status_code == 403
    assert one.json()["decision_id"] == two.json()["decision_id"]
    assert len(entries(gateway, "exchange.denied")) == 1
    # Without a key, the same request is a new one: delivered and metered again.
    plain = world.consumer.call("POST", "/exchanges", json=body)
    assert plain.status_code == 200 and plain.json()["exchange_id"] != first.json()["exchange_id"]
    assert usage(gateway, world.deal["id"]) == (6, 2)


# -- quota -----------------------------------------------------------------------------------


def test_two_concurrent_transfers_share_the_quota_exactly(client, settings, gateway):
    world = transfer_world(client, settings, quota_rows=30)
    results = []

    def go():
        results.append(start(world, limit=20))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [201, 201], [r.text for r in results]
    reserved = sorted(r.json()["reserved_rows"] for r in results)
    assert reserved == [10, 20]  # the second saw what the first held
    assert usage(gateway, world.deal["id"]) == (30, 2)
    exhausted = start(world, limit=1)
    assert exhausted.status_code == 403 and "QUOTA_EXHAUSTED" in exhausted.text
    received = [pull(world, r.json()) for r in results]
    total = sum(len(r.content.splitlines()) for r in received)
    assert total == 30 and usage(gateway, world.deal["id"]) == (30, 2)


def test_push_workers_leave_nothing_behind():
    transfer_flows.wait_for_pushes()
    assert transfer_flows._WORKERS == {} and transfer_flows._SINKS == {}


class _HeldSink:
    """A consumer endpoint that holds each upload until released, then stores it (200)."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.release = threading.Event()
        self.bodies: list[bytes] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                owner.release.wait(30)
                body = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    body += self.rfile.read(size)
                    self.rfile.readline()
                owner.bodies.append(bytes(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/in"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_suspended_push_resumes_to_its_sink_and_not_once_its_credentials_are_gone(world, gateway):
    held = _HeldSink()
    try:
        sink = {"type": "http", "url": held.url, "auth": {"kind": "bearer"},
                "secret": {"token": "consumer-token"}}  # fmt: skip
        first = start(world, type="push", limit=8, sink=sink).json()
        suspended = world.consumer.call("POST", f"/transfers/{first['id']}/suspend")
        assert suspended.status_code == 200, suspended.text
        held.release.set()  # the sink takes the bytes of the suspended attempt
        transfer_flows.wait_for_pushes()
        found = world.consumer.call("GET", f"/transfers/{first['id']}").json()
        assert found["state"] == "SUSPENDED"
        interrupted = entries(gateway, "transfer.interrupted")[-1].body["data"]
        assert interrupted["transfer"] == first["id"] and interrupted["state"] == "SUSPENDED"
        resumed = world.merchant.call("POST", f"/transfers/{first['id']}/resume")
        assert resumed.status_code == 200, resumed.text
        done = wait_until_done(world, first["id"])
        assert done["state"] == "COMPLETED"
        assert hashlib.sha256(held.bodies[-1]).hexdigest() == done["sha256"]
        # Both attempts' rows reached the sink, each from the first row: the rows are metered
        # once (the most an attempt sent), the call once.
        assert usage(gateway, world.deal["id"]) == (max(8, interrupted["rows"]), 1)

        held.release.clear()
        second = start(world, type="push", limit=2, sink=sink).json()
        assert world.consumer.call("POST", f"/transfers/{second['id']}/suspend").status_code == 200
        held.release.set()
        transfer_flows.wait_for_pushes()
        transfer_flows._SINKS.clear()  # as after a restart: the credentials lived in memory only
        gone = world.consumer.call("POST", f"/transfers/{second['id']}/resume")
        assert gone.status_code == 409
        assert gone.json()["type"] == "urn:dsgw:problem:transfer-sink-gone"
        ended = world.consumer.call("POST", f"/transfers/{second['id']}/terminate")
        assert ended.status_code == 200
    finally:
        held.close()
