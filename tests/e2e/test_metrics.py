"""Operability: /health is liveness only, /metrics (Prometheus) is the admin's unless public,
exchanges and failures are counted, and a failing OPA or database is logged at error level."""

import dataclasses
import random
import socket

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from structlog.testing import capture_logs

from gateway.app import create_app
from gateway.core import metrics
from gateway.demo import random_uscc
from gateway.policy.client import PolicyClient
from gateway.policy.opa_process import free_port
from ledger import Signer
from tests.conftest import BASE_URL
from tests.e2e.world import build_world


@pytest.fixture
def settings(settings):
    # A writer waiting on a lock gives up after half a second (PostgreSQL), not the default 5 s.
    return dataclasses.replace(settings, db_lock_timeout=0.5)


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def scrape(response) -> dict[tuple[str, frozenset], float]:
    """Return {(sample name, labels): value} of a /metrics response."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def scrape_registry() -> dict[tuple[str, frozenset], float]:
    """Return this process's samples without HTTP (for a gateway that cannot authenticate)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in metrics.REGISTRY.collect()
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grown(before: dict, after: dict, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_delivered_and_denied_exchanges_are_counted_by_outcome(world):
    contract = world.contract(world.product["offers"][0]["id"])
    before = scrape(world.admin.call("GET", "/metrics"))
    assert world.pull(contract["id"]).status_code == 200
    assert world.pull(contract["id"], purpose="marketing").status_code == 403
    after = scrape(world.admin.call("GET", "/metrics"))
    for outcome in ("exchange.delivered", "exchange.denied"):
        assert grown(before, after, "dsgw_exchanges_total", outcome=outcome) == 1, outcome
    # Both decisions were timed; neither failed.
    assert grown(before, after, "dsgw_policy_decision_seconds_count") == 2
    assert grown(before, after, "dsgw_policy_errors_total", code="POLICY_UNAVAILABLE") == 0


def test_unreachable_opa_counts_a_policy_error_and_logs_it_at_error_level(world, gateway):
    contract = world.contract(world.product["offers"][0]["id"])
    before = scrape(world.admin.call("GET", "/metrics"))
    real = gateway.policy
    gateway.policy = PolicyClient(f"http://127.0.0.1:{free_port()}", timeout=0.5)  # stopped
    try:
        with capture_logs() as logs:
            response = world.pull(contract["id"])
    finally:
        gateway.policy.close()
        gateway.policy = real
    assert response.status_code == 503, response.text
    after = scrape(world.admin.call("GET", "/metrics"))
    assert grown(before, after, "dsgw_policy_errors_total", code="POLICY_UNAVAILABLE") == 1
    # The refusal is evidence like any denial, and counted as one.
    assert grown(before, after, "dsgw_exchanges_total", outcome="exchange.denied") == 1
    failed = [e for e in logs if e["event"] == "policy decision failed"]
    assert len(failed) == 1, logs
    assert failed[0]["log_level"] == "error"
    assert failed[0]["code"] == "POLICY_UNAVAILABLE"
    assert "did not answer" in failed[0]["reason"]
    request = [e for e in logs if e["event"] == "request failed"]
    assert [(e["log_level"], e["route"], e["status"]) for e in request] == [
        ("error", "/exchanges", 503)
    ]


def test_metrics_need_an_admin_token_unless_public(world, client, gateway):
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert "dsgw_" not in anonymous.text
    consumer = world.consumer.call("GET", "/metrics")
    assert consumer.status_code == 403
    assert consumer.headers["content-type"] == "application/problem+json"
    assert consumer.json()["type"] == "urn:dsgw:problem:forbidden"
    served = scrape(world.admin.call("GET", "/metrics"))
    assert any(name == "dsgw_http_requests_total" for name, _ in served)
    public = dataclasses.replace(
        gateway, settings=dataclasses.replace(gateway.settings, metrics_public=True)
    )
    with TestClient(create_app(gateway=public), base_url=BASE_URL) as other:
        assert any(name == "dsgw_http_requests_total" for name, _ in scrape(other.get("/metrics")))


def test_requests_are_labelled_by_route_template_not_raw_path(world, client):
    contract = world.contract(world.product["offers"][0]["id"])
    assert world.consumer.call("GET", f"/contracts/{contract['id']}").status_code == 200
    assert client.get(f"/no/such/route/{contract['id']}").status_code == 404
    response = world.admin.call("GET", "/metrics")
    samples = scrape(response)
    template = "/contracts/{contract_id}"
    assert value(samples, "dsgw_http_requests_total", route=template, status="200") >= 1
    assert value(samples, "dsgw_http_requests_total", route="unmatched", status="404") >= 1
    assert value(samples, "dsgw_http_request_seconds_count", route=template) >= 1
    assert contract["id"] not in response.text  # no raw path became a label


def test_health_is_liveness_and_asks_neither_opa_nor_the_database(gateway):
    # An "OPA" that accepts connections and never answers: any probe of it would be seen.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    dead_database = create_engine(f"postgresql+psycopg://dsgw@127.0.0.1:{free_port()}/none")
    cut_off = dataclasses.replace(
        gateway,
        engine=dead_database,
        policy=PolicyClient(f"http://127.0.0.1:{port}", timeout=0.5),
    )
    try:
        with TestClient(create_app(gateway=cut_off), base_url=BASE_URL) as other:
            health = other.get("/health")
            assert health.status_code == 200, health.text
            assert health.json()["status"] == "ok"
            with pytest.raises(BlockingIOError):
                listener.accept()  # nobody called the policy engine
            ready = other.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["policy_engine"] == "unavailable"
        assert ready.json()["checks"]["ledger"] == "unreadable"
    finally:
        cut_off.policy.close()
        dead_database.dispose()
        listener.close()


def test_a_database_that_stops_answering_is_logged_with_the_route_it_failed(gateway):
    dead = create_engine(f"postgresql+psycopg://dsgw@127.0.0.1:{free_port()}/none")
    metrics.watch_engine(dead)  # as build_gateway watches the engine it makes
    cut_off = dataclasses.replace(gateway, engine=dead, sessions=sessionmaker(dead))
    before = scrape_registry()
    try:
        with (
            TestClient(create_app(gateway=cut_off), base_url=BASE_URL) as other,
            capture_logs() as logs,
        ):
            response = other.get("/ledger/checkpoint")
    finally:
        dead.dispose()
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "urn:dsgw:problem:database-unavailable"
    failed = [e for e in logs if e["event"] == "request failed"]
    assert [(e["log_level"], e["route"], e["problem"]) for e in failed] == [
        ("error", "/ledger/checkpoint", "database-unavailable")
    ]
    assert "Connection refused" in failed[0]["reason"]
    after = scrape_registry()
    assert grown(before, after, "dsgw_db_errors_total", kind="operational") >= 1


def test_a_lock_wait_that_fails_a_request_is_counted_and_logged_with_its_route(
    world, gateway, settings
):
    if gateway.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's lock wait is its 30 s busy timeout (tests/unit/test_metrics.py)")
    before = scrape(world.admin.call("GET", "/metrics"))
    frozen = psycopg.connect(
        settings.database_url.replace("postgresql+psycopg://", "postgresql://")
    )
    try:
        frozen.execute("SELECT * FROM ledger_head WHERE id = 1 FOR UPDATE")
        with capture_logs() as logs:
            response = world.admin.call(
                "POST",
                "/participants",
                json={
                    "name": "late bank",
                    "uscc": random_uscc(random.Random(11)),
                    "roles": ["consumer"],
                    "region": "domestic",
                    "jwks": {"keys": [Signer.generate().public_jwk()]},
                },
            )
    finally:
        frozen.close()
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "urn:dsgw:problem:evidence-unavailable"
    after = scrape(world.admin.call("GET", "/metrics"))
    assert grown(before, after, "dsgw_db_lock_waits_total") >= 1
    assert grown(before, after, "dsgw_db_errors_total", kind="lock_timeout") >= 1
    failed = [e for e in logs if e["event"] == "request failed"]
    assert len(failed) == 1, logs
    assert failed[0]["log_level"] == "error"
    assert failed[0]["route"] == "/participants"
    assert failed[0]["problem"] == "evidence-unavailable"
    assert "lock" in failed[0]["reason"].lower()
