"""GET /contracts/{id}/privacy-budget: a compute contract's budget before its first query and
between queries, as the real policy sets it, on both engines; who may read it; a contract
without compute terms; the policy engine down (fail closed)."""

import pytest

from gateway.policy.client import PolicyClient
from gateway.policy.opa_process import free_port
from tests.e2e.world import OFFER, build_world

ROWS = [
    {"person_id": f"P{i:03d}", "district": "AB"[i % 2], "income": 8_000 + 97 * i}
    for i in range(120)
]
FIELDS = [
    {"name": "person_id", "personal": True},
    {"name": "district", "personal": False, "sensitive": False},
    {"name": "income", "personal": True, "sensitive": True},
]
TERMS = {
    "subject": "person_id",
    "aggregates": ["count", "sum"],
    "columns": {
        "person_id": {"rule": "never"},
        "district": {"rule": "group_key", "values": ["A", "B"]},
        "income": {"rule": "aggregate", "lower": 0, "upper": 50_000},
    },
}
# The strictest declared query reads income, a sensitive field: the L4 tier (specs/compute.md).
EPSILON, BUDGET = 0.25, 2.5
PATH = "/contracts/{}/privacy-budget"


@pytest.fixture
def world(client, settings):
    world = build_world(client, settings.state_dir)
    resource = world.add_resource(
        name="household incomes",
        domain="finance",
        grade="general",
        level="L3",
        personal_information=True,
        sensitive_personal_information=True,
        fields=FIELDS,
        rows=ROWS,
    )
    world.incomes = world.publish(
        resource=resource,
        offers=[{**OFFER, "compute": TERMS}],
        name="household incomes, compute only",
        authorisation_id=resource["authorisation_id"],
        delivery_modes=["compute"],
    )
    world.incomes_resource = resource
    return world


def _budget(party, contract_id: str) -> dict:
    response = party.call("GET", PATH.format(contract_id))
    assert response.status_code == 200, response.text
    return response.json()


def test_the_budget_is_reported_before_the_first_query_and_goes_down_by_what_a_reply_spent(
    world,
):
    contract = world.contract(world.incomes["offers"][0]["id"])
    before = _budget(world.consumer, contract["id"])
    assert before["contract"] == {"spent": 0, "budget": BUDGET, "remaining": BUDGET}
    assert before["subject_resource"] == {"spent": 0, "budget": BUDGET, "remaining": BUDGET}
    assert before["epsilon_per_query"] == EPSILON
    assert before["queries_left"] == 10
    assert before["fields"] == ["district", "income"]  # never person_id: a query never reads it
    assert before["resource_id"] == world.incomes_resource["id"]
    assert before["consumer_id"] == world.consumer.id

    reply = world.pull(
        contract["id"],
        delivery="compute",
        aggregates=[{"op": "sum", "field": "income"}],
        group_by=["district"],
    )
    assert reply.status_code == 200, reply.text
    privacy = reply.json()["privacy"]
    after = _budget(world.consumer, contract["id"])
    # The same figures the reply gave, the reply's ε taken off both budgets.
    assert after["contract"] == privacy["contract"]
    assert after["subject_resource"] == privacy["subject_resource"]
    assert after["contract"]["remaining"] == pytest.approx(BUDGET - privacy["epsilon_spent"])
    assert after["queries_left"] == 9


def test_the_budget_is_that_of_the_strictest_declared_query(world):
    """A count by district reads no sensitive field (tier L3, budget 5): its reply says so, and
    the route still reports the strictest tier the terms allow, with that spend counted."""
    contract = world.contract(world.incomes["offers"][0]["id"])
    reply = world.pull(
        contract["id"], delivery="compute", aggregates=[{"op": "count"}], group_by=["district"]
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["privacy"]["contract"] == {"spent": 0.5, "budget": 5, "remaining": 4.5}
    after = _budget(world.consumer, contract["id"])
    assert after["contract"] == {"spent": 0.5, "budget": BUDGET, "remaining": 2.0}
    assert after["queries_left"] == 8


def test_the_budget_is_read_by_the_parties_holder_auditor_and_admin_only(world):
    contract = world.contract(world.incomes["offers"][0]["id"])
    for party in (world.consumer, world.merchant, world.holder, world.auditor, world.admin):
        assert _budget(party, contract["id"])["contract"]["budget"] == BUDGET, party.name
    other = world.register("another consumer", ["consumer"])
    refused = other.call("GET", PATH.format(contract["id"]))
    unknown = other.call("GET", PATH.format("ctr_doesnotexist"))
    # Exactly as for an unknown contract: the caller learns nothing of it.
    assert refused.status_code == unknown.status_code == 404
    assert refused.json()["type"] == unknown.json()["type"] == "urn:dsgw:problem:not-found"
    anonymous = world.client.get(PATH.format(contract["id"]))
    assert anonymous.status_code == 401


def test_a_contract_without_compute_terms_has_no_budget(world):
    contract = world.contract(world.product["offers"][0]["id"])
    response = world.consumer.call("GET", PATH.format(contract["id"]))
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:dsgw:problem:no-compute-terms"


def test_the_budget_read_fails_closed_when_the_policy_engine_is_down(world, gateway):
    contract = world.contract(world.incomes["offers"][0]["id"])
    real = gateway.policy
    gateway.policy = PolicyClient(f"http://127.0.0.1:{free_port()}", timeout=0.5)
    try:
        response = world.consumer.call("GET", PATH.format(contract["id"]))
    finally:
        gateway.policy = real
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["type"] == "urn:dsgw:problem:policy-unavailable"
    assert "budget" not in body and "contract" not in body
