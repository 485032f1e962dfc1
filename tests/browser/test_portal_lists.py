"""Every list on the work pages is read to its end, a page at a time: with pages of one or two
items (the portal's own `?page_size=`), each item the API lists is on the page
(specs/portal.md §2.1), in Debian's Chromium on the live gateway with the real OPA."""

import base64
import random
from urllib.parse import parse_qs, urlsplit

import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture says why the tests cannot run (skip, or CI failure)
    expect = None

from gateway.client.api import Client
from gateway.demo import random_uscc
from gateway.participants.service import PLATFORM_ADMIN_ID
from tests.browser.conftest import sign_in


def _admin(world) -> Client:
    return Client(world.url, PLATFORM_ADMIN_ID, world.state / "keys" / "admin-ed25519.jwk")


def _every(client: Client, path: str, limit: int) -> list[dict]:
    """Return the whole list at `path` through the API, as a test reads it (one large page)."""
    found = client._json("GET", path, params={"limit": limit})
    assert len(found) < limit, f"{path}: more than one page of {limit}; read it in pages"
    return found


def _pages_asked(requests: list[str], route: str) -> list[tuple[int, int | str]]:
    """Return the (offset, limit) of each request the page made for the list at `route`
    (offset 0 and limit "none" when it sent none)."""
    asked = []
    for url in requests:
        parts = urlsplit(url)
        if parts.path == route:
            query = parse_qs(parts.query)
            offset, limit = query.get("offset", ["0"])[0], query.get("limit", ["none"])[0]
            asked.append((int(offset), int(limit) if limit.isdigit() else limit))
    return asked


def _open(pages, world, fragment: str, who: str, key, size: int):
    page = pages.open(f"/portal/?page_size={size}{fragment}")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    sign_in(page, who, key)
    return page, requests


def _public_key() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    public = Ed25519PrivateKey.generate().public_key()
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@pytest.fixture(scope="module")
def longer_lists(world):
    """Three more participants, each followed by a checkpoint: the admin's participants and the
    checkpoints are then several pages long at a page size of two."""
    auditor = Client(world.url, world.ids["AUDITOR"], world.key("auditor"))
    with _admin(world) as admin, auditor:
        for n in range(3):
            x = base64.urlsafe_b64encode(_public_key()).rstrip(b"=").decode()
            admin._json("POST", "/participants", json={
                "name": f"分页测试 {n} (paging {n})", "uscc": random_uscc(random.Random()),
                "region": "domestic", "roles": ["consumer"],
                "jwks": {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": f"p{n}"}]},
            })  # fmt: skip
            auditor.request("POST", "/ledger/checkpoints")
    return world


def test_the_admin_page_shows_every_participant_and_product_past_the_first_page(
    pages, longer_lists
):
    world = longer_lists
    with _admin(world) as admin:
        people = _every(admin, "/participants", 500)
        live = _every(admin, "/products", 200)
    live = [p for p in live if p["status"] in ("listed", "suspended")]
    assert len(people) > 4 and live
    page, requests = _open(
        pages, world, "#/admin", PLATFORM_ADMIN_ID, world.state / "keys" / "admin-ed25519.jwk", 2
    )
    shown = page.locator("#participant-list [data-participant-status]")
    expect(shown).to_have_count(len(people))
    assert {p["id"] for p in people} == set(shown.evaluate_all(
        "els => els.map(e => e.dataset.participantStatus)"
    ))  # fmt: skip
    expect(page.locator("#live-list [data-product-status]")).to_have_count(len(live))
    asked = _pages_asked(requests, "/participants")
    assert asked[:3] == [(0, 2), (2, 2), (4, 2)] and len(asked) == len(people) // 2 + 1
    assert _pages_asked(requests, "/registrations")[0] == (0, 2)
    pages.shot(page, "admin-paged")


def test_the_checkpoints_page_verifies_every_checkpoint_past_the_first_page(pages, longer_lists):
    world = longer_lists
    with Client(world.url, world.ids["AUDITOR"], world.key("auditor")) as auditor:
        checkpoints = _every(auditor, "/ledger/checkpoints", 1000)
    assert len(checkpoints) >= 3
    page, requests = _open(
        pages, world, "#/checkpoints", world.ids["AUDITOR"], world.key("auditor"), 2
    )
    rows = page.locator("#checkpoints tr[data-size]")
    expect(rows).to_have_count(len(checkpoints))
    assert [int(s) for s in rows.evaluate_all("els => els.map(e => e.dataset.size)")] == [
        cp["size"] for cp in checkpoints
    ]
    expect(page.locator("#checkpoints td.sig[data-verdict=verified]")).to_have_count(
        len(checkpoints)
    )
    assert len(_pages_asked(requests, "/ledger/checkpoints")) == len(checkpoints) // 2 + 1
    pages.shot(page, "checkpoints-paged")


def test_the_holder_merchant_and_consumer_lists_page_to_their_end(pages, world):
    for role, fragment, table, route, limit, shown in (
        ("holder", "#/holder", "#resource-list", "/resources", 500, "name"),
        ("holder", "#/holder", "#holder-authorisations table", "/authorisations", 500, "id"),
        ("merchant", "#/merchant", "#product-list", "/products", 200, "name"),
        ("consumer", "#/contracts", "#my-contracts", "/contracts", 200, "id"),
    ):
        who = world.ids[role.upper()]
        with Client(world.url, who, world.key(role)) as client:
            listed = _every(client, route, limit)
        if route == "/authorisations":
            listed = [a for a in listed if a["holder_id"] == who]
        assert listed, (role, route)
        page, requests = _open(pages, world, fragment, who, world.key(role), 1)
        rows = page.locator(f"{table} tr:has(td)")
        expect(rows).to_have_count(len(listed))
        for item in listed:
            expect(page.locator(table)).to_contain_text(item[shown])
        # pages of one: one request per item, and the empty page that ends the list
        assert _pages_asked(requests, route) == [(n, 1) for n in range(len(listed) + 1)]
        pages.shot(page, f"{role}-{route.strip('/')}-paged")
