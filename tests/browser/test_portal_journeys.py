"""Each journey of the portal end to end in Debian's Chromium, on a live gateway with real OPA."""

import json
import re

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
    page.wait_for_function("location.hash.includes('grade=core')")
    page.wait_for_selector("#catalogue-results .hint")
    assert page.locator(f'article[data-product="{product}"]').count() == 0

    page.goto(f"{world.url}/portal/#/product/{product}")
    page.wait_for_selector(".offer")
    text = page.locator("#view").inner_text()
    for words in ("允许用途", "credit-risk-assessment", "质量报告", "数据血缘", "ODRL 策略"):
        assert words in text, words
    page.click(".offer details summary")
    assert '"odrl:permission"' in page.locator(".offer details pre").inner_text() or (
        "permission" in page.locator(".offer details pre").inner_text()
    )
    pages.shot(page, "product-zh-phone")

    page.click('button.lang[data-lang="en"]')
    page.wait_for_selector(".offer")
    assert page.locator("html").get_attribute("lang") == "en"
    text = page.locator("#view").inner_text()
    for words in ("Purposes allowed", "Quality report", "Lineage", "ODRL policy"):
        assert words in text, words
    assert "?lang=en" in page.url
    # the switch did not reload the page: the token in memory is still there
    assert page.locator("#signed-in-id").inner_text() == world.ids["CONSUMER"]
    pages.shot(page, "product-en-phone")
