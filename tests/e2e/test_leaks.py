"""Information that must not leak: other parties' contracts, drafts, unpublicised registrations,
guessable dataset hashes, world-readable database files, and docs that call a CDN."""

import hashlib
import hmac
import json
import os
import re
import stat
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time
from sqlalchemy import make_url

from gateway.app import build_gateway, create_app
from gateway.core.config import Settings
from gateway.resources.commitment import SCHEME, dataset_commitment
from ledger import canonical_json
from tests.conftest import BASE_URL
from tests.e2e.world import OFFER, PURPOSE, build_world

UNKNOWN_CONTRACT = "ctr_00000000000000000000000000"


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def _last_entry(world) -> dict:
    size = world.auditor.call("GET", "/ledger/head").json()["size"]
    return world.auditor.call("GET", f"/ledger/entries/{size}").json()["body"]


def _same_but_the_id(one: dict, other: dict, one_id: str, other_id: str) -> None:
    assert json.dumps(one).replace(one_id, "ID") == json.dumps(other).replace(other_id, "ID")


# --- 10. another consumer's contract ----------------------------------------------------------


def test_an_exchange_on_another_consumers_contract_is_refused_as_if_it_did_not_exist(world):
    contract = world.contract(world.product["offers"][0]["id"])
    other = world.register("other consumer", ["consumer"])

    refused = world.pull(contract["id"], consumer=other)
    unknown = world.pull(UNKNOWN_CONTRACT, consumer=other)

    assert refused.status_code == unknown.status_code == 404
    _same_but_the_id(refused.json(), unknown.json(), contract["id"], UNKNOWN_CONTRACT)
    for secret in ("FINALIZED", PURPOSE, "quota", "decision", world.consumer.id, "dec_"):
        assert secret not in refused.text
    # Still evidence, which names the contract's provider and holder but not the requester.
    entry = _last_entry(world)
    assert entry["type"] == "exchange.refused"
    assert entry["data"]["contract"] == contract["id"]
    assert entry["data"]["requested_by"] == other.id
    assert entry["data"]["provider"] == world.merchant.id
    seq = entry["seq"]
    assert other.call("GET", f"/ledger/entries/{seq}").status_code == 404
    assert other.call("GET", f"/ledger/receipts/{seq}").status_code == 404
    assert world.merchant.call("GET", f"/ledger/entries/{seq}").status_code == 200
    assert world.holder.call("GET", f"/ledger/entries/{seq}").status_code == 200
    # And the contract itself still works for its consumer.
    assert world.pull(contract["id"]).status_code == 200


def test_a_decision_on_a_contract_is_unknown_to_anyone_but_its_parties_and_auditors(world):
    contract = world.contract(world.product["offers"][0]["id"])
    denied = world.pull(contract["id"], purpose="marketing")
    assert denied.status_code == 403
    decision_id = denied.json()["decision_id"]
    other = world.register("other consumer", ["consumer"])
    hidden = other.call("GET", f"/decisions/{decision_id}")
    unknown = other.call("GET", "/decisions/dec_00000000000000000000000000")
    assert hidden.status_code == unknown.status_code == 404
    _same_but_the_id(hidden.json(), unknown.json(), decision_id, "dec_00000000000000000000000000")
    for party in (world.consumer, world.merchant, world.auditor):
        assert party.call("GET", f"/decisions/{decision_id}").status_code == 200


def test_a_contract_is_unknown_to_strangers_whatever_they_ask_of_it(world):
    contract = world.contract(world.product["offers"][0]["id"])
    other = world.register("other consumer", ["consumer", "merchant"])
    asks = [
        ("GET", "", None),
        ("POST", "/agree", {"signature": "a.b.c"}),
        ("POST", "/verify", {"signature": "a.b.c"}),
        ("POST", "/approve", None),
        ("POST", "/suspend", None),
        ("POST", "/terminate", None),
    ]
    for method, tail, body in asks:
        hidden = other.call(method, f"/contracts/{contract['id']}{tail}", json=body)
        unknown = other.call(method, f"/contracts/{UNKNOWN_CONTRACT}{tail}", json=body)
        assert hidden.status_code == unknown.status_code == 404, (tail, hidden.text)
        _same_but_the_id(hidden.json(), unknown.json(), contract["id"], UNKNOWN_CONTRACT)


def test_a_draft_product_and_its_offers_are_unknown_to_strangers(world):
    response = world.merchant.call(
        "POST",
        "/products",
        json={
            "name": "draft",
            "resource_id": world.resource["id"],
            "authorisation_id": world.authorisation["id"],
            "delivery_modes": ["api"],
            "offers": [OFFER],
        },
    )
    assert response.status_code == 201, response.text
    draft = response.json()
    other = world.register("other merchant", ["merchant", "consumer"])
    for action in ("submit", "delist"):
        moved = other.call("POST", f"/products/{draft['id']}/{action}")
        assert moved.status_code == 404, moved.text
        assert world.merchant.id not in moved.text
    requested = world.consumer.call(
        "POST", "/contracts", json={"offer_id": draft["offers"][0]["id"], "purpose": PURPOSE}
    )
    assert requested.status_code == 404, requested.text
    assert "draft" not in requested.text


# --- 11. the yearly disclosure ----------------------------------------------------------------


def _draft(world, name: str) -> dict:
    body = {
        "name": name,
        "resource_id": world.resource["id"],
        "authorisation_id": world.authorisation["id"],
        "delivery_modes": ["api"],
        "offers": [OFFER],
    }
    response = world.merchant.call("POST", "/products", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _refresh_tokens(world) -> None:
    for party in (world.admin, world.holder, world.merchant, world.consumer, world.auditor):
        party._token = None


def _disclosed(client, year: int) -> set[str]:
    return {p["id"] for p in client.get(f"/disclosure/{year}").json()["products"]}


def test_the_disclosure_lists_only_products_listed_at_some_moment_in_the_year(world, client):
    with freeze_time("2031-12-31T23:00:00Z") as frozen:
        _refresh_tokens(world)
        draft = _draft(world, "draft")
        in_review = _draft(world, "in review")
        assert world.merchant.call("POST", f"/products/{in_review['id']}/submit").status_code == 200
        gone = world.list_product(_draft(world, "listed then delisted")["id"])
        assert world.merchant.call("POST", f"/products/{gone['id']}/delist").status_code == 200
        across = world.list_product(_draft(world, "listed across new year")["id"])
        frozen.move_to("2032-01-01T00:30:00Z")
        _refresh_tokens(world)
        later = world.list_product(_draft(world, "listed next year")["id"])

        in_2031 = _disclosed(client, 2031)
        in_2032 = _disclosed(client, 2032)
    assert draft["id"] not in in_2031 | in_2032
    assert in_review["id"] not in in_2031 | in_2032
    assert {gone["id"], across["id"]} <= in_2031
    assert later["id"] not in in_2031
    assert {across["id"], later["id"]} <= in_2032
    assert gone["id"] not in in_2032
    listed = {p["id"]: p for p in client.get("/disclosure/2032").json()["products"]}
    assert listed[across["id"]]["listed_at"].startswith("2031-12-31T23:00")
    _refresh_tokens(world)


def test_the_disclosure_of_this_year_leaves_drafts_and_reviews_out(world, client):
    draft = _draft(world, "draft")
    in_review = _draft(world, "in review")
    assert world.merchant.call("POST", f"/products/{in_review['id']}/submit").status_code == 200
    body = client.get(f"/disclosure/{datetime.now(UTC).year}").json()
    names = {p["name"] for p in body["products"]}
    assert {p["id"] for p in body["products"]} == {world.product["id"], world.core_product["id"]}
    assert draft["name"] not in names and body["totals"]["products"] == 2


# --- 12. registrations before publicity -------------------------------------------------------


def test_a_registration_before_publicity_is_seen_only_by_its_holder_admins_and_auditors(world):
    applied = world.holder.call(
        "POST",
        "/resources",
        json={
            "name": "secret plan",
            "domain": "planning",
            "grade": "general",
            "level": "L2",
            "fields": [{"name": "site"}],
            "rows": [{"site": "north"}],
        },
    )
    assert applied.status_code == 201, applied.text
    resource_id = applied.json()["id"]
    registration = applied.json()["registration"]["id"]
    strangers = (world.consumer, world.merchant)
    insiders = (world.holder, world.admin, world.auditor)

    def listed(party) -> set[str]:
        return {r["id"] for r in party.call("GET", "/registrations").json()}

    for step in ("accept", "review"):
        for party in strangers:
            assert registration not in listed(party)
            for path in (
                f"/registrations/{registration}",
                f"/registrations/{registration}/certificate",
                f"/resources/{resource_id}",
                f"/resources/{resource_id}/registrations",
            ):
                hidden = party.call("GET", path)
                assert hidden.status_code == 404, (path, hidden.text)
                assert "secret plan" not in hidden.text
            objected = party.call(
                "POST", f"/registrations/{registration}/object", json={"reason": "why"}
            )
            assert objected.status_code == 404, objected.text
        for party in insiders:
            assert registration in listed(party)
            assert party.call("GET", f"/registrations/{registration}").status_code == 200
        assert world.admin.call("POST", f"/registrations/{registration}/{step}").status_code == 200

    publicised = world.admin.call(
        "POST", f"/registrations/{registration}/publicise", json={"window_seconds": 3600}
    )
    assert publicised.status_code == 200, publicised.text
    for party in strangers:
        assert registration in listed(party)
        assert party.call("GET", f"/registrations/{registration}").status_code == 200
    assert world.merchant.call("GET", f"/resources/{resource_id}").status_code == 200


# --- 13. the dataset commitment ---------------------------------------------------------------


def test_the_certificate_commits_to_the_rows_with_a_salt_only_holder_and_auditors_hold(world):
    core = world.core_resource
    rows = [{"substation": "north", "load_mw": 812}]
    [registration] = world.holder.call("GET", f"/resources/{core['id']}/registrations").json()
    cert = world.consumer.call("GET", f"/registrations/{registration['id']}/certificate").json()
    record = cert["payload"]["record"]
    assert "dataset_hash" not in record
    assert record["commitment_scheme"] == SCHEME
    commitment = record["dataset_commitment"]
    plain = hashlib.sha256(canonical_json(rows)).hexdigest()
    assert commitment != plain

    # Guessing the one row, as the review did in 813 tries, finds nothing without the salt.
    guesses = [
        [{"substation": s, "load_mw": mw}]
        for s in ("north", "south", "east", "west")
        for mw in range(0, 1000)
    ]
    assert all(hashlib.sha256(canonical_json(g)).hexdigest() != commitment for g in guesses)

    holder_view = world.holder.call("GET", f"/resources/{core['id']}").json()
    salt = holder_view["dataset_salt"]
    assert len(bytes.fromhex(salt)) == 32
    assert world.auditor.call("GET", f"/resources/{core['id']}").json()["dataset_salt"] == salt
    merchant_view = world.merchant.call("GET", f"/resources/{core['id']}").json()
    assert merchant_view["dataset_salt"] is None
    assert merchant_view["dataset_commitment"] == commitment == holder_view["dataset_commitment"]
    assert salt not in json.dumps(cert)
    # With the salt the holder recomputes it (HMAC-SHA-256 over the canonical rows)...
    mac = hmac.new(bytes.fromhex(salt), canonical_json(rows), hashlib.sha256).hexdigest()
    assert mac == commitment == dataset_commitment(rows, salt)
    # ... and finds the true rows among the guesses; another salt finds nothing.
    assert [g for g in guesses if dataset_commitment(g, salt) == commitment] == [rows]
    assert dataset_commitment(rows, "00" * 32) != commitment

    applied = [
        e["body"]["data"]
        for e in world.auditor.call("GET", "/ledger/entries", params={"limit": 1000}).json()
        if e["body"]["type"] == "registration.applied"
        and e["body"]["data"]["resource"] == core["id"]
    ]
    assert [a["dataset_commitment"] for a in applied] == [commitment]
    assert "dataset_hash" not in applied[0]


# --- 14. database file modes ------------------------------------------------------------------


def _modes(path: str) -> dict[str, int]:
    return {
        suffix: stat.S_IMODE(os.stat(path + suffix).st_mode)
        for suffix in ("", "-wal", "-shm")
        if os.path.exists(path + suffix)
    }


def test_the_sqlite_database_and_its_wal_are_owner_only(settings, tmp_path):
    if not settings.resolved_database_url.startswith("sqlite"):
        pytest.skip("file modes are SQLite's")
    path = make_url(settings.resolved_database_url).database
    old = os.umask(0o022)
    try:
        # A database left world-readable by an earlier version is fixed at start.
        open(path, "wb").close()
        os.chmod(path, 0o644)
        gateway = build_gateway(settings)
        try:
            assert _modes(path)[""] == 0o600
            with TestClient(create_app(gateway=gateway), base_url=BASE_URL) as client:
                build_world(client, settings.state_dir)  # many writes: the WAL is there
            modes = _modes(path)
            assert "-wal" in modes and set(modes.values()) == {0o600}, modes
        finally:
            gateway.policy.close()
            gateway.engine.dispose()
        fresh = Settings(state_dir=tmp_path / "fresh", opa_url=settings.opa_url, issuer=BASE_URL)
        gateway = build_gateway(fresh)  # a new database, created owner-only
        gateway.policy.close()
        gateway.engine.dispose()
        assert set(_modes(make_url(fresh.resolved_database_url).database).values()) == {0o600}
    finally:
        os.umask(old)


# --- 15. the API docs offline -----------------------------------------------------------------


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_load_nothing_from_outside_the_gateway(client, page):
    html = client.get(page)
    assert html.status_code == 200
    assert not re.search(r"https?:|[\"'(]//", html.text), html.text
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html.text)
    assets += re.findall(r"""url:\s*['"]([^'"]+)['"]""", html.text)
    assert any(a.endswith(".js") for a in assets), assets
    for asset in assets:
        assert asset.startswith("/"), asset
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 0
