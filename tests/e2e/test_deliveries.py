"""Delivery modes governed for real: api rows, a file with its hash on the ledger, and compute
noisy aggregates where raw rows never leave (tests/e2e/test_compute_attacks.py attacks them)."""

import hashlib
import json

import pytest

from gateway.demo import FIELDS
from ledger import store as ledger_store
from tests.e2e.world import OFFER, PURPOSE, build_world

# 12 residents in 海淀, 4 in 朝阳: with min_group_size 10, only 海淀 may be aggregated.
ROWS = [
    {
        "name": f"居民{i}",
        "phone": f"1380000{i:04d}",
        "id_card": f"11010119900101{i:04d}",
        "district": "海淀" if i < 12 else "朝阳",
        "score": 600 + i,
    }
    for i in range(16)
]


@pytest.fixture
def world(client, settings):
    world = build_world(client, settings.state_dir)
    resource = world.add_resource(
        name="residents", domain="finance", grade="general", level="L3", fields=FIELDS, rows=ROWS
    )
    world.all_modes = world.publish(
        resource=resource,
        offers=[OFFER],
        name="residents, every delivery",
        authorisation_id=resource["authorisation_id"],
        delivery_modes=["api", "file", "compute"],
    )
    return world


def _entry(gateway, seq: int):
    with gateway.engine.connect() as conn:
        return ledger_store.get_entry(conn, seq)


def test_compute_releases_noisy_declared_groups_and_spends_epsilon(world, gateway):
    offer = world.all_modes["offers"][0]
    # No terms were declared: the defaults derived from the resource are on the offer.
    terms = offer["terms"]["compute"]
    assert terms["columns"]["district"] == {
        "rule": "group_key",
        "values": ["海淀"],  # 朝阳 (4 residents) is too rare to be declared
        "lower": None,
        "upper": None,
        "bins": None,
        "ranges": None,
    }
    assert terms["columns"]["name"]["rule"] == "never"
    assert (terms["columns"]["score"]["lower"], terms["columns"]["score"]["upper"]) == (0, 1000)
    contract = world.contract(offer["id"])
    response = world.pull(
        contract["id"],
        delivery="compute",
        aggregates=[{"op": "count"}, {"op": "mean", "field": "score"}],
        group_by=["district"],
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["delivery"] == "compute"
    assert body["fields"] == ["district", "_count", "score_mean"]
    assert "suppressed_groups" not in body
    # Only declared keys can appear, each released on its noisy subject count.
    assert {r["district"] for r in body["rows"]} <= {"海淀"}
    assert all(r["_count"] >= 10 and 0 <= r["score_mean"] <= 1000 for r in body["rows"])
    assert all(r["_watermark"] == body["watermark"] for r in body["rows"])  # L3: watermarked
    privacy = body["privacy"]
    assert privacy["epsilon_spent"] == 0.5  # general L3
    assert privacy["contract"] == {"spent": 0.5, "budget": 5.0, "remaining": 4.5}
    assert privacy["subject_resource"] == {"spent": 0.5, "budget": 5.0, "remaining": 4.5}
    noise = {n["measure"]: n for n in privacy["noise"]}
    assert set(noise) == {"subjects", "sum:score"}
    assert noise["subjects"]["scale"] == pytest.approx(1 / 0.25)  # Δ 1, ε 0.5 over 2 measures
    assert noise["sum:score"]["scale"] == pytest.approx(1000 / 0.25)  # Δ = the clamp bound
    data = _entry(gateway, body["receipt"]["seq"]).data
    assert data["delivery"] == "compute" and data["rows"] == 0
    assert "suppressed_groups" not in data
    assert data["privacy"]["contract"]["remaining"] == 4.5
    assert data["exposure"]["personal_information"] is False
    usage = world.consumer.call("GET", f"/contracts/{contract['id']}").json()["usage"]
    assert usage == {"rows": 0, "calls": 1}  # an exact row count would tell what matched


def test_compute_grouped_on_a_personal_field_is_refused_by_its_column_rule(world, gateway):
    contract = world.contract(world.all_modes["offers"][0]["id"])
    response = world.pull(
        contract["id"], delivery="compute", aggregates=[{"op": "count"}], group_by=["name"]
    )
    # A personal field is `never` in the offer's default compute terms: no key, no group.
    assert response.status_code == 403, response.text
    problem = response.json()
    codes = [r["code"] for r in problem["reasons"]]
    assert codes == ["COLUMN_RULE_VIOLATED"]
    data = _entry(gateway, problem["ledger_seq"]).data
    assert data["reasons"] == codes and data["contract"] == contract["id"]


@pytest.mark.parametrize(
    "extra",
    [
        {"limit": 10, "aggregates": [{"op": "count"}]},
        {"fields": ["score"], "aggregates": [{"op": "count"}]},
        {"offset": 10, "aggregates": [{"op": "count"}]},
        {},
    ],
    ids=["limit", "fields", "offset", "no aggregates"],
)
def test_compute_takes_no_row_selection(world, extra):
    contract = world.contract(world.all_modes["offers"][0]["id"])
    response = world.pull(contract["id"], delivery="compute", **extra)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_file_delivery_is_a_jsonl_file_whose_hash_is_on_the_ledger(world, gateway):
    contract = world.contract(world.all_modes["offers"][0]["id"])
    response = world.pull(contract["id"], delivery="file", fields=["name", "district"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rows"] == [] and body["row_count"] == 16
    file = body["file"]
    blob = file["content"].encode("utf-8")
    assert hashlib.sha256(blob).hexdigest() == file["sha256"] == body["content_hash"]
    assert file["bytes"] == len(blob) and file["name"].endswith(".jsonl")
    lines = [json.loads(line) for line in file["content"].splitlines()]
    assert len(lines) == 16
    assert lines[0]["name"] != ROWS[0]["name"] and "*" in lines[0]["name"]  # masked in the file
    assert {line["district"] for line in lines} == {"海淀", "朝阳"}
    data = _entry(gateway, body["receipt"]["seq"]).data
    assert data["delivery"] == "file"
    assert data["file"] == {k: v for k, v in file.items() if k != "content"}
    assert data["content_hash"] == file["sha256"]


def test_a_delivery_mode_the_product_does_not_offer_is_denied(world, gateway):
    contract = world.contract(world.product["offers"][0]["id"])  # the api-only product
    response = world.pull(contract["id"], delivery="compute", aggregates=[{"op": "count"}])
    assert response.status_code == 403, response.text
    assert [r["code"] for r in response.json()["reasons"]] == ["DELIVERY_MODE_NOT_OFFERED"]


def test_group_by_only_with_compute(world):
    contract = world.contract(world.all_modes["offers"][0]["id"])
    response = world.pull(contract["id"], group_by=["district"])
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_grouping_on_a_field_outside_the_contract_is_judged_by_the_policy(world, gateway):
    offer = {**OFFER, "fields": ["score"]}
    product = world.publish(resource=None, offers=[offer])
    # world.publish uses the L3 resource with the same field names (district exists there).
    contract = world.contract(product["offers"][0]["id"])
    response = world.pull(
        contract["id"],
        delivery="compute",
        aggregates=[{"op": "mean", "field": "score"}],
        group_by=["district"],
    )
    assert response.status_code == 403, response.text
    assert "FIELD_NOT_PERMITTED" in [r["code"] for r in response.json()["reasons"]]
    assert PURPOSE


def test_compute_terms_must_name_fields_of_the_resource(world):
    terms = {"aggregates": ["sum"], "columns": {"salary": {"rule": "aggregate"}}}
    body = {
        "name": "bad terms",
        "resource_id": world.resource["id"],
        "authorisation_id": world.authorisation["id"],
        "delivery_modes": ["compute"],
        "offers": [{**OFFER, "compute": terms}],
    }
    response = world.merchant.call("POST", "/products", json=body)
    assert response.status_code == 422, response.text
    assert "offers[0].compute" in response.json()["detail"] and "salary" in response.text
    bounds = {"aggregates": ["sum"], "columns": {"score": {"rule": "aggregate", "lower": 5}}}
    body["offers"] = [{**OFFER, "compute": bounds}]
    assert world.merchant.call("POST", "/products", json=body).status_code == 422
