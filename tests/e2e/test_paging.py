"""Cursor paging of api and file deliveries: each page its own decision and ledger entry, the
pages together exactly the data once, and a cursor good only for the stream it was issued for."""

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
    for i in range(23)
]


@pytest.fixture
def world(client, settings):
    world = build_world(client, settings.state_dir)
    resource = world.add_resource(
        name="residents", domain="finance", grade="general", level="L2", fields=FIELDS, rows=ROWS
    )
    world.product = world.publish(
        resource=resource,
        offers=[OFFER],
        name="residents, paged",
        authorisation_id=resource["authorisation_id"],
        delivery_modes=["api", "file"],
    )
    world.contract_id = world.contract(world.product["offers"][0]["id"])["id"]
    return world


def _pages(world, **extra) -> list[dict]:
    pages, cursor = [], None
    while True:
        body = {"fields": ["district", "score"], "limit": 10, **extra}
        if cursor is not None:
            body["cursor"] = cursor
        response = world.pull(world.contract_id, **body)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = pages[-1]["next_cursor"]
        if cursor is None:
            return pages


def test_pages_deliver_every_row_once_in_order_each_page_recorded(world, gateway):
    pages = _pages(world)
    assert [p["row_count"] for p in pages] == [10, 10, 3]
    assert [p["offset"] for p in pages] == [0, 10, 20]
    assert [r["score"] for p in pages for r in p["rows"]] == [r["score"] for r in ROWS]
    with gateway.engine.connect() as conn:
        entries = [ledger_store.get_entry(conn, p["receipt"]["seq"]).data for p in pages]
    assert [(e["offset"], e["rows"]) for e in entries] == [(0, 10), (10, 10), (20, 3)]
    assert len({p["exchange_id"] for p in pages}) == 3  # one decision per page
    usage = world.consumer.call("GET", f"/contracts/{world.contract_id}").json()["usage"]
    assert usage == {"rows": 23, "calls": 3}


def test_file_pages_are_files_whose_lines_add_up_to_the_data(world):
    pages = _pages(world, delivery="file")
    lines = [line for p in pages for line in p["file"]["content"].splitlines()]
    assert len(lines) == 23 and [p["row_count"] for p in pages] == [10, 10, 3]


def test_a_full_last_page_is_followed_by_an_empty_one(world):
    # 23 rows in a page of 23: the page is full, so a cursor follows, and its page is empty.
    first = world.pull(world.contract_id, fields=["score"], limit=23).json()
    assert first["row_count"] == 23 and first["next_cursor"] is not None
    last = world.pull(world.contract_id, fields=["score"], limit=23, cursor=first["next_cursor"])
    assert last.status_code == 200, last.text
    assert last.json()["rows"] == [] and last.json()["next_cursor"] is None


def test_a_cursor_is_refused_for_other_fields_or_an_altered_offset(world):
    first = world.pull(world.contract_id, fields=["district", "score"], limit=10).json()
    cursor = first["next_cursor"]
    other = world.pull(world.contract_id, fields=["score"], limit=10, cursor=cursor)
    assert other.status_code == 400, other.text
    assert other.json()["type"].endswith("cursor-invalid")
    body, mac = cursor.split(".")
    forged = world.pull(
        world.contract_id, fields=["district", "score"], limit=10, cursor=body[:-2] + "xx." + mac
    )
    assert forged.status_code == 400, forged.text
    # Nothing was decided or metered for the refused cursors.
    usage = world.consumer.call("GET", f"/contracts/{world.contract_id}").json()["usage"]
    assert usage == {"rows": 10, "calls": 1}


def test_a_cursor_of_one_consumer_is_refused_to_another(world):
    first = world.pull(world.contract_id, fields=["district", "score"], limit=10).json()
    # the other consumer's own contract on the same offer
    other = world.register("another bank", ["consumer"])
    contract = world.contract(world.product["offers"][0]["id"], consumer=other)
    response = world.pull(
        contract["id"],
        consumer=other,
        fields=["district", "score"],
        limit=10,
        cursor=first["next_cursor"],
    )
    assert response.status_code == 400, response.text


def test_compute_takes_no_cursor(world):
    response = world.pull(
        world.contract_id, delivery="compute", aggregates=[{"op": "count"}], cursor="a.b"
    )
    assert response.status_code == 422, response.text


def test_the_default_page_is_bounded(world):
    body = world.pull(world.contract_id, fields=["score"]).json()
    assert body["row_count"] == 23 and body["next_cursor"] is None and body["offset"] == 0


def test_an_open_pull_pages_too(client, settings):
    world = build_world(client, settings.state_dir)
    rows = [{"station": f"站{i}", "load_mw": 100 + i} for i in range(7)]
    resource = world.add_resource(
        name="loads",
        domain="energy",
        grade="general",
        level="L1",
        fields=[{"name": "station"}, {"name": "load_mw"}],
        rows=rows,
    )
    product = world.publish(
        resource=resource,
        offers=[{**OFFER, "price_fen": 0}],
        name="open loads",
        authorisation_id=resource["authorisation_id"],
        delivery_modes=["api"],
        public_interest=True,
    )
    seen, cursor = [], None
    for _ in range(5):
        body = {
            "purpose": "air-quality-research",
            "limit": 3,
            **({"cursor": cursor} if cursor else {}),
        }
        response = world.consumer.call("POST", f"/open-data/{product['id']}/exchanges", json=body)
        assert response.status_code == 200, response.text
        seen += [r["load_mw"] for r in response.json()["rows"]]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == [r["load_mw"] for r in rows]
