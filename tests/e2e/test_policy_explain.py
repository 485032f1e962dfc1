"""`dsgw policy explain ID`: replay a recorded decision and say whether and why it differs now."""

import json
import shutil

from gateway.cli import main
from gateway.policy.opa_process import POLICIES_DIR, OpaServer
from gateway.policy.versions import bundle_version_of_dir
from tests.e2e.test_policy_versions import MORATORIUM, _gateway, _wait_for_version
from tests.e2e.world import build_world


def _explain(settings, decision_id: str, capsys, *extra: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(
        [
            "--state",
            str(settings.state_dir),
            "policy",
            "explain",
            decision_id,
            "--database-url",
            settings.resolved_database_url,
            "--json",
            *extra,
        ]
    )
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_unchanged_policy_replays_the_same_decision(client, gateway, settings, capsys):
    world = build_world(client, settings.state_dir)
    contract = world.contract(world.product["offers"][0]["id"])
    denied = world.pull(contract["id"], purpose="marketing").json()
    # Without --opa-url the command starts its own OPA on policies/.
    code, report = _explain(settings, denied["decision_id"], capsys)
    assert code == 0, report
    assert report["same"] is True and report["differences"] == []
    assert report["recorded_version"] == report["current_version"]
    assert report["replayed"] == report["recorded"]
    assert "exactly as recorded" in report["why"]


def test_text_report_names_the_verdict_and_the_reasons(
    client, gateway, settings, capsys, opa_server
):
    world = build_world(client, settings.state_dir)
    contract = world.contract(world.product["offers"][0]["id"])
    denied = world.pull(contract["id"], purpose="marketing").json()
    capsys.readouterr()
    code = main(
        [
            "--state",
            str(settings.state_dir),
            "policy",
            "explain",
            denied["decision_id"],
            "--database-url",
            settings.resolved_database_url,
            "--opa-url",
            opa_server.url,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "SAME" in out and "PURPOSE_NOT_PERMITTED" in out and '"marketing"' in out


def test_a_changed_policy_is_named_as_the_cause_of_the_difference(settings, tmp_path, capsys):
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
        allowed = world.pull(contract["id"]).json()
        old = bundle_version_of_dir(policies)
        rego = policies / "dsgw" / "exchange.rego"
        rego.write_text(rego.read_text() + MORATORIUM)
        new = bundle_version_of_dir(policies)
        _wait_for_version(gw, new)
        code, report = _explain(settings, allowed["exchange_id"], capsys, "--opa-url", opa.url)
    assert code == 1
    assert report["same"] is False
    assert (report["recorded_version"], report["current_version"]) == (old, new)
    assert "the exchange was allowed and would now be denied" in report["differences"]
    assert "reason MORATORIUM (Moratorium) would now be given" in report["differences"]
    assert "the policies changed" in report["why"] and old in report["why"]


def test_a_refusal_made_while_opa_was_down_is_explained_as_the_gateways(
    client, gateway, settings, capsys, opa_server
):
    world = build_world(client, settings.state_dir)
    contract = world.contract(world.product["offers"][0]["id"])
    opa_server.stop()
    try:
        refused = world.pull(contract["id"]).json()
    finally:
        opa_server.start()
    code, report = _explain(settings, refused["decision_id"], capsys, "--opa-url", opa_server.url)
    assert code == 1
    assert report["replayed"]["allow"] is True
    assert "gateway's refusal (POLICY_UNAVAILABLE)" in report["why"]
    assert (
        "reason POLICY_UNAVAILABLE (No policy decision) would no longer be given"
        in (report["differences"])
    )


def test_unknown_decision_and_unreachable_opa_are_reported(client, gateway, settings, capsys):
    world = build_world(client, settings.state_dir)
    contract = world.contract(world.product["offers"][0]["id"])
    allowed = world.pull(contract["id"]).json()
    args = ["--state", str(settings.state_dir), "policy", "explain"]
    db = ["--database-url", settings.resolved_database_url]
    assert main([*args, "dec_nope", *db]) == 2
    assert "no decision 'dec_nope'" in capsys.readouterr().err
    from gateway.policy.opa_process import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    code, report = _explain(settings, allowed["exchange_id"], capsys, "--opa-url", dead)
    assert code == 2 and report["replayed"] is None
    assert "could not be asked" in report["why"]
