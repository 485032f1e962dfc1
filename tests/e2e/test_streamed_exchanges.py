"""An exchange streamed by Accept: the whole data in the data format asked for, run as a pull
transfer whose ledger entries describe exactly the bytes of the reply."""

import hashlib
import io
import json

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from gateway.demo import FIELDS
from ledger import store as ledger_store
from tests.e2e.world import OFFER, build_world

ROWS = [
    {
        "name": f"居民{i}",
        "phone": f"1380000{i:04d}",
        "id_card": f"11010119900101{i:04d}",
        "district": "海淀" if i % 2 else "朝阳",
        "score": 600 + i,
    }
    for i in range(37)
]


@pytest.fixture
def world(client, settings):
    world = build_world(client, settings.state_dir)
    resource = world.add_resource(
        name="residents", domain="finance", grade="general", level="L2", fields=FIELDS, rows=ROWS
    )
    world.api_only = world.publish(
        resource=resource,
        offers=[OFFER],
        name="residents, api only",
        authorisation_id=resource["authorisation_id"],
        delivery_modes=["api"],
    )
    world.contract_id = world.contract(world.api_only["offers"][0]["id"])["id"]
    return world


def _stream(world, accept: str, **extra):
    return world.consumer.call(
        "POST",
        "/exchanges",
        json={"contract_id": world.contract_id, "purpose": "credit-risk-assessment", **extra},
        headers={"Accept": accept},
    )


def test_accept_jsonl_streams_every_row_masked_and_the_transfer_holds_its_digest(world, gateway):
    response = _stream(world, "application/jsonl", fields=["name", "phone", "score"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/jsonl")
    lines = [json.loads(line) for line in response.content.splitlines()]
    assert [r["score"] for r in lines] == [r["score"] for r in ROWS]  # not one page: all
    assert lines[3]["phone"] == "138****0003" and lines[3]["name"] == "居**"
    transfer_id = response.headers["x-transfer-id"]
    done = world.consumer.call("GET", f"/transfers/{transfer_id}").json()
    assert done["state"] == "COMPLETED" and done["rows"] == len(ROWS)
    assert done["sha256"] == hashlib.sha256(response.content).hexdigest()
    assert done["bytes"] == len(response.content)
    assert done["receipt"]["body"]["data"]["sha256"] == done["sha256"]
    with gateway.engine.connect() as conn:
        types = [e.type for e in ledger_store.iter_entries(conn)]
    assert types[-2:] == ["transfer.started", "transfer.completed"]
    usage = world.consumer.call("GET", f"/contracts/{world.contract_id}").json()["usage"]
    assert usage == {"rows": len(ROWS), "calls": 1}


@pytest.mark.parametrize("accept", ["text/csv", "application/vnd.apache.parquet"])
def test_csv_and_parquet_streams_carry_the_rows(world, accept):
    response = _stream(world, accept, fields=["district", "score"], limit=20)
    assert response.status_code == 200, response.text
    if accept == "text/csv":
        table = pa_csv.read_csv(io.BytesIO(response.content))
    else:
        table = pq.read_table(io.BytesIO(response.content))
    assert table.column("score").to_pylist() == [r["score"] for r in ROWS[:20]]


@pytest.mark.parametrize("accept", [None, "application/json", "application/json, text/csv"])
def test_json_first_or_no_accept_keeps_the_json_page(world, accept):
    headers = {"Accept": accept} if accept else {}
    response = world.consumer.call(
        "POST",
        "/exchanges",
        json={"contract_id": world.contract_id, "purpose": "credit-risk-assessment"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["row_count"] == len(ROWS) and "x-transfer-id" not in response.headers


def test_a_stream_takes_no_cursor_or_idempotency_key(world):
    assert _stream(world, "text/csv", cursor="a.b").status_code == 422
    keyed = world.consumer.call(
        "POST",
        "/exchanges",
        json={"contract_id": world.contract_id, "purpose": "credit-risk-assessment"},
        headers={"Accept": "text/csv", "Idempotency-Key": "k-1"},
    )
    assert keyed.status_code == 422, keyed.text
    usage = world.consumer.call("GET", f"/contracts/{world.contract_id}").json()["usage"]
    assert usage == {"rows": 0, "calls": 0}


def test_a_denied_stream_is_a_recorded_problem_not_a_stream(world, gateway):
    response = world.consumer.call(
        "POST",
        "/exchanges",
        json={"contract_id": world.contract_id, "purpose": "marketing"},
        headers={"Accept": "application/jsonl"},
    )
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    with gateway.engine.connect() as conn:
        entry = ledger_store.get_entry(conn, response.json()["ledger_seq"])
    assert entry.type == "transfer.denied" and "PURPOSE_NOT_PERMITTED" in entry.data["reasons"]


def test_compute_is_never_streamed(world):
    response = _stream(world, "text/csv", delivery="compute", aggregates=[{"op": "count"}])
    # compute answers in JSON (here the policy refuses compute on an api-only product)
    assert response.headers["content-type"] == "application/problem+json"
    assert "x-transfer-id" not in response.headers
