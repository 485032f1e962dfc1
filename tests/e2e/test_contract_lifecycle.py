"""A contract's life after negotiation: holder approval for important data, suspension,
reinstatement, revocation, termination as the offer allows, and expiry — each boundary under a
frozen clock, each move on the ledger, and the very next exchange refused when the contract stops.
"""

import pytest
from freezegun import freeze_time

from ledger import store as ledger_store
from tests.e2e.world import OFFER, PURPOSE, build_world

IMPORTANT = {
    "name": "port logistics",
    "domain": "transport/ports",
    "grade": "important",
    "fields": [{"name": "berth", "description": "berth"}, {"name": "teu", "description": "TEU"}],
    "rows": [{"berth": "A1", "teu": 1200}],
}


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def _types(gateway) -> list[str]:
    with gateway.engine.connect() as conn:
        return [e.type for e in ledger_store.iter_entries(conn)]


def _entry(gateway, seq: int):
    with gateway.engine.connect() as conn:
        return ledger_store.get_entry(conn, seq)


def _act(party, contract_id: str, action: str, reason: str | None = None):
    body = {"reason": reason} if reason is not None else None
    return party.call("POST", f"/contracts/{contract_id}/{action}", json=body)


def _request(world, offer_id: str) -> dict:
    response = world.consumer.call(
        "POST", "/contracts", json={"offer_id": offer_id, "purpose": PURPOSE}
    )
    assert response.status_code == 201, response.text
    return response.json()


def _assert_409(response, current: str, allowed: list[str]) -> dict:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["current_state"] == current
    assert body["allowed_next_states"] == allowed
    return body


def _refresh_tokens(world) -> None:
    for party in (world.admin, world.holder, world.merchant, world.consumer):
        party._token = None


# --- holder approval (important data) --------------------------------------------------------


@pytest.fixture
def important(world) -> dict:
    return world.publish(resource=world.add_resource(**IMPORTANT), offers=[OFFER])


def test_important_data_cannot_be_agreed_before_the_holder_approves(world, important, gateway):
    requested = _request(world, important["offers"][0]["id"])
    assert requested["holder_approval"] == {
        "required": True,
        "holder": world.holder.id,
        "approved_at": None,
    }
    signature = world.merchant.sign(requested["document"])
    early = world.merchant.call(
        "POST", f"/contracts/{requested['id']}/agree", json={"signature": signature}
    )
    body = _assert_409(early, "REQUESTED", ["AGREED", "OFFERED", "TERMINATED"])
    assert body["type"] == "urn:dsgw:problem:holder-approval-required"
    assert world.holder.id in body["detail"]

    assert _act(world.merchant, requested["id"], "approve").status_code == 403
    assert _act(world.consumer, requested["id"], "approve").status_code == 403
    approved = _act(world.holder, requested["id"], "approve", "purpose fits the grant")
    assert approved.status_code == 200, approved.text
    assert approved.json()["holder_approval"]["approved_at"] is not None
    entry = _entry(gateway, approved.json()["ledger_seq"])
    assert entry.type == "contract.holder_approved" and entry.data["by"] == world.holder.id
    again = _act(world.holder, requested["id"], "approve")
    assert again.status_code == 409

    agreed = world.merchant.call(
        "POST", f"/contracts/{requested['id']}/agree", json={"signature": signature}
    )
    assert agreed.status_code == 200 and agreed.json()["state"] == "AGREED"


def test_the_exchange_tells_the_policy_that_the_holder_approved(world, important):
    offer_id = important["offers"][0]["id"]
    requested = _request(world, offer_id)
    _act(world.holder, requested["id"], "approve")
    doc = requested["document"]
    world.merchant.call(
        "POST", f"/contracts/{requested['id']}/agree", json={"signature": world.merchant.sign(doc)}
    )
    world.consumer.call(
        "POST", f"/contracts/{requested['id']}/verify", json={"signature": world.consumer.sign(doc)}
    )
    response = world.pull(requested["id"])
    decision_id = response.json().get("decision_id") or response.json().get("exchange_id")
    decision = world.consumer.call("GET", f"/decisions/{decision_id}").json()
    assert decision["input"]["contract"]["holder_approved"] is True
    reasons = [r["code"] for r in decision["result"]["reasons"]]
    assert not any("APPROV" in code for code in reasons), reasons


def test_the_holder_may_refuse_instead_and_the_negotiation_ends(world, important, gateway):
    requested = _request(world, important["offers"][0]["id"])
    assert _act(world.merchant, requested["id"], "refuse").status_code == 403
    refused = _act(world.holder, requested["id"], "refuse", "not for this purpose")
    assert refused.status_code == 200 and refused.json()["state"] == "TERMINATED"
    assert _entry(gateway, refused.json()["ledger_seq"]).type == "contract.holder_refused"
    _assert_409(_act(world.holder, requested["id"], "approve"), "TERMINATED", [])


def test_general_data_needs_no_approval(world):
    requested = _request(world, world.product["offers"][0]["id"])
    assert requested["holder_approval"]["required"] is False
    response = _act(world.holder, requested["id"], "approve")
    assert response.status_code == 409
    assert response.json()["type"] == "urn:dsgw:problem:approval-not-required"


# --- suspension, reinstatement, revocation ----------------------------------------------------


def test_suspension_stops_the_next_exchange_and_reinstatement_resumes(world, gateway):
    contract = world.contract(world.product["offers"][0]["id"])
    assert world.pull(contract["id"]).status_code == 200
    assert _act(world.consumer, contract["id"], "suspend").status_code == 403
    assert _act(world.merchant, contract["id"], "suspend", "nul\x00char").status_code == 422
    suspended = _act(world.merchant, contract["id"], "suspend", "invoice overdue")
    assert suspended.status_code == 200 and suspended.json()["state"] == "SUSPENDED"
    entry = _entry(gateway, suspended.json()["ledger_seq"])
    assert entry.type == "contract.suspended" and entry.data["reason"] == "invoice overdue"
    denied = world.pull(contract["id"])
    assert denied.status_code == 403
    assert "CONTRACT_NOT_ACTIVE" in [r["code"] for r in denied.json()["reasons"]]
    _assert_409(
        _act(world.merchant, contract["id"], "suspend"),
        "SUSPENDED",
        ["EXPIRED", "FINALIZED", "REVOKED", "TERMINATED"],
    )
    reinstated = _act(world.admin, contract["id"], "reinstate", "paid")
    assert reinstated.status_code == 200 and reinstated.json()["state"] == "FINALIZED"
    assert _entry(gateway, reinstated.json()["ledger_seq"]).type == "contract.reinstated"
    assert world.pull(contract["id"]).status_code == 200


def test_reinstating_a_running_contract_is_refused_naming_the_allowed_states(world):
    contract = world.contract(world.product["offers"][0]["id"])
    _assert_409(
        _act(world.merchant, contract["id"], "reinstate"),
        "FINALIZED",
        ["EXPIRED", "REVOKED", "SUSPENDED", "TERMINATED"],
    )


def test_revocation_by_the_holder_stops_the_very_next_exchange(world, gateway):
    contract = world.contract(world.product["offers"][0]["id"])
    assert world.pull(contract["id"]).status_code == 200
    assert _act(world.consumer, contract["id"], "revoke").status_code == 403
    revoked = _act(world.holder, contract["id"], "revoke", "data recalled")
    assert revoked.status_code == 200 and revoked.json()["state"] == "REVOKED"
    assert _entry(gateway, revoked.json()["ledger_seq"]).type == "contract.revoked"
    denied = world.pull(contract["id"])
    assert denied.status_code == 403
    assert "CONTRACT_NOT_ACTIVE" in [r["code"] for r in denied.json()["reasons"]]
    _assert_409(_act(world.merchant, contract["id"], "reinstate"), "REVOKED", [])
    _assert_409(_act(world.consumer, contract["id"], "terminate"), "REVOKED", [])


def test_a_negotiation_cannot_be_revoked_or_suspended(world):
    requested = _request(world, world.product["offers"][0]["id"])
    allowed = ["AGREED", "OFFERED", "TERMINATED"]
    _assert_409(_act(world.merchant, requested["id"], "revoke"), "REQUESTED", allowed)
    _assert_409(_act(world.merchant, requested["id"], "suspend"), "REQUESTED", allowed)


# --- termination as the offer allows --------------------------------------------------------


def test_offer_lets_only_the_provider_terminate(world):
    product = world.publish(offers=[{**OFFER, "termination": "provider"}])
    contract = world.contract(product["offers"][0]["id"])
    assert contract["termination"] == "provider"
    refused = _act(world.consumer, contract["id"], "terminate")
    assert refused.status_code == 403 and "termination: provider" in refused.json()["detail"]
    ended = _act(world.merchant, contract["id"], "terminate", "restructuring")
    assert ended.status_code == 200 and ended.json()["state"] == "TERMINATED"


def test_offer_without_termination_runs_to_its_end_but_can_be_revoked(world):
    product = world.publish(offers=[{**OFFER, "termination": "none"}])
    requested = _request(world, product["offers"][0]["id"])
    # During negotiation either party may still walk away.
    assert _act(world.consumer, requested["id"], "terminate").json()["state"] == "TERMINATED"
    contract = world.contract(product["offers"][0]["id"])
    for party in (world.consumer, world.merchant):
        assert _act(party, contract["id"], "terminate").status_code == 403
    assert _act(world.merchant, contract["id"], "revoke").json()["state"] == "REVOKED"


def test_either_party_terminates_by_default(world):
    first = world.contract(world.product["offers"][0]["id"])
    second = world.contract(world.product["offers"][0]["id"])
    assert first["termination"] == "either"
    assert _act(world.consumer, first["id"], "terminate").json()["state"] == "TERMINATED"
    assert _act(world.merchant, second["id"], "terminate").json()["state"] == "TERMINATED"
    other = world.register("stranger", ["consumer"])
    assert _act(other, second["id"], "terminate").status_code == 404  # unknown to strangers


# --- expiry ----------------------------------------------------------------------------------


def test_contract_expires_exactly_at_not_after_and_it_is_recorded_once(world, gateway):
    with freeze_time("2030-01-01T00:00:00Z") as frozen:
        _refresh_tokens(world)
        contract = world.contract(world.product["offers"][1]["id"])  # PT2S
        frozen.tick(1.999999)
        still = world.consumer.call("GET", f"/contracts/{contract['id']}").json()
        assert still["state"] == "FINALIZED"
        assert "contract.expired" not in _types(gateway)
        frozen.tick(0.000001)  # exactly not_after
        expired = world.consumer.call("GET", f"/contracts/{contract['id']}").json()
        assert expired["state"] == "EXPIRED" and expired["allowed_next_states"] == []
        assert world.merchant.call("GET", f"/contracts/{contract['id']}").json()["state"] == (
            "EXPIRED"
        )
        assert _types(gateway).count("contract.expired") == 1
        denied = world.pull(contract["id"])
        assert denied.status_code == 403
        assert "CONTRACT_EXPIRED" in [r["code"] for r in denied.json()["reasons"]]
        _assert_409(_act(world.merchant, contract["id"], "suspend"), "EXPIRED", [])
    _refresh_tokens(world)


def test_an_exchange_after_the_term_records_the_expiry_with_its_denial(world, gateway):
    with freeze_time("2030-01-01T00:00:00Z") as frozen:
        _refresh_tokens(world)
        contract = world.contract(world.product["offers"][1]["id"])  # PT2S
        frozen.tick(2)
        denied = world.pull(contract["id"])
        assert denied.status_code == 403
        types = _types(gateway)
        assert types[-2:] == ["contract.expired", "exchange.denied"]
        assert world.consumer.call("GET", f"/contracts/{contract['id']}").json()["state"] == (
            "EXPIRED"
        )
        assert _types(gateway).count("contract.expired") == 1
    _refresh_tokens(world)


def test_a_suspended_contract_expires_too_and_cannot_be_reinstated_after_its_term(world, gateway):
    with freeze_time("2030-01-01T00:00:00Z") as frozen:
        _refresh_tokens(world)
        contract = world.contract(world.product["offers"][1]["id"])  # PT2S
        frozen.tick(1)
        assert _act(world.merchant, contract["id"], "suspend").json()["state"] == "SUSPENDED"
        frozen.tick(1)
        _assert_409(_act(world.merchant, contract["id"], "reinstate"), "EXPIRED", [])
        assert _types(gateway).count("contract.expired") == 1
    _refresh_tokens(world)


def test_revocation_just_before_the_term_ends_is_a_revocation(world):
    with freeze_time("2030-01-01T00:00:00Z") as frozen:
        _refresh_tokens(world)
        contract = world.contract(world.product["offers"][1]["id"])  # PT2S
        frozen.tick(1.999999)
        revoked = _act(world.holder, contract["id"], "revoke")
        assert revoked.json()["state"] == "REVOKED"
        frozen.tick(0.000001)
        assert world.consumer.call("GET", f"/contracts/{contract['id']}").json()["state"] == (
            "REVOKED"
        )
    _refresh_tokens(world)


def test_the_holder_can_read_contracts_on_its_data(world):
    contract = world.contract(world.product["offers"][0]["id"])
    assert world.holder.call("GET", f"/contracts/{contract['id']}").status_code == 200
    other = world.register("stranger", ["consumer"])
    assert other.call("GET", f"/contracts/{contract['id']}").status_code == 404


def test_every_life_cycle_move_is_on_a_ledger_that_verifies_offline(
    world, important, gateway, settings, tmp_path, capsys
):
    from gateway.cli import main as dsgw

    requested = _request(world, important["offers"][0]["id"])
    _act(world.holder, requested["id"], "approve")
    _act(world.holder, _request(world, important["offers"][0]["id"])["id"], "refuse")
    contract = world.contract(world.product["offers"][0]["id"])
    for party, action in [(world.merchant, "suspend"), (world.admin, "reinstate"),
                          (world.holder, "revoke")]:  # fmt: skip
        assert _act(party, contract["id"], action).status_code == 200
    product = world.product["id"]
    for action in ("suspend", "reinstate", "delist"):
        assert world.admin.call("POST", f"/products/{product}/{action}").status_code == 200
    out = tmp_path / "export"
    args = ["--state", str(settings.state_dir), "ledger", "export", "--out", str(out),
            "--database-url", settings.resolved_database_url]  # fmt: skip
    assert dsgw(args) == 0
    assert dsgw(["ledger", "verify", str(out)]) == 0
    assert "OK" in capsys.readouterr().out
    types = set(_types(gateway))
    assert {
        "product.drafted", "product.submitted", "product.listed", "product.suspended",
        "product.reinstated", "product.delisted", "contract.holder_approved",
        "contract.holder_refused", "contract.suspended", "contract.reinstated", "contract.revoked",
    } <= types  # fmt: skip
