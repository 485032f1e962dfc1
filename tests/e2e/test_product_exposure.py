"""A product offer's exposed grade comes from the policy, per delivery mode (就高从严)."""

from gateway.policy.grading import offer_exposure
from gateway.products import service as products
from gateway.resources import service as resources
from tests.e2e.world import OFFER, build_world


def _exposure(gateway, product: dict, offer_index: int = 0) -> dict:
    with gateway.sessions() as session:
        stored = products.get(session, product["id"])
        resource = resources.get(session, stored.resource_id)
        _, offer = products.get_offer(session, product["offers"][offer_index]["id"])
        return offer_exposure(gateway.policy, resource=resource, product=stored, offer=offer)


def test_offer_exposure_follows_the_fields_masking_and_delivery(client, gateway, settings):
    world = build_world(client, settings.state_dir)
    # Every field, rows through the api: personal fields masked, so no personal data exposed.
    api = _exposure(gateway, world.product)["api"]
    assert (api["grade"], api["level"]) == ("general", "L3")
    assert api["personal_information"] is False
    assert api["fields"] == ["district", "id_card", "name", "phone", "score"]
    assert any("masked" in note for note in api["lowered"])

    # An offer restricted to two plain fields, also as compute aggregates.
    narrow = world.publish(
        offers=[{**OFFER, "fields": ["district", "score"]}],
        delivery_modes=["api", "compute"],
    )
    exposure = _exposure(gateway, narrow)
    assert set(exposure) == {"api", "compute"}
    for mode in ("api", "compute"):
        assert exposure[mode]["fields"] == ["district", "score"]
        assert exposure[mode]["personal_information"] is False
        assert exposure[mode]["lowered"] == []

    # The core product: its exposure is core, whatever is asked.
    core = _exposure(gateway, world.core_product)["api"]
    assert core["grade"] == "core" and core["level"] is None


def test_a_products_grade_is_the_highest_its_offers_expose_never_typed(client, gateway, settings):
    from ledger import store as ledger_store

    world = build_world(client, settings.state_dir)
    resource = world.add_resource(
        name="graded fields", domain="finance", grade="general", level="L3",
        fields=[
            {"name": "district", "level": "L1", "grade": "general"},
            {"name": "score", "level": "L2", "grade": "general"},
            {"name": "phone", "personal": True, "level": "L3", "grade": "general"},
        ],
        rows=[{"district": "海淀", "score": 700, "phone": "13812345678"}],
    )
    narrow = world.publish(
        resource=resource, offers=[{**OFFER, "fields": ["district", "score"]}]
    )
    assert (narrow["grade"], narrow["level"]) == ("general", "L2")  # lowered by what it exposes
    assert narrow["offers"][0]["exposure"]["api"]["level"] == "L2"
    wide = world.publish(
        resource=resource,
        offers=[{**OFFER, "fields": ["district", "score"]}, {**OFFER, "fields": ["phone"]}],
    )
    assert (wide["grade"], wide["level"]) == ("general", "L3")  # the highest offer wins
    with gateway.engine.connect() as conn:
        drafted = [e for e in ledger_store.iter_entries(conn) if e.type == "product.drafted"]
    entry = next(e for e in drafted if e.data["product"] == narrow["id"])
    assert (entry.data["level"], entry.data["resource_level"]) == ("L2", "L3")


def test_no_product_is_drafted_when_the_policy_cannot_grade_it(client, gateway, settings):
    from gateway.policy.client import PolicyClient
    from gateway.policy.opa_process import free_port

    world = build_world(client, settings.state_dir)
    before = world.merchant.call("GET", "/products").json()
    real = gateway.policy
    gateway.policy = PolicyClient(f"http://127.0.0.1:{free_port()}", timeout=0.5)
    try:
        response = world.merchant.call("POST", "/products", json={
            "name": "ungradable", "resource_id": world.resource["id"],
            "authorisation_id": world.authorisation["id"], "delivery_modes": ["api"],
            "offers": [OFFER],
        })
    finally:
        gateway.policy = real
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "urn:dsgw:problem:policy-unavailable"
    assert world.merchant.call("GET", "/products").json() == before
