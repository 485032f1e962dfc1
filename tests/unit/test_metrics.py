"""gateway.core.metrics: what each counter counts, on real SQLite databases and ASGI apps."""

import json
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from starlette.responses import PlainTextResponse

from gateway.core import metrics
from ledger.group import GroupCommitter
from ledger.keys import Signer
from ledger.store import count, create_schema

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SIGNER = Signer.generate()


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    create_schema(engine)
    yield engine
    engine.dispose()


def test_group_committer_reports_the_size_of_each_durable_batch(engine):
    sizes: list[int] = []
    committer = GroupCommitter(engine, SIGNER, max_batch=8, on_batch=sizes.append)
    threads = [
        threading.Thread(
            target=lambda n=n: [
                committer.append(type="load.test", data={"n": n, "i": i}, time=T0) for i in range(5)
            ]
        )
        for n in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    committer.close()
    with engine.connect() as conn:
        assert sum(sizes) == count(conn) == 30
    assert all(1 <= size <= 8 for size in sizes)


def test_append_batch_histogram_observes_the_batches_and_a_failing_observer_fails_nothing(engine):
    before = sample("dsgw_ledger_append_batch_size_sum")
    committer = GroupCommitter(engine, SIGNER, on_batch=metrics.observe_append_batch)
    for i in range(3):
        committer.append(type="load.test", data={"i": i}, time=T0)
    committer.close()
    assert sample("dsgw_ledger_append_batch_size_sum") - before == 3

    def broken(_: int) -> None:
        raise RuntimeError("observer down")

    committer = GroupCommitter(engine, SIGNER, on_batch=broken)
    try:
        entry = committer.append(type="load.test", data={"i": 9}, time=T0)
    finally:
        committer.close()
    assert entry.seq == 4


def test_entries_count_as_exchanges_only_when_their_transaction_commits():
    engine = create_engine("sqlite://")
    delivered = {"outcome": "exchange.delivered"}
    before = sample("dsgw_exchanges_total", **delivered)
    with Session(engine) as session:
        session.execute(text("SELECT 1"))
        session.info.setdefault(metrics.ENTRY_TYPES, []).extend(
            ["exchange.delivered", "participant.registered"]
        )
        with session.begin_nested():  # a savepoint's release makes nothing durable
            session.execute(text("SELECT 1"))
        assert sample("dsgw_exchanges_total", **delivered) == before
        session.commit()
        assert sample("dsgw_exchanges_total", **delivered) == before + 1
        assert sample("dsgw_exchanges_total", outcome="participant.registered") == 0
        # Rolled back: never counted, not even at the next commit.
        session.execute(text("SELECT 1"))
        session.info.setdefault(metrics.ENTRY_TYPES, []).append("exchange.delivered")
        session.rollback()
        session.execute(text("SELECT 1"))
        session.commit()
    assert sample("dsgw_exchanges_total", **delivered) == before + 1
    engine.dispose()


def test_sqlite_database_is_locked_counts_as_a_lock_wait(tmp_path):
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.05})
    metrics.watch_engine(engine)
    metrics.watch_engine(engine)  # watching twice counts once
    waits, locked = (
        sample("dsgw_db_lock_waits_total"),
        sample("dsgw_db_errors_total", kind="sqlite_locked"),
    )
    try:
        with pytest.raises(OperationalError, match="database is locked"):
            with engine.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        holder.close()
        engine.dispose()
    assert sample("dsgw_db_lock_waits_total") == waits + 1
    assert sample("dsgw_db_errors_total", kind="sqlite_locked") == locked + 1


class _PgError(Exception):
    """A driver error as psycopg raises it: the SQLSTATE in `sqlstate`."""

    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (OperationalError("SELECT", {}, _PgError("55P03")), "lock_timeout"),
        (OperationalError("SELECT", {}, _PgError("57014")), "query_canceled"),
        (OperationalError("SELECT", {}, _PgError("08006")), "operational"),
        (IntegrityError("INSERT", {}, _PgError("23505")), "integrity"),
    ],
)
def test_database_errors_are_classified_by_a_bounded_kind(error, kind):
    assert metrics.db_error_kind(error) == kind


def test_a_request_refused_before_routing_is_labelled_with_its_route_template():
    app = FastAPI()

    @app.get("/items/{item_id}")
    def item(item_id: str) -> dict:
        return {"id": item_id}

    @app.middleware("http")
    async def refuse_early(request, call_next):  # answers before the router runs
        if request.url.path.endswith("refused"):
            return PlainTextResponse("slow down", status_code=429)
        return await call_next(request)

    app.add_middleware(metrics.MetricsMiddleware)
    route = {"route": "/items/{item_id}"}
    ok, refused = (
        sample("dsgw_http_requests_total", **route, status="200"),
        sample("dsgw_http_requests_total", **route, status="429"),
    )
    unmatched = sample("dsgw_http_requests_total", route="unmatched", status="404")
    with TestClient(app) as client:
        assert client.get("/items/a1").status_code == 200
        assert client.get("/items/refused").status_code == 429
        assert client.get("/elsewhere/a1").status_code == 404
    assert sample("dsgw_http_requests_total", **route, status="200") == ok + 1
    assert sample("dsgw_http_requests_total", **route, status="429") == refused + 1
    assert sample("dsgw_http_requests_total", route="unmatched", status="404") == unmatched + 1


_WORKER = """
import sys
from gateway.core import metrics
metrics.count_committed(["exchange.delivered"] * int(sys.argv[1]))
metrics.policy_error("POLICY_UNAVAILABLE")
"""

_SCRAPER = """
from prometheus_client.parser import text_string_to_metric_families
from gateway.core import metrics
import json
print(json.dumps({
    s.name + repr(sorted(s.labels.items())): s.value
    for f in text_string_to_metric_families(metrics.exposition().decode())
    for s in f.samples
}))
"""


def test_multiprocess_mode_adds_up_the_values_of_every_worker(tmp_path):
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for n in (2, 3):  # two workers, one after the other, sharing the folder
        subprocess.run([sys.executable, "-c", _WORKER, str(n)], env=env, check=True)
    scraped = subprocess.run(
        [sys.executable, "-c", _SCRAPER], env=env, check=True, capture_output=True, text=True
    )
    values = json.loads(scraped.stdout)
    assert values["dsgw_exchanges_total[('outcome', 'exchange.delivered')]"] == 5
    assert values["dsgw_policy_errors_total[('code', 'POLICY_UNAVAILABLE')]"] == 2
