"""Authorisations (授权运营协议): scope, revocation and term end suspend their products."""

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from gateway.cli import main as dsgw
from tests.e2e.world import OFFER, PURPOSE, build_world


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def _problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"urn:dsgw:problem:{slug}"
    return body


def _grant(world, **extra) -> dict:
    body = {
        "operator_id": world.merchant.id,
        "resource_ids": [world.resource["id"]],
        "not_after": "2099-01-01T00:00:00Z",
        "fee_cap_fen": 200_000,
        **extra,
    }
    response = world.holder.call("POST", "/authorisations", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _publish(world, authorisation: dict, modes=("api",)):
    return world.merchant.call(
        "POST",
        "/products",
        json={
            "name": "p",
            "resource_id": world.resource["id"],
            "authorisation_id": authorisation["id"],
            "delivery_modes": list(modes),
            "offers": [OFFER],
        },
    )


def _types(world) -> list[str]:
    return [e["body"]["type"] for e in world.auditor.call("GET", "/ledger/entries").json()]


def _fresh_tokens(world) -> None:
    for party in (world.admin, world.holder, world.merchant, world.consumer, world.auditor):
        party._token = None


def test_the_authorisation_records_its_terms_and_limits_product_kinds(world):
    granted = _grant(
        world,
        product_kinds=["compute"],
        security_obligations=["raw rows never leave the gateway"],
        exit_terms="products are delisted within 30 days",
        revenue_share={"holder": 30, "operator": 60, "platform": 10},
    )
    assert granted["product_kinds"] == ["compute"]
    assert granted["security_obligations"] == ["raw rows never leave the gateway"]
    assert granted["allowed_actions"] == ["expire", "revoke"]
    body = _problem(_publish(world, granted, ["api"]), 403, "not-authorised")
    assert "product kinds ['api']" in body["detail"]
    assert _publish(world, granted, ["compute"]).status_code == 201
    _problem(
        world.holder.call(
            "POST",
            "/authorisations",
            json={
                "operator_id": world.merchant.id,
                "resource_ids": [world.resource["id"]],
                "not_after": "2001-01-01T00:00:00Z",
                "fee_cap_fen": 1,
            },
        ),
        422,
        "invalid-request",
    )


def test_revocation_suspends_the_products_at_once_each_on_the_ledger(world):
    authorisation = world.authorisation
    _problem(
        world.merchant.call(
            "POST", f"/authorisations/{authorisation['id']}/revoke", json={"reason": "x"}
        ),
        403,
        "forbidden",
    )
    revoked = world.holder.call(
        "POST", f"/authorisations/{authorisation['id']}/revoke", json={"reason": "breach"}
    )
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["ended_at"]
    for product in (world.product, world.core_product):
        got = world.merchant.call("GET", f"/products/{product['id']}").json()
        assert got["status"] == "suspended"
    entries = world.auditor.call("GET", "/ledger/entries").json()
    tail = [e["body"]["type"] for e in entries[-3:]]
    assert tail == ["authorisation.revoked", "product.suspended", "product.suspended"]
    _problem(
        world.consumer.call(
            "POST",
            "/contracts",
            json={"offer_id": world.product["offers"][0]["id"], "purpose": PURPOSE},
        ),
        409,
        "product-not-listed",
    )
    _problem(_publish(world, authorisation), 403, "not-authorised")
    again = _problem(
        world.holder.call(
            "POST", f"/authorisations/{authorisation['id']}/revoke", json={"reason": "again"}
        ),
        409,
        "invalid-transition",
    )
    assert again["current_state"] == "revoked" and again["allowed_next_states"] == []


def test_term_end_is_detected_at_the_next_use_exactly_at_the_boundary(world):
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    authorisation = _grant(world, not_after=end.isoformat())
    product = world.list_product(_publish(world, authorisation).json()["id"])
    with freeze_time(end - timedelta(microseconds=1)) as frozen:
        _fresh_tokens(world)
        assert _publish(world, authorisation).status_code == 201
        frozen.tick(timedelta(microseconds=1))
        body = _problem(_publish(world, authorisation), 403, "not-authorised")
        assert "it is expired" in body["detail"]
        got = world.holder.call("GET", f"/authorisations/{authorisation['id']}").json()
    assert got["status"] == "expired" and got["end_reason"].startswith("term ended")
    _fresh_tokens(world)
    assert world.merchant.call("GET", f"/products/{product['id']}").json()["status"] == (
        "suspended"
    )
    assert "authorisation.expired" in _types(world)


def test_a_sweep_ends_authorisations_past_their_term(world, settings, capsys):
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    first = _grant(world, not_after=end.isoformat())
    second = _grant(world, not_after=(end + timedelta(minutes=1)).isoformat())
    product = world.list_product(_publish(world, first).json()["id"])
    with freeze_time(end):
        _fresh_tokens(world)
        _problem(world.holder.call("POST", "/authorisations/sweep"), 403, "forbidden")
        swept = world.admin.call("POST", "/authorisations/sweep").json()
        assert swept == {"expired": [first["id"]], "suspended_products": [product["id"]]}
        assert world.admin.call("POST", "/authorisations/sweep").json()["expired"] == []
    with freeze_time(end + timedelta(minutes=1)):
        capsys.readouterr()
        args = ["--state", str(settings.state_dir), "authorisations", "sweep"]
        assert dsgw([*args, "--database-url", settings.resolved_database_url]) == 0
        assert second["id"] in capsys.readouterr().out


def test_a_contract_request_after_the_term_notices_the_end_and_is_refused(world):
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    authorisation = _grant(world, not_after=end.isoformat())
    product = world.list_product(_publish(world, authorisation).json()["id"])
    offer = {"offer_id": product["offers"][0]["id"], "purpose": PURPOSE}
    with freeze_time(end - timedelta(microseconds=1)) as frozen:
        _fresh_tokens(world)
        assert world.consumer.call("POST", "/contracts", json=offer).status_code == 201
        frozen.tick(timedelta(microseconds=1))
        body = _problem(
            world.consumer.call("POST", "/contracts", json=offer), 409, "product-not-listed"
        )
        assert "suspended" in body["detail"]
    _fresh_tokens(world)
    got = world.holder.call("GET", f"/authorisations/{authorisation['id']}").json()
    assert got["status"] == "expired"
