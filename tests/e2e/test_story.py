"""The demo story, step by step, over HTTP with the real OPA, on each database."""

import pytest

from gateway.demo import RESIDENTS
from ledger import store as ledger_store
from tests.e2e.world import PURPOSE, build_world


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def _types(gateway) -> list[str]:
    with gateway.engine.connect() as conn:
        return [e.type for e in ledger_store.iter_entries(conn)]


def test_every_registration_is_signed_into_the_ledger(world, gateway):
    types = _types(gateway)
    assert types[0] == "ledger.genesis"
    assert types.count("participant.registered") == 5  # admin + holder, merchant, consumer, auditor
    assert types.count("registration.coded") == 2
    assert "authorisation.granted" in types
    for step in ("product.drafted", "product.submitted", "product.listed"):
        assert types.count(step) == 2


def test_resource_record_keeps_grade_and_personal_flags(world):
    resource = world.holder.call("GET", f"/resources/{world.resource['id']}").json()
    assert (resource["grade"], resource["level"]) == ("general", "L3")
    assert resource["personal_information"] is True
    assert resource["sensitive_personal_information"] is True
    assert resource["row_count"] == 5


def test_contract_is_finalised_with_both_signatures_and_the_gateways(world, gateway):
    contract = world.contract(world.product["offers"][0]["id"])
    assert contract["state"] == "FINALIZED"
    assert all(contract["signatures"][p] for p in ("provider", "consumer", "gateway"))
    assert contract["allowed_next_states"] == ["EXPIRED", "REVOKED", "SUSPENDED", "TERMINATED"]
    types = _types(gateway)
    for step in (
        "contract.requested",
        "contract.agreed",
        "contract.verified",
        "contract.finalized",
    ):
        assert step in types


def test_consumer_receives_rows_with_personal_fields_masked(world):
    contract = world.contract(world.product["offers"][0]["id"])
    response = world.pull(contract["id"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["row_count"] == 5
    assert set(body["masked"]) == {"name", "phone", "id_card"}
    first = body["rows"][0]
    assert first["phone"] == "138****5678"
    assert first["id_card"] == "1" + "*" * 16 + "2"  # first and last character only
    assert first["name"] == RESIDENTS[0]["name"][0] + "**"  # the surname only
    assert first["district"] == "海淀" and first["score"] == 712  # not personal: untouched
    assert first["_watermark"] == body["watermark"]


def test_delivery_is_metered_and_its_receipt_is_the_ledger_entry(world, gateway):
    contract = world.contract(world.product["offers"][0]["id"])
    body = world.pull(contract["id"], limit=2).json()
    assert body["row_count"] == 2
    receipt = body["receipt"]
    with gateway.engine.connect() as conn:
        entry = ledger_store.get_entry(conn, receipt["seq"])
    assert entry.hash == receipt["hash"] and entry.sig == receipt["sig"]
    assert entry.type == "exchange.delivered"
    assert entry.data["rows"] == 2 and entry.data["content_hash"] == body["content_hash"]
    after = world.consumer.call("GET", f"/contracts/{contract['id']}").json()
    assert after["usage"] == {"rows": 2, "calls": 1}


def test_row_quota_caps_and_then_exhausts(world):
    product = world.publish(offers=[{"purposes": [PURPOSE], "term": "P1D", "quota_rows": 3}])
    contract = world.contract(product["offers"][0]["id"])
    first = world.pull(contract["id"])
    assert first.status_code == 200 and first.json()["row_count"] == 3
    second = world.pull(contract["id"])
    assert second.status_code == 403
    assert [r["code"] for r in second.json()["reasons"]] == ["QUOTA_EXHAUSTED"]


def test_a_contract_restricted_to_fields_delivers_only_those(world):
    product = world.publish(
        offers=[{"purposes": [PURPOSE], "term": "P1D", "fields": ["district", "score"]}]
    )
    contract = world.contract(product["offers"][0]["id"])
    body = world.pull(contract["id"]).json()
    assert body["fields"] == ["district", "score"]
    assert set(body["rows"][0]) == {"district", "score", "_watermark"}
    asked_more = world.pull(contract["id"], fields=["district", "phone"])
    assert asked_more.status_code == 403
    assert "FIELD_NOT_PERMITTED" in [r["code"] for r in asked_more.json()["reasons"]]


def test_lawful_basis_in_the_contract_lifts_the_mask_for_that_field_only(world):
    product = world.publish(
        offers=[
            {
                "purposes": [PURPOSE],
                "term": "P1D",
                "lawful_basis_fields": ["phone"],
                "lawful_basis": "consent recorded by the merchant",
            }
        ]
    )
    contract = world.contract(product["offers"][0]["id"])
    body = world.pull(contract["id"]).json()
    assert body["rows"][0]["phone"] == "13812345678"
    assert set(body["masked"]) == {"name", "id_card"}


def test_recorded_decision_is_readable_by_the_parties_and_auditors_only(world):
    contract = world.contract(world.product["offers"][0]["id"])
    exchange_id = world.pull(contract["id"]).json()["exchange_id"]
    for party in (world.consumer, world.merchant, world.auditor):
        decision = party.call("GET", f"/decisions/{exchange_id}")
        assert decision.status_code == 200
        assert decision.json()["allow"] is True
        assert decision.json()["input"]["purpose"] == PURPOSE
    assert world.holder.call("GET", f"/decisions/{exchange_id}").status_code == 404
