"""The catalogue: DCAT 3 in JSON-LD, only what the consumer may request, paginated, searchable."""

import pytest

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


def _catalogue(party, **params):
    response = party.call("GET", "/catalogue", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _ids(catalogue: dict) -> list[str]:
    return [d["dct:identifier"] for d in catalogue["dcat:dataset"]]


def test_catalogue_is_a_dcat_catalog_in_json_ld(world):
    response = world.consumer.call("GET", "/catalogue")
    assert response.headers["content-type"] == "application/ld+json"
    catalogue = response.json()
    assert catalogue["@type"] == "dcat:Catalog"
    assert catalogue["@context"]["dcat"] == "http://www.w3.org/ns/dcat#"
    assert catalogue["@context"]["odrl"] == "http://www.w3.org/ns/odrl/2/"
    assert catalogue["dcat:service"][0]["@type"] == "dcat:DataService"
    dataset = next(
        d for d in catalogue["dcat:dataset"] if d["dct:identifier"] == world.product["id"]
    )
    assert dataset["@type"] == "dcat:Dataset"
    assert dataset["dsgw:grade"] == "general" and dataset["dsgw:level"] == "L3"
    assert [d["dsgw:deliveryMode"] for d in dataset["dcat:distribution"]] == ["api"]
    assert dataset["dcat:distribution"][0]["@type"] == "dcat:Distribution"
    assert (
        dataset["dcat:distribution"][0]["dcat:accessService"]["@id"]
        == (catalogue["dcat:service"][0]["@id"])
    )
    assert dataset["odrl:hasPolicy"] == [o["odrl"] for o in world.product["offers"]]
    assert dataset["prov:wasDerivedFrom"][0]["@id"].endswith(world.resource["id"])
    assert len(dataset["dqv:hasQualityMeasurement"]) == 6
    assert catalogue["total"] == 2 and catalogue["next"] is None


def test_only_listed_products_are_shown(world):
    draft = world.merchant.call(
        "POST",
        "/products",
        json={
            "name": "unreviewed",
            "resource_id": world.resource["id"],
            "authorisation_id": world.authorisation["id"],
            "delivery_modes": ["api"],
            "offers": [OFFER],
        },
    ).json()
    world.admin.call("POST", f"/products/{world.core_product['id']}/suspend", json={"reason": "x"})
    shown = _ids(_catalogue(world.consumer))
    assert shown == [world.product["id"]]
    assert draft["id"] not in shown


def test_cross_border_consumer_sees_no_important_or_core_product_and_cannot_request_one(world):
    anywhere = {**OFFER, "region": "any"}
    important = world.publish(resource=world.add_resource(**IMPORTANT), offers=[anywhere])
    open_product = world.publish(offers=[OFFER, anywhere])
    abroad = world.register("overseas bank", ["consumer"], region="cross_border")
    assert set(_ids(_catalogue(world.consumer))) == {
        world.product["id"],
        world.core_product["id"],
        important["id"],
        open_product["id"],
    }
    assert _ids(_catalogue(abroad)) == [open_product["id"]]
    refused = abroad.call(
        "POST", "/contracts", json={"offer_id": important["offers"][0]["id"], "purpose": PURPOSE}
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"


def test_cross_border_consumer_sees_and_may_take_only_offers_usable_anywhere(world):
    anywhere = {**OFFER, "region": "any"}
    product = world.publish(offers=[OFFER, anywhere])
    abroad = world.register("overseas bank", ["consumer"], region="cross_border")
    (dataset,) = _catalogue(abroad)["dcat:dataset"]
    assert [p["uid"] for p in dataset["odrl:hasPolicy"]] == [product["offers"][1]["id"]]
    domestic_only, usable_anywhere = (o["id"] for o in product["offers"])
    refused = abroad.call(
        "POST", "/contracts", json={"offer_id": domestic_only, "purpose": PURPOSE}
    )
    assert refused.status_code == 403 and "region domestic" in refused.json()["detail"]
    taken = abroad.call(
        "POST", "/contracts", json={"offer_id": usable_anywhere, "purpose": PURPOSE}
    )
    assert taken.status_code == 201, taken.text
    home = _catalogue(world.consumer)
    mine = next(d for d in home["dcat:dataset"] if d["dct:identifier"] == product["id"])
    assert len(mine["odrl:hasPolicy"]) == 2


def test_catalogue_pages_carry_the_total_and_the_next_link(world):
    for n in range(3):
        world.publish(offers=[OFFER], name=f"extra {n}")
    first = _catalogue(world.consumer, limit=2)
    assert first["total"] == 5 and len(first["dcat:dataset"]) == 2
    assert "offset=2" in first["next"] and "limit=2" in first["next"]
    second = world.consumer.call("GET", first["next"].removeprefix("http://localhost")).json()
    third = _catalogue(world.consumer, limit=2, offset=4)
    seen = _ids(first) + _ids(second) + _ids(third)
    assert len(seen) == len(set(seen)) == 5
    assert third["next"] is None


def test_catalogue_searches_by_grade_level_domain_delivery_and_text(world):
    filed = world.publish(
        offers=[OFFER],
        name="District credit extract",
        description="Monthly CSV of scores",
        delivery_modes=["file", "api"],
    )
    assert _ids(_catalogue(world.consumer, grade="core")) == [world.core_product["id"]]
    assert set(_ids(_catalogue(world.consumer, grade="general", level="L3"))) == {
        world.product["id"],
        filed["id"],
    }
    assert _ids(_catalogue(world.consumer, domain="energy")) == [world.core_product["id"]]
    assert _ids(_catalogue(world.consumer, domain="ener")) == []
    assert _ids(_catalogue(world.consumer, delivery="file")) == [filed["id"]]
    assert _ids(_catalogue(world.consumer, q="csv of")) == [filed["id"]]
    assert _ids(_catalogue(world.consumer, q="DISTRICT", delivery="api")) == [filed["id"]]
    assert _ids(_catalogue(world.consumer, q="100%_")) == []
    assert _catalogue(world.consumer, grade="general", delivery="compute")["total"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"grade": "secret"},
        {"delivery": "fax"},
        {"limit": 0},
        {"limit": 201},
        {"offset": -1},
        {"level": "L9"},
        {"q": ""},
        {"q": "nul\x00char"},
        {"domain": "finance\x00"},
    ],
)
def test_invalid_catalogue_query_is_a_422_problem(world, params):
    response = world.consumer.call("GET", "/catalogue", params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_catalogue_needs_a_token(client):
    response = client.get("/catalogue")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
