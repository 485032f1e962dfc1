"""Each journey of the portal end to end in Debian's Chromium, on a live gateway with real OPA."""

import base64
import copy
import json
import re

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture says why the tests cannot run (skip, or CI failure)
    expect = None

from tests.browser.conftest import PHONE, sign_in


def test_catalogue_and_product_page_in_chinese_then_english_on_a_phone(pages, world):
    page = pages.open("/portal/", viewport=PHONE)
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("#need-signin").inner_text() == "此页需要先登录(右上角选择私钥文件)。"
    pages.shot(page, "signed-out-zh")
    sign_in(page, world.ids["CONSUMER"], world.key("consumer"))
    page.wait_for_selector("#catalogue-results article")
    assert "共" in page.locator("#catalogue-results").inner_text()
    product = world.ids["PRODUCT"]
    assert page.locator(f'article[data-product="{product}"]').count() == 1
    pages.shot(page, "catalogue-zh")

    # the API's own filters: grade=core finds only the core product, not the general one
    page.select_option("#catalogue-filters select[name=grade]", "core")
    page.click("#catalogue-filters button[type=submit]")
    page.wait_for_url(re.compile(r"grade=core"))
    page.wait_for_selector("#catalogue-results .hint")
    assert page.locator(f'article[data-product="{product}"]').count() == 0

    page.goto(f"{world.url}/portal/#/product/{product}")
    page.wait_for_selector(".offer")
    text = page.locator("#view").inner_text()
    for words in ("允许用途", "credit-risk-assessment", "质量报告", "数据血缘", "ODRL 策略"):
        assert words in text, words
    offer = page.locator(f'.offer[data-offer="{world.ids["OFFER"]}"]')
    offer.locator("details summary").click()
    odrl = json.loads(offer.locator("details pre").inner_text())
    assert odrl["uid"] == world.ids["OFFER"] and odrl["permission"][0]["action"] == "use"
    assert "30 天" in offer.inner_text()  # the term, P30D, in words
    pages.shot(page, "product-zh-phone")

    page.click('button.lang[data-lang="en"]')
    page.wait_for_selector(".offer")
    assert page.locator("html").get_attribute("lang") == "en"
    text = page.locator("#view").inner_text()
    for words in ("Purposes allowed", "Quality report", "Lineage", "ODRL policy", "30 days"):
        assert words in text, words
    assert "?lang=en" in page.url
    # the switch did not reload the page: the token in memory is still there
    assert page.locator("#signed-in-id").inner_text() == world.ids["CONSUMER"]
    pages.shot(page, "product-en-phone")


def test_consumer_requests_an_offer_both_parties_sign_in_the_browser_and_the_pull_has_a_receipt(
    pages, world
):
    consumer = pages.open()
    sign_in(consumer, world.ids["CONSUMER"], world.key("consumer"))
    consumer.goto(f"{world.url}/portal/#/product/{world.ids['PRODUCT']}")
    offer = consumer.locator(f'.offer[data-offer="{world.ids["OFFER"]}"]')
    offer.locator("select[name=purpose]").select_option("credit-risk-assessment")
    offer.locator("button[type=submit]").click()
    consumer.wait_for_selector("#contract-state")
    assert consumer.locator("#contract-state").inner_text() == "REQUESTED"
    contract_id = consumer.url.rsplit("/", 1)[1]
    assert contract_id.startswith("ctr_")
    pages.shot(consumer, "contract-requested")

    # the merchant, in its own browser, signs as the provider with its own key file
    merchant = pages.open(f"/portal/#/contract/{contract_id}")
    sign_in(merchant, world.ids["MERCHANT"], world.key("merchant"))
    merchant.click("#sign-provider")
    merchant.wait_for_selector("#contract-state:has-text('AGREED')")
    pages.shot(merchant, "contract-agreed-by-merchant")

    # my contracts lists it (GET /contracts), beside the demo's contract that was made at the
    # command line, never in this browser; the consumer reopens it and signs: the gateway
    # countersigns
    consumer.goto(f"{world.url}/portal/#/contracts")
    consumer.wait_for_selector(f"#my-contracts a[href='#/contract/{contract_id}']")
    assert consumer.locator(f"#my-contracts a[href='#/contract/{world.ids['CONTRACT']}']").count()
    consumer.click(f"#my-contracts a[href='#/contract/{contract_id}']")
    consumer.click("#sign-consumer")
    consumer.wait_for_selector("#contract-state:has-text('FINALIZED')")
    assert "consumer: 已签署" in consumer.locator("#view").inner_text()
    pages.shot(consumer, "contract-finalized")

    consumer.click("#pull")
    consumer.wait_for_selector("#exchange")
    rows = consumer.locator("#rows").inner_text()
    expect(consumer.locator("#contract-usage")).to_contain_text("rows: 5 / 1000, calls: 1")
    assert "30 天" in consumer.locator("#view").inner_text()  # the signed terms, in words
    assert "138****5678" in rows  # the policy's masking obligation, applied by the gateway
    assert "张**" in rows
    with consumer.expect_download() as download:
        consumer.click("#download")
    saved = json.loads(open(download.value.path(), encoding="utf-8").read())
    assert saved["contract_id"] == contract_id and saved["rows"]
    consumer.click("#verify-receipt")
    consumer.wait_for_selector("#verdict")
    assert consumer.locator("#verdict").get_attribute("data-verdict") == "verified"
    verdict = consumer.locator("#verdict").inner_text()
    assert "已验证" in verdict and "exchange.delivered" in verdict
    pages.shot(consumer, "delivery-with-verified-receipt")


def _verify(page, receipt: dict) -> tuple[str, str | None]:
    """Put `receipt` in the page's text area, verify it there; return the verdict and check."""
    page.fill("#receipt-json", json.dumps(receipt, ensure_ascii=False, indent=2))
    page.click("#receipt-verify")
    page.wait_for_selector("#verdict")
    verdict = page.locator("#verdict")
    return verdict.get_attribute("data-verdict"), verdict.get_attribute("data-check")


def _flip_hex(text: str) -> str:
    return ("1" if text[0] == "0" else "0") + text[1:]


def test_auditor_sees_the_timeline_inspects_an_entry_and_verifies_a_receipt_in_the_browser(
    pages, world
):
    page = pages.open("/portal/?lang=en#/auditor")
    sign_in(page, world.ids["AUDITOR"], world.key("auditor"))
    page.wait_for_selector("#timeline rect")
    types = set(page.locator("#timeline rect").evaluate_all("rs => rs.map(r => r.dataset.type)"))
    assert {"ledger.genesis", "exchange.delivered", "exchange.denied"} <= types
    pages.shot(page, "timeline")

    page.fill("#inspect-seq", world.ids["SEQ"])
    page.click("#inspect-seq ~ button, form:has(#inspect-seq) button")
    page.wait_for_selector("#entry pre")
    assert '"exchange.delivered"' in page.locator("#entry pre").inner_text()

    page.click("#cut-checkpoint")
    page.wait_for_selector("#checkpoint")
    page.fill("#receipt-seq-input", world.ids["SEQ"])
    page.click("#receipt-fetch button[type=submit]")
    expect(page.locator("#receipt-json")).not_to_have_value("")
    receipt = json.loads(page.locator("#receipt-json").input_value())
    assert receipt["inclusion"] is not None  # the checkpoint just cut covers it
    assert _verify(page, receipt) == ("verified", None)
    assert f"proven in the signed checkpoint of size {receipt['inclusion']['size']}" in (
        page.locator("#verdict").inner_text()
    )
    pages.shot(page, "receipt-verified")

    # a changed value of the entry: its hash no longer matches
    tampered = copy.deepcopy(receipt)
    tampered["entry"]["body"]["time"] = "2020-01-01T00:00:00.000000Z"
    assert _verify(page, tampered) == ("failed", "hash")
    assert receipt["entry"]["hash"] in page.locator("#verdict").inner_text()
    pages.shot(page, "receipt-tampered-failed")
    # a signature that is not the gateway's
    tampered = copy.deepcopy(receipt)
    sig = tampered["entry"]["sig"]
    tampered["entry"]["sig"] = ("B" if sig[0] == "A" else "A") + sig[1:]
    assert _verify(page, tampered) == ("failed", "signature")
    # a changed inclusion path: the proof leads to another root
    tampered = copy.deepcopy(receipt)
    tampered["inclusion"]["hashes"][0] = _flip_hex(tampered["inclusion"]["hashes"][0])
    assert _verify(page, tampered) == ("failed", "inclusion")
    # a changed checkpoint root: the checkpoint's signature no longer holds
    tampered = copy.deepcopy(receipt)
    lines = tampered["inclusion"]["checkpoint"].split("\n")
    lines[2] = base64.b64encode(bytes(32)).decode()
    tampered["inclusion"]["checkpoint"] = "\n".join(lines)
    assert _verify(page, tampered) == ("failed", "checkpoint")
    # and the untouched receipt still verifies
    assert _verify(page, receipt) == ("verified", None)
    page.set_viewport_size(PHONE)
    pages.shot(page, "auditor-on-a-phone")


def test_the_yearly_disclosure_is_public_and_problems_read_as_messages(pages, world):
    page = pages.open("/portal/#/disclosure")
    page.wait_for_selector("#disclosure-products")
    assert "年度公开" in page.locator("#view").inner_text()
    # the demo's products and authorisation, in words, from the public GET /disclosure/{year}
    assert "居民信用核验" in page.locator("#disclosure-products").inner_text()
    assert "市大数据局" in page.locator("#disclosure-authorisations").inner_text()
    assert "合约数" in page.locator("#disclosure-totals").inner_text()
    # the fees actually charged come from the settlement, which says which months it covers
    assert "实际收费" in page.locator("#disclosure-totals").inner_text()
    covered = page.locator("#disclosure-settlement").inner_text()
    assert "已结算月份" in covered and "全年已结算" in covered and "公开截止日" in covered
    pages.shot(page, "disclosure-zh")

    sign_in(page, world.ids["CONSUMER"], world.key("consumer"))
    pages.expect_console_error(r"status of 404")
    page.goto(f"{world.url}/portal/#/contract/ctr_nosuchcontract")
    page.wait_for_selector(".problem")
    problem = page.locator(".problem")
    assert problem.get_attribute("data-problem-type") == "urn:dsgw:problem:not-found"
    assert "ctr_nosuchcontract" in problem.inner_text() and "404" in problem.inner_text()
    pages.shot(page, "problem-as-message")


def test_the_browser_canonical_json_is_rfc_8785_as_the_ledger_writes_it(pages, world):
    from ledger.canonical import canonical_json

    value = {
        "b": [1, 2.5, -0.0, 1e21, 1e-7, 'é\u2028"\\'],
        "a": None,
        "é": True,
        "\U0001f600": {"z": 1, "10": 2, "1": 3},
        "": "张**",
    }
    page = pages.open("/portal/")
    found = page.evaluate(
        """async v => (await import('/portal/static/crypto.js')).canonicalJson(v)""", value
    )
    assert found.encode() == canonical_json(value)


def test_sign_in_refuses_a_file_that_is_no_key_and_a_key_that_is_not_the_participants(
    pages, world, tmp_path
):
    page = pages.open("/portal/?lang=en")
    not_a_key = tmp_path / "notes.json"
    not_a_key.write_text('{"kty": "RSA", "n": "…"}')
    page.fill("#signin-participant", world.ids["CONSUMER"])
    page.set_input_files("#signin-key", str(not_a_key))
    page.click("#signin-submit")
    expect(page.locator("#signin-message")).to_contain_text("not an Ed25519 private JWK")

    # the merchant's key for the consumer's id: the gateway refuses the assertion it signed
    pages.expect_console_error(r"status of 401")
    page.set_input_files("#signin-key", str(world.key("merchant")))
    page.click("#signin-submit")
    expect(page.locator("#signin-message")).to_contain_text("invalid_client")
    assert page.locator("#signed-in").is_hidden()
    # the collector that fails every test on console errors does see the refused request
    assert any("status of 401" in e for e in pages.errors), pages.errors
    pages.shot(page, "sign-in-refused")
