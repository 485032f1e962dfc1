"""The portal's routes over HTTP: language choice, headers, assets, and no trace in the OpenAPI."""

import re

import httpx

from gateway.openapi import openapi_document


def test_the_portal_is_chinese_first_and_english_when_asked_or_remembered(world):
    zh = httpx.get(f"{world.url}/portal/")
    assert zh.status_code == 200 and '<html lang="zh-CN">' in zh.text
    assert "数据空间网关门户" in zh.text
    en = httpx.get(f"{world.url}/portal/", params={"lang": "en"})
    assert '<html lang="en">' in en.text and "Data-space gateway portal" in en.text
    assert en.cookies.get("dsgw_lang") == "en"
    remembered = httpx.get(f"{world.url}/portal/", cookies={"dsgw_lang": "en"})
    assert '<html lang="en">' in remembered.text
    unknown = httpx.get(f"{world.url}/portal/", params={"lang": "xx"})
    assert '<html lang="zh-CN">' in unknown.text and "dsgw_lang" not in unknown.cookies


def test_the_portal_page_allows_only_its_own_scripts_and_api(world):
    page = httpx.get(f"{world.url}/portal/")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "unsafe" not in csp
    assert page.headers["cache-control"] == "no-store"
    redirect = httpx.get(f"{world.url}/portal")
    assert redirect.status_code == 308 and redirect.headers["location"] == "/portal/"


def test_an_unknown_portal_asset_is_a_404_problem(world):
    script = httpx.get(f"{world.url}/portal/static/crypto.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith(
        "text/javascript"
    )
    for name in ("nope.js", "..%2Fviews.py", "%2e%2e%2f%2e%2e%2fcli.py"):
        missing = httpx.get(f"{world.url}/portal/static/{name}")
        assert missing.status_code == 404, name
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert missing.json()["type"] == "urn:dsgw:problem:not-found"


def test_the_portal_is_not_part_of_the_published_api(world):
    served = httpx.get(f"{world.url}/openapi.json").json()["paths"]
    assert not [p for p in served if p.startswith("/portal")]
    assert not [p for p in openapi_document()["paths"] if p.startswith("/portal")]


def test_every_word_of_the_portal_is_in_both_languages():
    from gateway.portal.i18n import DEFAULT, STRINGS

    assert DEFAULT == "zh-CN" and set(STRINGS) == {"zh-CN", "en"}
    assert STRINGS["zh-CN"].keys() == STRINGS["en"].keys()
    assert all(text.strip() for table in STRINGS.values() for text in table.values())


def test_every_word_the_pages_ask_for_is_in_the_tables():
    from pathlib import Path

    from gateway.portal.i18n import STRINGS

    portal = Path(__file__).resolve().parents[2] / "gateway" / "portal"
    script = "\n".join(p.read_text(encoding="utf-8") for p in (portal / "static").glob("*.js"))
    shell = (portal / "templates" / "portal.html").read_text(encoding="utf-8")
    used = set(re.findall(r'(?<![\w.])t\("([a-z_.]+)"', script))
    used |= set(re.findall(r'data-t="([a-z_.]+)"', shell))
    assert len(used) > 50
    assert used <= STRINGS["en"].keys(), sorted(used - STRINGS["en"].keys())
