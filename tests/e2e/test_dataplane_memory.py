"""Constant memory: 2,000,000 rows stream from Parquet and from PostgreSQL through the masks and
an encoder with the same peak RSS as 400,000 rows of the same product, and under 300 MB.

Each stream runs in a subprocess (tests/support/dataplane_data.py) so that the peak RSS measured
is that of the stream alone. This asserts memory, never time.
"""

import json
import subprocess
import sys
import uuid

import psycopg
import pytest

from tests.support.dataplane_data import fill_postgres, write_parquet

ROWS = 2_000_000
SMALL = 400_000
# Five times the rows may raise the peak by this much at most (allocator noise); a stream that
# held its data would add well over 200 MB (Arrow) or 400 MB (JSON Lines) for the extra rows.
SAME_PEAK_MB = 40
PEAK_MB = 300  # the target for the gateway's peak, imports included


def _measure(address: dict, media: str, root: str = "/nonexistent") -> dict:
    proc = subprocess.run(
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
        timeout=570,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def _assert_flat(small: dict, big: dict) -> None:
    assert (small["rows"], big["rows"]) == (SMALL, ROWS)
    assert big["bytes"] > 4 * small["bytes"]
    assert big["rss_peak_mb"] - small["rss_peak_mb"] < SAME_PEAK_MB, (small, big)
    assert big["rss_peak_mb"] < PEAK_MB, big


@pytest.fixture(scope="module")
def parquet_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("dataplane-memory")
    write_parquet(root / "small.parquet", SMALL)
    write_parquet(root / "product.parquet", ROWS)
    return str(root)


@pytest.mark.parametrize("media", ["jsonl", "arrow"])
def test_two_million_parquet_rows_stream_in_constant_memory(parquet_root, media):
    small = _measure({"type": "files", "path": "small.parquet"}, media, parquet_root)
    big = _measure({"type": "files", "path": "product.parquet"}, media, parquet_root)
    _assert_flat(small, big)


@pytest.fixture(scope="module")
def pg_product(pg_cluster):
    """A holder database with the product's 2M rows (table product) and 400k (view small)."""
    name = f"holder_{uuid.uuid4().hex[:10]}"
    pg_cluster.create_database(name)
    conninfo = {
        "host": pg_cluster.host,
        "port": pg_cluster.port,
        "user": "postgres",
        "dbname": name,
    }
    try:
        fill_postgres(conninfo, ROWS)
        with psycopg.connect(**conninfo, autocommit=True) as conn:
            conn.execute(f"CREATE VIEW small AS SELECT * FROM product WHERE id < {SMALL}")
        yield pg_cluster.url(name)
    finally:
        pg_cluster.drop_database(name)


@pytest.mark.parametrize("media", ["jsonl", "arrow"])
def test_two_million_postgresql_rows_stream_in_constant_memory(pg_product, media):
    # read ahead in a thread (a bounded queue), JSON Lines written in two halves at once
    small = _measure({"type": "sql", "url": pg_product, "table": "small"}, media)
    big = _measure({"type": "sql", "url": pg_product, "table": "product"}, media)
    _assert_flat(small, big)
