"""Prometheus metrics of one gateway process (prometheus-client), served at `GET /metrics`.

One registry per process, `REGISTRY`. When several processes serve one scrape target (hypercorn
workers), set `PROMETHEUS_MULTIPROC_DIR` to an empty folder that every worker can write, before
they start: prometheus-client then keeps each process's values in memory-mapped files there,
and `exposition()` adds up the files of every process (its multiprocess mode). Without it, the
plain in-memory registry serves this process's own values. Empty that folder before each start
(stale files of a former run would be added in). Names and labels: specs/operations.md.
"""

import os
import sqlite3
import time
from collections.abc import Iterable
from typing import Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_log = structlog.get_logger("gateway")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# The ledger entry types recorded in a session's transaction, counted when it commits
# (gateway.evidence.service.record adds them; the hooks at the end of this module count them).
ENTRY_TYPES = "dsgw_entry_types"
# The entry types counted as exchanges, by outcome (the type itself).
EXCHANGE_PREFIXES = ("exchange.", "transfer.")
UNMATCHED = "unmatched"

REGISTRY = CollectorRegistry(auto_describe=True)

EXCHANGES = Counter(
    "dsgw_exchanges",
    "Exchanges and transfers whose ledger entry was committed, by outcome (the entry type).",
    ["outcome"],
    registry=REGISTRY,
)
POLICY_DECISION_SECONDS = Histogram(
    "dsgw_policy_decision_seconds",
    "Time of one policy decision asked of OPA (PolicyClient.decide), failures included.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
POLICY_ERRORS = Counter(
    "dsgw_policy_errors",
    "Policy decisions OPA could not give, by PolicyError code.",
    ["code"],
    registry=REGISTRY,
)
APPEND_BATCH_SIZE = Histogram(
    "dsgw_ledger_append_batch_size",
    "Entries committed together by the ledger's group committer, per batch.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
    registry=REGISTRY,
)
DB_LOCK_WAITS = Counter(
    "dsgw_db_lock_waits",
    "Database statements that gave up waiting for a lock (PostgreSQL 55P03 or 57014, "
    "SQLite 'database is locked').",
    registry=REGISTRY,
)
DB_ERRORS = Counter(
    "dsgw_db_errors",
    "Errors the database driver raised, by kind.",
    ["kind"],
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "dsgw_http_requests",
    "HTTP requests answered, by route template and status.",
    ["route", "status"],
    registry=REGISTRY,
)
HTTP_SECONDS = Histogram(
    "dsgw_http_request_seconds",
    "Time from a request's arrival to the end of its response body, by route template.",
    ["route"],
    registry=REGISTRY,
)


def exposition() -> bytes:
    """Return the metrics in Prometheus' text format: this process's, or every worker's."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def observe_append_batch(n: int) -> None:
    """Count one batch of `n` entries committed by ledger.group.GroupCommitter (its on_batch)."""
    APPEND_BATCH_SIZE.observe(n)


def observe_decision(seconds: float) -> None:
    """Count one policy decision that took `seconds`."""
    POLICY_DECISION_SECONDS.observe(seconds)


def policy_error(code: str) -> None:
    """Count one policy decision that failed with PolicyError `code`."""
    POLICY_ERRORS.labels(code).inc()


def count_committed(types: Iterable[str]) -> None:
    """Count the exchanges among ledger entry `types` that were just committed."""
    for entry_type in types:
        if entry_type.startswith(EXCHANGE_PREFIXES):
            EXCHANGES.labels(entry_type).inc()


# SQLSTATEs of a statement that gave up waiting (PostgreSQL): lock_timeout ends a lock wait with
# 55P03; statement_timeout (or a cancel) ends any statement, a lock wait too, with 57014.
_PG_KINDS = {"55P03": "lock_timeout", "57014": "query_canceled"}


def db_error_kind(exc: BaseException) -> str:
    """Return the bounded kind of a database error: lock_timeout, query_canceled, sqlite_locked,
    disconnect, else SQLAlchemy's exception class in snake case (operational, integrity...)."""
    orig = getattr(exc, "orig", None) or exc
    kind = _PG_KINDS.get(getattr(orig, "sqlstate", None) or "")
    if kind:
        return kind
    if isinstance(orig, sqlite3.OperationalError) and "database is locked" in str(orig):
        return "sqlite_locked"
    if getattr(exc, "connection_invalidated", False):
        return "disconnect"
    name = type(exc).__name__.removesuffix("Error") or "database"
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


def observe_db_error(exc: BaseException) -> str:
    """Count one database error (and a lock wait, if it was one); return its kind."""
    kind = db_error_kind(exc)
    DB_ERRORS.labels(kind).inc()
    if kind in ("lock_timeout", "query_canceled", "sqlite_locked"):
        DB_LOCK_WAITS.inc()
    return kind


def _on_engine_error(context: Any) -> None:
    observe_db_error(context.sqlalchemy_exception or context.original_exception)


def watch_engine(engine: Engine) -> None:
    """Count every error the database driver raises on `engine` (SQLAlchemy's handle_error);
    watching an engine twice counts its errors once."""
    if not event.contains(engine, "handle_error", _on_engine_error):
        event.listen(engine, "handle_error", _on_engine_error)


def route_template(scope: Scope) -> str:
    """Return the path template of the route a request matched (bounded), or "unmatched".

    The router puts the matched route in the scope; a request answered before routing (rate
    limited, too large) is matched here against the app's routes.
    """
    route = scope.get("route")
    if route is None:
        app = scope.get("app")
        for candidate in getattr(getattr(app, "router", None), "routes", ()):
            try:
                match, _ = candidate.matches(scope)
            except Exception:  # noqa: BLE001 - a scope the route cannot read matches nothing
                continue
            if match is not Match.NONE:
                route = candidate
                break
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class MetricsMiddleware:
    """Pure ASGI middleware counting each HTTP request by route template and status, and its
    time to the end of the response body; it writes the request's log line too."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped every handler

        async def _send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, _send)
        finally:
            route = route_template(scope)
            elapsed = time.perf_counter() - started
            HTTP_REQUESTS.labels(route, str(status)).inc()
            HTTP_SECONDS.labels(route).observe(elapsed)
            request_log.info(
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                ms=round(elapsed * 1000, 2),
            )


def _count_on_commit(session: Session) -> None:
    if not session.in_nested_transaction():  # a savepoint's commit makes nothing durable yet
        count_committed(session.info.pop(ENTRY_TYPES, ()))


def _forget_on_end(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the outermost one ended: counted if committed, else void
        session.info.pop(ENTRY_TYPES, None)


# Every gateway session (whatever its factory): entries count once their transaction commits.
event.listen(Session, "after_commit", _count_on_commit)
event.listen(Session, "after_transaction_end", _forget_on_end)
