"""Denials: each one is a 403 problem with the policy's reasons, and each one is evidence."""

import pytest
from freezegun import freeze_time

from ledger import store as ledger_store
from tests.e2e.world import OFFER, PURPOSE, build_world


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def _assert_denied(response, code: str, gateway) -> dict:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:dsgw:problem:policy-denied"
    assert code in [r["code"] for r in body["reasons"]]
    assert all(r["title"] for r in body["reasons"])
    with gateway.engine.connect() as conn:
        entry = ledger_store.get_entry(conn, body["ledger_seq"])
    assert entry.type == "exchange.denied"
    assert code in entry.data["reasons"]
    assert entry.data["decision"] == body["decision_id"]
    return body


def test_core_data_is_denied(world, gateway):
    contract = world.contract(world.core_product["offers"][0]["id"], purpose="grid-research")
    body = _assert_denied(
        world.pull(contract["id"], purpose="grid-research"), "CORE_DATA_NEVER_LEAVES", gateway
    )
    assert "rows" not in body


def test_purpose_outside_the_contract_is_denied(world, gateway):
    contract = world.contract(world.product["offers"][0]["id"])
    _assert_denied(
        world.pull(contract["id"], purpose="marketing"), "PURPOSE_NOT_PERMITTED", gateway
    )


def test_contract_past_its_term_is_denied_at_the_boundary(world, gateway):
    with freeze_time("2030-01-01T00:00:00Z") as frozen:
        for party in (world.consumer, world.merchant):
            party._token = None
        contract = world.contract(world.product["offers"][1]["id"])  # PT2S
        frozen.tick(1.999)
        assert world.pull(contract["id"]).status_code == 200
        frozen.tick(0.001)  # exactly not_after: the term has ended
        _assert_denied(world.pull(contract["id"]), "CONTRACT_EXPIRED", gateway)


def test_someone_elses_contract_is_refused_as_unknown(world):
    contract = world.contract(world.product["offers"][0]["id"])
    other = world.register("other consumer", ["consumer"])
    refused = world.pull(contract["id"], consumer=other)  # details: tests/e2e/test_leaks.py
    assert refused.status_code == 404
    assert refused.json()["type"] == "urn:dsgw:problem:not-found"


def test_terminated_contract_stops_the_very_next_exchange(world, gateway):
    contract = world.contract(world.product["offers"][0]["id"])
    assert world.pull(contract["id"]).status_code == 200
    ended = world.merchant.call("POST", f"/contracts/{contract['id']}/terminate")
    assert ended.status_code == 200 and ended.json()["state"] == "TERMINATED"
    _assert_denied(world.pull(contract["id"]), "CONTRACT_NOT_ACTIVE", gateway)


def test_unfinished_contract_is_denied(world, gateway):
    requested = world.consumer.call(
        "POST",
        "/contracts",
        json={"offer_id": world.product["offers"][0]["id"], "purpose": PURPOSE},
    ).json()
    _assert_denied(world.pull(requested["id"]), "CONTRACT_NOT_ACTIVE", gateway)


def test_policy_engine_down_fails_closed_and_is_recorded(world, gateway):
    contract = world.contract(world.product["offers"][0]["id"])
    real = gateway.policy
    from gateway.policy.client import PolicyClient
    from gateway.policy.opa_process import free_port

    gateway.policy = PolicyClient(f"http://127.0.0.1:{free_port()}", timeout=0.5)
    try:
        response = world.pull(contract["id"])
    finally:
        gateway.policy = real
    assert response.status_code == 503
    body = response.json()
    assert body["type"] == "urn:dsgw:problem:policy-unavailable"
    assert [r["code"] for r in body["reasons"]] == ["POLICY_UNAVAILABLE"]
    assert "rows" not in body
    with gateway.engine.connect() as conn:
        entry = ledger_store.get_entry(conn, body["ledger_seq"])
    assert entry.type == "exchange.denied" and entry.data["reasons"] == ["POLICY_UNAVAILABLE"]
    after = world.consumer.call("GET", f"/contracts/{contract['id']}").json()
    assert after["usage"] == {"rows": 0, "calls": 0}


def test_undefined_policy_decision_is_a_recorded_denial(world, gateway):
    from gateway.policy import client as policy_client

    contract = world.contract(world.product["offers"][0]["id"])
    original = policy_client.RULE
    policy_client.RULE = "no_such_rule"  # OPA answers, but the decision is undefined
    try:
        response = world.pull(contract["id"])
    finally:
        policy_client.RULE = original
    assert response.status_code == 403
    assert [r["code"] for r in response.json()["reasons"]] == ["POLICY_UNDEFINED"]


def test_offer_purpose_must_be_one_the_offer_allows(world):
    response = world.consumer.call(
        "POST", "/contracts", json={"offer_id": world.product["offers"][0]["id"], "purpose": "ads"}
    )
    assert response.status_code == 422
    assert "credit-risk-assessment" in response.json()["detail"]


def test_product_price_above_the_fee_cap_is_refused(world):
    response = world.merchant.call(
        "POST",
        "/products",
        json={
            "name": "too dear",
            "resource_id": world.resource["id"],
            "authorisation_id": world.authorisation["id"],
            "delivery_modes": ["api"],
            "offers": [{**OFFER, "price_fen": 500_001}],
        },
    )
    assert response.status_code == 422
    assert "fee cap" in response.json()["detail"]


def test_revoking_the_authorisation_stops_running_contracts_at_the_next_exchange(world, gateway):
    contract = world.contract(world.product["offers"][0]["id"])
    assert world.pull(contract["id"]).status_code == 200
    revoked = world.holder.call(
        "POST", f"/authorisations/{world.authorisation['id']}/revoke", json={"reason": "breach"}
    )
    assert revoked.status_code == 200, revoked.text
    body = _assert_denied(world.pull(contract["id"]), "PRODUCT_NOT_AVAILABLE", gateway)
    assert world.product["id"] in body["detail"]


def test_an_authorisation_term_ending_stops_running_contracts_at_the_next_exchange(world, gateway):
    from datetime import UTC, datetime, timedelta

    end = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    granted = world.holder.call("POST", "/authorisations", json={
        "operator_id": world.merchant.id, "resource_ids": [world.resource["id"]],
        "not_after": end.isoformat(), "fee_cap_fen": 500_000,
    })
    assert granted.status_code == 201, granted.text
    short = world.merchant.call("POST", "/products", json={
        "name": "short-lived", "resource_id": world.resource["id"],
        "authorisation_id": granted.json()["id"], "delivery_modes": ["api"],
        "offers": [{**OFFER, "term": "P30D"}],
    })
    assert short.status_code == 201, short.text
    product = world.list_product(short.json()["id"])
    contract = world.contract(product["offers"][0]["id"])
    with freeze_time(end - timedelta(microseconds=1)) as frozen:
        for party in (world.consumer, world.merchant):
            party._token = None
        assert world.pull(contract["id"]).status_code == 200
        frozen.tick(timedelta(microseconds=1))
        _assert_denied(world.pull(contract["id"]), "PRODUCT_NOT_AVAILABLE", gateway)
    with gateway.engine.connect() as conn:
        types = [e.type for e in ledger_store.iter_entries(conn)]
    assert "authorisation.expired" in types and "product.suspended" in types
