"""Rate limits per client and per route: 429 problem+json with Retry-After, and no lock-out."""

from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.auth.cli import ASSERTION_TYPE
from gateway.core.ratelimit import DEFAULT_RATE_LIMITS, parse_rate_limits
from gateway.demo import Party
from gateway.participants.service import PLATFORM_ADMIN_ID
from ledger import Signer, load_or_create_signer
from tests.conftest import BASE_URL
from tests.e2e.world import register_party

LOW = "token=8/minute;token_client=3/minute;exchanges=2/minute;default=30/minute"


@pytest.fixture
def settings(settings):
    return replace(settings, rate_limits=LOW)


@pytest.fixture
def app(gateway):
    return create_app(gateway=gateway)


def _client(app, address: str) -> TestClient:
    return TestClient(app, base_url=BASE_URL, client=(address, 40000))


def _token_request(party: Party):
    return party.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": party.assertion(),
        },
    )


@pytest.fixture
def victim(app, settings):
    admin_client = _client(app, "10.0.0.1")
    admin = Party(
        admin_client,
        "admin",
        load_or_create_signer(settings.state_dir / "keys" / "admin-ed25519.jwk"),
        PLATFORM_ADMIN_ID,
    )
    return register_party(admin, "victim", ["consumer"])


def _assert_limited(response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:dsgw:problem:rate-limited"
    assert int(response.headers["retry-after"]) >= 1


def test_a_flood_of_bad_assertions_does_not_stop_the_good_clients_token(app, victim):
    flooder = Party(_client(app, "203.0.113.9"), "flooder", Signer.generate(), victim.id)
    statuses = [_token_request(flooder).status_code for _ in range(20)]
    assert statuses[:8] == [401] * 8  # each forged assertion in the victim's name is refused
    assert set(statuses[8:]) == {429}  # then the flooder's address is limited
    good = Party(_client(app, "198.51.100.7"), "victim", victim.key, victim.id)
    response = _token_request(good)
    assert response.status_code == 200, response.text


def test_token_issuance_is_limited_per_client_whatever_the_address(app, victim):
    issued = [
        _token_request(Party(_client(app, f"192.0.2.{n}"), "v", victim.key, victim.id))
        for n in range(4)
    ]
    assert [r.status_code for r in issued[:3]] == [200, 200, 200]
    _assert_limited(issued[3])


def test_authenticated_calls_are_limited_per_participant_not_per_address(app, victim):
    me = Party(_client(app, "192.0.2.50"), "v", victim.key, victim.id)
    me.token()
    responses = [me.call("GET", f"/participants/{victim.id}") for _ in range(31)]
    assert {r.status_code for r in responses[:29]} == {200}
    _assert_limited(responses[-1])
    # the same participant from another address shares its budget
    elsewhere = Party(_client(app, "192.0.2.51"), "v", victim.key, victim.id)
    elsewhere._token = me._token
    _assert_limited(elsewhere.call("GET", f"/participants/{victim.id}"))
    # another participant is not slowed
    other = _client(app, "192.0.2.50")
    assert other.get("/health").status_code == 200


def test_exchanges_have_their_own_limit(app, victim):
    me = Party(_client(app, "192.0.2.60"), "v", victim.key, victim.id)
    body = {"contract_id": "ctr_unknown", "purpose": "research"}
    statuses = [me.call("POST", "/exchanges", json=body).status_code for _ in range(3)]
    assert statuses[:2] == [404, 404]
    assert statuses[2] == 429
    assert me.call("GET", f"/participants/{victim.id}").status_code == 200


def test_rate_limits_can_be_switched_off(gateway):
    app = create_app(gateway=replace_settings(gateway, "off"))
    client = _client(app, "192.0.2.70")
    for _ in range(40):
        assert client.get("/ledger/keys").status_code == 200


def replace_settings(gateway, rate_limits: str):
    gateway.settings = replace(gateway.settings, rate_limits=rate_limits)
    return gateway


def test_rate_limit_configuration_is_checked():
    assert parse_rate_limits("off") is None
    assert set(parse_rate_limits(DEFAULT_RATE_LIMITS)) == {
        "token",
        "token_client",
        "exchanges",
        "default",
    }
    assert str(parse_rate_limits("exchanges=5/second")["exchanges"][0]) == "5 per 1 second"
    for bad in ("exchanges", "teleport=5/minute", "default=lots"):
        with pytest.raises(ValueError, match="rate limits"):
            parse_rate_limits(bad)


def test_the_public_open_data_catalogue_is_limited_per_source_address(app):
    scraper = _client(app, "192.0.2.70")
    statuses = [scraper.get("/open-data").status_code for _ in range(30)]
    assert set(statuses) == {200}  # no token needed
    _assert_limited(scraper.get("/open-data"))
    assert _client(app, "192.0.2.71").get("/open-data").status_code == 200
