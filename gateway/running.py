"""Which gateway serves a state folder, and the worker processes of `dsgw serve --workers N`.

`serve` writes `serve.json` (its pid and URL, owner-only) into the state folder while it runs and
removes it when it stops. A second process that wants the same SQLite state (the demo without
`--url`) finds it there and uses that gateway instead of starting another one beside it.

With `--workers N` the `serve` process binds the one listening socket itself and runs N worker
processes that accept on it (each a whole gateway: its own hypercorn, engine and policy client);
it restarts a worker that dies, and stops them all when it is told to stop (`Workers`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SERVE_FILE = "serve.json"
_ANY_ADDRESS = {"", "0.0.0.0", "::", "[::]"}


@dataclass(frozen=True)
class Serving:
    """A live `dsgw serve` process of a state folder and the URL it listens on."""

    pid: int
    url: str


def local_url(host: str, port: int) -> str:
    """Return the URL a process on this host reaches `serve --host HOST --port PORT` at."""
    if host in _ANY_ADDRESS:
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


@contextmanager
def announce(state_dir: Path, url: str) -> Iterator[Path]:
    """Write `serve.json` for this process while the block runs; remove it after (if ours)."""
    path = Path(state_dir) / SERVE_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"pid": os.getpid(), "url": url}, out)
    os.replace(tmp, path)
    try:
        yield path
    finally:
        found = _read(path)
        if found is not None and found.pid == os.getpid():
            path.unlink(missing_ok=True)


def serving(state_dir: Path) -> Serving | None:
    """Return the live `dsgw serve` of `state_dir`, or None (no file, or its process is gone)."""
    found = _read(Path(state_dir) / SERVE_FILE)
    if found is None or not _alive(found.pid):
        return None
    return found


def _read(path: Path) -> Serving | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        pid, url = data["pid"], data["url"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or not isinstance(url, str):
        return None
    return Serving(pid, url)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    return True


def listen_socket(host: str, port: int, *, backlog: int = 1024) -> socket.socket:
    """Return a listening TCP socket on HOST:PORT that child processes can inherit."""
    bare = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in bare else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((bare, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class Workers:
    """N worker processes sharing one listening socket, kept at N until `stop()`.

    `command(fd)` returns the argv of one worker, told to serve on the inherited descriptor `fd`.
    A worker that exits is replaced; if workers keep dying (more than 2N exits within 30 s, e.g.
    every start fails), the supervisor gives up and `run()` returns 2.
    """

    RESTART_WINDOW = 30.0

    def __init__(
        self,
        count: int,
        sock: socket.socket,
        command: Callable[[int], list[str]],
        *,
        log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
    ) -> None:
        self.count = count
        self.sock = sock
        self.command = command
        self.log = log
        self.processes: list[subprocess.Popen] = []
        self._stop = threading.Event()
        self._exits: deque[float] = deque()

    def _spawn(self) -> subprocess.Popen:
        fd = self.sock.fileno()
        return subprocess.Popen(self.command(fd), pass_fds=(fd,), stdin=subprocess.DEVNULL)

    def start(self) -> list[int]:
        """Start the workers; return their pids."""
        self.processes = [self._spawn() for _ in range(self.count)]
        return [p.pid for p in self.processes]

    def stop(self, *_: object) -> None:
        """Ask `run()` to stop the workers and return (a signal handler too)."""
        self._stop.set()

    def run(self) -> int:
        """Supervise until `stop()`; then stop every worker. Return 0, or 2 when giving up."""
        try:
            while not self._stop.wait(0.2):
                for i, process in enumerate(self.processes):
                    if process.poll() is None:
                        continue
                    now = time.monotonic()
                    self._exits.append(now)
                    while self._exits and now - self._exits[0] > self.RESTART_WINDOW:
                        self._exits.popleft()
                    if len(self._exits) > 2 * self.count:
                        self.log(
                            f"dsgw serve: workers keep exiting ({len(self._exits)} exits in "
                            f"{self.RESTART_WINDOW:.0f} s, the last with code "
                            f"{process.returncode}); stopping"
                        )
                        return 2
                    self.processes[i] = self._spawn()
                    self.log(
                        f"dsgw serve: worker {process.pid} exited with code {process.returncode}; "
                        f"started worker {self.processes[i].pid} in its place"
                    )
        finally:
            self._terminate()
        return 0

    def _terminate(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def watch_parent(stop: Callable[[], None], *, every: float = 1.0) -> None:
    """Call `stop()` once this process's parent has gone (a worker outliving `serve -9`)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        stop()

    threading.Thread(target=watch, name="dsgw-parent-watch", daemon=True).start()
