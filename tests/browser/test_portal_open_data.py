"""The public catalogue of open data in the browser (#/open-data): an anonymous visitor lists and
searches it; a signed-in consumer pulls an open product's rows without a contract and checks the
receipt in the browser. `dsgw demo` lists no open data, so the module makes one product through
the public API (an L1 resource without personal fields, coded, authorised, drafted, listed)."""

import pytest

from gateway.client.api import Client
from gateway.participants.service import PLATFORM_ADMIN_ID
from tests.browser.conftest import PHONE, sign_in

pytest.importorskip("playwright.sync_api")

STATIONS = [{"station": f"站点{i}", "pm25": 30 + i} for i in range(20)]


def _ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


@pytest.fixture(scope="module")
def open_product(world) -> dict:
    """A listed open-data product (air quality, L1, no personal field) made over the API."""
    admin_key = world.state / "keys" / "admin-ed25519.jwk"
    with (
        Client(world.url, PLATFORM_ADMIN_ID, admin_key) as admin,
        Client(world.url, world.ids["HOLDER"], world.key("holder")) as holder,
        Client(world.url, world.ids["MERCHANT"], world.key("merchant")) as merchant,
    ):
        applied = _ok(
            holder.request(
                "POST",
                "/resources",
                json={
                    "name": "城市空气质量",
                    "domain": "environment/air",
                    "grade": "general",
                    "level": "L1",
                    "fields": [{"name": "station"}, {"name": "pm25"}],
                    "rows": STATIONS,
                },
            ),
            201,
        )
        registration = applied["registration"]["id"]
        for step, body in [
            ("accept", None),
            ("review", None),
            ("publicise", {"window_seconds": 0}),
            ("code", None),
        ]:
            _ok(admin.request("POST", f"/registrations/{registration}/{step}", json=body))
        granted = _ok(
            holder.request(
                "POST",
                "/authorisations",
                json={
                    "operator_id": world.ids["MERCHANT"],
                    "resource_ids": [applied["id"]],
                    "not_after": "2099-01-01T00:00:00Z",
                    "fee_cap_fen": 0,
                },
            ),
            201,
        )
        drafted = _ok(
            merchant.request(
                "POST",
                "/products",
                json={
                    "name": "城市空气质量开放数据",
                    "description": "各站点每小时 PM2.5 (hourly PM2.5 by station)",
                    "resource_id": applied["id"],
                    "authorisation_id": granted["id"],
                    "delivery_modes": ["api"],
                    "public_interest": True,
                    "offers": [{"purposes": ["open-data-reuse"], "term": "P30D", "price_fen": 0}],
                },
            ),
            201,
        )
        _ok(merchant.request("POST", f"/products/{drafted['id']}/submit"))
        listed = _ok(admin.request("POST", f"/products/{drafted['id']}/list"))
    assert listed["open_data"] is True, listed
    return listed


def test_anonymous_visitor_sees_and_searches_the_open_data_catalogue(pages, world, open_product):
    page = pages.open("/portal/#/open-data", viewport=PHONE)
    card = page.locator(f"article[data-open-product='{open_product['id']}']")
    card.wait_for()
    assert page.locator("h1").inner_text() == "开放数据目录"
    assert page.locator("nav a[href='#/open-data']").inner_text() == "开放数据目录"
    text = card.inner_text()
    assert "城市空气质量开放数据" in text and "pm25, station" in text
    assert f"POST /open-data/{open_product['id']}/exchanges" in text
    # The demo's product (general L3, personal fields) is no open data.
    assert page.locator(f"article[data-open-product='{world.ids['PRODUCT']}']").count() == 0
    assert page.locator("[data-pull-button]").count() == 0  # pulling needs a sign-in
    assert "登录后" in page.locator("#open-data-signin").inner_text()
    assert card.locator(f"a[href='#/product/{open_product['id']}']").count() == 1
    pages.shot(page, "open-data-anonymous-zh-phone")
    page.fill("#open-data-search input[name=q]", "no such data")
    page.click("#open-data-search button[type=submit]")
    page.wait_for_selector("#open-data-none")
    assert card.count() == 0
    pages.shot(page, "open-data-search-none")
    page.fill("#open-data-search input[name=q]", "PM2.5")
    page.click("#open-data-search button[type=submit]")
    card.wait_for()
    page.click("button.lang[data-lang=en]")
    page.wait_for_selector("h1:has-text('Open data catalogue')")
    card.wait_for()
    assert "Fields" in card.inner_text()
    pages.shot(page, "open-data-search-en")


def test_signed_in_consumer_pulls_open_data_and_checks_its_receipt(pages, world, open_product):
    page = pages.open("/portal/#/open-data")
    sign_in(page, world.ids["CONSUMER"], world.key("consumer"))
    card = page.locator(f"article[data-open-product='{open_product['id']}']")
    card.wait_for()
    card.locator("input[name=limit]").fill("5")
    card.locator("[data-pull-button]").click()
    page.wait_for_selector("#open-rows")
    assert page.locator("#open-rows tr").count() == 6  # the head and 5 rows
    assert "站点0" in page.locator("#open-rows").inner_text()
    page.click("#open-verify-receipt")
    page.wait_for_selector("#verdict")
    assert page.locator("#verdict").get_attribute("data-verdict") == "verified"
    assert "exchange.delivered" in page.locator("#verdict").inner_text()
    pages.shot(page, "open-data-pulled-receipt-verified")


def test_a_refused_open_pull_reads_as_the_problem(pages, world, open_product):
    page = pages.open("/portal/?lang=en#/open-data")
    sign_in(page, world.ids["CONSUMER"], world.key("consumer"))
    card = page.locator(f"article[data-open-product='{open_product['id']}']")
    card.wait_for()
    pages.expect_console_error("422")
    card.locator("input[name=purpose]").fill("not a purpose!")
    card.locator("[data-pull-button]").click()
    problem = card.locator(".problem")
    problem.wait_for()
    assert "urn:dsgw:problem:invalid-request" in problem.inner_text()
    assert "Invalid request" in problem.inner_text()  # the English page
    pages.shot(page, "open-data-refused")


def test_anonymous_visitor_opens_an_open_product_page_and_is_asked_to_sign_in_to_request(
    pages, world, open_product
):
    page = pages.open("/portal/#/open-data")
    card = page.locator(f"article[data-open-product='{open_product['id']}']")
    card.wait_for()
    card.locator(f"a[href='#/product/{open_product['id']}']").click()
    page.wait_for_selector("#public-product h1")
    view = page.locator("#view").inner_text()
    assert page.locator("#public-product h1").inner_text() == "城市空气质量开放数据"
    assert "各站点每小时 PM2.5" in view and "general / L1" in view and "pm25, station" in view
    assert "未登录" in page.locator("#public-product-note").inner_text()
    offer = page.locator(f"section.offer[data-offer='{open_product['offers'][0]['id']}']")
    assert "open-data-reuse" in offer.inner_text() and "30 天" in offer.inner_text()
    # No request form: "sign in to request" in its place, which leads to the sign-in form.
    assert page.locator("select[name=purpose]").count() == 0
    offer.locator("[data-signin-to-request]").click()
    assert page.evaluate("document.activeElement.id") == "signin-participant"
    assert page.locator("#public-quality tr").count() > 1  # the quality report, public too
    pages.shot(page, "open-product-anonymous-zh")
    # Signed in, the same page is the participant's: offers with their request form.
    sign_in(page, world.ids["CONSUMER"], world.key("consumer"))
    page.wait_for_selector(f"section.offer[data-offer='{open_product['offers'][0]['id']}'] form")
    assert page.locator("#public-product").count() == 0
    pages.shot(page, "open-product-signed-in-zh")


def test_anonymous_visitor_sees_nothing_of_a_product_that_is_not_open_data(pages, world):
    # The demo's product (general L3, personal fields): GET /open-data/{id} is 404 by design.
    pages.expect_console_error(r"status of 404")
    page = pages.open(f"/portal/?lang=en#/product/{world.ids['PRODUCT']}", viewport=PHONE)
    page.wait_for_selector("#public-product-signin")
    assert "signed-in participants only" in page.locator("#public-product-signin").inner_text()
    assert page.locator("#public-product h1").count() == 0
    assert page.locator("[data-signin-to-request]").count() == 1
    pages.shot(page, "closed-product-anonymous-en-phone")
