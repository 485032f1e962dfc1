"""`dsgw demo` beside `dsgw serve` (issue 14, items 20, 21 and 24): it uses the gateway that
serves its state folder instead of starting a second one, survives a key rotation, and tells the
newcomer where the keys and ids it made are."""

import os
import re
import shlex
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from gateway.demo import run_demo
from gateway.policy.opa_process import free_port
from gateway.running import SERVE_FILE, announce, serving

ROOT = Path(__file__).resolve().parents[2]
sqlite_only = pytest.mark.skipif(
    "sqlite" not in os.environ.get("DSGW_TEST_DATABASES", "sqlite"),
    reason="the demo and `dsgw serve` run on the embedded default, SQLite",
)


def dsgw(state: Path, *args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--state", str(state), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if k != "DSGW_STATE"},
    )


@contextmanager
def served(state: Path, cwd: Path):
    """Run `dsgw serve` on `state` and a free port; yield its URL; stop it."""
    port = free_port()
    log = (cwd / f"serve-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "--state", str(state), "serve", "--port", str(port)],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if k != "DSGW_STATE"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (cwd / f"serve-{port}.log").read_text()
            assert time.monotonic() < deadline, "dsgw serve did not answer within 90 s"
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@sqlite_only
def test_demo_after_a_key_rotation_uses_the_serving_gateway_and_says_what_it_made(tmp_path):
    state = tmp_path / "state"
    with served(state, tmp_path) as url:
        assert serving(state).url == url
        refused = dsgw(state, "keys", "rotate", cwd=tmp_path, timeout=60)
        assert refused.returncode == 2 and "serves this state folder" in refused.stderr
    assert not (state / SERVE_FILE).exists()  # serve removes its announcement when it stops
    rotated = dsgw(state, "keys", "rotate", cwd=tmp_path, timeout=60)
    assert rotated.returncode == 0, rotated.stderr

    with served(state, tmp_path) as url:
        demo = dsgw(state, "demo", cwd=tmp_path)
    out = demo.stdout
    assert demo.returncode == 0, out + demo.stderr
    assert f"using the gateway that already serves {state} at {url}" in out
    assert "starting a gateway" not in out
    assert "Demo complete." in out  # the last step: the export (both keys) verified offline

    # 21: where the keys are, the registration ids, the contract, the delivery's receipt seq
    workdir = next((state / "demo").glob("2*"))
    for role in ("merchant", "consumer"):
        key_file = workdir / f"{role}.jwk"
        assert key_file.exists() and f"key {key_file.relative_to(tmp_path)}" in out
    assert ". state/demo/latest/env.sh" in out
    env = (state / "demo" / "latest" / "env.sh").read_text()
    values = dict(
        line.split("=", 1) for line in env.splitlines() if line and not line.startswith("#")
    )
    assert shlex.split(values["KEYS"]) == [str(workdir.resolve())]
    for name, prefix in (("REG", "reg_"), ("CONTRACT", "ctr_"), ("CONSUMER", "prt_")):
        assert values[name].startswith(prefix) and values[name] in out, name
    assert re.search(rf"receipt: seq {values['SEQ']} \(GET /ledger/receipts/{values['SEQ']}\)", out)


def test_demo_refuses_when_the_serving_gateway_does_not_answer(tmp_path, capsys):
    state = tmp_path / "state"
    dead = f"http://127.0.0.1:{free_port()}"
    with announce(state, dead):  # this live process "serves" the state but answers nothing
        assert run_demo(url=None, state_dir=state) == 2
    err = capsys.readouterr().err
    assert f"a gateway (pid {os.getpid()}) serves the state folder {state}" in err
    assert "pass --url" in err
    assert not (state / "demo").exists()  # nothing started, nothing made


def test_a_stale_announcement_of_a_gone_process_is_ignored(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], text=True, capture_output=True
    ).stdout.strip()
    (state / SERVE_FILE).write_text(f'{{"pid": {gone}, "url": "http://127.0.0.1:1"}}')
    assert serving(state) is None
