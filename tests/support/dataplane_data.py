"""A generated ~10-field product for the data-plane memory test and benchmark, and a measured
stream of it (run in a subprocess, so that its peak RSS is its own).

    python -m tests.support.dataplane_data stream '<address JSON>' [jsonl|arrow|csv|parquet|source]
        [root] ['{"mask": {"name": "name"}, "watermark": null, "batch_size": 16384}']
    python -m tests.support.dataplane_data direct parquet <path>
    python -m tests.support.dataplane_data direct postgresql '<conninfo JSON>' <table>

`stream` prints one JSON line: rows, bytes, sha256, seconds, first_batch_seconds (to the first
encoded byte of a row), rss_start_mb (after imports, before opening), rss_first_mb (after the
first batch) and rss_peak_mb. `direct` reads the same source without the gateway (pyarrow's
iter_batches; psycopg's COPY ... TO STDOUT drained as bytes) and prints rows, seconds,
first_batch_seconds and rss_peak_mb alike.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

MASK = {"name": "name", "phone": "phone", "email": "email", "id_card": "id_card"}

PG_CREATE = """
CREATE TABLE product (id bigint, name text, phone text, email text, id_card text, city text,
                      amount double precision, visits integer, active boolean, day date)
"""
PG_FILL = """
INSERT INTO product
SELECT i, 'name-' || i, '138' || lpad((i %% 67108864)::text, 8, '0'),
       'user' || i || '@example.cn', '110101' || lpad(i::text, 12, '0'), 'city-' || (i %% 256),
       i * 0.25, (i %% 1024)::int, i %% 2 = 0, date '2020-01-01' + (i %% 2048)
FROM generate_series(%s, %s) AS i
"""


def chunk(start: int, n: int) -> pa.Table:
    """Return rows start .. start+n of the product (the same values as PG_FILL)."""
    ids = pa.array(range(start, start + n), pa.int64())
    text = ids.cast(pa.string())

    def joined(prefix: str, values: pa.Array, suffix: str = "") -> pa.Array:
        return pc.binary_join_element_wise(prefix, values, suffix, "")

    return pa.table(
        {
            "id": ids,
            "name": joined("name-", text),
            "phone": joined(
                "138", pc.utf8_lpad(pc.bit_wise_and(ids, 2**26 - 1).cast(pa.string()), 8, "0")
            ),
            "email": joined("user", text, "@example.cn"),
            "id_card": joined("110101", pc.utf8_lpad(text, 12, "0")),
            "city": joined("city-", pc.cast(pc.bit_wise_and(ids, 255), pa.string())),
            "amount": pc.multiply(ids.cast(pa.float64()), 0.25),
            "visits": pc.bit_wise_and(ids, 1023).cast(pa.int32()),
            "active": pc.equal(pc.bit_wise_and(ids, 1), 0),
            "day": pc.cast(
                pc.add(pc.bit_wise_and(ids, 2047).cast(pa.int32()), 18262), pa.int32()
            ).cast(pa.date32()),
        }
    )


def write_parquet(path: Path, rows: int, step: int = 500_000) -> None:
    """Write the product's first `rows` rows as Parquet (row groups of 128Ki rows)."""
    writer = None
    for start in range(0, rows, step):
        table = chunk(start, min(step, rows - start))
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=131_072)
    if writer is not None:
        writer.close()


def fill_postgres(conninfo: dict, rows: int) -> None:
    """Create and fill table `product` in the database `conninfo` names."""
    import psycopg

    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS product")
        conn.execute(PG_CREATE)
        step = 1_000_000
        for start in range(0, rows, step):
            conn.execute(PG_FILL, (start, min(rows, start + step) - 1))
        conn.execute("ANALYZE product")


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


def _peak_mb() -> float:
    """Return this process's peak RSS (VmHWM: getrusage's ru_maxrss would count the RSS of the
    parent at fork time, since Linux keeps it across execve)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(
    address: dict,
    media: str = "jsonl",
    root: str = "/nonexistent",
    batch_size: int = 16_384,
    mask: dict | None = None,
    watermark: str | None = "wm",
    warm: bool = False,
) -> dict:
    """Stream `address` through the masks (`mask`, default MASK) and an encoder, discarding the
    bytes; return figures. `warm`: run the first chunk of one stream before (see below)."""
    # What a running gateway has loaded already: the kind's module and its driver.
    import gateway.dataplane.files
    import gateway.dataplane.sql  # noqa: F401  (SQLAlchemy, psycopg)
    from gateway.dataplane import (
        ARROW,
        CSV,
        JSONL,
        PARQUET,
        DataPlaneConfig,
        Obligations,
        apply,
        encode,
        encoder_for,
        open_source,
        parse_source_address,
    )

    config = DataPlaneConfig(files_root=Path(root), embedded_root=Path(root))
    obligations = Obligations(mask=MASK if mask is None else mask, watermark=watermark)
    formats = {"arrow": ARROW, "csv": CSV, "parquet": PARQUET, "jsonl": JSONL}
    if warm and media != "source":
        # A running gateway has streamed before: its kernels are initialised. One stream,
        # left after its first chunk of rows, does that here before the clock starts.
        first = apply(open_source(parse_source_address(address), config=config).open(), obligations)
        chunks = encode(first, encoder_for(formats[media], first.schema))
        next(chunks, None)
        next(chunks, None)
        chunks.close()
    start_mb = _rss_mb()
    t0 = time.perf_counter()
    c0 = time.process_time()
    source = open_source(parse_source_address(address), config=config)
    if media == "source":  # the source alone: no obligations, no encoder
        rows, first = 0, None
        for batch in source.open(batch_size=batch_size):
            rows += batch.num_rows
            first = first if first is not None else time.perf_counter() - t0
        seconds = time.perf_counter() - t0
        return {"rows": rows, "bytes": 0, "sha256": "", "seconds": seconds,
                "first_batch_seconds": first, "rss_start_mb": start_mb, "rss_first_mb": 0.0,
                "rss_peak_mb": _peak_mb()}  # fmt: skip
    stream = apply(source.open(batch_size=batch_size), obligations)
    encoder = encoder_for(formats[media], stream.schema)
    first = None
    first_cpu = 0.0
    first_mb = 0.0
    for _ in encode(stream, encoder):
        if first is None and encoder.rows:
            first = time.perf_counter() - t0
            first_cpu = time.process_time() - c0
            first_mb = _rss_mb()
    seconds = time.perf_counter() - t0
    return {
        "rows": encoder.rows,
        "bytes": encoder.bytes,
        "sha256": encoder.sha256,
        "seconds": seconds,
        "first_batch_seconds": first,
        "first_cpu_seconds": first_cpu,  # CPU of this process to the first byte (all threads)
        "rss_start_mb": start_mb,
        "rss_first_mb": first_mb,
        "rss_peak_mb": _peak_mb(),
    }


def direct_parquet(path: str) -> dict:
    """Read the Parquet file as a plain pyarrow program would: iter_batches, every column."""
    t0 = time.perf_counter()
    rows, first = 0, None
    for batch in pq.ParquetFile(path).iter_batches(batch_size=65_536):
        rows += batch.num_rows
        first = first if first is not None else time.perf_counter() - t0
    return {"rows": rows, "seconds": time.perf_counter() - t0, "first_batch_seconds": first,
            "rss_peak_mb": _peak_mb()}  # fmt: skip


def direct_postgresql(conninfo: dict, table: str) -> dict:
    """Drain COPY table TO STDOUT (FORMAT csv) with psycopg, as bytes, as a client would."""
    import psycopg

    t0 = time.perf_counter()
    size, first = 0, None
    with psycopg.connect(**conninfo) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY {table} TO STDOUT (FORMAT csv)") as copy:
            for chunk in copy:
                size += len(chunk)
                first = first if first is not None else time.perf_counter() - t0
        rows = cur.rowcount
    return {"rows": rows, "bytes": size, "seconds": time.perf_counter() - t0,
            "first_batch_seconds": first, "rss_peak_mb": _peak_mb()}  # fmt: skip


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "stream":
        media = sys.argv[3] if len(sys.argv) > 3 else "jsonl"
        root = sys.argv[4] if len(sys.argv) > 4 else "/nonexistent"
        options = json.loads(sys.argv[5]) if len(sys.argv) > 5 else {}
        print(json.dumps(measure(json.loads(sys.argv[2]), media, root, **options)))
    elif len(sys.argv) >= 4 and sys.argv[1:3] == ["direct", "parquet"]:
        print(json.dumps(direct_parquet(sys.argv[3])))
    elif len(sys.argv) >= 5 and sys.argv[1:3] == ["direct", "postgresql"]:
        print(json.dumps(direct_postgresql(json.loads(sys.argv[3]), sys.argv[4])))
    else:
        sys.exit(__doc__)
