"""Bad input gets a problem+json with a stable type and an actionable message, never a 500."""

import json

import pytest

from tests.e2e.world import build_world


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def _problem(response, status: int, type_: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"urn:dsgw:problem:{type_}"
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_unknown_ids_are_404(world):
    for path in (
        "/resources/res_nope",
        "/products/prd_nope",
        "/contracts/ctr_nope",
        "/participants/prt_nope",
        "/decisions/dec_nope",
        "/ledger/entries/999999",
    ):
        caller = world.auditor if "ledger" in path else world.consumer
        _problem(caller.call("GET", path), 404, "not-found")
    body = _problem(world.pull("ctr_nope"), 404, "not-found")
    assert "ctr_nope" in body["detail"]


def test_unknown_route_is_a_problem_too(client):
    _problem(client.get("/no/such/route"), 404, "not-found")


def test_invalid_unified_social_credit_code_is_422_naming_the_check(world):
    body = {
        "name": "x",
        "uscc": "91110108MA01ABCDE0",
        "roles": ["consumer"],
        "jwks": {"keys": [world.consumer.key.public_jwk()]},
    }
    problem = _problem(world.admin.call("POST", "/participants", json=body), 422, "invalid-request")
    assert "check character" in problem["detail"]


def test_private_key_is_never_accepted_as_a_participant_key(world):
    body = {
        "name": "x",
        "uscc": "91110108MA01ABCDE0",
        "roles": ["consumer"],
        "jwks": {"keys": [world.consumer.key.private_jwk()]},
    }
    problem = _problem(world.admin.call("POST", "/participants", json=body), 422, "invalid-request")
    assert "private" in json.dumps(problem)


def test_duplicate_uscc_is_409(world):
    registered = world.admin.call("GET", f"/participants/{world.consumer.id}").json()
    body = {
        "name": "again",
        "uscc": registered["uscc"],
        "roles": ["consumer"],
        "jwks": {"keys": [world.consumer.key.public_jwk()]},
    }
    _problem(world.admin.call("POST", "/participants", json=body), 409, "participant-exists")


@pytest.mark.parametrize(
    "payload",
    [
        b"[]",
        b"null",
        b'{"contract_id": 5}',
        b'{"contract_id": "x", "purpose": ""}',
        b'{"contract_id": "x", "purpose": "p", "limit": -1}',
        '{"contract_id": "\u0000"}'.encode(),
        b'{"contract_id": "x", "purpose": "p", "delivery": "teleport"}',
    ],
)
def test_malformed_exchange_bodies_are_422(world, payload):
    response = world.client.post(
        "/exchanges",
        content=payload,
        headers={
            "Authorization": f"Bearer {world.consumer.token()}",
            "content-type": "application/json",
        },
    )
    _problem(response, 422, "invalid-request")


def test_garbage_token_requests_are_client_errors(client):
    for kwargs in (
        {"content": b"\xff\xfe", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        {"json": {"grant_type": "client_credentials"}},
        {"data": {"grant_type": "password"}},
        {"data": {"grant_type": "client_credentials"}},
    ):
        response = client.post("/oauth/token", **kwargs)
        assert 400 <= response.status_code < 500, response.text
        assert response.headers["content-type"] == "application/problem+json"


def test_invalid_contract_transition_names_current_and_allowed_states(world):
    contract = world.contract(world.product["offers"][0]["id"])
    body = _problem(
        world.merchant.call(
            "POST",
            f"/contracts/{contract['id']}/agree",
            json={"signature": world.merchant.sign(contract["document"])},
        ),
        409,
        "invalid-transition",
    )
    assert body["current_state"] == "FINALIZED"
    assert body["allowed_next_states"] == ["EXPIRED", "REVOKED", "SUSPENDED", "TERMINATED"]


def test_signature_over_another_document_is_refused(world):
    requested = world.consumer.call(
        "POST",
        "/contracts",
        json={"offer_id": world.product["offers"][0]["id"], "purpose": "credit-risk-assessment"},
    ).json()
    forged = dict(requested["document"], purpose="marketing")
    response = world.merchant.call(
        "POST",
        f"/contracts/{requested['id']}/agree",
        json={"signature": world.merchant.sign(forged)},
    )
    _problem(response, 422, "invalid-signature")
    still = world.consumer.call("GET", f"/contracts/{requested['id']}").json()
    assert still["state"] == "REQUESTED"


def test_consumer_cannot_sign_for_the_provider(world):
    requested = world.consumer.call(
        "POST",
        "/contracts",
        json={"offer_id": world.product["offers"][0]["id"], "purpose": "credit-risk-assessment"},
    ).json()
    response = world.consumer.call(
        "POST",
        f"/contracts/{requested['id']}/agree",
        json={"signature": world.consumer.sign(requested["document"])},
    )
    _problem(response, 403, "forbidden")


def test_nul_characters_are_refused_the_same_way_on_every_engine(world):
    headers = {"Authorization": f"Bearer {world.consumer.token()}"}
    _problem(world.client.get("/contracts/ctr%00x", headers=headers), 422, "invalid-request")
    body = b'{"offer_id": "off_\\u0000", "purpose": "credit-risk-assessment"}'
    response = world.client.post(
        "/contracts", content=body, headers={**headers, "content-type": "application/json"}
    )
    assert "NUL" in _problem(response, 422, "invalid-request")["detail"]


def test_an_escaped_backslash_before_u0000_is_ordinary_text(world):
    headers = {"Authorization": f"Bearer {world.holder.token()}",
               "content-type": "application/json"}
    # (identifiers refuse backslashes by their pattern; free text keeps them)
    body = (b'{"name": "off_\\\\u0000", "domain": "d", "grade": "general", "level": "L1",'
            b' "fields": [{"name": "v"}]}')
    response = world.client.post("/resources", content=body, headers=headers)
    assert response.status_code == 201, response.text  # reached the service: text, not a NUL
    assert response.json()["name"] == "off_\\u0000"
