"""The policy version watcher: reads the version OPA serves off the request path.

Every `policy_version_ttl` seconds a thread lists OPA's policies (`PolicyClient.version`) and,
when the version is new, records its `policy.version-activated` entry in its own committed
transaction, so that a request only reads the version last seen (`PolicyClient.cached_version`)
and never waits for the 600 KB listing. Started and stopped with the app (gateway/app.py).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import structlog

from gateway.policy import versions

if TYPE_CHECKING:
    from gateway.context import Gateway

log = structlog.get_logger("gateway.policy")


class VersionWatcher:
    """A daemon thread refreshing `gateway.policy`'s version every `interval` seconds."""

    def __init__(self, gateway: Gateway, *, interval: float) -> None:
        self.gateway = gateway
        self.interval = max(interval, 0.05)
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
        """Read the version OPA serves now; record it if it is new. Return it."""
        from gateway.evidence.service import commit

        gw = self.gateway
        version, _ = gw.policy.version(max_age=0)
        if version is not None and gw.policy.recorded_version != version:
            with gw.sessions() as session:
                versions.current(session, gw.signer, gw.policy)
                commit(session)
        return version

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - the watcher outlives any one failure
                log.error("policy version refresh failed", error=f"{type(exc).__name__}: {exc}")
