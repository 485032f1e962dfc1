"""The consumer's compute queries on the contract page, in Debian's Chromium on a live gateway
with the real OPA: the noisy results with their noise and error bounds, the ε spent and the
budget left (contract and consumer × resource) shown before the first query and going down
query by query, the receipt checked in the page, the refusal once the budget is spent, read as
the API's problem in words, and no pull button on the compute-only contract.

The demo has no compute product, so this file makes one through the public API: the demo's
holder registers a general/L3 resource of 300 trips (the policy's L3 tier: ε 0.5 a query, a
budget of 5), the admin codes it, the merchant offers it for compute only, the consumer and the
merchant sign; the consumer's own code then spends 8 of the 10 queries over the API, so that the
browser's two queries spend the rest and its third is refused.
"""

import time

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture says why the tests cannot run (skip, or CI failure)
    expect = None

from gateway.client.api import Client, GatewayProblem
from gateway.participants.service import PLATFORM_ADMIN_ID
from tests.browser.conftest import PHONE, sign_in

PURPOSE = "traffic-planning"
DISTRICTS = {"海淀": 150, "朝阳": 100, "东城": 50}
TRIPS = [
    {"district": d, "minutes": 5 + (i * 7) % 80} for d, n in DISTRICTS.items() for i in range(n)
]
TERMS = {
    "aggregates": ["count", "sum", "mean", "quantile", "histogram"],
    "columns": {
        "district": {"rule": "group_key", "values": list(DISTRICTS)},
        "minutes": {
            "rule": "aggregate",
            "lower": 0,
            "upper": 100,
            "bins": [0, 20, 40, 60, 80, 100],
        },
    },
}
EPSILON, BUDGET = 0.5, 5.0  # general L3 (specs/compute.md, ε accounting)
SPENT_BY_CODE = 8  # queries the consumer's own code makes before the browser's


def _coded(admin: Client, holder: Client, applied: dict) -> dict:
    path = f"/registrations/{applied['registration']['id']}"
    admin._json("POST", f"{path}/accept")
    admin._json("POST", f"{path}/review")
    admin._json("POST", f"{path}/publicise", json={"window_seconds": 1})
    for _ in range(50):  # the publicity window (1 s) must close before the code is given
        try:
            admin._json("POST", f"{path}/code")
            break
        except GatewayProblem:
            time.sleep(0.2)
    return holder._json("GET", f"/resources/{applied['id']}")


@pytest.fixture(scope="module")
def compute_contract(world):
    """A FINALIZED compute-only contract of the demo's consumer, 8 of its 10 queries spent."""
    ids = world.ids
    admin_key = world.state / "keys" / "admin-ed25519.jwk"
    with (
        Client(world.url, PLATFORM_ADMIN_ID, admin_key) as admin,
        Client(world.url, ids["HOLDER"], world.key("holder")) as holder,
        Client(world.url, ids["MERCHANT"], world.key("merchant")) as merchant,
        Client(world.url, ids["CONSUMER"], world.key("consumer")) as consumer,
    ):
        applied = holder._json(
            "POST",
            "/resources",
            json={
                "name": "出行时长 (trip durations)",
                "domain": "transport",
                "grade": "general",
                "level": "L3",
                "fields": [
                    {"name": "district", "personal": False, "sensitive": False},
                    {"name": "minutes", "personal": False, "sensitive": False},
                ],
                "rows": TRIPS,
            },
        )
        resource = _coded(admin, holder, applied)
        authorisation = holder._json(
            "POST",
            "/authorisations",
            json={
                "operator_id": ids["MERCHANT"],
                "resource_ids": [resource["id"]],
                "not_after": "2099-12-31T00:00:00Z",
                "fee_cap_fen": 500_000,
            },
        )
        product = merchant.draft_product(
            {
                "name": "出行时长统计 (trip statistics, compute only)",
                "resource_id": resource["id"],
                "authorisation_id": authorisation["id"],
                "delivery_modes": ["compute"],
                "offers": [{"purposes": [PURPOSE], "term": "P30D", "compute": TERMS}],
            }
        )
        merchant.submit_product(product["id"])
        admin.move_product(product["id"], "list")
        contract = consumer.request_contract(product["offers"][0]["id"], purpose=PURPOSE)
        merchant.sign(contract["id"])
        contract = consumer.sign(contract["id"])
        assert contract["state"] == "FINALIZED", contract
        for _ in range(SPENT_BY_CODE):
            spent = consumer.exchange(
                contract["id"], delivery="compute", aggregates=[{"op": "count"}]
            )
        assert spent["privacy"]["contract"]["remaining"] == pytest.approx(
            BUDGET - SPENT_BY_CODE * EPSILON
        )
        return contract["id"]


def test_consumer_runs_compute_queries_sees_the_budget_go_down_and_a_refusal_in_words(
    pages, world, compute_contract
):
    # The refused query's 403 is logged by Chromium as a failed resource: provoked on purpose.
    pages.expect_console_error(r"status of 403")
    page = pages.open(f"/portal/#/contract/{compute_contract}")
    sign_in(page, world.ids["CONSUMER"], world.key("consumer"))
    page.wait_for_selector("#compute-form")
    # Before this page's first query: the budget left as the route reports it (8 spent by code).
    left = BUDGET - SPENT_BY_CODE * EPSILON
    expect(page.locator("#now-budget-contract")).to_have_attribute("data-remaining", f"{left:g}")
    assert page.locator("#now-budget-subject").get_attribute("data-remaining") == f"{left:g}"
    assert page.locator("#budget-queries-left").get_attribute("data-n") == "2"
    assert "剩余 ε 1(已用 4 / 共 5)" in page.locator("#now-budget-contract").inner_text()
    # A compute-only product: the contract page shows the compute form alone, no pull.
    assert page.locator("#pull").count() == 0
    # The form offers what the terms declare, nothing else.
    assert page.locator("#compute-op option").all_inner_texts() == [
        "不选",
        "求和",
        "平均值",
        "分位数",
        "直方图",
    ]
    keys = page.locator("#compute input[name=group_by]")
    assert keys.evaluate_all("els => els.map(e => e.value)") == ["district"]
    filters = page.locator("#compute-filter option").all_inner_texts()
    assert filters == ["不筛选", *(f"district = {d}" for d in DISTRICTS)]
    # The offer's compute terms read in words on the contract page.
    assert "district: 可分组、可筛选 (海淀/朝阳/东城)" in page.locator("#view").inner_text()
    pages.shot(page, "compute-form-zh")

    # First query: count and mean minutes per district.
    page.select_option("#compute-op", "mean")
    page.select_option("#compute-field", "minutes")
    page.check("#compute input[name=group_by][value=district]")
    page.click("#compute-run")
    page.wait_for_selector("#compute-rows")
    rows = page.locator("#compute-rows tr")
    assert rows.nth(0).locator("th").all_inner_texts() == [
        "district",
        "计数(不同主体数)",
        "minutes_mean",
    ]
    released = {
        r.locator("td").nth(0).inner_text(): r.locator("td").all_inner_texts()
        for r in rows.all()[1:]
    }
    # 50 trips and more per district: far above the threshold of 10 (count noise scale 4)
    assert set(released) == set(DISTRICTS), released
    for district, n in DISTRICTS.items():
        count, mean = (float(x) for x in released[district][1:])
        assert abs(count - n) < 60 and 0 <= mean <= 100  # noisy, within the stated bounds
    noise = page.locator("#compute-noise").inner_text()
    assert "离散拉普拉斯" in noise and "拉普拉斯(连续)" in noise and "±" in noise
    assert page.locator("#eps-spent").inner_text() == "0.5"
    assert page.locator("#budget-contract").get_attribute("data-remaining") == "0.5"
    assert page.locator("#budget-subject").get_attribute("data-remaining") == "0.5"
    assert "剩余 ε 0.5(已用 4.5 / 共 5)" in page.locator("#budget-contract").inner_text()
    # The budget block read again after the reply: the same figures as the reply's.
    expect(page.locator("#now-budget-contract")).to_have_attribute("data-remaining", "0.5")
    assert page.locator("#budget-queries-left").get_attribute("data-n") == "1"
    # The receipt of the release, checked in the page as a pull's is.
    page.click("#compute-reply #verify-receipt")
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "verified")
    pages.shot(page, "compute-first-reply-zh")

    # Second query: a count of one declared district; the budget left goes down to nothing.
    page.select_option("#compute-op", "")
    page.uncheck("#compute input[name=group_by][value=district]")
    page.select_option("#compute-filter", label="district = 朝阳")
    page.click("#compute-run")
    expect(page.locator("#budget-contract")).to_have_attribute("data-remaining", "0")
    assert page.locator("#compute-rows tr").count() == 2  # the header and the one group
    assert page.locator("#budget-subject").get_attribute("data-remaining") == "0"
    expect(page.locator("#now-budget-contract")).to_have_attribute("data-remaining", "0")
    assert page.locator("#budget-queries-left").get_attribute("data-n") == "0"
    pages.shot(page, "compute-second-reply-zh")

    # Third: refused by the policy, shown as the API's problem with its reason in words.
    page.click("#compute-run")
    refusal = page.locator("#compute-refusal")
    expect(refusal).to_be_visible()
    assert refusal.locator("[data-reason]").get_attribute("data-reason") == (
        "PRIVACY_BUDGET_EXHAUSTED"
    )
    assert "隐私预算已用尽" in refusal.inner_text()
    assert "403" in refusal.inner_text()
    assert page.locator("#now-budget-contract").get_attribute("data-remaining") == "0"
    pages.shot(page, "compute-refused-zh")

    # On a phone, in English, a new sign-in: the spent budget is shown before any query.
    phone = pages.open(f"/portal/?lang=en#/contract/{compute_contract}", viewport=PHONE)
    sign_in(phone, world.ids["CONSUMER"], world.key("consumer"))
    phone.wait_for_selector("#compute-form")
    expect(phone.locator("#now-budget-contract")).to_have_attribute("data-remaining", "0")
    assert "ε 0 left (5 spent of 5)" in phone.locator("#now-budget-contract").inner_text()
    assert phone.locator("#pull").count() == 0
    phone.click("#compute-run")
    expect(phone.locator("#compute-refusal")).to_be_visible()
    assert "The privacy budget is spent" in phone.locator("#compute-refusal").inner_text()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width  # nothing wider than the phone's screen
    pages.shot(phone, "compute-refused-en-phone")
