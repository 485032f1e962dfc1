"""A consumer names a push's sink, so the gateway refuses sinks inside its own network: its own
OPA and database always, any internal address unless the operator allowed its network."""

import dataclasses
from urllib.parse import urlsplit

import pytest

from gateway.dataplane import egress
from gateway.dataplane.errors import DataPlaneError
from tests.e2e.test_transfers import start, transfer_world

SINK = {"type": "http", "method": "PUT", "auth": {"kind": "bearer"}, "secret": {"token": "t0k"}}


@pytest.fixture
def world(client, settings):
    return transfer_world(client, settings)


def _push(world, url: str):
    return start(world, type="push", sink={**SINK, "url": url})


def test_a_push_to_the_gateways_own_opa_is_refused_even_with_loopback_allowed(world, settings):
    opa = urlsplit(settings.opa_url)
    response = _push(world, f"http://{opa.hostname}:{opa.port}/v1/data/dsgw")
    assert response.status_code == 422, response.text
    assert "the gateway's own services" in response.json()["detail"]


def test_a_push_to_the_gateways_own_database_is_refused(world, settings):
    url = settings.resolved_database_url
    if not url.startswith("postgresql"):
        pytest.skip("a SQLite database has no address to push to")
    db = urlsplit(url)
    response = _push(world, f"http://{db.hostname}:{db.port}/")
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x",
        "http://localhost:9/x",
        "http://[::1]:9/x",
        "http://10.1.2.3/x",
        "http://192.168.0.10/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]:9/x",
        "http://0.0.0.0:9/x",
    ],
)
def test_internal_sinks_are_refused_unless_their_network_is_allowed(world, gateway, url):
    gateway.settings = dataclasses.replace(gateway.settings, sink_allowed_networks="")
    response = _push(world, url)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    usage = world.consumer.call("GET", f"/contracts/{world.deal['id']}").json()["usage"]
    assert usage["calls"] == 0  # refused before any decision: nothing reserved or metered


def test_check_sink_rules():
    public = "http://8.8.8.8/in"
    egress.check_sink(public, allowed=(), own=set())
    with pytest.raises(DataPlaneError):
        egress.check_sink("http://10.0.0.5/in", allowed=(), own=set())
    egress.check_sink(
        "http://10.0.0.5/in", allowed=egress.parse_networks("10.0.0.0/8"), own=set()
    )
    own = egress.own_services(["http://10.0.0.5:80"])
    with pytest.raises(DataPlaneError, match="own services"):
        egress.check_sink(
            "http://10.0.0.5/in", allowed=egress.parse_networks("10.0.0.0/8"), own=own
        )
    with pytest.raises(DataPlaneError, match="does not resolve"):
        egress.check_sink("http://no-such-host.invalid/in", allowed=(), own=set())
