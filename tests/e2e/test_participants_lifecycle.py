"""Participants: keys added and retired as a JWKS, suspension and reinstatement by the admin."""

import pytest

from gateway.demo import Party
from ledger import Signer
from tests.e2e.world import PURPOSE, build_world


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def _types(world) -> list[str]:
    return [e["body"]["type"] for e in world.auditor.call("GET", "/ledger/entries").json()]


def _problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"urn:dsgw:problem:{slug}"
    return body


def test_a_participant_rotates_its_key_and_the_retired_key_stops_authenticating(world, client):
    consumer = world.consumer
    new_key = Signer.generate()
    added = consumer.call("POST", f"/participants/{consumer.id}/keys", json=new_key.public_jwk())
    assert added.status_code == 201, added.text
    assert {k["kid"] for k in added.json()["jwks"]["keys"]} == {consumer.key.kid, new_key.kid}
    jwks = consumer.call("GET", f"/participants/{consumer.id}/jwks").json()
    assert len(jwks["keys"]) == 2

    old_token = consumer.token()
    retired = consumer.call("POST", f"/participants/{consumer.id}/keys/{consumer.key.kid}/retire")
    assert retired.status_code == 200, retired.text
    assert [k["kid"] for k in retired.json()["jwks"]["keys"]] == [new_key.kid]
    assert retired.json()["retired_keys"][0]["kid"] == consumer.key.kid
    assert retired.json()["retired_keys"][0]["retired_at"]

    # The token obtained with the retired key dies at once; the key gets no new token.
    body = _problem(
        client.get(
            f"/participants/{world.consumer.id}", headers={"Authorization": f"Bearer {old_token}"}
        ),
        401,
        "unauthorized",
    )
    assert "retired" in body["detail"]
    stale = Party(client, "old", consumer.key, consumer.id)
    with pytest.raises(Exception, match="401"):
        stale.token()
    # The successor key works.
    fresh = Party(client, "consumer", new_key, consumer.id)
    assert fresh.call("GET", f"/participants/{consumer.id}").status_code == 200
    types = _types(world)
    assert "participant.key_added" in types and "participant.key_retired" in types


def test_a_retired_key_can_no_longer_sign_contracts(world, client):
    merchant = world.merchant
    successor = Signer.generate()
    assert (
        merchant.call(
            "POST", f"/participants/{merchant.id}/keys", json=successor.public_jwk()
        ).status_code
        == 201
    )
    old_key = merchant.key
    assert (
        merchant.call("POST", f"/participants/{merchant.id}/keys/{old_key.kid}/retire").status_code
        == 200
    )
    world.merchant = Party(client, "merchant", successor, merchant.id)
    requested = world.consumer.call(
        "POST",
        "/contracts",
        json={"offer_id": world.product["offers"][0]["id"], "purpose": PURPOSE},
    ).json()
    signed_with_old = Party(client, "merchant", old_key, merchant.id).sign(requested["document"])
    refused = world.merchant.call(
        "POST", f"/contracts/{requested['id']}/agree", json={"signature": signed_with_old}
    )
    body = _problem(refused, 422, "invalid-request")
    assert old_key.kid in body["detail"] and "not registered" in body["detail"]
    agreed = world.merchant.call(
        "POST",
        f"/contracts/{requested['id']}/agree",
        json={"signature": world.merchant.sign(requested["document"])},
    )
    assert agreed.status_code == 200, agreed.text


def test_the_last_key_cannot_be_retired_and_others_cannot_manage_keys(world):
    holder = world.holder
    body = _problem(
        holder.call("POST", f"/participants/{holder.id}/keys/{holder.key.kid}/retire"),
        409,
        "last-key",
    )
    assert "successor" in body["detail"]
    _problem(
        world.consumer.call(
            "POST", f"/participants/{holder.id}/keys", json=Signer.generate().public_jwk()
        ),
        403,
        "forbidden",
    )
    _problem(
        holder.call("POST", f"/participants/{holder.id}/keys", json=holder.key.public_jwk()),
        409,
        "duplicate-key",
    )
    _problem(holder.call("POST", f"/participants/{holder.id}/keys/nope/retire"), 404, "not-found")
    private = {**holder.key.private_jwk(), "kid": "other"}
    _problem(
        holder.call("POST", f"/participants/{holder.id}/keys", json=private), 422, "invalid-request"
    )


def test_a_suspended_participants_token_stops_working_at_once(world, client):
    token = world.consumer.token()
    assert world.consumer.call("GET", f"/participants/{world.consumer.id}").status_code == 200
    suspended = world.admin.call(
        "POST", f"/participants/{world.consumer.id}/suspend", json={"reason": "unpaid fees"}
    )
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["status"] == "suspended"
    assert suspended.json()["allowed_actions"] == ["reinstate"]
    body = _problem(
        client.get(
            f"/participants/{world.consumer.id}", headers={"Authorization": f"Bearer {token}"}
        ),
        401,
        "unauthorized",
    )
    assert "suspended" in body["detail"]
    with pytest.raises(Exception, match="401"):
        Party(client, "again", world.consumer.key, world.consumer.id).token()

    reinstated = world.admin.call(
        "POST", f"/participants/{world.consumer.id}/reinstate", json={"reason": "fees paid"}
    )
    assert reinstated.status_code == 200 and reinstated.json()["status"] == "active"
    assert (
        client.get(
            f"/participants/{world.consumer.id}", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 200
    )
    types = _types(world)
    assert "participant.suspended" in types and "participant.reinstated" in types


def test_invalid_participant_transitions_name_the_state_and_the_way_on(world):
    body = _problem(
        world.admin.call(
            "POST", f"/participants/{world.consumer.id}/reinstate", json={"reason": "x"}
        ),
        409,
        "invalid-transition",
    )
    assert body["current_state"] == "active"
    assert body["allowed_next_states"] == ["suspended"]
    assert body["allowed_actions"] == ["suspend"]
    _problem(
        world.holder.call(
            "POST", f"/participants/{world.consumer.id}/suspend", json={"reason": "x"}
        ),
        403,
        "forbidden",
    )
    _problem(
        world.admin.call("POST", "/participants/prt_platform/suspend", json={"reason": "x"}),
        403,
        "forbidden",
    )
    _problem(
        world.admin.call("POST", "/participants/prt_nobody/suspend", json={"reason": "x"}),
        404,
        "not-found",
    )
