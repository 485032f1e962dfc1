"""The token endpoint with stock clients as they come, over a real hypercorn; and behind a real
hostname: the audience and issuer come from --issuer, never from the request's Host."""

import asyncio
import dataclasses
import socket
import threading
import time
import uuid
from contextlib import contextmanager

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from fastapi.testclient import TestClient
from hypercorn.asyncio import serve
from hypercorn.config import Config
from joserfc.jwk import OKPKey
from jwt.algorithms import OKPAlgorithm

from gateway.app import build_gateway, create_app
from gateway.auth.cli import ASSERTION_TYPE
from gateway.demo import Party
from gateway.participants.service import PLATFORM_ADMIN_ID
from ledger import Signer, load_or_create_signer
from tests.e2e.world import register_party

PUBLIC = "https://dsgw.example.gov.cn"


@contextmanager
def _gateway(settings, issuer: str):
    gateway = build_gateway(dataclasses.replace(settings, issuer=issuer))
    try:
        yield gateway
    finally:
        gateway.policy.close()
        gateway.engine.dispose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _hypercorn(app, port: int):
    """Serve `app` with a real hypercorn on loopback, in a thread."""
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(serve(app, config, shutdown_trigger=stop.wait)),
        daemon=True,
    )
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{url}/health", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


@pytest.fixture
def served(settings):
    """A gateway served by hypercorn at its own issuer URL, with one consumer registered."""
    port = _free_port()
    with _gateway(settings, f"http://127.0.0.1:{port}") as gateway:
        with _hypercorn(create_app(gateway=gateway), port) as url:
            with httpx.Client(base_url=url, timeout=30) as http:
                admin = Party(
                    http,
                    "admin",
                    load_or_create_signer(settings.admin_key_path),
                    PLATFORM_ADMIN_ID,
                )
                yield url, register_party(admin, "consumer", ["consumer"])


def _metadata(url: str) -> dict:
    return httpx.get(f"{url}/.well-known/oauth-authorization-server").json()


@pytest.mark.parametrize("alg", ["EdDSA", "Ed25519"])
def test_authlibs_own_oauth2_client_gets_a_token_as_it_comes(served, alg):
    url, consumer = served
    token_endpoint = _metadata(url)["token_endpoint"]
    key = OKPKey.import_key({**consumer.key.private_jwk(), "alg": alg})
    # An Ed25519 key needs its alg named (authlib's default is RS256); nothing else is set: the
    # assertion lives authlib's default hour.
    client = OAuth2Client(
        client_id=consumer.id,
        client_secret=key,
        token_endpoint_auth_method=PrivateKeyJWT(token_endpoint, alg=alg),
    )
    with client:
        token = client.fetch_token(token_endpoint, grant_type="client_credentials")
        assert token["token_type"] == "Bearer"
        answer = client.get(f"{url}/participants/{consumer.id}")
    assert answer.status_code == 200, answer.text


def test_plain_httpx_and_pyjwt_as_a_consumer_writes_them(served):
    url, consumer = served
    token_endpoint = _metadata(url)["token_endpoint"]
    now = int(time.time())
    assertion = jwt.encode(
        {"iss": consumer.id, "sub": consumer.id, "aud": token_endpoint, "iat": now,
         "exp": now + 3600, "jti": str(uuid.uuid4())},
        OKPAlgorithm.from_jwk(consumer.key.private_jwk()),
        algorithm="EdDSA",
    )  # fmt: skip
    response = httpx.post(
        token_endpoint,
        data={
            "grant_type": "client_credentials",
            "client_id": consumer.id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        },
    )
    assert response.status_code == 200, response.text
    bearer = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert httpx.get(f"{url}/participants/{consumer.id}", headers=bearer).status_code == 200


def _token_request(client: TestClient, party: Party, aud: str, **headers: str):
    return client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": party.assertion(aud=aud),
        },
        headers=headers,
    )


@pytest.fixture
def public(settings):
    """A gateway configured as https://dsgw.example.gov.cn, reached through its TLS proxy."""
    with _gateway(settings, PUBLIC) as gateway:
        app = create_app(gateway=gateway)
        with TestClient(app, base_url=PUBLIC) as client:
            admin = Party(
                client, "admin", load_or_create_signer(settings.admin_key_path), PLATFORM_ADMIN_ID
            )
            yield app, client, register_party(admin, "consumer", ["consumer"])


def test_behind_a_tls_proxy_the_configured_hostname_works(public):
    app, client, consumer = public
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    response = _token_request(client, consumer, f"{PUBLIC}/oauth/token", **forwarded)
    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["iss"] == PUBLIC
    meta = client.get("/.well-known/oauth-authorization-server").json()
    assert meta["issuer"] == PUBLIC and meta["token_endpoint"] == f"{PUBLIC}/oauth/token"
    # The proxy reaches the gateway on a plain-http internal address: the audience is still the
    # public one, and the issuer alone is accepted too.
    with TestClient(app, base_url="http://10.0.0.5:8080") as upstream:
        host = {"Host": "dsgw.example.gov.cn", **forwarded}
        for aud in (f"{PUBLIC}/oauth/token", PUBLIC):
            assert _token_request(upstream, consumer, aud, **host).status_code == 200


def test_an_assertion_for_another_audience_is_refused_whatever_host_says(public):
    app, _, consumer = public
    with TestClient(app, base_url="https://evil.example") as client:
        for aud in ("https://evil.example/oauth/token", "https://evil.example"):
            response = _token_request(client, consumer, aud)
            assert response.status_code == 401, response.text
            assert response.json()["type"] == "urn:dsgw:problem:invalid-client"
        meta = client.get("/.well-known/oauth-authorization-server").json()
        assert meta["token_endpoint"] == f"{PUBLIC}/oauth/token"


def test_a_host_that_is_not_loopback_is_a_401_not_a_500(client, settings):
    admin = Party(
        client, "admin", load_or_create_signer(settings.admin_key_path), PLATFORM_ADMIN_ID
    )
    consumer = register_party(admin, "consumer", ["consumer"])
    response = _token_request(
        client, consumer, "http://dsgw.example.gov.cn/oauth/token", Host="dsgw.example.gov.cn"
    )
    assert response.status_code == 401, response.text
    response = _token_request(
        client, consumer, "http://localhost/oauth/token", Host="dsgw.example.gov.cn"
    )
    assert response.status_code == 200, response.text


def test_an_issuer_without_tls_refuses_tokens_with_a_reason_not_a_500(settings):
    with _gateway(settings, "http://dsgw.internal") as gateway:
        with TestClient(create_app(gateway=gateway), base_url="http://dsgw.internal") as client:
            party = Party(client, "stranger", Signer.generate(), "prt_x")
            response = _token_request(client, party, "http://dsgw.internal/oauth/token")
    assert response.status_code == 400, response.text
    assert "--issuer https://" in response.json()["detail"]
