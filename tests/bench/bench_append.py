"""Benchmark: durable appends per second, 1 and 64 concurrent writers, SQLite and PostgreSQL.

    .venv/bin/python tests/bench/bench_append.py [--seconds 5] [--writers 1,64]
        [--engines sqlite,postgresql]

First each append is its own committed transaction (as a gateway request's change and its
entry); then the same writers go through ledger.group.GroupCommitter, which batches concurrent
appends into one transaction per batch and acknowledges each only after that commit,
with durability on: SQLite in WAL mode with synchronous=FULL (the gateway's engine settings),
PostgreSQL with fsync, synchronous_commit and full_page_writes on (the test cluster's
throw-away settings are switched back on here). Prints appends/s beside the bare cost of the
same SHA-256 + Ed25519 signing work in the same run (entries/s on one core), and the ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import create_engine, text  # noqa: E402

from gateway.core.db import make_engine  # noqa: E402
from ledger.canonical import canonical_json  # noqa: E402
from ledger.keys import Signer  # noqa: E402
from ledger.store import append, create_schema, head  # noqa: E402

SIGNER = Signer.generate()
DATA = {"contract": "c-0001", "consumer": "p-0002", "allow": True, "rows": 42, "reasons": []}


def bare_crypto(count: int = 20_000) -> float:
    """Entries/s for the bare hashing and signing of entry-sized bodies on one core."""
    bodies = [canonical_json({"seq": i, "data": DATA, "prev": "0" * 64}) for i in range(count)]
    start = time.perf_counter()
    for body in bodies:
        hashlib.sha256(body).hexdigest()
        SIGNER.sign(body)
    return count / (time.perf_counter() - start)


def run(engine, writers: int, seconds: float) -> float:
    """Appends/s with `writers` threads appending in their own transactions for `seconds`."""
    stop = time.monotonic() + seconds
    done = [0] * writers
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            while time.monotonic() < stop:
                with engine.begin() as conn:
                    append(
                        conn, type="bench.append", data=DATA, time=datetime.now(UTC), signer=SIGNER
                    )
                done[n] += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    with engine.connect() as conn:
        before = head(conn)[0]
    started = time.monotonic()
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    if errors:
        raise errors[0]
    with engine.connect() as conn:
        after = head(conn)[0]
    assert after - before == sum(done), "every committed append is in the ledger, densely"
    return sum(done) / took


def run_group(engine, writers: int, seconds: float) -> float:
    """Appends/s with `writers` threads appending through one GroupCommitter (group commit)."""
    from ledger.group import GroupCommitter

    committer = GroupCommitter(engine, SIGNER)
    stop = time.monotonic() + seconds
    done = [0] * writers

    def writer(n: int) -> None:
        while time.monotonic() < stop:
            committer.append(type="bench.append", data=DATA, time=datetime.now(UTC))
            done[n] += 1

    with engine.connect() as conn:
        before = head(conn)[0]
    started = time.monotonic()
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    committer.close()
    with engine.connect() as conn:
        after = head(conn)[0]
    assert after - before == sum(done), "every acknowledged append is in the ledger, densely"
    return sum(done) / took


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--writers", default="1,64")
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    writer_counts = [int(w) for w in args.writers.split(",")]
    bare = bare_crypto()
    print(f"bare SHA-256 + Ed25519 signing: {bare:,.0f} entries/s on one core")
    for name in args.engines.split(","):
        if name == "sqlite":
            folder = Path(tempfile.mkdtemp(prefix="dsgw-bench-"))
            engine = make_engine(f"sqlite:///{folder / 'bench.db'}")
            cluster = None
        else:
            from tests.support.pg import HOST, PostgresCluster

            cluster = PostgresCluster().start()
            # Restart it durable: the test cluster runs with fsync and synchronous_commit off.
            options = (
                f"-k {cluster.dir / 'socket'} -p {cluster.port} -c listen_addresses={HOST} "
                "-c fsync=on -c synchronous_commit=on -c full_page_writes=on "
                "-c max_connections=200"
            )
            cluster._run(
                cluster.bindir / "pg_ctl", "-D", cluster.data_dir, "-l",
                cluster.dir / "server.log", "-w", "-t", "60", "-o", options, "restart",
            )  # fmt: skip
            with create_engine(cluster.url(), isolation_level="AUTOCOMMIT").connect() as c:
                shown = [
                    c.execute(text(f"SHOW {s}")).scalar()
                    for s in ("fsync", "synchronous_commit", "full_page_writes")
                ]
                assert shown == ["on", "on", "on"], shown
            engine = create_engine(cluster.create_database("bench"), pool_size=70, max_overflow=10)
        try:
            create_schema(engine)
            for writers in writer_counts:
                rate = run(engine, writers, args.seconds)
                print(
                    f"{name}: {writers} writer(s), a transaction each: {rate:,.0f} durable "
                    f"appends/s; bare crypto {bare:,.0f}/s; ratio {bare / rate:.1f}x"
                )
            for writers in writer_counts:
                rate = run_group(engine, writers, args.seconds)
                print(
                    f"{name}: {writers} writer(s), group commit: {rate:,.0f} durable "
                    f"appends/s; bare crypto {bare:,.0f}/s; ratio {bare / rate:.1f}x"
                )
        finally:
            engine.dispose()
            if cluster is not None:
                cluster.stop()
            else:
                shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
