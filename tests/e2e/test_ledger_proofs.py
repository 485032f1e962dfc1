"""Checkpoints, proofs and receipts over HTTP, checked offline with only the gateway's keys."""

import base64
import json
from dataclasses import replace

import pytest

from gateway.app import build_gateway
from gateway.cli import main as dsgw
from ledger.checkpoint import verify_checkpoint
from ledger.keys import jwk_thumbprint, public_key_from_jwk
from ledger.merkle import verify_consistency
from tests.e2e.world import build_world


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def _keys(party) -> dict:
    response = party.call("GET", "/ledger/keys")
    assert response.status_code == 200, response.text
    return response.json()


def _pulled_receipt(world) -> dict:
    contract = world.contract(world.product["offers"][0]["id"])
    response = world.pull(contract["id"])
    assert response.status_code == 200, response.text
    return response.json()["receipt"]


def test_an_exchange_receipt_is_provable_offline_by_consumer_and_merchant(world, tmp_path, capsys):
    receipt = _pulled_receipt(world)
    assert receipt["url"] == f"/ledger/receipts/{receipt['seq']}"
    before = world.consumer.call("GET", receipt["url"])
    assert before.status_code == 200 and before.json()["inclusion"] is None
    cut = world.auditor.call("POST", "/ledger/checkpoints")
    assert cut.status_code == 201, cut.text
    assert world.auditor.call("POST", "/ledger/checkpoints").status_code == 200  # nothing new

    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({"keys": _keys(world.consumer)["keys"]}))
    for party in (world.consumer, world.merchant):
        got = party.call("GET", receipt["url"])
        assert got.status_code == 200, got.text
        saved = got.json()
        assert saved["entry"]["hash"] == receipt["hash"]
        assert saved["inclusion"]["size"] == cut.json()["size"]
        path = tmp_path / f"{party.name}.receipt.json"
        path.write_text(json.dumps(saved))
        assert dsgw(["ledger", "verify-receipt", str(path), "--keys", str(keys_file)]) == 0
        out = capsys.readouterr().out
        assert f"OK: entry {receipt['seq']} (exchange.delivered" in out
        assert f"signed checkpoint of size {cut.json()['size']}" in out


@pytest.mark.parametrize(
    ("tamper", "check"),
    [
        (lambda r: r["entry"]["body"]["data"].update(rows=999), "hash"),
        (lambda r: r["entry"].update(sig=r["entry"]["sig"][::-1]), "signature"),
        (lambda r: r["inclusion"]["hashes"].__setitem__(0, "00" * 32), "inclusion"),
        (lambda r: r["inclusion"].update(index=r["inclusion"]["index"] + 1), "inclusion"),
        (
            lambda r: r["inclusion"].update(
                checkpoint=r["inclusion"]["checkpoint"].replace("\n", "\n1", 1)
            ),
            "checkpoint",
        ),
    ],
)
def test_a_tampered_receipt_fails_naming_the_check(world, tmp_path, capsys, tamper, check):
    receipt = _pulled_receipt(world)
    world.auditor.call("POST", "/ledger/checkpoints")
    saved = world.consumer.call("GET", receipt["url"]).json()
    tamper(saved)
    path = tmp_path / "receipt.json"
    path.write_text(json.dumps(saved))
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({"keys": _keys(world.consumer)["keys"]}))
    capsys.readouterr()
    assert dsgw(["ledger", "verify-receipt", str(path), "--keys", str(keys_file), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["error"]["check"] == check


def test_receipts_of_others_stay_hidden_and_unknown_ones_are_problems(world):
    receipt = _pulled_receipt(world)
    outsider = world.register("outsider", ["consumer"])
    hidden = outsider.call("GET", receipt["url"])
    assert hidden.status_code == 404
    assert hidden.headers["content-type"] == "application/problem+json"
    missing = world.auditor.call("GET", "/ledger/proofs/inclusion?seq=999999")
    assert missing.status_code == 404
    not_yet = world.auditor.call("GET", f"/ledger/proofs/inclusion?seq={receipt['seq']}")
    assert not_yet.status_code == 409
    assert not_yet.json()["type"] == "urn:dsgw:problem:not-checkpointed"
    forbidden = world.consumer.call("GET", "/ledger/proofs/consistency?old=1&new=2")
    assert forbidden.status_code == 403
    bad = world.auditor.call("GET", "/ledger/proofs/consistency?old=5&new=2")
    assert bad.status_code == 422 and bad.json()["type"].endswith("invalid-proof-request")


def test_consistency_proofs_between_checkpoints_verify_offline(world, tmp_path, capsys):
    first = world.auditor.call("POST", "/ledger/checkpoints").json()
    _pulled_receipt(world)
    second = world.auditor.call("POST", "/ledger/checkpoints").json()
    keys = {jwk_thumbprint(k): public_key_from_jwk(k) for k in _keys(world.auditor)["keys"]}
    old, _ = verify_checkpoint(first["note"], keys)
    new, _ = verify_checkpoint(second["note"], keys)
    got = world.auditor.call("GET", f"/ledger/proofs/consistency?old={old.size}&new={new.size}")
    assert got.status_code == 200, got.text
    proof = [bytes.fromhex(h) for h in got.json()["hashes"]]
    verify_consistency(old.size, new.size, old.root, new.root, proof)
    saved, keys_file = tmp_path / "proof.json", tmp_path / "keys.json"
    saved.write_text(got.text)
    keys_file.write_text(json.dumps({"keys": _keys(world.auditor)["keys"]}))
    assert dsgw(["ledger", "verify-consistency", str(saved), "--keys", str(keys_file)]) == 0
    assert f"size {new.size} extends the one of size {old.size}" in capsys.readouterr().out
    forged = got.json()
    forged["hashes"][0] = "00" * 32
    saved.write_text(json.dumps(forged))
    assert dsgw(["ledger", "verify-consistency", str(saved), "--keys", str(keys_file)]) == 1
    assert "check 'consistency' failed" in capsys.readouterr().out
    listed = world.auditor.call("GET", "/ledger/checkpoints").json()
    assert [cp["size"] for cp in listed] == [old.size, new.size]
    public = world.client.get("/ledger/checkpoint")
    assert public.status_code == 200 and public.json()["note"] == second["note"]
    assert base64.b64decode(public.json()["note"].split("\n")[2]) == new.root


def test_the_checkpoint_schedule_is_public_and_follows_the_latest_checkpoint(world, settings):
    before = world.client.get("/ledger/checkpoints/schedule")  # no token
    assert before.status_code == 200, before.text
    assert before.json()["every"] == settings.checkpoint_every
    assert before.json()["seconds"] == settings.checkpoint_seconds
    cut = world.auditor.call("POST", "/ledger/checkpoints").json()
    after = world.client.get("/ledger/checkpoints/schedule").json()
    assert (after["latest_size"], after["latest_time"]) == (cut["size"], cut["time"])
    assert (before.json()["latest_size"] == 0) is (before.json()["latest_time"] is None)


def test_export_with_checkpoints_and_a_later_export_extends_it(world, settings, tmp_path, capsys):
    db = ["--database-url", settings.resolved_database_url]
    state = ["--state", str(settings.state_dir)]
    assert dsgw([*state, "ledger", "checkpoint", *db]) == 0
    assert dsgw([*state, "ledger", "export", "--out", str(tmp_path / "old"), *db]) == 0
    _pulled_receipt(world)
    assert dsgw([*state, "ledger", "checkpoint", *db]) == 0
    assert "signed a new checkpoint" in capsys.readouterr().out
    assert dsgw([*state, "ledger", "export", "--out", str(tmp_path / "new"), *db]) == 0
    capsys.readouterr()
    assert dsgw(["ledger", "verify", str(tmp_path / "new"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checkpoints"] == 2 and report["ok"] is True
    assert dsgw(["ledger", "verify", str(tmp_path / "old"), str(tmp_path / "new")]) == 0
    assert "extends OLD" in capsys.readouterr().out
    # The other way round, NEW is not an extension of OLD: it is shorter.
    assert dsgw(["ledger", "verify", str(tmp_path / "new"), str(tmp_path / "old")]) == 1


class TestCheckpointPolicy:
    @pytest.fixture
    def settings(self, settings):
        return replace(settings, checkpoint_every=5)

    def test_a_checkpoint_is_signed_every_n_entries(self, world, client):
        listed = world.auditor.call("GET", "/ledger/checkpoints").json()
        head = world.auditor.call("GET", "/ledger/head").json()["size"]
        assert [cp["size"] for cp in listed] == list(range(5, head + 1, 5))


class TestCheckpointSeconds:
    @pytest.fixture
    def settings(self, settings):
        return replace(settings, checkpoint_seconds=0.0, checkpoint_every=10**6)

    def test_with_no_waiting_time_every_entry_is_checkpointed_at_once(self, world):
        receipt = _pulled_receipt(world)
        got = world.consumer.call("GET", receipt["url"]).json()
        assert got["inclusion"]["size"] == receipt["seq"]


def test_key_rotation_is_announced_and_the_retired_key_can_no_longer_append(
    world, gateway, settings, tmp_path, capsys
):
    db = ["--database-url", settings.resolved_database_url]
    state = ["--state", str(settings.state_dir)]
    old_kid = gateway.signer.kid
    assert dsgw([*state, "keys", "rotate", *db]) == 0
    assert f"rotated: {old_kid} -> " in capsys.readouterr().out
    assert (settings.state_dir / "keys" / "retired" / f"{old_kid}.jwk").exists()

    # This process still holds the retired key: its next append is refused, nothing changes.
    refused = world.consumer.call(
        "POST",
        "/contracts",
        json={"offer_id": world.product["offers"][0]["id"], "purpose": "credit-risk-assessment"},
    )
    assert refused.status_code == 503
    assert refused.json()["type"] == "urn:dsgw:problem:evidence-unavailable"

    restarted = build_gateway(settings)
    try:
        assert restarted.signer.kid != old_kid
        keys = _keys(world.consumer)
        assert [jwk_thumbprint(k) for k in keys["keys"]] == [old_kid, restarted.signer.kid]
        assert keys["active"] == restarted.signer.kid
    finally:
        restarted.policy.close()
        restarted.engine.dispose()
    assert dsgw([*state, "ledger", "checkpoint", *db]) == 0
    assert dsgw([*state, "ledger", "export", "--out", str(tmp_path / "x"), *db]) == 0
    capsys.readouterr()
    assert dsgw(["ledger", "verify", str(tmp_path / "x"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(report["kids"]) == sorted([old_kid, restarted.signer.kid])
    assert report["types"]["ledger.key-rotated"] == 1


@pytest.mark.parametrize(
    "url",
    [
        "/ledger/proofs/inclusion?seq=99999999999999999999",
        "/ledger/proofs/inclusion?seq=1&size=99999999999999999999",
        "/ledger/proofs/inclusion?seq=0",
        "/ledger/receipts/99999999999999999999",
        "/ledger/receipts/0",
        "/ledger/entries/99999999999999999999",
        "/ledger/entries?start=99999999999999999999",
        "/ledger/proofs/consistency?old=1&new=99999999999999999999",
        "/ledger/proofs/consistency?old=0&new=1",
    ],
)
def test_out_of_range_numbers_are_422_problems_not_database_errors(world, url):
    response = world.auditor.call("GET", url)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_a_proof_against_a_checkpoint_that_does_not_cover_the_entry_is_422(world):
    first = world.auditor.call("POST", "/ledger/checkpoints").json()
    _pulled_receipt(world)
    head = world.auditor.call("GET", "/ledger/head").json()["size"]
    url = f"/ledger/proofs/inclusion?seq={head}&size={first['size']}"
    response = world.auditor.call("GET", url)
    assert response.status_code == 422
    assert response.json()["type"] == "urn:dsgw:problem:invalid-proof-request"
    assert world.auditor.call("GET", "/ledger/proofs/inclusion?seq=1&size=2").status_code == 404
