"""A real S3-compatible server for the tests: Versity Gateway (versitygw) over a temp folder.

    with S3Server() as s3:
        s3.create_bucket("holder")
        ObjectAddress(endpoint=s3.endpoint, bucket="holder", key="x.parquet", secret=s3.secret())

The binary: $DSGW_S3_BIN (set by deploy/test.sh's `ensure_versitygw`), else the pinned build in
~/.cache/dsgw/versitygw-<version>/. It listens on a free 127.0.0.1 port with one root key pair
and keeps buckets as folders of a fresh /tmp/dsgw-s3-XXXXXXXX, removed by `stop()`. `shared()`
returns one server per test process, stopped at exit, so every test module uses the same one.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pyarrow.fs as pa_fs

HOST = "127.0.0.1"
VERSION = "v1.8.0"
ACCESS_KEY = "dsgw-test-access"
SECRET_KEY = "dsgw-test-secret-key-0123456789"


def default_binary() -> Path:
    """Return $DSGW_S3_BIN, else the cached build; raise when neither exists."""
    env = os.environ.get("DSGW_S3_BIN")
    if env:
        return Path(env)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    binary = cache / "dsgw" / f"versitygw-{VERSION}" / "versitygw"
    if not os.access(binary, os.X_OK):
        raise RuntimeError(
            f"no S3 server: {binary} is missing; run ./deploy/test.sh once (ensure_versitygw "
            "builds it) or set DSGW_S3_BIN"
        )
    return binary


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class S3Server:
    """A versitygw process serving a temp folder; a context manager."""

    def __init__(self, binary: Path | None = None) -> None:
        self.binary = binary or default_binary()
        self.dir: Path | None = None
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def secret(self) -> dict[str, str]:
        """Return the secret part of an object address for this server's root key."""
        return {"access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY}

    def filesystem(self) -> pa_fs.S3FileSystem:
        """Return a pyarrow S3 filesystem logged in as root (to arrange and inspect objects)."""
        return pa_fs.S3FileSystem(
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            endpoint_override=f"{HOST}:{self.port}",
            scheme="http",
            region="us-east-1",
            allow_bucket_creation=True,
        )

    def create_bucket(self, name: str) -> None:
        """Create bucket `name` (nothing if it exists)."""
        self.filesystem().create_dir(name)

    def start(self) -> S3Server:
        self.dir = Path(tempfile.mkdtemp(prefix="dsgw-s3-", dir="/tmp"))
        atexit.register(self.stop)
        (self.dir / "root").mkdir()
        for attempt in range(5):
            self.port = _free_port()
            log = (self.dir / "server.log").open("ab")
            self._proc = subprocess.Popen(
                [
                    str(self.binary),
                    "--access",
                    ACCESS_KEY,
                    "--secret",
                    SECRET_KEY,
                    "--port",
                    f"{HOST}:{self.port}",
                    "--quiet",
                    "posix",
                    str(self.dir / "root"),
                ],  # fmt: skip
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
            )
            log.close()
            if self._wait_ready():
                return self
            self._kill()
            if attempt == 4:
                break
        tail = (self.dir / "server.log").read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"versitygw did not start:\n{tail}")

    def _wait_ready(self, timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                return False
            try:
                with socket.create_connection((HOST, self.port), timeout=1):
                    return True
            except OSError:
                time.sleep(0.05)
        return False

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._proc = None

    def stop(self) -> None:
        """Stop the server and remove its folder; safe to call twice."""
        atexit.unregister(self.stop)
        self._kill()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_SHARED: S3Server | None = None


def shared() -> S3Server:
    """Return the test process's one S3 server, starting it on first use."""
    global _SHARED
    if _SHARED is None:
        _SHARED = S3Server().start()
    return _SHARED
