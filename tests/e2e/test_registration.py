"""Resource registration (登记): apply → accepted → reviewed → publicised → coded, and later
registrations (change, correction, cancellation), each with a certificate checkable offline."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from gateway.cli import main as dsgw
from tests.e2e.world import OFFER, build_world

GRID = {
    "name": "water quality",
    "domain": "environment",
    "grade": "general",
    "level": "L1",
    "fields": [{"name": "station"}, {"name": "ph"}],
    "rows": [{"station": "east", "ph": 7.1}],
    "details": {"source": "monitoring stations", "usage_permissions": ["research"]},
}


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def _problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"urn:dsgw:problem:{slug}"
    return body


def _step(party, registration_id: str, action: str, body: dict | None = None):
    return party.call("POST", f"/registrations/{registration_id}/{action}", json=body)


def _ok(response) -> dict:
    assert response.status_code in (200, 201), response.text
    return response.json()


def _fresh_tokens(world) -> None:
    for party in (world.admin, world.holder, world.merchant, world.consumer, world.auditor):
        party._token = None


def test_a_resource_is_usable_only_once_coded(world):
    applied = _ok(world.holder.call("POST", "/resources", json=GRID))
    assert applied["status"] == "registering" and applied["code"] is None
    assert applied["registration"]["state"] == "applied"
    assert applied["registration"]["allowed_actions"] == ["accept", "reject"]
    refused = world.holder.call(
        "POST",
        "/authorisations",
        json={
            "operator_id": world.merchant.id,
            "resource_ids": [applied["id"]],
            "not_after": "2099-01-01T00:00:00Z",
            "fee_cap_fen": 1000,
        },
    )
    body = _problem(refused, 409, "resource-not-coded")
    assert body["current_state"] == "registering"


def test_objection_window_boundaries_and_coding(world, settings, tmp_path, capsys):
    applied = _ok(world.holder.call("POST", "/resources", json=GRID))
    reg = applied["registration"]["id"]
    # Only the platform accepts and reviews; invalid steps name the state and the way on.
    _problem(_step(world.holder, reg, "accept"), 403, "forbidden")
    body = _problem(_step(world.admin, reg, "code"), 409, "invalid-transition")
    assert body["current_state"] == "applied"
    assert body["allowed_next_states"] == ["accepted", "rejected"]
    _ok(_step(world.admin, reg, "accept"))
    _ok(_step(world.admin, reg, "review"))

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)
    with freeze_time(start) as frozen:
        _fresh_tokens(world)
        publicised = _ok(_step(world.admin, reg, "publicise", {"window_seconds": 600}))
        assert publicised["state"] == "publicised"
        assert publicised["allowed_actions"] == ["code", "object"]
        # One microsecond before the end: coding is refused, an objection is heard.
        frozen.tick(timedelta(seconds=600) - timedelta(microseconds=1))
        body = _problem(_step(world.admin, reg, "code"), 409, "publicity-open")
        assert body["current_state"] == "publicised"
        objected = _ok(_step(world.consumer, reg, "object", {"reason": "wrong source"}))
        assert objected["state"] == "accepted"
        assert objected["objections"][0]["by"] == world.consumer.id
        # Back to review, then a new window; at its exact end objections are closed.
        _fresh_tokens(world)
        _ok(_step(world.admin, reg, "review"))
        publicised = _ok(_step(world.admin, reg, "publicise", {"window_seconds": 600}))
        frozen.tick(timedelta(seconds=600))
        _fresh_tokens(world)
        body = _problem(
            _step(world.consumer, reg, "object", {"reason": "late"}), 409, "publicity-closed"
        )
        assert body["publicity_ends_at"] == publicised["publicity_ends_at"].replace("+00:00", "Z")
        coded = _ok(_step(world.admin, reg, "code"))
    _fresh_tokens(world)
    assert coded["state"] == "coded" and coded["allowed_actions"] == []
    assert re.fullmatch(r"DR-\d{4}-\d{6}", coded["code"])
    resource = _ok(world.holder.call("GET", f"/resources/{applied['id']}"))
    assert resource["status"] == "coded" and resource["code"] == coded["code"]
    assert resource["version"] == 1
    codes = {world.resource["code"], world.core_resource["code"], coded["code"]}
    assert len(codes) == 3

    cert = _ok(world.consumer.call("GET", f"/registrations/{reg}/certificate"))
    assert cert["payload"]["code"] == coded["code"]
    assert cert["payload"]["record"]["details"]["source"] == "monitoring stations"
    assert cert["payload"]["publicity"]["objections"] == 1
    (tmp_path / "cert.json").write_text(json.dumps(cert))
    (tmp_path / "jwks.json").write_text(
        json.dumps(world.admin.client.get("/.well-known/jwks.json").json())
    )
    capsys.readouterr()
    args = ["resource", "verify-certificate", str(tmp_path / "cert.json")]
    assert dsgw([*args, "--jwks", str(tmp_path / "jwks.json")]) == 0
    assert coded["code"] in capsys.readouterr().out
    assert dsgw(["--state", str(settings.state_dir), *args]) == 0
    head, payload, sig = cert["certificate"].split(".")
    forged = json.loads(__import__("base64").urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["record"]["grade"] = "core"
    from ledger import b64url, canonical_json

    (tmp_path / "forged.jws").write_text(f"{head}.{b64url(canonical_json(forged))}.{sig}")
    capsys.readouterr()
    assert (
        dsgw(
            [
                "resource",
                "verify-certificate",
                str(tmp_path / "forged.jws"),
                "--jwks",
                str(tmp_path / "jwks.json"),
            ]
        )
        == 1
    )
    assert "INVALID: signature" in capsys.readouterr().out

    types = [e["body"]["type"] for e in world.auditor.call("GET", "/ledger/entries").json()]
    for event in ("applied", "accepted", "reviewed", "publicised", "objected", "coded"):
        assert f"registration.{event}" in types


def test_later_registrations_keep_the_code_and_cancellation_suspends_products(world):
    resource = world.resource
    reg = lambda body: world.holder.call(  # noqa: E731
        "POST", f"/resources/{resource['id']}/registrations", json=body
    )

    def walk(registration_id: str) -> dict:
        for action, body in (("accept", None), ("review", None)):
            _ok(_step(world.admin, registration_id, action, body))
        _ok(_step(world.admin, registration_id, "publicise", {"window_seconds": 0}))
        return _ok(_step(world.admin, registration_id, "code"))

    _problem(reg({"kind": "change", "reason": "r"}), 422, "invalid-request")
    _problem(
        reg({"kind": "change", "reason": "r", "changes": {"grade": "general", "level": "L9"}}),
        422,
        "invalid-request",
    )
    change = _ok(
        reg({"kind": "change", "reason": "now important", "changes": {"grade": "important"}})
    )
    body = _problem(
        reg({"kind": "correction", "reason": "typo", "changes": {"name": "x"}}),
        409,
        "registration-open",
    )
    assert body["registration_id"] == change["id"]
    coded = walk(change["id"])
    after = _ok(world.holder.call("GET", f"/resources/{resource['id']}"))
    assert coded["code"] == resource["code"] == after["code"]
    assert after["grade"] == "important" and after["level"] is None and after["version"] == 2

    correction = _ok(
        reg({"kind": "correction", "reason": "typo", "changes": {"name": "resident credit v2"}})
    )
    walk(correction["id"])
    assert _ok(world.holder.call("GET", f"/resources/{resource['id']}"))["name"] == (
        "resident credit v2"
    )

    _problem(
        world.consumer.call(
            "POST",
            f"/resources/{resource['id']}/registrations",
            json={"kind": "cancellation", "reason": "x"},
        ),
        403,
        "forbidden",
    )
    cancellation = _ok(reg({"kind": "cancellation", "reason": "source discontinued"}))
    walk(cancellation["id"])
    gone = _ok(world.holder.call("GET", f"/resources/{resource['id']}"))
    assert gone["status"] == "cancelled" and gone["code"] == resource["code"]
    product = _ok(world.merchant.call("GET", f"/products/{world.product['id']}"))
    assert product["status"] == "suspended"
    refused = world.merchant.call(
        "POST",
        "/products",
        json={
            "name": "again",
            "resource_id": resource["id"],
            "authorisation_id": world.authorisation["id"],
            "delivery_modes": ["api"],
            "offers": [OFFER],
        },
    )
    _problem(refused, 409, "resource-not-coded")
    _problem(
        reg({"kind": "correction", "reason": "r", "changes": {"name": "y"}}),
        409,
        "resource-not-coded",
    )
    history = _ok(world.holder.call("GET", f"/resources/{resource['id']}/registrations"))
    assert [r["kind"] for r in history] == ["initial", "change", "correction", "cancellation"]
    types = [e["body"]["type"] for e in world.auditor.call("GET", "/ledger/entries").json()]
    assert "product.suspended" in types


def test_a_rejected_application_leaves_an_unusable_resource(world):
    applied = _ok(world.holder.call("POST", "/resources", json=GRID))
    reg = applied["registration"]["id"]
    _problem(_step(world.admin, reg, "reject", {}), 422, "invalid-request")
    rejected = _ok(_step(world.admin, reg, "reject", {"reason": "duplicate of another"}))
    assert rejected["state"] == "rejected"
    assert _ok(world.holder.call("GET", f"/resources/{applied['id']}"))["status"] == "rejected"
    body = _problem(_step(world.admin, reg, "accept"), 409, "invalid-transition")
    assert body["allowed_next_states"] == [] and body["current_state"] == "rejected"
    _problem(
        world.admin.call("GET", f"/registrations/{reg}/certificate"), 409, "invalid-transition"
    )
    listed = _ok(world.auditor.call("GET", "/registrations", params={"state": "rejected"}))
    assert [r["id"] for r in listed] == [reg]
    # Never publicised: unknown to anyone but its holder, admins and auditors.
    assert _ok(world.consumer.call("GET", "/registrations", params={"state": "rejected"})) == []
    _problem(world.consumer.call("GET", "/registrations/reg_nope"), 404, "not-found")


def test_fields_carry_their_own_grade_never_above_the_resource(world):
    graded = {
        **GRID,
        "level": "L2",
        "fields": [{"name": "station", "grade": "general", "level": "L1"}, {"name": "ph"}],
    }
    applied = _ok(world.holder.call("POST", "/resources", json=graded))
    assert applied["fields"][0]["grade"] == "general" and applied["fields"][0]["level"] == "L1"
    assert applied["fields"][1]["grade"] is None
    above = {**graded, "fields": [{"name": "station", "grade": "important"}, {"name": "ph"}]}
    body = _problem(world.holder.call("POST", "/resources", json=above), 422, "invalid-request")
    assert "highest grade" in body["detail"]
    level_on_core = {
        **graded,
        "fields": [{"name": "station", "grade": "core", "level": "L1"}, {"name": "ph"}],
    }
    body = _problem(
        world.holder.call("POST", "/resources", json=level_on_core), 422, "invalid-request"
    )
    assert "only a 'general' field has a level" in body["detail"]
