"""`python -m ledger verify` and the verifier's independence from the gateway and SQLAlchemy."""

import ast
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from ledger.cli import main
from ledger.export import export
from ledger.keys import Signer
from ledger.store import append, create_schema

LEDGER_DIR = Path(__file__).resolve().parents[2] / "ledger"
REPO = LEDGER_DIR.parent
SIGNER = Signer.generate()
T0 = datetime(2026, 11, 21, 20, 10, tzinfo=UTC)


@pytest.fixture
def folder(tmp_path) -> Path:
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    create_schema(engine)
    with engine.begin() as conn:
        for i in range(1, 4):
            append(
                conn,
                type="participant.registered",
                data={"i": i},
                time=T0 + timedelta(seconds=i),
                signer=SIGNER,
            )
        export(
            conn,
            tmp_path / "export",
            public_jwks=[SIGNER.public_jwk()],
            signer=SIGNER,
            origin="test.dsgw/ledger",
            now=T0,
        )
    engine.dispose()
    return tmp_path / "export"


def _tamper_second_entry(folder: Path) -> None:
    path = folder / "entries.jsonl"
    path.write_bytes(path.read_bytes().replace(b'"data":{"i":2}', b'"data":{"i":7}'))


def test_verify_prints_ok_with_size_head_and_kids(folder, capsys):
    assert main(["verify", str(folder)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    head = json.loads((folder / "manifest.json").read_text())["head"]
    assert first == f"OK: 3 entries, head {head}, signed by {SIGNER.kid}"


def test_verify_prints_the_failure_and_exits_1(folder, capsys):
    _tamper_second_entry(folder)
    assert main(["verify", str(folder)]) == 1
    assert capsys.readouterr().out.startswith("FAILED: entry 2: check 'hash' failed: expected ")


def test_verify_json_reports_success(folder, capsys):
    assert main(["verify", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["ok"], report["size"], report["error"]) == (True, 3, None)
    assert report["kids"] == [SIGNER.kid]


def test_verify_json_reports_the_failed_check(folder, capsys):
    _tamper_second_entry(folder)
    assert main(["verify", str(folder), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert (report["error"]["seq"], report["error"]["check"]) == (2, "hash")
    assert set(report["error"]) == {"seq", "check", "expected", "found"}


def test_verify_with_an_untrusted_kid_fails(folder, capsys):
    # --trust-kid=KID: a kid may begin with "-", which argparse would take for an option.
    assert main(["verify", str(folder), f"--trust-kid={Signer.generate().kid}"]) == 1
    assert "check 'kid' failed" in capsys.readouterr().out


def test_missing_folder_exits_2_with_a_clear_message(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nowhere")]) == 2
    assert "nowhere is not a folder" in capsys.readouterr().err


def test_folder_without_a_manifest_exits_2(folder, capsys):
    (folder / "manifest.json").unlink()
    assert main(["verify", str(folder), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["ok"] is False


def test_usage_error_exits_2_instead_of_raising(capsys):
    assert main([]) == 2
    assert main(["verify"]) == 2


_BLOCKED_RUN = """
import importlib.abc, runpy, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("sqlalchemy", "gateway", "psycopg"):
            raise ImportError(f"{name} is blocked: the verifier must not need it")
sys.meta_path.insert(0, Block())
sys.argv = ["python -m ledger", *sys.argv[1:]]
runpy.run_module("ledger", run_name="__main__", alter_sys=True)
"""


def test_python_m_ledger_verifies_without_sqlalchemy_or_the_gateway(folder):
    result = subprocess.run(
        [sys.executable, "-c", _BLOCKED_RUN, "verify", str(folder)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 3 entries")


def test_python_m_ledger_exit_status_reports_a_failure(folder):
    _tamper_second_entry(folder)
    result = subprocess.run(
        [sys.executable, "-m", "ledger", "verify", str(folder)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "entry 2: check 'hash' failed" in result.stdout


def _imports(path: Path) -> list[tuple[str, bool]]:
    """Return (top-level module, imported at module level) for every import in `path`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name.split(".")[0], id(node) in top_level) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module.split(".")[0], id(node) in top_level))
    return found


def test_ledger_never_imports_the_gateway():
    for path in sorted(LEDGER_DIR.glob("*.py")):
        assert "gateway" not in {name for name, _ in _imports(path)}, path.name


def test_only_the_store_imports_sqlalchemy_at_module_level():
    eager = {
        path.name for path in LEDGER_DIR.glob("*.py") if ("sqlalchemy", True) in _imports(path)
    }
    assert eager == {"store.py"}


def test_python_m_ledger_checks_old_new_and_receipts_without_sqlalchemy(folder, tmp_path):
    from ledger.receipt import build_receipt

    line = (folder / "entries.jsonl").read_text().splitlines()[1]
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps(build_receipt(json.loads(line), None)))
    for argv in (
        ["verify", str(folder), str(folder), "--jobs", "2"],
        ["verify-receipt", str(receipt), "--keys", str(folder / "keys.json")],
    ):
        result = subprocess.run(
            [sys.executable, "-c", _BLOCKED_RUN, *argv],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("OK: "), result.stdout
