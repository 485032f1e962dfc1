"""`dsgw serve` as a real process for the tests: start it, wait until it is ready, stop it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def _clean_env() -> dict[str, str]:
    """The test's environment without the settings a test passes on the command line."""
    own = ("DSGW_STATE", "DSGW_DATABASE_URL", "DSGW_ISSUER", "DSGW_OPA_URL")
    return {k: v for k, v in os.environ.items() if k not in own}


class Served:
    """One `dsgw serve` process (and whatever it starts: workers, an OPA) on a loopback port."""

    def __init__(self, state: Path, port: int, *args: str, env: dict | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = tempfile.TemporaryFile()
        argv = [sys.executable, "-m", "gateway.cli", "--state", str(state), "serve"]
        argv += ["--port", str(port), *args]
        self.process = subprocess.Popen(
            argv,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**_clean_env(), "DSGW_RATE_LIMITS": "off", **(env or {})},
            start_new_session=True,  # its own group: a test signal never reaches pytest
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def wait_ready(self, timeout: float = 90.0) -> Served:
        """Return once GET /ready answers 200; fail with the process's output otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"dsgw serve exited with {self.process.returncode}:\n{self.output()[-4000:]}"
                )
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"dsgw serve was not ready within {timeout} s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL the serve process only (no clean-up of its own)."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL of its whole group if it lingers."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # anything it left behind
        except (ProcessLookupError, PermissionError):
            pass


def children(pid: int) -> list[tuple[int, str]]:
    """Return (pid, command line) of the live child processes of `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            state = stat.rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and state != "Z":
            found.append((int(entry.name), cmdline))
    return found
