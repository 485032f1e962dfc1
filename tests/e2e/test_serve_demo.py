"""`dsgw demo` end to end: a real hypercorn gateway and a real OPA on loopback, then export."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    "sqlite" not in os.environ.get("DSGW_TEST_DATABASES", "sqlite"),
    reason="the demo runs on the embedded default, SQLite",
)
def test_demo_runs_to_the_end_and_its_ledger_exports_and_verifies(tmp_path):
    env = {**os.environ, "DSGW_STATE": str(tmp_path / "state")}
    demo = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    for marker in (
        "PURPOSE_NOT_PERMITTED",
        "CORE_DATA_NEVER_LEAVES",
        "CONTRACT_EXPIRED",
        "138****5678",
        "finds the ledger's digest",  # 8b: the streamed pull, its digest checked
        "8c. consumer has the gateway push the data to its own endpoint",  # the push, checked
        "Demo complete.",
        # The residents' data comes from its source, a file in the data folder.
        "at its source, a Parquet file in the gateway's data folder: {'type': 'files'",
    ):
        assert marker in demo.stdout, marker
    assert (tmp_path / "state" / "data" / "demo-residents.parquet").is_file()
    key = tmp_path / "state" / "keys" / "gateway-ed25519.jwk"
    assert key.stat().st_mode & 0o077 == 0
    assert (tmp_path / "state").stat().st_mode & 0o077 == 0  # database and keys: owner only

    out = tmp_path / "export"
    export = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "ledger", "export", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert export.returncode == 0, export.stderr
    verify = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "ledger", "verify", str(out), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    report = json.loads(verify.stdout)
    types = [json.loads(line)["body"]["type"] for line in (out / "entries.jsonl").open()]
    assert report["size"] == len(types)
    assert types.count("exchange.denied") == 3 and types.count("exchange.delivered") == 1
