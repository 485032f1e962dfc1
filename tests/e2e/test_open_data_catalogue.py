"""The public catalogue of open data (`GET /open-data`): listed products whose every offer the
policy found open, for anyone without a token, paginated and searchable."""

import pytest

from tests.e2e.world import OFFER, build_world

STATIONS = [{"station": f"站点{i}", "pm25": 30 + i} for i in range(5)]


@pytest.fixture
def world(client, settings):
    world = build_world(client, settings.state_dir)
    air = world.add_resource(
        name="air quality",
        domain="environment/air",
        grade="general",
        level="L1",
        fields=[{"name": "station"}, {"name": "pm25"}],
        rows=STATIONS,
    )
    world.open = [
        world.publish(
            resource=air,
            offers=[{**OFFER, "price_fen": 0}],
            name=f"air quality {i}",
            description="hourly PM2.5 by station",
            authorisation_id=air["authorisation_id"],
            delivery_modes=["api", "file"],
        )
        for i in range(3)
    ]
    # The same open data, drafted but never listed.
    draft = world.merchant.call(
        "POST",
        "/products",
        json={
            "name": "air quality draft",
            "resource_id": air["id"],
            "authorisation_id": air["authorisation_id"],
            "delivery_modes": ["api"],
            "offers": [OFFER],
        },
    )
    assert draft.status_code == 201, draft.text
    world.draft = draft.json()
    # L1 general, but with a personal field: not open.
    people = world.add_resource(
        name="station staff",
        domain="environment",
        grade="general",
        level="L1",
        fields=[{"name": "station"}, {"name": "phone", "personal": True}],
        rows=[{"station": "站点0", "phone": "13800000000"}],
    )
    world.personal = world.publish(
        resource=people,
        offers=[OFFER],
        name="station staff",
        authorisation_id=people["authorisation_id"],
    )
    return world


def _ids(body: dict) -> list[str]:
    return [d["dct:identifier"] for d in body["dcat:dataset"]]


def test_open_product_is_listed_without_a_token_with_its_fields_merchant_and_endpoint(
    world, client
):
    response = client.get("/open-data")  # no Authorization header
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/ld+json")
    body = response.json()
    assert body["@type"] == "dcat:Catalog" and body["total"] == 3
    assert _ids(body) == [p["id"] for p in reversed(world.open)]  # newest first
    dataset = body["dcat:dataset"][0]
    assert dataset["dct:title"] == "air quality 2"
    assert dataset["dct:description"] == "hourly PM2.5 by station"
    assert dataset["dcat:theme"] == "environment/air"
    assert dataset["dsgw:openData"] is True
    assert dataset["dsgw:fields"] == ["pm25", "station"]
    assert dataset["dsgw:merchant"]["dct:identifier"] == world.merchant.id
    assert dataset["dsgw:merchant"]["foaf:name"] == "merchant"
    assert dataset["dsgw:openDataEndpoint"]["@id"].endswith(
        f"/open-data/{world.open[2]['id']}/exchanges"
    )


def test_not_open_personal_and_unlisted_products_are_left_out(world, client):
    ids = _ids(client.get("/open-data", params={"limit": 200}).json())
    assert world.product["id"] not in ids  # general L3, personal fields
    assert world.core_product["id"] not in ids
    assert world.personal["id"] not in ids  # L1, but a personal field
    assert world.draft["id"] not in ids  # open data, not listed
    delisted = world.merchant.call("POST", f"/products/{world.open[0]['id']}/delist")
    assert delisted.status_code == 200, delisted.text
    assert world.open[0]["id"] not in _ids(client.get("/open-data").json())


def test_open_data_is_searched_by_free_text_and_domain(world, client):
    assert _ids(client.get("/open-data", params={"q": "QUALITY 1"}).json()) == [world.open[1]["id"]]
    assert client.get("/open-data", params={"q": "credit"}).json()["total"] == 0
    assert client.get("/open-data", params={"domain": "environment"}).json()["total"] == 3
    assert client.get("/open-data", params={"domain": "environ"}).json()["total"] == 0


def test_open_data_is_paged_with_total_and_next(world, client):
    first = client.get("/open-data", params={"limit": 2}).json()
    assert first["total"] == 3 and len(first["dcat:dataset"]) == 2
    assert first["next"].endswith("/open-data?offset=2&limit=2")
    second = client.get("/open-data", params={"offset": 2, "limit": 2}).json()
    assert _ids(second) == [world.open[0]["id"]] and second["next"] is None
    assert _ids(first) + _ids(second) == [p["id"] for p in reversed(world.open)]
    beyond = client.get("/open-data", params={"offset": 10}).json()
    assert beyond["dcat:dataset"] == [] and beyond["total"] == 3


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"offset": -1},
        {"offset": 1_000_001},
        {"limit": "many"},
        {"q": ""},
        {"q": "x" * 201},
        {"q": "a\x00b"},
        {"domain": "d" * 101},
    ],
)
def test_bad_paging_or_search_is_a_422_problem(world, client, params):
    response = client.get("/open-data", params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_one_open_product_is_read_without_a_token_as_the_list_shows_it(world, client):
    product_id = world.open[2]["id"]
    response = client.get(f"/open-data/{product_id}")  # no Authorization header
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/ld+json")
    body = response.json()
    listed = next(
        d
        for d in client.get("/open-data").json()["dcat:dataset"]
        if d["dct:identifier"] == product_id
    )
    # Exactly what the public list already discloses of it, with the JSON-LD context.
    assert {k: v for k, v in body.items() if k != "@context"} == listed
    assert body["@context"] and body["@type"] == "dcat:Dataset"


def test_an_anonymous_visitor_cannot_read_a_draft_review_suspended_or_not_open_product(
    world, client
):
    # The route answers for open data (so every 404 below is the gate, not a missing route).
    assert client.get(f"/open-data/{world.open[2]['id']}").status_code == 200
    in_review = world.merchant.call("POST", f"/products/{world.draft['id']}/submit")
    assert in_review.status_code == 200 and in_review.json()["status"] == "review"
    suspended = world.admin.call(
        "POST", f"/products/{world.open[1]['id']}/suspend", json={"reason": "complaint"}
    )
    assert suspended.status_code == 200, suspended.text
    delisted = world.merchant.call("POST", f"/products/{world.open[0]['id']}/delist")
    assert delisted.status_code == 200, delisted.text
    unknown = client.get("/open-data/prd_doesnotexist")
    assert unknown.status_code == 404
    hidden = {
        "in review": world.draft["id"],
        "suspended": world.open[1]["id"],
        "delisted": world.open[0]["id"],
        "listed, personal fields": world.product["id"],
        "listed, core": world.core_product["id"],
        "listed L1, a personal field": world.personal["id"],
    }
    for what, product_id in hidden.items():
        response = client.get(f"/open-data/{product_id}")
        # Told exactly as an unknown id: nothing says the product exists.
        assert response.status_code == 404, (what, response.text)
        assert response.json()["type"] == unknown.json()["type"] == "urn:dsgw:problem:not-found"
        assert response.json()["title"] == unknown.json()["title"]
    # A draft, before it is submitted, is as hidden.
    draft = world.merchant.call(
        "POST",
        "/products",
        json={
            "name": "another draft",
            "resource_id": world.open[2]["resource_id"],
            "authorisation_id": world.open[2]["authorisation_id"],
            "delivery_modes": ["api"],
            "offers": [{**OFFER, "price_fen": 0}],
        },
    )
    assert draft.status_code == 201 and draft.json()["status"] == "draft", draft.text
    assert client.get(f"/open-data/{draft.json()['id']}").status_code == 404
