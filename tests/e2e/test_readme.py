"""The README's walkthrough, followed literally (issue 14, items 21-23): every shell block marked
`<!-- walkthrough: tests/e2e/test_readme.py runs this block -->` runs, in the README's order, in
one bash session, in a fresh folder, against a `dsgw serve` started there as `./deploy/run.sh`
would start it.

Three things differ from a newcomer's machine, and only these: the gateway listens on a free port
instead of 8080 (`127.0.0.1:8080` in the blocks becomes that port), `/tmp/` becomes a folder of
the test's own, and the holder's database of *pointing a resource at its own database*
(`db.bureau.example:5432`) is a database `open` of the suite's PostgreSQL cluster, with the
README's table `public.residents` and role `dsgw_reader`.
"""

import json
import os
import re
import subprocess
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from gateway.policy.opa_process import free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MARKER = "<!-- walkthrough: tests/e2e/test_readme.py runs this block -->"
VENV = ROOT / ".venv"


def walkthrough_blocks(text: str) -> list[str]:
    """Return the marked shell blocks of the README, in order, dedented."""
    blocks = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() != MARKER:
            continue
        start = next(j for j in range(i + 1, len(lines)) if lines[j].strip())
        assert lines[start].strip() == "```sh", f"README line {start + 1}: a ```sh block"
        end = next(j for j in range(start + 1, len(lines)) if lines[j].strip() == "```")
        blocks.append(textwrap.dedent("\n".join(lines[start + 1 : end])))
    return blocks


def test_the_readme_marks_the_walkthrough_in_the_order_a_newcomer_needs():
    blocks = walkthrough_blocks(README.read_text(encoding="utf-8"))
    script = "\n".join(blocks)
    first_use = {name: script.find(f"${name}") for name in ("GW", "TOKEN", "REG", "SEQ")}
    assert script.find("GW=") < first_use["GW"]
    assert script.find("TOKEN=") < first_use["TOKEN"]
    assert script.find("env.sh") < min(first_use["REG"], first_use["SEQ"])
    assert "receipts/42" not in README.read_text(encoding="utf-8")


@pytest.mark.skipif(
    "sqlite" not in os.environ.get("DSGW_TEST_DATABASES", "sqlite"),
    reason="the walkthrough runs on the embedded default, SQLite",
)
def test_the_readme_walkthrough_runs_as_written(tmp_path, pg_cluster):
    bureau = _bureau_database(pg_cluster)
    work, scratch = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    scratch.mkdir()
    (work / ".venv").symlink_to(VENV)
    env = {k: v for k, v in os.environ.items() if k not in ("DSGW_STATE", "GW", "TOKEN")}
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    serve = subprocess.Popen(
        [str(VENV / "bin" / "dsgw"), "serve", "--port", str(port)],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert serve.poll() is None, (tmp_path / "serve.log").read_text()
            assert time.monotonic() < deadline, "dsgw serve did not answer within 90 s"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        script = "\n".join(walkthrough_blocks(README.read_text(encoding="utf-8")))
        script = (
            script.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
            .replace("/tmp/", f"{scratch}/")
            .replace("db.bureau.example:5432", bureau)
        )
        run = subprocess.run(
            ["bash", "-c", "set -eu\n" + script],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )
    finally:
        serve.terminate()
        try:
            serve.wait(timeout=20)
        except subprocess.TimeoutExpired:
            serve.kill()
        log.close()
    out = run.stdout
    assert run.returncode == 0, f"{script}\n--- stdout\n{out}\n--- stderr\n{run.stderr}"
    assert "Demo complete." in out and "starting a gateway" not in out
    assert re.search(
        r"consumer prt_\w+, registration reg_\w+, contract ctr_\w+, receipt seq \d+", out
    )
    assert out.count('"FINALIZED"') == 1  # the demo's contract, read with curl and a token
    # The consumer's walkthrough with the client's commands (gateway/client/cli.py).
    assert re.search(r"contract ctr_\w+ is AGREED: signed as its provider", out)
    assert re.search(r"contract ctr_\w+ is FINALIZED: signed as its consumer", out)
    assert re.search(r"ctr_\w+  FINALIZED .* 0/1000 rows", out)  # dsgw contract list
    assert re.search(r"product prd_\w+ is listed", out)  # drafted, submitted, listed by CLI
    assert re.search(r"pulled 5 rows, \d+ bytes to residents.csv", out)  # dsgw pull
    assert re.search(r"receipt: entry \d+ \(transfer\.completed, .*\) verified offline", out)
    assert re.search(r"\d+ ledger entries name contract ctr_\w+", out)  # dsgw trace
    assert re.search(r"refused: \d{3} urn:dsgw:problem:", out)  # the client's one exception
    assert "FINALIZED\n2 rows; masked" in out
    assert re.search(r"OK: entry \d+ \(exchange\.delivered", out)  # the receipt of $SEQ
    assert "OK: registration reg_" in out  # the certificate of $REG
    assert "extends OLD" in out
    # The holder's resource at its own database: opened before the 201, the password in no reply.
    at = out.rfind('{"id":"res_', 0, out.find(f"@{bureau}/open"))
    assert at >= 0, out
    registered, _end = json.JSONDecoder().raw_decode(out, at)
    assert registered["data_address"] == {
        "type": "sql",
        "url": f"postgresql://dsgw_reader@{bureau}/open",
        "table": "public.residents",
        "columns": None,
        "order_by": None,
    }
    assert registered["status"] == "registering" and registered["row_count"] is None
    assert "reader role's password" not in out and "secret" not in registered["data_address"]


def _bureau_database(pg_cluster) -> str:
    """Make the README's holder database (`open`: table public.residents, role dsgw_reader) on
    the suite's cluster; return its host:port, which stands for db.bureau.example:5432."""
    import psycopg

    pg_cluster.drop_database("open")  # a rerun in the same session starts afresh
    pg_cluster.create_database("open")
    with psycopg.connect(
        host=pg_cluster.host, port=pg_cluster.port, user="postgres", dbname="open", autocommit=True
    ) as conn:
        conn.execute(
            "CREATE TABLE public.residents (name text, phone text, id_card text, "
            "district text, score double precision)"
        )
        conn.execute(
            "INSERT INTO public.residents VALUES ('张三', '13812345678', '110101199003077777', "
            "'海淀', 88.5), ('李四', '13987654321', '110101198805051234', '朝阳', 91.0)"
        )
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'dsgw_reader'").fetchone():
            conn.execute("CREATE ROLE dsgw_reader LOGIN PASSWORD 'the reader role''s password'")
        conn.execute("GRANT SELECT ON public.residents TO dsgw_reader")
    return f"{pg_cluster.host}:{pg_cluster.port}"
