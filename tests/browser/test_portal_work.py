"""The merchant's, holder's and admin's pages and a party's statement, end to end in Debian's
Chromium on a live gateway with the real OPA (specs/portal.md §2).

This file has its own gateway (`work_world`): `dsgw demo` runs in the previous month (the
gateway's clock moved back by tests/browser/shifted_clock.py), then a normal `dsgw serve` on the
same state closes that month, so the merchant has a real signed statement to read; the holder
has registered an important resource that the admin codes in the browser.
"""

import base64
import json
import os
import random
import re
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture says why the tests cannot run (skip, or CI failure)
    expect = None

from gateway.client.api import Client
from gateway.demo import random_uscc
from gateway.participants.service import PLATFORM_ADMIN_ID
from gateway.policy.opa_process import free_port
from tests.browser.conftest import PHONE, World, open_pages, sign_in

HERE = Path(__file__).resolve().parent


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DSGW_STATE"}
    return {**env, **extra}


def _serve(state: Path, base: Path, log_name: str, launcher: list[str], env: dict):
    """Start `dsgw serve` on `state` with `launcher`; return (process, url) once it is ready."""
    port = free_port()
    log_path = base / log_name
    log = log_path.open("wb")
    process = subprocess.Popen(
        [*launcher, "--state", str(state), "serve", "--port", str(port)],
        cwd=base, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, log_path.read_text()
        assert time.monotonic() < deadline, "dsgw serve did not answer within 120 s"
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)


def _stop(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()


def _previous_month(now: datetime) -> tuple[str, float]:
    """Return the previous month (YYYY-MM) and how many seconds back lands 3 days before now's
    month began (inside the previous month)."""
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    then = start - timedelta(days=3)
    return then.strftime("%Y-%m"), (now - then).total_seconds()


@pytest.fixture(scope="module")
def work_world(tmp_path_factory, browser):
    """A gateway of this file's own: the demo in the previous month, that month closed, and an
    important resource applied for by the holder (not yet accepted)."""
    base = tmp_path_factory.mktemp("portal-work")
    state = base / "state"
    period, shift = _previous_month(datetime.now(UTC))
    shifted = _env(DSGW_TEST_CLOCK_SHIFT=str(shift))
    process, _ = _serve(
        state, base, "serve-then.log", [sys.executable, str(HERE / "shifted_clock.py")], shifted
    )
    try:
        demo = subprocess.run(
            [sys.executable, str(HERE / "shifted_clock.py"), "--state", str(state), "demo"],
            cwd=base, capture_output=True, text=True, timeout=300, env=shifted,
        )  # fmt: skip
        assert demo.returncode == 0, demo.stdout + demo.stderr
    finally:
        _stop(process)
    process, url = _serve(state, base, "serve.log", [sys.executable, "-m", "gateway.cli"], _env())
    try:
        env = (state / "demo" / "latest" / "env.sh").read_text()
        ids = dict(
            line.split("=", 1) for line in env.splitlines() if line and not line.startswith("#")
        )
        world = World(url=url, state=state, ids=ids, keys=Path(ids.pop("KEYS").strip("'\"")))
        admin_key = state / "keys" / "admin-ed25519.jwk"
        with Client(url, PLATFORM_ADMIN_ID, admin_key) as admin:
            closed = admin._json("POST", f"/settlement/periods/{period}/close")
        assert any(s["party"] == ids["MERCHANT"] for s in closed["statements"]), closed
        with Client(url, ids["HOLDER"], world.key("holder")) as holder:
            important = holder._json(
                "POST",
                "/resources",
                json={
                    "name": "企业用电明细 (enterprise power use)",
                    "domain": "energy",
                    "grade": "important",
                    "fields": [{"name": "enterprise"}, {"name": "kwh"}],
                    "rows": [{"enterprise": "甲公司", "kwh": 1200}],
                },
            )
        world.ids.update(
            PERIOD=period,
            IMPORTANT=important["id"],
            IMPORTANT_REG=important["registration"]["id"],
            ADMIN=PLATFORM_ADMIN_ID,
        )
        world.admin_key = admin_key
        yield world
    finally:
        _stop(process)


def _go(page, fragment: str) -> None:
    """Show the portal's page `fragment` in the same document (the token in memory stays); the
    page is drawn afresh even when it is the one shown."""
    page.evaluate(
        """f => { if (location.hash === f) dispatchEvent(new HashChangeEvent("hashchange"));
                  else location.hash = f; }""",
        fragment,
    )


def _open(pages, world, path: str, role: str, **options):
    page = pages.open(path, **options)
    key = world.admin_key if role == "admin" else world.key(role)
    sign_in(page, world.ids[role.upper()], key)
    return page


@pytest.fixture
def work_pages(browser, work_world, request):
    """Pages on this file's gateway, as conftest's `pages`: the test fails on any console error
    it did not expect; screenshots are saved under tests/browser/artifacts/<test>/."""
    yield from open_pages(browser, work_world, request)


def test_important_data_from_registration_to_a_signed_contract_through_each_roles_pages(
    work_pages, work_world
):
    pages, world = work_pages, work_world
    reg, resource = world.ids["IMPORTANT_REG"], world.ids["IMPORTANT"]

    # admin: the registration review queue, in the browser — accept, review, publicise, code
    admin = _open(pages, world, "/portal/#/admin", "admin")
    admin.wait_for_selector(f"[data-accept='{reg}']")
    pages.shot(admin, "admin-queues")
    admin.click(f"[data-accept='{reg}']")
    expect(admin.locator(f"[data-registration-state='{reg}']")).to_have_text("accepted")
    admin.click(f"[data-review='{reg}']")
    expect(admin.locator(f"[data-registration-state='{reg}']")).to_have_text("reviewed")
    admin.click(f"[data-publicise='{reg}']")  # a publicity window of 1 s (the field's default)
    expect(admin.locator(f"[data-registration-state='{reg}']")).to_have_text("publicised")
    time.sleep(1.5)  # the window must have closed before the admin codes it
    admin.click(f"[data-code='{reg}']")
    expect(admin.locator(f"[data-registration-state='{reg}']")).to_have_count(0)

    # holder: the resource is coded, with its certificate; grant within the API's rules
    holder = _open(pages, world, "/portal/#/holder", "holder")
    row = holder.locator("#resource-list tr", has_text="企业用电明细")
    expect(row).to_contain_text("important")
    expect(row).to_contain_text("coded")
    pages.expect_console_error(r"status of 422")
    holder.fill("#grant-operator", world.ids["MERCHANT"])
    holder.check(f"[data-resource='{resource}']")
    holder.fill("#grant-cap", "2000")
    holder.fill("input[name=share_holder]", "90")  # 90 + 50 + 10 is not 100: refused
    holder.click("#grant-submit")
    problem = holder.locator("#grant-result .problem")
    expect(problem).to_contain_text("100")
    assert problem.get_attribute("data-problem-type") == "urn:dsgw:problem:invalid-request"
    pages.shot(holder, "grant-refused")
    holder.fill("input[name=share_holder]", "40")
    holder.click("#grant-submit")
    granted = holder.locator("#granted")
    expect(granted).to_be_visible()
    authorisation = granted.get_attribute("data-authorisation")
    expect(holder.locator(f"[data-authorisation-status='{authorisation}']")).to_have_text("active")
    pages.shot(holder, "holder-granted")
    holder.click("#resource-list a:has-text('企业用电明细')")
    holder.click("[data-certificate]")
    expect(holder.locator("#certificate")).to_contain_text(resource)
    pages.shot(holder, "certificate")

    # merchant: draft from the authorisation; a price above the cap is refused readably
    merchant = _open(pages, world, "/portal/#/merchant", "merchant")
    merchant.click(f"[data-draft='{authorisation}']")
    merchant.wait_for_selector("#draft-form")
    expect(merchant.locator("#fee-cap")).to_have_text("¥2,000.00")
    merchant.fill("#draft-name", "企业用电分析 (power use analysis)")
    merchant.fill(".offer-draft input[name=purposes]", "energy-research")
    merchant.fill(".offer-draft input[name=price_yuan]", "2500")
    merchant.click("#draft-submit")
    problem = merchant.locator("#draft-result .problem")
    expect(problem).to_contain_text("exceeds the authorisation's fee cap of 200000 fen")
    assert "422" in problem.inner_text()
    pages.shot(merchant, "draft-over-the-cap")
    merchant.fill(".offer-draft input[name=price_yuan]", "800")
    merchant.click("#draft-submit")
    expect(merchant.locator("#product-status")).to_have_text("draft")
    product = merchant.url.rsplit("/", 1)[1]
    expect(merchant.locator("#derived-grade")).to_contain_text("important")
    expect(merchant.locator("#quality")).not_to_be_empty()
    merchant.click("#product-submit")
    expect(merchant.locator("#product-status")).to_have_text("review")
    pages.shot(merchant, "product-in-review")

    # admin: the product review queue lists it; the admin lists it
    _go(admin, "#/admin")
    admin.click(f"[data-list='{product}']")
    expect(admin.locator(f"[data-list='{product}']")).to_have_count(0)
    expect(admin.locator(f"#live-list [data-product-status='{product}']")).to_have_text("listed")

    # a consumer requests it (the consumer's pages, already tested elsewhere); opened before
    # the sign-in, the page asks for the product's public entry, and it is not open data
    pages.expect_console_error(rf"status of 404 .*/open-data/{product}$")
    consumer = _open(pages, world, f"/portal/#/product/{product}", "consumer")
    consumer.locator(".offer button[type=submit]").first.click()
    consumer.wait_for_selector("#contract-state")
    contract = consumer.url.rsplit("/", 1)[1]

    # merchant: signing before the holder approved is the API's 409, shown as a message
    pages.expect_console_error(r"status of 409")
    _go(merchant, f"#/contract/{contract}")
    merchant.click("#sign-provider")
    problem = merchant.locator("#contract-result .problem")
    expect(problem).to_contain_text("must approve it")
    assert problem.get_attribute("data-problem-type") == "urn:dsgw:problem:holder-approval-required"
    pages.shot(merchant, "sign-before-approval-refused")

    # holder: the approval queue for important data has it; approve
    _go(holder, "#/holder")
    holder.click(f"[data-approve='{contract}']")
    expect(holder.locator(f"[data-approve='{contract}']")).to_have_count(0)
    pages.shot(holder, "approved")

    # merchant: signs in the browser (WebCrypto, its own key file)
    _go(merchant, f"#/contract/{contract}")
    merchant.click("#sign-provider")
    expect(merchant.locator("#contract-state")).to_have_text("AGREED")
    _go(merchant, "#/merchant")
    expect(merchant.locator("#provider-contracts tr", has_text=contract)).to_contain_text("已批准")

    # holder: revokes the authorisation; the product built on it is suspended at once
    holder.fill(f"span:has([data-revoke='{authorisation}']) input[name=reason]", "合作结束")
    holder.click(f"[data-revoke='{authorisation}']")
    status = holder.locator(f"[data-authorisation-status='{authorisation}']")
    expect(status).to_have_text("revoked")
    pages.shot(holder, "revoked")
    _go(merchant, f"#/work-product/{product}")
    expect(merchant.locator("#product-status")).to_have_text("suspended")
    merchant.set_viewport_size(PHONE)
    pages.shot(merchant, "product-suspended-phone")


def test_the_merchant_reads_prints_and_verifies_its_signed_statement_and_a_tampered_one_fails(
    work_pages, work_world
):
    pages, world = work_pages, work_world
    period, me = world.ids["PERIOD"], world.ids["MERCHANT"]
    page = _open(pages, world, "/portal/#/merchant", "merchant")
    page.fill("#statement-period", period)
    page.click("#statement-form button[type=submit]")
    page.wait_for_selector("#statement-hash")
    with Client(world.url, me, world.key("merchant")) as client:
        truth = client._json("GET", f"/settlement/statements/stm_{period}_{me}")
    assert page.locator("#statement-hash").inner_text() == truth["hash"]
    earns = truth["statement"]["earns_fen"]
    assert earns > 0  # the demo's flat price, finalised in that month, split to the operator
    expect(page.locator("#statement-earns")).to_have_text(f"¥{earns // 100:,}.{earns % 100:02d}")
    expect(page.locator("#statement-lines")).to_contain_text(world.ids["CONTRACT"])
    page.click("#verify-statement")
    expect(page.locator("#verdict")).to_have_attribute("data-verdict", "verified")
    pages.shot(page, "statement-verified")
    page.emulate_media(media="print")
    assert page.locator("#print").is_hidden() and page.locator("#signin").is_hidden()
    pages.shot(page, "statement-as-printed")
    page.emulate_media(media="screen")

    # the same statement with one amount changed on its way: the browser's check catches it
    def tampered(route):
        body = route.fetch().json()
        body["statement"]["earns_fen"] += 100
        route.fulfill(json=body)

    page.route("**/settlement/statements/**", tampered)
    _go(page, f"#/statement/stm_{period}_{me}")
    page.click("#verify-statement")
    verdict = page.locator("#verdict")
    expect(verdict).to_have_attribute("data-verdict", "failed")
    assert verdict.get_attribute("data-check") == "hash"
    assert truth["hash"] in verdict.inner_text()
    pages.shot(page, "statement-tampered-failed")
    page.unroute("**/settlement/statements/**")

    # a month not closed has no statement: the API's 404, as a message
    pages.expect_console_error(r"status of 404")
    _go(page, f"#/statement/stm_2001-01_{me}")
    problem = page.locator(".problem")
    expect(problem).to_contain_text("404")
    assert problem.get_attribute("data-problem-type") == "urn:dsgw:problem:not-found"


def test_the_merchant_and_holder_pages_list_their_own_statements_each_a_link_to_it(
    work_pages, work_world
):
    pages, world = work_pages, work_world
    period = world.ids["PERIOD"]
    for role in ("merchant", "holder"):
        me = world.ids[role.upper()]
        with Client(world.url, me, world.key(role)) as client:
            listed = client._json("GET", "/settlement/statements")
        assert [s["id"] for s in listed] == [f"stm_{period}_{me}"]  # its own, and only that
        page = _open(pages, world, "/portal/?page_size=1#/" + role, role)
        rows = page.locator("#statement-list tr:has(td)")
        expect(rows).to_have_count(1)
        earns = listed[0]["earns_fen"]
        expect(rows).to_contain_text(period)
        expect(rows).to_contain_text(f"¥{earns // 100:,}.{earns % 100:02d}")
        expect(page.locator("#statement-period")).to_be_visible()  # a month by its field, too
        expect(page.get_by_text("加载中…")).to_have_count(0)  # every list read, page by page
        pages.shot(page, f"{role}-statements")
        page.click(f"[data-statement='stm_{period}_{me}']")
        page.wait_for_selector("#statement-hash")
        assert page.locator("#statement-hash").inner_text() == _statement_hash(world, role, me)
        expect(page.locator("#statement-earns")).to_have_text(
            f"¥{earns // 100:,}.{earns % 100:02d}"
        )
    # the consumer owes, and the API lists its statement to it alone
    with Client(world.url, world.ids["CONSUMER"], world.key("consumer")) as consumer:
        listed = consumer._json("GET", "/settlement/statements")
        assert listed and {s["party"] for s in listed} == {world.ids["CONSUMER"]}


def _statement_hash(world, role: str, me: str) -> str:
    """Return the hash of `me`'s statement of the closed month, read through the API."""
    with Client(world.url, me, world.key(role)) as client:
        return client._json("GET", f"/settlement/statements/stm_{world.ids['PERIOD']}_{me}")["hash"]


def test_the_admin_onboards_a_participant_suspends_and_reinstates_it_in_english_on_a_phone(
    work_pages, work_world, tmp_path
):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pages, world = work_pages, work_world
    raw = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    public = tmp_path / "new-public.jwk"
    public.write_text(json.dumps({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "new-1"}))

    page = _open(pages, world, "/portal/?lang=en#/admin", "admin", viewport=PHONE)
    page.fill("#onboard-name", "New Data Co")
    page.fill("#onboard-uscc", random_uscc(random.Random(13)))
    page.check("#onboard-form input[value=consumer]")
    page.set_input_files("#onboard-key", str(public))
    page.click("#onboard-submit")
    onboarded = page.locator("#onboarded")
    expect(onboarded).to_contain_text("Onboarded: prt_")
    new = onboarded.get_attribute("data-participant")
    status = page.locator(f"[data-participant-status='{new}']")
    expect(status).to_have_text("active")
    pages.shot(page, "onboarded-en-phone")

    page.fill(f"span:has([data-suspend='{new}']) input[name=reason]", "licence lapsed")
    page.click(f"[data-suspend='{new}']")
    expect(status).to_have_text("suspended")
    pages.shot(page, "participant-suspended")
    # a suspension without a reason is refused by the API, and says so
    pages.expect_console_error(r"status of 422")
    page.click(f"[data-reinstate='{new}']")
    expect(page.locator("#participant-result .problem")).to_contain_text("422")
    page.fill(f"span:has([data-reinstate='{new}']) input[name=reason]", "licence renewed")
    page.click(f"[data-reinstate='{new}']")
    expect(status).to_have_text("active")

    # a listed product suspended and reinstated from the same page
    product = world.ids["PRODUCT"]
    live = page.locator(f"#live-list [data-product-status='{product}']")
    expect(live).to_have_text("listed")
    page.fill(f"span:has([data-suspend='{product}']) input[name=reason]", "under inspection")
    page.click(f"[data-suspend='{product}']")
    expect(live).to_have_text("suspended")
    page.fill(f"span:has([data-reinstate='{product}']) input[name=reason]", "inspection passed")
    page.click(f"[data-reinstate='{product}']")
    expect(live).to_have_text("listed")
    pages.shot(page, "admin-en-phone")


def test_every_word_the_work_pages_ask_for_is_in_both_tables():
    from gateway.portal.i18n import STRINGS

    script = (HERE.parents[1] / "gateway" / "portal" / "static" / "work.js").read_text("utf-8")
    keys = set(re.findall(r'"((?:work|nav|product|contract|catalogue|offer|quality|verify)'
                          r'\.[a-z_.]+)"', script))  # fmt: skip
    # the keys made from an action's or a party's name (work.do.${a}, work.share.${k})
    actions = "submit list reject suspend reinstate delist approve refuse revoke grant onboard"
    keys |= {f"work.do.{a}" for a in (actions + " accept review publicise code").split()}
    keys |= {f"work.share.{k}" for k in ("holder", "operator", "platform")}
    assert len(keys) > 100
    for table in STRINGS.values():
        assert keys <= table.keys(), sorted(keys - table.keys())
