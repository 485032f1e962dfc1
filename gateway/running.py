"""Which gateway serves a state folder: `dsgw serve` announces itself, `dsgw demo` looks.

`serve` writes `serve.json` (its pid and URL, owner-only) into the state folder while it runs and
removes it when it stops. A second process that wants the same SQLite state (the demo without
`--url`) finds it there and uses that gateway instead of starting another one beside it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
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
