"""The verifier's command lines take any kid and stay quiet when their reader goes away
(issue 14, items 19 and 25)."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine

from gateway.cli import main as dsgw_main
from ledger.cli import BROKEN_PIPE, glue_option_values, main
from ledger.export import export
from ledger.keys import Signer
from ledger.store import append, create_schema

REPO = Path(__file__).resolve().parents[2]
DASH = Signer(Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32))  # its kid begins with "-"
T0 = datetime(2026, 11, 21, 20, 10, tzinfo=UTC)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("dash")
    engine = create_engine(f"sqlite:///{tmp / 'ledger.db'}")
    create_schema(engine)
    with engine.begin() as conn:
        for i in range(1, 40):
            append(conn, type=f"t.e{i % 7}", data={"i": i}, time=T0, signer=DASH)
        export(
            conn,
            tmp / "export",
            public_jwks=[DASH.public_jwk()],
            signer=DASH,
            origin="t.dsgw/ledger",
            now=T0,
        )
    engine.dispose()
    return tmp / "export"


def test_the_fixture_kid_begins_with_a_dash():
    assert DASH.kid.startswith("-")


@pytest.mark.parametrize("form", ["separate", "glued"])
def test_trust_kid_takes_a_kid_that_begins_with_a_dash(folder, form, capsys):
    kid = ["--trust-kid", DASH.kid] if form == "separate" else [f"--trust-kid={DASH.kid}"]
    assert main(["verify", str(folder), *kid]) == 0
    assert capsys.readouterr().out.startswith("OK: 39 entries")


@pytest.mark.parametrize("form", ["separate", "glued"])
def test_dsgw_ledger_verify_takes_a_kid_that_begins_with_a_dash(folder, form, capsys):
    kid = ["--trust-kid", DASH.kid] if form == "separate" else [f"--trust-kid={DASH.kid}"]
    assert dsgw_main(["ledger", "verify", str(folder), *kid, "--json"]) == 0
    assert '"ok": true' in capsys.readouterr().out


def test_trust_kid_of_another_key_that_begins_with_a_dash_still_fails(folder, capsys):
    assert main(["verify", str(folder), "--trust-kid", "-" + "A" * 42]) == 1
    assert "check 'kid' failed" in capsys.readouterr().out


def test_glue_leaves_other_arguments_and_those_after_a_double_dash_alone():
    assert glue_option_values(
        ["verify", "d", "--trust-kid", "-x", "--json", "--", "--trust-kid"]
    ) == [
        "verify",
        "d",
        "--trust-kid=-x",
        "--json",
        "--",
        "--trust-kid",
    ]
    assert glue_option_values(["--trust-kid"]) == ["--trust-kid"]  # argparse names the error


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "ledger", "verify"],
        [sys.executable, "-m", "gateway.cli", "ledger", "verify"],
    ],
    ids=["python -m ledger", "dsgw"],
)
def test_verify_into_a_closed_pipe_exits_quietly(folder, command):
    """`verify DIR | head -0`: the reader is gone before the first line is written."""
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run(
            [*command, str(folder)],
            stdout=write,
            stderr=subprocess.PIPE,
            cwd=REPO,
            timeout=120,
            text=True,
        )
    finally:
        os.close(write)
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, (
        result.stderr
    )
    assert result.returncode == BROKEN_PIPE


def test_verify_piped_into_head_prints_its_first_line_without_a_traceback(folder):
    result = subprocess.run(
        f"{sys.executable} -m gateway.cli ledger verify {folder} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.stdout.startswith("OK: 39 entries")
    assert "Traceback" not in result.stderr, result.stderr
