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
