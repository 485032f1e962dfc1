"""The yearly disclosure: authorisations, products and actual fees, public, as JSON and HTML."""

from datetime import UTC, datetime

import pytest

from tests.e2e.world import OFFER, build_world


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def test_disclosure_lists_authorisations_products_and_actual_fees(world, client):
    contract = world.contract(world.product["offers"][0]["id"])
    assert world.pull(contract["id"]).status_code == 200
    assert world.pull(contract["id"], purpose="marketing").status_code == 403
    year = datetime.now(UTC).year

    response = client.get(f"/disclosure/{year}")  # no token: the disclosure is public
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["year"] == year
    [authorisation] = body["authorisations"]
    assert authorisation["id"] == world.authorisation["id"]
    assert authorisation["holder"]["id"] == world.holder.id
    assert authorisation["fee_cap_fen"] == 500_000
    assert {r["code"] for r in authorisation["resources"]} == {
        world.resource["code"],
        world.core_resource["code"],
    }
    products = {p["id"]: p for p in body["products"]}
    fees = products[world.product["id"]]["fees"]
    assert fees == {
        "contracts": 1,
        "contract_fees_fen": OFFER["price_fen"],
        "exchanges": 1,
        "rows_delivered": 5,
        # from the settlement: no period of the year is closed yet
        "invoices": 0,
        "charged_fen": 0,
        "voucher_fen": 0,
        "refunded_fen": 0,
        "net_fen": 0,
    }
    assert products[world.core_product["id"]]["fees"]["contracts"] == 0
    assert body["totals"]["contract_fees_fen"] == OFFER["price_fen"]
    assert body["totals"]["products"] == 2

    assert client.get(f"/disclosure/{year - 1}").json()["totals"]["authorisations"] == 0


def test_disclosure_page_is_readable_and_escapes_what_participants_wrote(world, client):
    world.publish(offers=[{**OFFER, "price_fen": 0}], name="<script>alert(1)</script>")
    year = datetime.now(UTC).year
    page = client.get(f"/disclosure/{year}.html")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script>" not in page.text
    assert world.resource["code"] in page.text and "¥1,200.00" in page.text
    negotiated = client.get(f"/disclosure/{year}", headers={"Accept": "text/html"})
    assert negotiated.headers["content-type"].startswith("text/html")
    assert negotiated.text.split("Published by")[1][:20] == page.text.split("Published by")[1][:20]


def test_disclosure_rejects_bad_years_with_a_problem(client):
    for path in ("/disclosure/1999", "/disclosure/9999", "/disclosure/abc", "/disclosure/abc.html"):
        response = client.get(path)
        assert response.status_code == 422, path
        assert response.headers["content-type"] == "application/problem+json"
