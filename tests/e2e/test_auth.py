"""Token misuse: every case is a 401 problem, and nothing else gets through."""

import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from freezegun import freeze_time

from gateway.auth.cli import ASSERTION_TYPE
from gateway.demo import Party
from ledger import Signer
from tests.e2e.world import build_world


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def _token_request(client, assertion: str):
    return client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )


def _assert_401(response, type_: str = "urn:dsgw:problem:invalid-client") -> dict:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == type_
    assert body["detail"]
    return body


def test_valid_assertion_gets_a_bearer_token(world, client):
    response = _token_request(client, world.consumer.assertion())
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == world.consumer.id and claims["roles"] == ["consumer"]


def test_replayed_client_assertion_is_refused(world, client):
    assertion = world.consumer.assertion(jti="same-jti")
    assert _token_request(client, assertion).status_code == 200
    body = _assert_401(_token_request(client, assertion))
    assert "used" in body["detail"].lower()


def _assertion_claims(client_id: str) -> dict:
    """Return valid client-assertion claims, for signing the wrong way."""
    now = int(time.time())
    return {
        "iss": client_id,
        "sub": client_id,
        "aud": "http://localhost/oauth/token",
        "iat": now,
        "exp": now + 60,
        "jti": str(uuid.uuid4()),
    }


def test_unsigned_assertion_is_refused(world, client):
    claims = _assertion_claims(world.consumer.id)
    unsigned = jwt.encode(claims, None, algorithm="none")
    _assert_401(_token_request(client, unsigned))


def test_assertion_signed_with_another_algorithm_is_refused(world, client):
    claims = _assertion_claims(world.consumer.id)
    es256 = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256")
    body = _assert_401(_token_request(client, es256))
    assert "EdDSA" in body["detail"]
    # HS256 keyed with the public key bytes: the classic algorithm-confusion attack.
    hs256 = jwt.encode(claims, world.consumer.key.public_jwk()["x"], algorithm="HS256")
    _assert_401(_token_request(client, hs256))


def test_assertion_signed_by_an_unregistered_key_is_refused(world, client):
    impostor = Party(client, "impostor", Signer.generate(), world.consumer.id)
    _assert_401(_token_request(client, impostor.assertion()))


def test_assertion_for_another_audience_is_refused(world, client):
    assertion = world.consumer.assertion(aud="https://other-gateway.example/oauth/token")
    _assert_401(_token_request(client, assertion))


def test_expired_assertion_is_refused(world, client):
    past = int(time.time()) - 3600
    _assert_401(_token_request(client, world.consumer.assertion(iat=past, exp=past + 60)))


def test_unknown_client_is_refused(world, client):
    stranger = Party(client, "stranger", Signer.generate(), "prt_unknown")
    _assert_401(_token_request(client, stranger.assertion()))


def test_expired_access_token_is_refused(world, client):
    with freeze_time("2031-05-01T00:00:00Z") as frozen:
        world.consumer._token = None
        token = world.consumer.token()
        frozen.tick(901)
        response = client.get(
            f"/resources/{world.resource['id']}", headers={"Authorization": f"Bearer {token}"}
        )
    body = _assert_401(response, "urn:dsgw:problem:unauthorized")
    assert "expired" in body["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")


def _forge(claims_override: dict, world, *, key=None, algorithm="EdDSA") -> str:
    claims = jwt.decode(world.consumer.token(), options={"verify_signature": False})
    claims.update(claims_override)
    return jwt.encode(claims, key, algorithm=algorithm)


def test_access_token_for_another_audience_is_refused(world, gateway, client):
    from jwt.algorithms import OKPAlgorithm

    gateway_key = OKPAlgorithm.from_jwk(gateway.signer.private_jwk())
    token = _forge({"aud": "some-other-api"}, world, key=gateway_key)
    response = client.get("/ledger/head", headers={"Authorization": f"Bearer {token}"})
    assert "audience" in _assert_401(response, "urn:dsgw:problem:unauthorized")["detail"]


def test_unsigned_or_foreign_access_tokens_are_refused(world, client):
    for token in (
        _forge({"sub": world.auditor.id}, world, key=None, algorithm="none"),
        _forge({}, world, key=world.consumer.key.public_jwk()["x"], algorithm="HS256"),
        _forge({}, world, key=ec.generate_private_key(ec.SECP256R1()), algorithm="ES256"),
        "not-a-jwt",
    ):
        response = client.get("/ledger/head", headers={"Authorization": f"Bearer {token}"})
        _assert_401(response, "urn:dsgw:problem:unauthorized")


def test_calls_without_a_token_are_refused_but_health_and_docs_are_public(client):
    _assert_401(client.get("/ledger/head"), "urn:dsgw:problem:unauthorized")
    _assert_401(client.post("/participants", json={}), "urn:dsgw:problem:unauthorized")
    assert client.get("/health").status_code == 200
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/.well-known/jwks.json").json()["keys"][0]["crv"] == "Ed25519"


def test_roles_are_enforced(world):
    response = world.consumer.call(
        "POST",
        "/resources",
        json={
            "name": "x",
            "domain": "x",
            "grade": "general",
            "level": "L1",
            "fields": [{"name": "a"}],
        },
    )
    assert response.status_code == 403
    assert "holder" in response.json()["detail"]
    assert world.consumer.call("GET", "/ledger/head").status_code == 403
