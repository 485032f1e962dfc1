"""Benchmark: a ~10-field product streamed through the data plane (source -> masks -> encoder)
against reading the same source directly, from Parquet and from PostgreSQL.

    .venv/bin/python tests/bench/bench_dataplane.py [--rows 10000000] [--media jsonl,arrow]

For each source it prints rows/s of the direct read (pyarrow.parquet's iter_batches; psycopg's
COPY ... TO STDOUT drained as bytes) and of the data plane, their ratio (target >= 0.5), the
data plane's peak RSS (target < 300 MB, the same at 1M and 10M rows) and its time to the first
encoded byte (target < 100 ms). Every data-plane run is a subprocess of its own, so its peak RSS
is its own. It also times a server-side cursor into Arrow, the alternative to COPY that
gateway/dataplane/sql.py did not take. Nothing here asserts: figures are for reading.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script, like the others

from tests.support.dataplane_data import fill_postgres, write_parquet
from tests.support.pg import PostgresCluster


def _stream(address: dict, media: str, root: str) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.dataplane_data",
            "stream",
            json.dumps(address),
            media,
            root,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def _direct_parquet(path: Path) -> tuple[int, float]:
    t0 = time.perf_counter()
    rows = sum(b.num_rows for b in pq.ParquetFile(path).iter_batches(batch_size=65_536))
    return rows, time.perf_counter() - t0


def _direct_copy(conninfo: dict) -> tuple[int, float]:
    t0 = time.perf_counter()
    size = 0
    with psycopg.connect(**conninfo) as conn, conn.cursor() as cur:
        with cur.copy("COPY product TO STDOUT (FORMAT csv)") as copy:
            for chunk in copy:
                size += len(chunk)
        rows = cur.rowcount
    return rows, time.perf_counter() - t0


def _cursor_to_arrow(conninfo: dict, limit: int) -> tuple[int, float]:
    """A named (server-side) cursor, fetchmany into RecordBatch.from_pylist: the alternative."""
    t0 = time.perf_counter()
    rows = 0
    with psycopg.connect(**conninfo) as conn, conn.cursor(name="bench") as cur:
        cur.execute("SELECT * FROM product WHERE id < %s", (limit,))
        names = None
        while True:
            chunk = cur.fetchmany(16_384)
            if not chunk:
                break
            names = names or [d.name for d in cur.description]
            pa.RecordBatch.from_arrays([pa.array(c) for c in zip(*chunk, strict=True)], names)
            rows += len(chunk)
    return rows, time.perf_counter() - t0


def _report(label: str, direct: tuple[int, float], runs: dict[str, dict]) -> None:
    rows, seconds = direct
    base = rows / seconds
    print(f"\n{label}: {rows:,} rows")
    print(f"  direct read          {base:>12,.0f} rows/s  ({seconds:.1f} s)")
    for media, r in runs.items():
        rate = r["rows"] / r["seconds"]
        print(
            f"  data plane -> {media:<6} {rate:>12,.0f} rows/s  ({r['seconds']:.1f} s)  "
            f"ratio {rate / base:.2f}  peak RSS {r['rss_peak_mb']:.0f} MB  "
            f"first {'batch' if media == 'source' else 'byte'} "
            f"{r['first_batch_seconds'] * 1000:.0f} ms  "
            + (f"{r['bytes'] / 2**20:,.0f} MiB sha256 {r['sha256'][:12]}" if r["bytes"] else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument(
        "--media",
        default="source,jsonl,arrow",
        help="runs: source (no masks, no encoder), jsonl, arrow",
    )
    parser.add_argument("--skip", default="", help="sources to skip: parquet,postgresql")
    args = parser.parse_args()
    media = [m for m in args.media.split(",") if m]
    skip = set(args.skip.split(","))
    with tempfile.TemporaryDirectory(prefix="dsgw-bench-dp-") as tmp:
        if "parquet" not in skip:
            t0 = time.perf_counter()
            write_parquet(Path(tmp) / "product.parquet", args.rows)
            print(f"generated Parquet ({args.rows:,} rows) in {time.perf_counter() - t0:.0f} s")
            direct = _direct_parquet(Path(tmp) / "product.parquet")
            runs = {m: _stream({"type": "files", "path": "product.parquet"}, m, tmp) for m in media}
            _report("Parquet (files)", direct, runs)
        if "postgresql" not in skip:
            with PostgresCluster() as pg:
                pg.create_database("holder")
                conninfo = {
                    "host": pg.host,
                    "port": pg.port,
                    "user": "postgres",
                    "dbname": "holder",
                }
                t0 = time.perf_counter()
                fill_postgres(conninfo, args.rows)
                print(
                    f"\ngenerated PostgreSQL table ({args.rows:,} rows) in "
                    f"{time.perf_counter() - t0:.0f} s"
                )
                direct = _direct_copy(conninfo)
                address = {"type": "sql", "url": pg.url("holder"), "table": "product"}
                runs = {m: _stream(address, m, tmp) for m in media}
                _report("PostgreSQL (sql, COPY csv -> Arrow)", direct, runs)
                limit = min(args.rows, 1_000_000)
                rows, seconds = _cursor_to_arrow(conninfo, limit)
                print(
                    f"  (alternative: server-side cursor -> Arrow {rows / seconds:>10,.0f} rows/s"
                    f" on {rows:,} rows)"
                )


if __name__ == "__main__":
    main()
