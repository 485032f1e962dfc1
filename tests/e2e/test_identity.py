"""Identity and keys: weak or malformed keys refused where they arrive, never a 500 for a key
stored before, retirement of the key material, bounded kids, client_id, and RFC 9864 names."""

import base64
import json
import random
import time
import uuid

import jwt
import pytest
from freezegun import freeze_time
from joserfc import jwt as joserfc_jwt
from joserfc.jwk import OKPKey

from gateway.auth.cli import ASSERTION_TYPE
from gateway.demo import Party, random_uscc
from gateway.participants.models import Participant
from gateway.participants.service import PLATFORM_ADMIN_ID
from ledger import Signer, load_or_create_signer
from tests.e2e.world import register_party

IDENTITY = (1).to_bytes(32, "little")  # the neutral point of edwards25519, y = 1
TOKEN_URL = "http://localhost/oauth/token"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture
def admin(client, settings) -> Party:
    key = load_or_create_signer(settings.state_dir / "keys" / "admin-ed25519.jwk")
    return Party(client, "admin", key, PLATFORM_ADMIN_ID)


@pytest.fixture
def consumer(admin) -> Party:
    return register_party(admin, "consumer", ["consumer"])


def _onboard(admin: Party, keys: list[dict]):
    body = {
        "name": "someone",
        "uscc": random_uscc(random.Random()),
        "roles": ["consumer"],
        "jwks": {"keys": keys},
    }
    return admin.call("POST", "/participants", json=body)


def _token_request(client, assertion: str, **extra: str):
    return client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
            **extra,
        },
    )


def _forged_assertion(participant_id: str, kid: str) -> str:
    """An assertion 'signed' with R = identity, S = 0: valid under the identity key, for any
    message, without any private key."""
    now = int(time.time())
    header = {"alg": "EdDSA", "kid": kid, "typ": "JWT"}
    claims = {"iss": participant_id, "sub": participant_id, "aud": TOKEN_URL, "iat": now,
              "exp": now + 60, "jti": str(uuid.uuid4())}  # fmt: skip
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64(IDENTITY + bytes(32))}"


def _store_keys(gateway, participant_id: str, keys: list[dict]) -> None:
    """Write keys straight into the database, as a gateway before these checks let them in."""
    with gateway.sessions() as session:
        participant = session.get(Participant, participant_id)
        participant.jwks = {"keys": keys}
        session.commit()


def _problem(response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"urn:dsgw:problem:{slug}", body
    return body


WEAK = {"kty": "OKP", "crv": "Ed25519", "x": b64(IDENTITY), "kid": "weak"}


def test_the_identity_point_is_refused_as_a_key_at_onboarding_and_when_added(admin, consumer):
    body = _problem(_onboard(admin, [WEAK]), 422, "invalid-request")
    assert "small order" in body["detail"] and "jwks.keys.0.x" in body["detail"]
    body = _problem(
        consumer.call("POST", f"/participants/{consumer.id}/keys", json=WEAK),
        422,
        "invalid-request",
    )
    assert "small order" in body["detail"]


@pytest.mark.parametrize(
    "x, why",
    [
        ("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "small order"),
        ("0000000000000000000000000000000000000000000000000000000000000080", "small order"),
        ("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a", "small order"),
        ("0100000000000000000000000000000000000000000000000000000000000080", "sign bit"),
        ("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "not canonical"),
    ],
)
def test_small_order_and_non_canonical_points_are_refused_saying_why(admin, x, why):
    key = {"kty": "OKP", "crv": "Ed25519", "x": b64(bytes.fromhex(x))}
    assert why in _problem(_onboard(admin, [key]), 422, "invalid-request")["detail"]


def test_malformed_x_is_refused_at_arrival(admin):
    good = Signer.generate().public_jwk()["x"]
    raw = base64.urlsafe_b64decode(good + "=")
    # The last of 43 characters carries 4 bits and 2 unused ones, zero in the canonical form:
    # setting one gives another spelling of the same 32 bytes.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    sloppy = good[:-1] + alphabet[alphabet.index(good[-1]) + 1]
    assert base64.urlsafe_b64decode(sloppy + "=") == raw
    for x, why in [
        (good + "=", "base64url"),  # padding
        (good[:-1] + "+", "base64url"),  # not the URL-safe alphabet
        (sloppy, "base64url"),  # unused trailing bits set
        (b64(raw[:31]), "32 bytes"),
        (b64(raw + b"\0"), "32 bytes"),
        (" " + good, "base64url"),
    ]:
        key = {"kty": "OKP", "crv": "Ed25519", "x": x}
        assert why in _problem(_onboard(admin, [key]), 422, "invalid-request")["detail"], x


def test_a_weak_key_stored_earlier_yields_no_token_and_no_500(gateway, client, consumer):
    _store_keys(gateway, consumer.id, [WEAK])
    body = _problem(
        _token_request(client, _forged_assertion(consumer.id, "weak")), 401, "invalid-client"
    )
    assert "no usable key" in body["detail"]


def test_a_malformed_key_stored_earlier_is_skipped_and_the_good_one_still_works(
    gateway, client, admin, consumer
):
    good = consumer.key.public_jwk()
    bad = [
        {"kty": "OKP", "crv": "Ed25519", "x": good["x"] + "=", "kid": "padded"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "short"},
        {"kty": "OKP", "crv": "Ed25519", "kid": "no-x"},
        {"kty": "RSA", "n": "x", "e": "AQAB", "kid": "rsa"},
        {"kty": "OKP", "crv": "Ed25519", "x": good["x"]},  # no kid
        "not a key",
    ]
    _store_keys(gateway, consumer.id, [*bad, good])
    consumer._token = None
    assert consumer.token()
    jwks = consumer.call("GET", f"/participants/{consumer.id}/jwks")
    assert jwks.status_code == 200 and [k["kid"] for k in jwks.json()["keys"]] == [good["kid"]]
    assert consumer.call("GET", f"/participants/{consumer.id}").status_code == 200

    _store_keys(gateway, consumer.id, bad)
    _problem(_token_request(client, consumer.assertion()), 401, "invalid-client")
    assert admin.call("GET", f"/participants/{consumer.id}/jwks").json() == {"keys": []}


def test_a_retired_key_cannot_come_back_under_another_kid(consumer):
    old = consumer.key.public_jwk()
    successor = Signer.generate()
    added = consumer.call("POST", f"/participants/{consumer.id}/keys", json=successor.public_jwk())
    assert added.status_code == 201, added.text
    retired = consumer.call("POST", f"/participants/{consumer.id}/keys/{old['kid']}/retire")
    assert retired.status_code == 200, retired.text
    consumer = Party(consumer.client, "consumer", successor, consumer.id)
    for kid in ("fresh-name", None):
        again = {k: v for k, v in {**old, "kid": kid}.items() if v is not None}
        body = _problem(
            consumer.call("POST", f"/participants/{consumer.id}/keys", json=again),
            409,
            "retired-key",
        )
        assert old["kid"] in body["detail"] and body["thumbprint"] == old["kid"]
    # The active key under a second name is a duplicate, too.
    twin = {**successor.public_jwk(), "kid": "twin"}
    _problem(
        consumer.call("POST", f"/participants/{consumer.id}/keys", json=twin), 409, "duplicate-key"
    )


@pytest.mark.parametrize("kid", ["k" * 129, "a/b", "a b", "ключ", "", "\ud800"])
def test_kids_are_short_and_url_safe(client, admin, kid):
    key = {**Signer.generate().public_jwk(), "kid": kid}
    body = {"name": "someone", "uscc": random_uscc(random.Random()), "roles": ["consumer"],
            "jwks": {"keys": [key]}}  # fmt: skip
    response = client.post(
        "/participants",
        content=json.dumps(body),  # ASCII JSON: a lone surrogate travels as its escape
        headers={"Authorization": f"Bearer {admin.token()}", "Content-Type": "application/json"},
    )
    detail = _problem(response, 422, "invalid-request")["detail"]
    # A lone surrogate is no character at all: the input guard refuses it at the door.
    assert "kid" in detail or (kid == "\ud800" and "surrogate" in detail)


def test_a_kid_of_128_safe_characters_is_accepted(admin):
    key = {**Signer.generate().public_jwk(), "kid": "A-z0._~" * 18 + "xy"}
    assert _onboard(admin, [key]).status_code == 201


def test_client_id_naming_another_participant_is_refused(client, admin, consumer):
    other = register_party(admin, "other", ["consumer"])
    body = _problem(
        _token_request(client, consumer.assertion(), client_id=other.id), 401, "invalid-client"
    )
    assert other.id in body["detail"] and consumer.id in body["detail"]
    ok = _token_request(client, consumer.assertion(), client_id=consumer.id)
    assert ok.status_code == 200, ok.text


def test_an_assertion_may_live_an_hour_and_its_jti_is_kept_until_it_expires(client, consumer):
    with freeze_time("2031-05-01T00:00:00Z") as frozen:
        now = int(time.time())
        hour = consumer.assertion(jti="hour", iat=now, exp=now + 3600)
        assert _token_request(client, hour).status_code == 200
        too_long = consumer.assertion(iat=now, exp=now + 3700)
        body = _problem(_token_request(client, too_long), 401, "invalid-client")
        assert "3600" in body["detail"]
        frozen.tick(3000)  # well past the old retention of max age + 60 s
        body = _problem(_token_request(client, hour), 401, "invalid-client")
        assert "used" in body["detail"].lower()


def test_rfc9864_alg_ed25519_is_accepted_for_assertions_and_access_tokens(
    gateway, client, consumer
):
    key = OKPKey.import_key({**consumer.key.private_jwk(), "alg": "Ed25519"})
    now = int(time.time())
    claims = {"iss": consumer.id, "sub": consumer.id, "aud": TOKEN_URL, "iat": now,
              "exp": now + 60, "jti": str(uuid.uuid4())}  # fmt: skip
    header = {"alg": "Ed25519", "kid": consumer.key.kid}
    assertion = joserfc_jwt.encode(header, claims, key, algorithms=["Ed25519"])
    response = _token_request(client, assertion)
    assert response.status_code == 200, response.text
    # An access token named with RFC 9864's Ed25519 (signed by the gateway's key) verifies too.
    issued = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    gateway_key = OKPKey.import_key({**gateway.signer.private_jwk(), "alg": "Ed25519"})
    header = {"alg": "Ed25519", "kid": gateway.signer.kid}
    token = joserfc_jwt.encode(header, issued, gateway_key, algorithms=["Ed25519"])
    bearer = {"Authorization": f"Bearer {token}"}
    answer = client.get(f"/participants/{consumer.id}", headers=bearer)
    assert answer.status_code == 200, answer.text
    # What the gateway emits is EdDSA, and its metadata lists both names.
    assert jwt.get_unverified_header(response.json()["access_token"])["alg"] == "EdDSA"
    meta = client.get("/.well-known/oauth-authorization-server").json()
    assert meta["token_endpoint_auth_signing_alg_values_supported"] == ["EdDSA", "Ed25519"]


def test_alg_ed25519_is_refused_with_a_key_of_another_curve(client, consumer):
    from cryptography.hazmat.primitives.asymmetric.ed448 import Ed448PrivateKey

    key = OKPKey.import_key(Ed448PrivateKey.generate())
    now = int(time.time())
    claims = {"iss": consumer.id, "sub": consumer.id, "aud": TOKEN_URL, "iat": now,
              "exp": now + 60, "jti": str(uuid.uuid4())}  # fmt: skip
    for alg in ("EdDSA", "Ed448"):
        header = {"alg": alg, "kid": consumer.key.kid}
        assertion = joserfc_jwt.encode(header, claims, key, algorithms=[alg])
        _problem(_token_request(client, assertion), 401, "invalid-client")


@pytest.mark.parametrize("sub", ["\ud800", "p" * 5000, "prt_\u0430bc", "prt x"])
def test_a_malformed_client_id_in_the_assertion_is_unknown_not_a_500(client, consumer, sub):
    header = b64(json.dumps({"alg": "EdDSA", "kid": consumer.key.kid}).encode())
    claims = {"iss": sub, "sub": sub, "aud": TOKEN_URL, "exp": int(time.time()) + 60, "jti": "j"}
    payload = b64(json.dumps(claims).encode())  # ASCII JSON: the surrogate as its escape
    assertion = f"{header}.{payload}.{b64(bytes(64))}"
    _problem(_token_request(client, assertion), 401, "invalid-client")
