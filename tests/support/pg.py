"""A throw-away PostgreSQL cluster for the tests.

    with PostgresCluster() as pg:
        pg.create_database("dsgw_test")
        engine = sqlalchemy.create_engine(pg.url("dsgw_test"))

The cluster lives in a fresh folder /tmp/dsgw-pg-XXXXXXXX (data, socket and server log), listens
on 127.0.0.1 on a free port, trusts every local connection (user `postgres`, no password) and is
tuned for speed, not durability. It is removed by `stop()`, at interpreter exit, and, should the
test process die without running either (SIGKILL, a crash), by a small watchdog process that
notices its parent is gone. Folders left by a run whose watchdog died too are swept by the next
`start()`.

PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` OS user (Debian's
package creates it; it is created here if missing) through `runuser`.

The server binaries: `bindir`, else $DSGW_PG_BINDIR (set by deploy/test.sh), else the newest
/usr/lib/postgresql/*/bin (Debian's layout).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

HOST = "127.0.0.1"
SUPERUSER = "postgres"
# Under /tmp itself, not $TMPDIR: the socket path must stay short, and as root the `postgres`
# user must be able to reach the folder (a $TMPDIR under /root would not do).
TMP_ROOT = "/tmp"
PREFIX = "dsgw-pg-"
OWNER_FILE = "owner.pid"

# Runs beside the test process, as the same user; reads its stdin, which is a pipe whose write
# end only the test process holds. EOF without "done" means the test process died without
# stopping the cluster: kill the postmaster (SIGQUIT is pg_ctl's "immediate" mode) and remove
# the folder.
_WATCHDOG = r"""
import os, shutil, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
top = sys.argv[1]
if sys.stdin.read() != "done":
    pidfile = os.path.join(top, "data", "postmaster.pid")
    try:
        pid = int(open(pidfile).readline())
        os.kill(pid, signal.SIGQUIT)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
    except (OSError, ValueError):
        pass
    shutil.rmtree(top, ignore_errors=True)
"""


def default_bindir() -> str:
    """Return $DSGW_PG_BINDIR, else the newest /usr/lib/postgresql/*/bin with a pg_ctl."""
    env = os.environ.get("DSGW_PG_BINDIR")
    if env:
        return env

    def version(bindir: str) -> tuple[int, ...]:
        name = Path(bindir).parent.name
        return tuple(int(p) for p in re.findall(r"\d+", name)) or (0,)

    found = [
        d for d in glob.glob("/usr/lib/postgresql/*/bin") if os.access(Path(d, "pg_ctl"), os.X_OK)
    ]
    if not found:
        raise RuntimeError(
            "no PostgreSQL server binaries: set DSGW_PG_BINDIR, or install Debian's postgresql "
            "package (./deploy/test.sh does that)"
        )
    return max(found, key=version)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _postgres_ids() -> tuple[int, int]:
    """Return the uid and gid of the `postgres` OS user, creating that user if missing."""
    try:
        entry = pwd.getpwnam(SUPERUSER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", SUPERUSER],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(SUPERUSER)
    return entry.pw_uid, entry.pw_gid


def sweep_stale_clusters(min_age_seconds: float = 60.0) -> None:
    """Remove /tmp/dsgw-pg-* folders whose test process is gone, killing any server left there.

    Only folders with an owner file naming a dead process are touched, so a cluster another run
    is still starting or using is left alone.
    """
    for top in glob.glob(os.path.join(TMP_ROOT, PREFIX + "*")):
        try:
            if time.time() - os.stat(top).st_mtime < min_age_seconds:
                continue
            owner = int(Path(top, OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue
        if _pid_alive(owner):
            continue
        with contextlib.suppress(OSError, ValueError):
            pid = int(Path(top, "data", "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGQUIT)
        shutil.rmtree(top, ignore_errors=True)


class PostgresCluster:
    """A private PostgreSQL server in a temporary folder; a context manager."""

    def __init__(
        self, bindir: str | None = None, *, settings: dict[str, str] | None = None
    ) -> None:
        """`settings`: extra server settings (`-c name=value`), e.g. for a benchmark
        {"shared_preload_libraries": "pg_stat_statements"}; none by default."""
        self.bindir = Path(bindir or default_bindir())
        self.settings = dict(settings or {})
        for name, value in self.settings.items():
            # Passed through pg_ctl -o, a shell-split string: no spaces, quotes or escapes.
            if not re.fullmatch(r"[A-Za-z0-9_.]+", name) or not re.fullmatch(
                r"[A-Za-z0-9_.,:/+-]+", str(value)
            ):
                raise ValueError(f"unsupported PostgreSQL setting {name}={value!r}")
        self.dir: Path | None = None
        self._port: int | None = None
        self._as_root = os.geteuid() == 0
        self._watchdog: subprocess.Popen | None = None

    # -- properties -------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return HOST

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the PostgreSQL cluster is not started")
        return self._port

    @property
    def data_dir(self) -> Path:
        if self.dir is None:
            raise RuntimeError("the PostgreSQL cluster is not started")
        return self.dir / "data"

    @property
    def running(self) -> bool:
        return self._port is not None

    def url(self, dbname: str = "postgres") -> str:
        """Return a SQLAlchemy URL (psycopg 3 driver) for database `dbname`."""
        return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{self.port}/{dbname}"

    # -- life cycle ---------------------------------------------------------------------------

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self, *args: str | Path, timeout: float = 120) -> None:
        cmd = [str(a) for a in args]
        if self._as_root:
            cmd = ["runuser", "-u", SUPERUSER, "--", *cmd]
        # PG* variables of the caller (PGPORT, PGOPTIONS...) must not leak into the cluster.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        proc = subprocess.run(
            cmd,
            cwd=self.dir,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
                f"{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        if self.dir is None:
            return ""
        try:
            lines = (self.dir / "server.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\nserver log:\n" + "\n".join(lines[-20:])

    def start(self) -> PostgresCluster:
        """Create, initialise and start the cluster; return self. Does nothing if running."""
        if self.running:
            return self
        for tool in ("initdb", "pg_ctl", "postgres"):
            if not os.access(self.bindir / tool, os.X_OK):
                raise RuntimeError(f"{self.bindir / tool} is missing: not a PostgreSQL bin folder")
        sweep_stale_clusters()
        self.dir = Path(tempfile.mkdtemp(prefix=PREFIX, dir=TMP_ROOT))
        (self.dir / OWNER_FILE).write_text(f"{os.getpid()}\n")
        atexit.register(self.stop)
        try:
            socket_dir = self.dir / "socket"
            socket_dir.mkdir()
            if self._as_root:
                uid, gid = _postgres_ids()
                for path in (self.dir, socket_dir):
                    os.chown(path, uid, gid)
            self._start_watchdog()
            self._run(
                self.bindir / "initdb",
                "-D", self.data_dir,
                "-A", "trust",
                "-U", SUPERUSER,
                "--no-sync",
                "-E", "UTF8",
                "--locale=C",
            )  # fmt: skip
            for attempt in range(5):
                port = _free_port()
                # fsync, synchronous_commit and full_page_writes are off: this cluster is thrown
                # away after the run, so crash safety buys nothing and costs a lot of time.
                options = (
                    f"-F -k {socket_dir} -p {port} -c listen_addresses={HOST} -c fsync=off "
                    "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
                )
                options += "".join(f" -c {k}={v}" for k, v in self.settings.items())
                try:
                    self._run(
                        self.bindir / "pg_ctl",
                        "-D", self.data_dir,
                        "-l", self.dir / "server.log",
                        "-w", "-t", "60",
                        "-o", options,
                        "start",
                    )  # fmt: skip
                except RuntimeError as err:
                    # Another process took the port between our probe and the bind: try again.
                    if "already in use" in str(err) and attempt < 4:
                        continue
                    raise
                self._port = port
                break
        except BaseException:
            self.stop()
            raise
        return self

    def _start_watchdog(self) -> None:
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(self.dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # a Ctrl-C to the test run must not reach it
        )

    def stop(self) -> None:
        """Stop the server (immediate mode) and remove its folder. Safe to call twice."""
        atexit.unregister(self.stop)
        if self.dir is None:
            return
        try:
            if (self.data_dir / "postmaster.pid").exists():
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    pg_ctl = self.bindir / "pg_ctl"
                    self._run(pg_ctl, "-D", self.data_dir, "-m", "immediate", "stop", timeout=60)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
            self._port = None
            if self._watchdog is not None:
                with contextlib.suppress(OSError):
                    self._watchdog.stdin.write("done")
                    self._watchdog.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._watchdog.wait(timeout=10)
                self._watchdog = None

    # -- databases ------------------------------------------------------------------------------

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(
            host=HOST,
            port=self.port,
            user=SUPERUSER,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        )

    def create_database(self, name: str) -> str:
        """Create database `name`; return its SQLAlchemy URL."""
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop database `name` if it exists, closing any connection still open to it."""
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


__all__ = ["PostgresCluster", "default_bindir", "sweep_stale_clusters"]
