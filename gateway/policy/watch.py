"""The policy version watcher: reads the version OPA serves off the request path.

A thread lists OPA's policies (`PolicyClient.version`, about 1 MB of JSON with their syntax
trees, of which only the modules' ids and texts are read) every
`policy_version_ttl` seconds (default 10), and at once when a file of the policy folder OPA was
started on (the gateway's own `policies/`, which OPA watches) changes: that folder
is checked every `FILE_CHECK_SECONDS` by the files' sizes and modification times, a few stat
calls, and OPA is asked again every `FILE_CHECK_SECONDS` until its version matches the
files' or `SETTLE_SECONDS` have passed (OPA reloads a changed file by itself, within moments).
A request only reads the version last seen (`PolicyClient.cached_version`) and never waits
for the listing; the first decision under a new version records its `policy.version-activated`
entry in its own transaction, before the decision's. Started and stopped with the
app (gateway/app.py).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from gateway.policy import versions
from gateway.policy.opa_process import POLICIES_DIR

FILE_CHECK_SECONDS = 0.5
SETTLE_SECONDS = 10.0

if TYPE_CHECKING:
    from gateway.context import Gateway

log = structlog.get_logger("gateway.policy")


class VersionWatcher:
    """A daemon thread refreshing `gateway.policy`'s version every `interval` seconds."""

    def __init__(self, gateway: Gateway, *, interval: float, folder: Path = POLICIES_DIR) -> None:
        self.gateway = gateway
        self.interval = max(interval, 0.05)
        self.folder = folder
        self._files = self._signature()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="policy-version", daemon=True)

    def start(self) -> VersionWatcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + self.gateway.policy.timeout + 1)

    def refresh(self) -> str | None:
        """Read the version OPA serves now into the client's cache; return it.

        Recording a new version is left to the first decision that uses it
        (`versions.current`, in that decision's transaction): one writer of the activation per
        process, so it is never recorded twice."""
        version, _ = self.gateway.policy.version(max_age=0)
        return version

    def _signature(self) -> tuple:
        """Return the policy folder's Rego files with their sizes and modification times."""
        try:
            found = []
            for path in versions.rego_files(self.folder):
                stat = path.stat()
                found.append((str(path), stat.st_size, stat.st_mtime_ns))
            return tuple(found)
        except OSError:
            return ()

    def _run(self) -> None:
        last = time.monotonic()
        settle_until = 0.0
        tick = min(FILE_CHECK_SECONDS, self.interval)
        while not self._stop.wait(tick):
            now = time.monotonic()
            files = self._signature()
            if files != self._files:
                self._files, settle_until = files, now + SETTLE_SECONDS
            settling = now < settle_until
            if not settling and now - last < self.interval:
                continue
            last = now
            try:
                version = self.refresh()
            except Exception as exc:  # noqa: BLE001 - the watcher outlives any one failure
                log.error("policy version refresh failed", error=f"{type(exc).__name__}: {exc}")
                continue
            if settling and version == versions.bundle_version_of_dir(self.folder):
                settle_until = 0.0  # OPA serves what the files say
