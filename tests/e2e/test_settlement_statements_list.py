"""GET /settlement/statements: a party lists its own signed statements, the admin and auditors
every one, newest period first, paged by offset and limit like the other lists."""

import json

import pytest
from freezegun import freeze_time

from gateway.cli import main as dsgw
from gateway.products import cli as lifecycle_cli
from tests.e2e.world import PURPOSE, build_world

PRICED = {"purposes": [PURPOSE], "term": "P90D", "price_fen": 1000, "price": {"per_call_fen": 7}}


def _refresh(world) -> None:
    for party in (world.admin, world.holder, world.merchant, world.consumer, world.auditor):
        party._token = None


def _close(world, period: str) -> None:
    closed = world.admin.call("POST", f"/settlement/periods/{period}/close")
    assert closed.status_code == 200, closed.text


@pytest.fixture
def two_months(client, settings):
    """A contract finalised and used in November 2026, used again in December; both closed."""
    with freeze_time("2026-11-10T09:00:00Z") as frozen:
        world = build_world(client, settings.state_dir)
        product = world.publish(offers=[PRICED])
        contract = world.contract(product["offers"][0]["id"])
        assert world.pull(contract["id"]).status_code == 200
        frozen.move_to("2026-12-01T00:00:01Z")
        _refresh(world)
        _close(world, "2026-11")
        frozen.move_to("2026-12-10T09:00:00Z")
        _refresh(world)
        assert world.pull(contract["id"]).status_code == 200
        frozen.move_to("2027-01-01T00:00:01Z")
        _refresh(world)
        _close(world, "2026-12")
        yield world


def _listed(party, query: str = "") -> list[dict]:
    response = party.call("GET", f"/settlement/statements{query}")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_party_lists_only_its_own_statements_newest_period_first(two_months):
    world = two_months
    mine = _listed(world.consumer)
    assert [s["id"] for s in mine] == [
        f"stm_2026-12_{world.consumer.id}",
        f"stm_2026-11_{world.consumer.id}",
    ]
    assert {s["party"] for s in mine} == {world.consumer.id}
    assert [s["owes_fen"] for s in mine] == [7, 1007] and mine[0]["earns_fen"] == 0
    whole = world.consumer.call("GET", f"/settlement/statements/{mine[1]['id']}").json()
    assert mine[1]["ledger_seq"] == whole["ledger_seq"] and mine[1]["period"] == "2026-11"
    # asking for another party's statements lists none of them
    assert _listed(world.consumer, f"?party={world.holder.id}") == []
    assert [s["period"] for s in _listed(world.holder, "?period=2026-11")] == ["2026-11"]


def test_the_admin_and_auditors_list_every_statement_by_period_and_party(two_months):
    world = two_months
    every = _listed(world.admin, "?limit=200")
    parties = {world.consumer.id, world.holder.id, world.merchant.id}
    assert parties <= {s["party"] for s in every}
    periods = [s["period"] for s in every]
    assert periods == sorted(periods, reverse=True) and set(periods) == {"2026-11", "2026-12"}
    assert _listed(world.auditor, "?limit=200") == every
    november = _listed(world.auditor, "?period=2026-11")
    assert november == [s for s in every if s["period"] == "2026-11"]
    holder = _listed(world.admin, f"?party={world.holder.id}")
    assert [s["id"] for s in holder] == [
        f"stm_2026-12_{world.holder.id}",
        f"stm_2026-11_{world.holder.id}",
    ]


def test_statement_pages_of_one_add_up_to_the_whole_list(two_months):
    world = two_months
    every = _listed(world.admin, "?limit=200")
    assert len(every) >= 6
    paged, offset = [], 0
    while page := _listed(world.admin, f"?limit=1&offset={offset}"):
        assert len(page) == 1
        paged += page
        offset += 1
    assert paged == every


@pytest.mark.parametrize(
    "query",
    ["?offset=-1", "?offset=abc", "?offset=1000001", "?limit=0", "?limit=201", "?period=2026-13",
     "?period=x", "?party=../x", f"?party={'a' * 65}"],
)  # fmt: skip
def test_a_malformed_page_or_filter_is_a_422_problem(two_months, query):
    response = two_months.consumer.call("GET", f"/settlement/statements{query}")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].startswith("urn:dsgw:problem:")


def test_the_statements_command_lists_a_merchants_own_across_pages(
    two_months, settings, monkeypatch, client, capsys
):
    world = two_months
    monkeypatch.setattr(lifecycle_cli, "client_factory", lambda **_: client)
    monkeypatch.setattr("gateway.settlement.cli.STATEMENTS_PAGE", 1)  # a page per statement
    key = settings.state_dir / "merchant.jwk"
    key.write_text(json.dumps(world.merchant.key.private_jwk()))
    common = ["--state", str(settings.state_dir), "settlement", "statements", "--url",
              "http://localhost", "--as", world.merchant.id, "--key", str(key)]  # fmt: skip
    capsys.readouterr()
    assert dsgw([*common, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [s["id"] for s in listed] == [
        f"stm_2026-12_{world.merchant.id}",
        f"stm_2026-11_{world.merchant.id}",
    ]
    assert dsgw([*common, "--period", "2026-11"]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith(f"stm_2026-11_{world.merchant.id}  2026-11  owes 0 fen")
    assert "1 statement(s)" in printed.err
    assert dsgw([*common, "--period", "2026-13"]) == 1
    assert "HTTP 422" in capsys.readouterr().err


def test_the_python_client_pages_through_its_statements(two_months, client):
    from gateway.client import Client

    world = two_months
    key = world.holder.key
    with Client("http://localhost", world.holder.id, key, http=client) as mine:
        first = mine.statements(limit=1)
        rest = mine.statements(limit=1, offset=1)
        assert [s["period"] for s in first + rest] == ["2026-12", "2026-11"]
        assert mine.statements(limit=1, offset=2) == []
        whole = mine.statement(rest[0]["id"])
        assert whole["statement"]["party"] == world.holder.id
        assert whole["ledger_seq"] == rest[0]["ledger_seq"]
