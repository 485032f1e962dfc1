"""Product life cycle: draft → review → listed → suspended → delisted, each move on the ledger."""

import pytest
from freezegun import freeze_time

from gateway.demo import FIELDS, RESIDENTS
from gateway.products import service as products
from ledger import store as ledger_store
from tests.e2e.world import OFFER, PURPOSE, build_world


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def _draft_response(world, **extra):
    body = {
        "name": "resident credit, monthly",
        "description": "credit scores by district",
        "resource_id": world.resource["id"],
        "authorisation_id": world.authorisation["id"],
        "delivery_modes": ["api", "file"],
        "offers": [OFFER],
        **extra,
    }
    return world.merchant.call("POST", "/products", json=body)


def _draft(world, **extra) -> dict:
    response = _draft_response(world, **extra)
    assert response.status_code == 201, response.text
    return response.json()


def _act(party, product_id: str, action: str, reason: str | None = None):
    body = {"reason": reason} if reason is not None else None
    return party.call("POST", f"/products/{product_id}/{action}", json=body)


def _entry(gateway, seq: int):
    with gateway.engine.connect() as conn:
        return ledger_store.get_entry(conn, seq)


def _request(world, product: dict, consumer=None):
    return (consumer or world.consumer).call(
        "POST", "/contracts", json={"offer_id": product["offers"][0]["id"], "purpose": PURPOSE}
    )


def test_a_new_product_is_a_draft_that_nobody_can_contract(world, gateway):
    draft = _draft(world)
    assert draft["status"] == "draft"
    assert draft["allowed_next_states"] == ["delisted", "review"]
    assert draft["lineage"][0]["resource"] == world.resource["id"]
    assert draft["lineage"][0]["authorisation"] == world.authorisation["id"]
    assert _entry(gateway, draft["ledger_seq"]).type == "product.drafted"
    refused = _request(world, draft)  # a draft's offer is unknown to consumers
    assert refused.status_code == 404
    assert refused.json()["type"] == "urn:dsgw:problem:not-found"
    assert world.consumer.call("GET", f"/products/{draft['id']}").status_code == 404
    assert world.merchant.call("GET", f"/products/{draft['id']}").status_code == 200


def test_quality_report_computes_what_the_dataset_shows_and_keeps_what_is_stated(world):
    stated = {"accuracy": {"score": 0.97, "basis": "sample audit of 200 records"}}
    report = _draft(world, quality=stated)["quality"]
    assert report["standard"] == "GB/T 36344-2018"
    dims = {d["dimension"]: d for d in report["dimensions"]}
    assert [d["name"] for d in report["dimensions"]] == [
        "规范性", "完整性", "准确性", "一致性", "时效性", "可访问性"
    ]  # fmt: skip
    cells = len(RESIDENTS) * len(FIELDS)
    present = sum(1 for row in RESIDENTS for f in FIELDS if row.get(f["name"]) is not None)
    assert dims["completeness"]["method"] == "computed"
    assert dims["completeness"]["score"] == round(present / cells, 4)
    assert dims["consistency"]["method"] == "computed"
    assert dims["accuracy"] == {
        "dimension": "accuracy",
        "name": "准确性",
        "score": 0.97,
        "method": "stated",
        "basis": "sample audit of 200 records",
    }
    assert dims["timeliness"]["method"] == "not-stated" and dims["timeliness"]["score"] is None


def test_merchant_submits_and_admin_lists_each_step_on_the_ledger(world, gateway):
    draft = _draft(world)
    submitted = _act(world.merchant, draft["id"], "submit")
    assert submitted.status_code == 200 and submitted.json()["status"] == "review"
    listed = _act(world.admin, draft["id"], "list", "meets the compliance checklist")
    assert listed.status_code == 200, listed.text
    assert listed.json()["status"] == "listed"
    entry = _entry(gateway, listed.json()["ledger_seq"])
    assert entry.type == "product.listed"
    assert entry.data["from"] == "review" and entry.data["by"] == world.admin.id
    assert entry.data["reason"] == "meets the compliance checklist"
    assert _request(world, listed.json()).status_code == 201


def test_only_the_admin_reviews_and_only_the_merchant_submits(world):
    draft = _draft(world)
    assert _act(world.consumer, draft["id"], "submit").status_code == 404  # unknown to others
    assert _act(world.merchant, draft["id"], "submit").status_code == 200
    for party, status in ((world.merchant, 403), (world.holder, 404), (world.consumer, 404)):
        response = _act(party, draft["id"], "list")
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"


def test_rejection_needs_a_reason_and_returns_the_product_to_draft(world, gateway):
    draft = _draft(world)
    _act(world.merchant, draft["id"], "submit")
    assert _act(world.admin, draft["id"], "reject").status_code == 422
    rejected = _act(world.admin, draft["id"], "reject", "description names no update cycle")
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "draft"
    assert rejected.json()["status_reason"] == "description names no update cycle"
    assert _entry(gateway, rejected.json()["ledger_seq"]).type == "product.rejected"
    assert _act(world.merchant, draft["id"], "submit").json()["status"] == "review"


def test_invalid_transition_names_the_current_state_and_the_allowed_next_states(world):
    draft = _draft(world)
    response = _act(world.admin, draft["id"], "list")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "urn:dsgw:problem:invalid-transition"
    assert body["current_state"] == "draft"
    assert body["allowed_next_states"] == ["delisted", "review"]
    assert "draft" in body["detail"] and "review" in body["detail"]


def test_unknown_action_and_unknown_product_are_problems(world):
    assert _act(world.admin, world.product["id"], "explode").status_code == 422
    assert _act(world.admin, world.product["id"], "suspend", "nul\x00char").status_code == 422
    assert _draft_response(world, name="nul\x00char").status_code == 422
    assert _act(world.admin, "prd_nope", "list").status_code == 404


def test_suspension_stops_new_contracts_and_reinstatement_restores_them(world, gateway):
    product = world.product
    suspended = _act(world.admin, product["id"], "suspend", "complaint under review")
    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    assert _entry(gateway, suspended.json()["ledger_seq"]).type == "product.suspended"
    assert _request(world, product).status_code == 409
    assert _act(world.merchant, product["id"], "reinstate").status_code == 403
    reinstated = _act(world.admin, product["id"], "reinstate", "complaint dismissed")
    assert reinstated.json()["status"] == "listed"
    assert _entry(gateway, reinstated.json()["ledger_seq"]).type == "product.reinstated"
    assert _request(world, product).status_code == 201


def test_delisting_stops_new_contracts_and_keeps_the_evidence(world, gateway):
    product = world.product
    contract = world.contract(product["offers"][0]["id"])
    delisted = _act(world.merchant, product["id"], "delist", "end of season")
    assert delisted.status_code == 200 and delisted.json()["status"] == "delisted"
    assert delisted.json()["allowed_next_states"] == []
    assert _request(world, product).status_code == 409
    again = _act(world.admin, product["id"], "reinstate")
    assert again.status_code == 409 and again.json()["allowed_next_states"] == []
    # Everything stays readable: the product, its contract and the whole ledger.
    assert world.consumer.call("GET", f"/products/{product['id']}").status_code == 200
    assert world.consumer.call("GET", f"/contracts/{contract['id']}").status_code == 200
    with gateway.engine.connect() as conn:
        types = [e.type for e in ledger_store.iter_entries(conn)]
    assert types.count("product.delisted") == 1 and "contract.finalized" in types


def test_listing_needs_an_authorisation_still_in_force(world):
    with freeze_time("2030-01-01T00:00:00Z") as frozen:
        for party in (world.holder, world.merchant, world.admin):
            party._token = None
        short = world.holder.call(
            "POST",
            "/authorisations",
            json={
                "operator_id": world.merchant.id,
                "resource_ids": [world.resource["id"]],
                "not_after": "2030-01-02T00:00:00Z",
                "fee_cap_fen": 500_000,
            },
        )
        assert short.status_code == 201, short.text
        draft = _draft(world, authorisation_id=short.json()["id"])
        assert _act(world.merchant, draft["id"], "submit").status_code == 200
        frozen.move_to("2030-01-02T00:00:00Z")  # the authorisation's last instant has passed
        for party in (world.holder, world.merchant, world.admin):
            party._token = None
        response = _act(world.admin, draft["id"], "list")
        assert response.status_code == 403
        assert response.json()["type"] == "urn:dsgw:problem:not-authorised"
    for party in (world.holder, world.merchant, world.admin):
        party._token = None


def test_ending_an_authorisation_suspends_its_listed_products(world, gateway):
    draft = _draft(world)  # stays a draft: only listed products are suspended
    with gateway.sessions() as session:
        suspended = products.suspend_for_authorisation(
            session,
            gateway.signer,
            authorisation_id=world.authorisation["id"],
            reason="authorisation revoked",
        )
        session.commit()
    assert sorted(suspended) == sorted(
        [world.product["id"], world.core_product["id"]]
    )
    assert world.merchant.call("GET", f"/products/{draft['id']}").json()["status"] == "draft"
    after = world.consumer.call("GET", f"/products/{world.product['id']}").json()
    assert after["status"] == "suspended" and after["status_reason"] == "authorisation revoked"
    with gateway.engine.connect() as conn:
        entries = [e for e in ledger_store.iter_entries(conn) if e.type == "product.suspended"]
    assert {e.data["product"] for e in entries} == set(suspended)
    assert all(e.data["by"] == "gateway" for e in entries)


def test_merchant_lists_its_own_products_and_admin_sees_the_review_queue(world):
    draft = _draft(world)
    _act(world.merchant, draft["id"], "submit")
    queue = world.admin.call("GET", "/products", params={"status": "review"}).json()
    assert [p["id"] for p in queue] == [draft["id"]]
    mine = world.merchant.call("GET", "/products").json()
    assert {p["id"] for p in mine} == {world.product["id"], world.core_product["id"], draft["id"]}
    assert world.consumer.call("GET", "/products").json() == []


def test_an_id_the_database_cannot_compare_is_a_problem_not_a_crash(world):
    # %00 decodes to NUL, which PostgreSQL refuses in text: refused the same way on every engine.
    for path in ("/products/prd%00x", "/contracts/ctr%00x"):
        response = world.consumer.call("GET", path)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"


def test_a_product_whose_authorisation_ended_is_suspended_at_the_next_request(world, gateway):
    with freeze_time("2030-01-01T00:00:00Z") as frozen:
        _refresh = (world.holder, world.merchant, world.admin, world.consumer)
        for party in _refresh:
            party._token = None
        short = world.holder.call(
            "POST",
            "/authorisations",
            json={
                "operator_id": world.merchant.id,
                "resource_ids": [world.resource["id"]],
                "not_after": "2030-01-02T00:00:00Z",
                "fee_cap_fen": 500_000,
            },
        ).json()
        product = world.list_product(_draft(world, authorisation_id=short["id"])["id"])
        frozen.move_to("2030-01-01T23:59:59.999999Z")
        for party in _refresh:
            party._token = None
        assert _request(world, product).status_code == 201
        frozen.move_to("2030-01-02T00:00:00Z")
        for party in _refresh:
            party._token = None
        refused = _request(world, product)
        assert refused.status_code == 409
        assert refused.json()["type"] == "urn:dsgw:problem:product-not-listed"
        after = world.consumer.call("GET", f"/products/{product['id']}").json()
        assert after["status"] == "suspended" and short["id"] in after["status_reason"]
        with gateway.engine.connect() as conn:
            entry = [e for e in ledger_store.iter_entries(conn) if e.type == "product.suspended"]
        assert [(e.data["product"], e.data["by"]) for e in entry] == [(product["id"], "gateway")]
    for party in _refresh:
        party._token = None
