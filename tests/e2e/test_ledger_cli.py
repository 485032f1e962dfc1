"""`dsgw ledger export` and `dsgw ledger verify`: offline, and tampering anywhere is caught."""

import json
import shutil

import pytest

from gateway.cli import main as dsgw
from ledger import canonical_json
from tests.e2e.world import build_world


@pytest.fixture
def exported(client, settings, tmp_path, capsys):
    world = build_world(client, settings.state_dir)
    contract = world.contract(world.product["offers"][0]["id"])
    assert world.pull(contract["id"]).status_code == 200
    assert world.pull(contract["id"], purpose="marketing").status_code == 403
    out = tmp_path / "export"
    args = ["--state", str(settings.state_dir), "ledger", "export", "--out", str(out),
            "--database-url", settings.resolved_database_url]
    assert dsgw(args) == 0
    capsys.readouterr()
    return out


def _lines(folder):
    return (folder / "entries.jsonl").read_text().splitlines()


def _canonical(entry: dict) -> str:
    """Return an entry line as a careful tamperer writes it: canonical, like the real ones."""
    return canonical_json(entry).decode()


def _write(folder, lines):
    (folder / "entries.jsonl").write_text("\n".join(lines) + "\n")


def test_export_verifies_offline(exported, capsys):
    assert dsgw(["ledger", "verify", str(exported)]) == 0
    assert "OK" in capsys.readouterr().out
    assert dsgw(["ledger", "verify", str(exported), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["size"] == len(_lines(exported))


def _tamper_each_value(line: str):
    """Yield variants of an exported entry line with one value changed."""
    entry = json.loads(line)
    for key in list(entry["body"]):
        changed = json.loads(line)
        value = changed["body"][key]
        changed["body"][key] = (
            value + 1
            if isinstance(value, int)
            else ({**value, "tampered": True} if isinstance(value, dict) else str(value) + "x")
        )
        yield f"body.{key}", changed
    for key in ("hash", "sig"):
        changed = json.loads(line)
        changed[key] = ("0" if changed[key][0] != "0" else "1") + changed[key][1:]
        yield key, changed


def test_changing_any_value_in_any_entry_fails_naming_that_entry(exported, tmp_path, capsys):
    lines = _lines(exported)
    for index in (0, len(lines) // 2, len(lines) - 1):
        for where, changed in _tamper_each_value(lines[index]):
            copy = tmp_path / f"t{index}-{where}"
            shutil.copytree(exported, copy)
            _write(copy, lines[:index] + [_canonical(changed)] + lines[index + 1 :])
            assert dsgw(["ledger", "verify", str(copy), "--json"]) != 0, where
            report = json.loads(capsys.readouterr().out)
            assert report["ok"] is False
            assert report["error"]["seq"] == index + 1, (where, report)
            assert report["error"]["check"], where


def test_changing_a_value_inside_the_data_is_caught_by_the_hash(exported, tmp_path, capsys):
    lines = _lines(exported)
    index = next(i for i, line in enumerate(lines) if "exchange.delivered" in line)
    entry = json.loads(lines[index])
    entry["body"]["data"]["rows"] = 0
    _write(exported, lines[:index] + [_canonical(entry)] + lines[index + 1 :])
    assert dsgw(["ledger", "verify", str(exported)]) == 1
    out = capsys.readouterr()
    assert f"entry {index + 1}" in out.out + out.err
    assert "hash" in out.out + out.err


def test_truncation_and_reordering_are_caught(exported, tmp_path, capsys):
    lines = _lines(exported)
    truncated = tmp_path / "truncated"
    shutil.copytree(exported, truncated)
    _write(truncated, lines[:-1])
    assert dsgw(["ledger", "verify", str(truncated), "--json"]) != 0
    assert json.loads(capsys.readouterr().out)["error"]["check"].startswith("manifest")
    reordered = tmp_path / "reordered"
    shutil.copytree(exported, reordered)
    _write(reordered, [lines[0], lines[2], lines[1], *lines[3:]])
    assert dsgw(["ledger", "verify", str(reordered), "--json"]) != 0
    assert json.loads(capsys.readouterr().out)["error"]["seq"] == 2


def test_verify_of_a_missing_folder_says_so(tmp_path, capsys):
    assert dsgw(["ledger", "verify", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err


def test_export_without_a_ledger_says_so(tmp_path, capsys):
    state = tmp_path / "empty-state"
    assert dsgw(["--state", str(state), "ledger", "export", "--out", str(tmp_path / "x")]) == 2
    assert "no ledger" in capsys.readouterr().err
