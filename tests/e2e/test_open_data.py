"""Public data open to the public: L1 open data pulled by any authenticated participant without
a contract, still decided by OPA and recorded, and capped so that it is not scraped."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from ledger import store as ledger_store
from tests.e2e.world import OFFER, build_world

STATIONS = [{"station": f"站点{i}", "pm25": 30 + i} for i in range(1500)]


@pytest.fixture
def world(client, settings):
    world = build_world(client, settings.state_dir)
    resource = world.add_resource(
        name="air quality",
        domain="environment",
        grade="general",
        level="L1",
        fields=[{"name": "station"}, {"name": "pm25"}],
        rows=STATIONS,
    )
    world.open = world.publish(
        resource=resource,
        offers=[{**OFFER, "price_fen": 0}],
        name="air quality, open",
        authorisation_id=resource["authorisation_id"],
        delivery_modes=["api", "file"],
        public_interest=True,
    )
    return world


def _entry(gateway, seq: int):
    with gateway.engine.connect() as conn:
        return ledger_store.get_entry(conn, seq)


def _pull_open(party, product_id: str, **body):
    return party.call(
        "POST",
        f"/open-data/{product_id}/exchanges",
        json={"purpose": "air-quality-research", **body},
    )


def test_open_data_is_pulled_without_a_contract_decided_by_opa_and_recorded(world, gateway):
    stranger = world.register("any participant", ["consumer"])
    response = _pull_open(stranger, world.open["id"], limit=3)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["contract_id"] is None and body["product_id"] == world.open["id"]
    assert body["rows"] == STATIONS[:3] and body["masked"] == []
    data = _entry(gateway, body["receipt"]["seq"]).data
    assert data["contract"] is None and data["consumer"] == stranger.id
    assert data["product"] == world.open["id"] and data["rows"] == 3
    assert data["exposure"]["open"] is True
    decision = stranger.call("GET", f"/decisions/{body['exchange_id']}").json()
    assert decision["contract_id"] is None and decision["allow"] is True
    assert decision["input"]["contract"] is None
    assert decision["input"]["open_data_usage"] == {"rows": 0, "calls": 0}
    assert decision["ledger_seq"] == body["receipt"]["seq"]


def test_open_data_file_delivery_carries_its_hash(world, gateway):
    response = _pull_open(world.consumer, world.open["id"], delivery="file", limit=2)
    assert response.status_code == 200, response.text
    body = response.json()
    lines = [json.loads(line) for line in body["file"]["content"].splitlines()]
    assert lines == STATIONS[:2]
    assert _entry(gateway, body["receipt"]["seq"]).data["file"]["sha256"] == body["content_hash"]


def test_non_open_product_without_a_contract_is_refused_by_the_policy_and_recorded(world, gateway):
    response = _pull_open(world.consumer, world.product["id"])  # general L3, personal fields
    assert response.status_code == 403, response.text
    problem = response.json()
    assert problem["type"] == "urn:dsgw:problem:policy-denied"
    assert [r["code"] for r in problem["reasons"]] == ["CONTRACT_REQUIRED"]
    data = _entry(gateway, problem["ledger_seq"]).data
    assert data["contract"] is None and data["product"] == world.product["id"]
    assert data["reasons"] == ["CONTRACT_REQUIRED"]
    decision = world.consumer.call("GET", f"/decisions/{problem['decision_id']}").json()
    assert decision["allow"] is False and decision["contract_id"] is None


def test_compute_is_not_offered_without_a_contract(world):
    response = _pull_open(world.consumer, world.open["id"], delivery="compute")
    assert response.status_code == 422, response.text


def test_unknown_product_is_not_found(world):
    assert _pull_open(world.consumer, "prd_nothing").status_code == 404


def test_open_data_rows_are_capped_per_call_and_per_subject_and_day(world, gateway):
    with freeze_time("2030-03-01T08:00:00Z") as frozen:
        for party in (world.consumer, world.admin):
            party._token = None
        other = world.register("other participant", ["consumer"])
        first = _pull_open(world.consumer, world.open["id"]).json()
        assert first["row_count"] == 1000  # rows_per_call, though 1500 were asked for
        for _ in range(9):  # 10 calls of 1000 rows: the day's 10000 rows
            assert _pull_open(world.consumer, world.open["id"]).status_code == 200
        refused = _pull_open(world.consumer, world.open["id"])
        assert refused.status_code == 403, refused.text
        assert [r["code"] for r in refused.json()["reasons"]] == ["QUOTA_EXHAUSTED"]
        assert "10000 of 10000 rows used today" in refused.json()["detail"]
        # The quota is per subject: another participant still pulls.
        assert _pull_open(other, world.open["id"], limit=5).json()["row_count"] == 5
        # A new UTC day starts a new quota.
        next_day = datetime(2030, 3, 2, tzinfo=UTC)
        frozen.move_to(next_day)
        world.consumer._token = None
        again = _pull_open(world.consumer, world.open["id"], limit=7)
        assert again.status_code == 200, again.text
        assert again.json()["row_count"] == 7
        usage = world.consumer.call("GET", f"/decisions/{again.json()['exchange_id']}").json()
        assert usage["input"]["open_data_usage"] == {"rows": 0, "calls": 0}
        frozen.move_to(next_day + timedelta(hours=1))
        world.consumer._token = None
        later = _pull_open(world.consumer, world.open["id"], limit=1).json()
        usage = world.consumer.call("GET", f"/decisions/{later['exchange_id']}").json()
        assert usage["input"]["open_data_usage"] == {"rows": 7, "calls": 1}


def test_catalogue_and_product_say_which_products_are_open(world):
    product = world.consumer.call("GET", f"/products/{world.open['id']}").json()
    assert product["open_data"] is True
    assert (
        world.consumer.call("GET", f"/products/{world.product['id']}").json()["open_data"] is False
    )
    catalogue = world.consumer.call("GET", "/catalogue").json()
    datasets = {d["dct:identifier"]: d for d in catalogue["dcat:dataset"]}
    opened = datasets[world.open["id"]]
    assert opened["dsgw:openData"] is True
    urls = {d["dcat:accessURL"]["@id"] for d in opened["dcat:distribution"]}
    assert len(urls) == 1 and urls.pop().endswith(f"/open-data/{world.open['id']}/exchanges")
    assert datasets[world.product["id"]]["dsgw:openData"] is False
    assert any(s["@id"].endswith("/open-data") for s in catalogue["dcat:service"])
