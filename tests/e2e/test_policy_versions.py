"""Policy versions are evidence, policies reload live, and every way OPA can fail is a denial.

Every test here runs against a real OPA: the session's, or one started on a policy folder
written for the test (a copy of policies/ changed live, a policy that is slow, one that returns
a malformed decision, one that asks for an obligation the gateway does not know).
"""

import shutil
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from gateway.app import build_gateway, create_app
from gateway.exchanges.models import Decision
from gateway.policy.opa_process import POLICIES_DIR, OpaServer
from gateway.policy.versions import ACTIVATED, bundle_version_of_dir
from ledger import store as ledger_store
from tests.conftest import BASE_URL
from tests.e2e.world import build_world


def _entries(gateway, type_: str) -> list:
    with gateway.engine.connect() as conn:
        return [e for e in ledger_store.iter_entries(conn) if e.type == type_]


def _decision(gateway, decision_id: str) -> Decision:
    with gateway.sessions() as session:
        return session.execute(select(Decision).where(Decision.id == decision_id)).scalar_one()


@contextmanager
def _gateway(settings, opa_url: str, **overrides):
    """A gateway and its HTTP client on the test's database, asking the OPA at `opa_url`."""
    gw = build_gateway(replace(settings, opa_url=opa_url, **overrides))
    try:
        with TestClient(create_app(gateway=gw), base_url=BASE_URL) as client:
            yield gw, client
    finally:
        gw.policy.close()
        gw.engine.dispose()


def _world_on_the_real_policy(gw, client, settings):
    """Build the cast with the session's real policy (drafting a product asks it for the
    product's grade), then hand the gateway back to the OPA under test."""
    from gateway.policy.client import PolicyClient

    under_test = gw.policy
    gw.policy = PolicyClient(settings.opa_url, timeout=2.0)
    try:
        return build_world(client, settings.state_dir)
    finally:
        gw.policy.close()
        gw.policy = under_test


def _wait_for_version(gw, version: str, timeout: float = 30.0) -> None:
    # OPA recompiles every module of the folder on a change (slower on a loaded machine), and
    # each look lists them all (some 700 KB): look every 0.2 s, for up to `timeout`.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gw.policy.version(max_age=0)[0] == version:
            return
        time.sleep(0.2)
    raise AssertionError(f"OPA did not load policy version {version} within {timeout} s")


DECISION_OK = (
    '"allow": true, "reasons": [], "obligations": {"mask": [], "drop": [], "row_cap": null, '
    '"min_group_size": null, "watermark": false}'
)


def _policy_dir(tmp_path: Path, name: str, body: str) -> Path:
    folder = tmp_path / name
    (folder / "dsgw").mkdir(parents=True)
    (folder / "dsgw" / "exchange.rego").write_text("package dsgw.exchange\n\n" + body)
    return folder


def test_every_decision_carries_the_bundle_version_of_the_policies_files(client, gateway, settings):
    world = build_world(client, settings.state_dir)
    expected = bundle_version_of_dir(POLICIES_DIR)
    activated = _entries(gateway, ACTIVATED)
    assert [e.data["version"] for e in activated] == [expected]  # recorded once, at start
    assert sorted(activated[0].data["modules"]) == [
        "policies/dsgw/compute.rego",
        "policies/dsgw/compute_test.rego",
        "policies/dsgw/exchange.rego",
        "policies/dsgw/exchange_test.rego",
        "policies/dsgw/exposure_test.rego",
        "policies/dsgw/federation.rego",
        "policies/dsgw/federation_test.rego",
        "policies/dsgw/grading_matrix_test.rego",
        "policies/dsgw/masking_test.rego",
        "policies/dsgw/settlement.rego",
        "policies/dsgw/settlement_test.rego",
    ]
    contract = world.contract(world.product["offers"][0]["id"])
    allowed = world.pull(contract["id"])
    denied = world.pull(contract["id"], purpose="marketing")
    assert allowed.status_code == 200 and denied.status_code == 403
    assert denied.json()["policy_version"] == expected
    for seq, decision_id in (
        (allowed.json()["receipt"]["seq"], allowed.json()["exchange_id"]),
        (denied.json()["ledger_seq"], denied.json()["decision_id"]),
    ):
        with gateway.engine.connect() as conn:
            assert ledger_store.get_entry(conn, seq).data["policy_version"] == expected
        assert _decision(gateway, decision_id).policy_version == expected
        read = world.auditor.call("GET", f"/decisions/{decision_id}")
        assert read.status_code == 200 and read.json()["policy_version"] == expected
    assert len(_entries(gateway, ACTIVATED)) == 1  # the same version is not recorded again
    # The policy derives what the delivery exposes; the ledger keeps it with the delivery.
    exposure = allowed.json()["receipt"]["body"]["data"]["exposure"]
    assert exposure["grade"] == "general" and exposure["level"] == "L3"
    assert exposure["personal_information"] is False  # every personal field was masked
    assert any("masked" in note for note in exposure["lowered"])


def test_a_policy_changed_live_is_a_new_version_on_the_ledger(settings, tmp_path):
    policies = tmp_path / "policies"
    shutil.copytree(POLICIES_DIR, policies)
    with (
        OpaServer(policies=policies) as opa,
        _gateway(settings, opa.url, policy_version_ttl=0) as (
            gw,
            client,
        ),
    ):
        world = build_world(client, settings.state_dir)
        contract = world.contract(world.product["offers"][0]["id"])
        first = world.pull(contract["id"])
        assert first.status_code == 200
        old = bundle_version_of_dir(policies)
        assert _decision(gw, first.json()["exchange_id"]).policy_version == old

        rego = policies / "dsgw" / "exchange.rego"
        rego.write_text(rego.read_text().replace('"credit-risk-assessment"', '"x"') + MORATORIUM)
        new = bundle_version_of_dir(policies)
        assert new != old
        _wait_for_version(gw, new)  # OPA reloads by itself; the gateway is not restarted

        second = world.pull(contract["id"])
        assert second.status_code == 403, second.text
        assert [r["code"] for r in second.json()["reasons"]] == ["MORATORIUM"]
        assert second.json()["policy_version"] == new
        activated = _entries(gw, ACTIVATED)
        assert [e.data["version"] for e in activated] == [old, new]
        assert activated[-1].data["previous"] == old
        assert activated[-1].seq < second.json()["ledger_seq"]


MORATORIUM = """
# METADATA
# title: Moratorium
# description: No exchange at all while the moratorium lasts.
# custom:
#   code: MORATORIUM
deny contains reason(rego.metadata.rule(), "no exchange during the moratorium") if {
	input.action == "exchange"
}
"""


def test_opa_stopped_in_the_middle_of_the_suite_fails_closed_then_recovers(
    client, gateway, settings, opa_server
):
    world = build_world(client, settings.state_dir)
    contract = world.contract(world.product["offers"][0]["id"])
    assert world.pull(contract["id"]).status_code == 200
    opa_server.stop()
    try:
        down = world.pull(contract["id"])
        assert down.status_code == 503, down.text
        body = down.json()
        assert body["type"] == "urn:dsgw:problem:policy-unavailable"
        assert [r["code"] for r in body["reasons"]] == ["POLICY_UNAVAILABLE"]
        assert "rows" not in body
        with gateway.engine.connect() as conn:
            entry = ledger_store.get_entry(conn, body["ledger_seq"])
        assert entry.type == "exchange.denied"
        assert entry.data["reasons"] == ["POLICY_UNAVAILABLE"]
        recorded = _decision(gateway, body["decision_id"])
        assert recorded.allow is False
        assert recorded.result["reasons"][0]["code"] == "POLICY_UNAVAILABLE"
    finally:
        opa_server.start()  # the rest of the suite needs it back, on the same port
    gateway.policy.version(max_age=0)
    again = world.pull(contract["id"])
    assert again.status_code == 200, again.text
    usage = world.consumer.call("GET", f"/contracts/{contract['id']}").json()["usage"]
    assert usage["calls"] == 2  # the refused call was not metered


SLOW = (
    "decision := {" + DECISION_OK + "} if {\n"
    "\tn := count([1 | some i in numbers.range(1, 1500);"
    " some j in numbers.range(1, 1500); i != j])\n"
    "\tn > count(input)\n"
    "}\n"
)


def test_opa_slower_than_the_configured_timeout_is_a_recorded_denial(settings, tmp_path):
    with (
        OpaServer(policies=_policy_dir(tmp_path, "slow", SLOW)) as opa,
        _gateway(settings, opa.url, opa_timeout=0.3) as (gw, client),
    ):
        world = _world_on_the_real_policy(gw, client, settings)
        contract = world.contract(world.product["offers"][0]["id"])
        response = world.pull(contract["id"])
        assert response.status_code == 503, response.text
        body = response.json()
        assert [r["code"] for r in body["reasons"]] == ["POLICY_UNAVAILABLE"]
        assert "(Timeout)" in body["reasons"][0]["detail"]
        assert "within 0.3 s" in body["reasons"][0]["detail"]
        assert _decision(gw, body["decision_id"]).allow is False


@pytest.mark.parametrize(
    "body, fragment",
    [
        ('decision := {"allow": "yes", "reasons": [], "obligations": {}}', "malformed decision"),
        ('decision := {"allow": true, "obligations": {}}', "malformed decision"),
        ("decision := 42", "malformed decision"),
        (
            'decision := {"allow": true, "obligations": {}, '
            '"reasons": [{"code": "X", "title": "X", "detail": ""}]}',
            "allow is true but",
        ),
        ('decision := "allow"', "malformed decision"),
        ("decision := {" + DECISION_OK + "} if input.nothing", "undefined"),
    ],
    ids=[
        "allow-not-boolean",
        "no-reasons",
        "a-number",
        "allow-with-reasons",
        "a-string",
        "undefined",
    ],
)
def test_a_malformed_or_undefined_decision_is_a_recorded_denial(settings, tmp_path, body, fragment):
    with (
        OpaServer(policies=_policy_dir(tmp_path, "bad", body + "\n")) as opa,
        _gateway(settings, opa.url) as (gw, client),
    ):
        world = _world_on_the_real_policy(gw, client, settings)
        contract = world.contract(world.product["offers"][0]["id"])
        response = world.pull(contract["id"])
        assert response.status_code == 403, response.text
        problem = response.json()
        assert problem["type"] == "urn:dsgw:problem:policy-denied"
        assert [r["code"] for r in problem["reasons"]] == ["POLICY_UNDEFINED"]
        assert fragment in problem["reasons"][0]["detail"]
        assert "rows" not in problem
        with gw.engine.connect() as conn:
            entry = ledger_store.get_entry(conn, problem["ledger_seq"])
        assert entry.data["reasons"] == ["POLICY_UNDEFINED"]


def test_a_decision_with_an_obligation_the_gateway_does_not_know_is_refused(settings, tmp_path):
    body = DECISION_OK.replace('"watermark": false', '"watermark": false, "encrypt": "aes"')
    with (
        OpaServer(policies=_policy_dir(tmp_path, "obl", "decision := {" + body + "}\n")) as opa,
        _gateway(settings, opa.url) as (gw, client),
    ):
        world = _world_on_the_real_policy(gw, client, settings)
        contract = world.contract(world.product["offers"][0]["id"])
        response = world.pull(contract["id"])
        assert response.status_code == 403, response.text
        problem = response.json()
        assert [r["code"] for r in problem["reasons"]] == ["OBLIGATION_UNSUPPORTED"]
        assert "encrypt" in problem["reasons"][0]["detail"]
        assert "rows" not in problem
        usage = world.consumer.call("GET", f"/contracts/{contract['id']}").json()["usage"]
        assert usage == {"rows": 0, "calls": 0}


def test_a_version_first_seen_after_start_is_recorded_before_its_first_decision(
    settings, opa_server
):
    from gateway.policy.client import PolicyClient
    from gateway.policy.opa_process import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    with _gateway(settings, dead) as (gw, client):
        assert _entries(gw, ACTIVATED) == []  # OPA not answering at start: nothing to record
        world = _world_on_the_real_policy(gw, client, settings)
        contract = world.contract(world.product["offers"][0]["id"])
        gw.policy.close()
        gw.policy = PolicyClient(opa_server.url, timeout=2.0)  # OPA comes up later
        pulled = world.pull(contract["id"])
        assert pulled.status_code == 200, pulled.text
        activated = _entries(gw, ACTIVATED)
        assert [e.data["version"] for e in activated] == [bundle_version_of_dir(POLICIES_DIR)]
        assert activated[0].data["previous"] is None
        assert activated[0].seq < pulled.json()["receipt"]["seq"]


def test_the_watcher_reads_a_policy_changed_on_disk_without_any_request(settings, tmp_path):
    """No request asks OPA for its policies: the watcher sees the folder change (a few stat
    calls) and lists OPA's policies until they match; the next decision then carries the new
    version, recorded once, before it."""
    from gateway.policy.watch import VersionWatcher

    policies = tmp_path / "policies"
    shutil.copytree(POLICIES_DIR, policies)
    with OpaServer(policies=policies) as opa, _gateway(settings, opa.url) as (gw, client):
        world = _world_on_the_real_policy(gw, client, settings)
        contract = world.contract(world.product["offers"][0]["id"])
        old = bundle_version_of_dir(policies)
        assert gw.policy.cached_version()[0] == old
        watcher = VersionWatcher(gw, interval=3600, folder=policies).start()  # no timed poll
        try:
            rego = policies / "dsgw" / "exchange.rego"
            rego.write_text(rego.read_text() + MORATORIUM)
            new = bundle_version_of_dir(policies)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and gw.policy.cached_version()[0] != new:
                time.sleep(0.1)
        finally:
            watcher.stop()
        assert gw.policy.cached_version()[0] == new  # read by the watcher, no request made
        denied = world.pull(contract["id"])
        assert denied.status_code == 403 and denied.json()["policy_version"] == new
        activated = _entries(gw, ACTIVATED)
        assert [e.data["version"] for e in activated][-2:] == [old, new]
        assert activated[-1].seq < denied.json()["ledger_seq"]


def test_the_listing_of_opas_policies_is_read_without_decoding_the_syntax_trees(
    opa_server, tmp_path, monkeypatch
):
    import json

    from gateway.policy import transport
    from gateway.policy.client import PolicyClient, listed_modules

    policy = PolicyClient(opa_server.url, timeout=10.0)
    try:
        reply = policy._client.transport.get(f"{opa_server.url}/v1/policies", timeout=10.0)
        body = reply.content
        full = {m["id"]: m["raw"] for m in json.loads(body)["result"]}
        assert len(full) >= 10 and listed_modules(body) == full
        assert body.count(b'{"id":') > len(full)  # syntax-tree objects that begin with "id" too
        assert body.count(b'"raw":') == len(full)  # and none has a "raw" key: the scan's premise
        monkeypatch.setattr(transport.Response, "json", lambda self: pytest.fail("decoded"))
        served = policy.served_modules()
        assert policy.version(max_age=0)[0] == bundle_version_of_dir(POLICIES_DIR)
    finally:
        policy.close()
    assert len(served) == len(full)
