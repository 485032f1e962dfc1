"""Benchmark: a ~10-field product streamed through the data plane (source -> masks -> encoder ->
SHA-256) against reading the same source directly, from Parquet and from PostgreSQL.

    .venv/bin/python tests/bench/bench_dataplane.py --rows 1000000
    .venv/bin/python tests/bench/bench_dataplane.py --rows 10000000 --formats jsonl,arrow

For each source and each output format it runs, interleaved and in the same run, the direct
read (pyarrow.parquet's iter_batches of every column; psycopg's COPY ... TO STDOUT drained as
bytes) and the data plane with the masks applied (`--mask`, by default phone and name), each in
a child process of its own so that its peak RSS (VmHWM) is its own and the same at 1M and 10M
rows. It prints rows/s of both, their ratio (target >= 0.5), the data plane's time to the first
encoded byte of a row (target < 100 ms; measured after the first chunk of one stream in the
same process, as in a gateway that has served before; with the CPU time the process spent to
it, which a loaded machine does not inflate) and peak RSS (target < 300 MB, flat in
the rows).
With the Parquet source it also times the JSON Lines encoder alone, on the file's first 1M
rows in memory (unmasked, batches of the data plane's default size): the native writer
(gateway/dataplane/_jsonl.c) and the pure Arrow-compute path (`DSGW_JSONL_NATIVE=0`), wall and
CPU seconds per 1M rows (CPU: all threads, the two halves of a batch are written at once), and
whether their bytes are the same.
`--repeat` runs each pair again and keeps the best of each (TTFB: best/worst): the machine is
shared.

The generated Parquet file is kept in `--cache` (made once per row count); the PostgreSQL
table is filled in a throw-away cluster at each run. Nothing here asserts: figures are for
reading.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script, like the others

from tests.support.dataplane_data import fill_postgres, write_parquet  # noqa: E402
from tests.support.pg import PostgresCluster  # noqa: E402

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dsgw" / "bench-dataplane"


def _child(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "tests.support.dataplane_data", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    if proc.returncode:
        raise SystemExit(f"child failed: {args[:2]}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def _stream(address: dict, media: str, root: str, options: dict) -> dict:
    return _child("stream", json.dumps(address), media, root, json.dumps(options))


def _best(runs: list[dict]) -> dict:
    return min(runs, key=lambda r: r["seconds"])


def _compare(label: str, direct, stream, formats: list[str], repeat: int) -> list[dict]:
    """Run direct and data-plane reads interleaved; print and return one line per format."""
    print(f"\n{label}")
    print(
        f"  {'format':<8}{'direct rows/s':>15}{'gateway rows/s':>16}{'ratio':>7}"
        f"{'TTFB ms':>13}{'(CPU ms)':>9}{'peak RSS MB':>13}{'direct RSS MB':>15}{'MiB out':>9}"
    )
    lines = []
    for media in formats:
        refs, runs = [], []
        for _ in range(repeat):
            refs.append(direct())
            runs.append(stream(media))
        ref, run = _best(refs), _best(runs)
        ref_rate = ref["rows"] / ref["seconds"]
        rate = run["rows"] / run["seconds"]
        line = {
            "source": label,
            "format": media,
            "rows": run["rows"],
            "direct_rows_per_s": ref_rate,
            "gateway_rows_per_s": rate,
            "ratio": rate / ref_rate,
            "ttfb_ms": min(r["first_batch_seconds"] for r in runs) * 1000,
            "ttfb_max_ms": max(r["first_batch_seconds"] for r in runs) * 1000,
            "ttfb_cpu_ms": min(r.get("first_cpu_seconds", 0.0) for r in runs) * 1000,
            "rss_peak_mb": max(r["rss_peak_mb"] for r in runs),
            "direct_rss_peak_mb": max(r["rss_peak_mb"] for r in refs),
            "mib": run["bytes"] / 2**20,
        }
        lines.append(line)
        print(
            f"  {media:<8}{ref_rate:>15,.0f}{rate:>16,.0f}{line['ratio']:>7.2f}"
            f"{line['ttfb_ms']:>8.0f}/{line['ttfb_max_ms']:<4.0f}({line['ttfb_cpu_ms']:>5.0f})  "
            f"{line['rss_peak_mb']:>11.0f}"
            f"{line['direct_rss_peak_mb']:>15.0f}{line['mib']:>9,.0f}",
            flush=True,
        )
        assert run["rows"] == ref["rows"], (run, ref)
    return lines


def _encoder_alone(path: Path, repeat: int) -> None:
    """Print the JSON Lines encoder's own cost per 1M rows, native and pure (see the docstring)."""
    import hashlib

    import pyarrow.parquet as pq

    from gateway.dataplane import DEFAULT_BATCH_SIZE, encoders

    table = pq.read_table(path)
    table = table.slice(0, min(table.num_rows, 1_000_000))
    batches = table.to_batches(max_chunksize=DEFAULT_BATCH_SIZE)
    per = 1_000_000 / table.num_rows
    print(f"\nJSON Lines encoder alone ({table.num_rows:,} rows in memory, unmasked)")
    print(f"  {'writer':<8}{'wall s/1M':>11}{'CPU s/1M':>10}{'MiB/s':>9}  sha256")
    digests = {}
    before = os.environ.get("DSGW_JSONL_NATIVE")
    try:
        for writer, flag in (("native", "1"), ("pure", "0")):
            os.environ["DSGW_JSONL_NATIVE"] = flag
            if encoders.JsonLinesEncoder(table.schema)._native != (flag == "1"):
                print(f"  {writer:<8}not built (setup.py: no C compiler?)")
                continue
            best = None
            for _ in range(repeat):
                enc = encoders.JsonLinesEncoder(table.schema)
                digest = hashlib.sha256()
                t0, c0 = time.perf_counter(), time.process_time()
                for batch in batches:
                    digest.update(enc.batch(batch))
                run = (time.perf_counter() - t0, time.process_time() - c0, enc.bytes)
                best = run if best is None or run[0] < best[0] else best
            assert best is not None
            wall, cpu, size = best
            digests[writer] = digest.hexdigest()
            print(
                f"  {writer:<8}{wall * per:>11.2f}{cpu * per:>10.2f}"
                f"{size / 2**20 / wall:>9,.0f}  {digests[writer][:16]}",
                flush=True,
            )
    finally:
        if before is None:
            os.environ.pop("DSGW_JSONL_NATIVE", None)
        else:
            os.environ["DSGW_JSONL_NATIVE"] = before
    if len(digests) == 2:
        same = "the same bytes" if len(set(digests.values())) == 1 else "DIFFERENT BYTES"
        print(f"  native and pure: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--formats", default="jsonl,arrow", help="output formats: jsonl, arrow, csv, parquet"
    )
    parser.add_argument("--sources", default="parquet,postgresql", help="parquet, postgresql")
    parser.add_argument(
        "--mask",
        default="phone:phone,name:name",
        help="column:kind,... masked by the data plane ('' for none)",
    )
    parser.add_argument("--batch-size", type=int, default=None, help="rows per source batch")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best is kept")
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the Parquet file is kept")
    parser.add_argument("--json", type=Path, default=None, help="also write the lines here")
    args = parser.parse_args()
    formats = [f for f in args.formats.split(",") if f]
    sources = [s for s in args.sources.split(",") if s]
    options: dict = {
        "mask": dict(m.split(":", 1) for m in args.mask.split(",") if m),
        "watermark": None,
        "warm": True,
    }
    if args.batch_size:
        options["batch_size"] = args.batch_size
    print(
        f"{args.rows:,} rows, masks {options['mask']}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    lines: list[dict] = []
    if "parquet" in sources:
        args.cache.mkdir(parents=True, exist_ok=True)
        name = f"product-{args.rows}.parquet"
        path = args.cache / name
        if not path.exists():
            t0 = time.perf_counter()
            write_parquet(path.with_suffix(".tmp"), args.rows)
            path.with_suffix(".tmp").rename(path)
            print(f"generated {path} in {time.perf_counter() - t0:.0f} s")
        address = {"type": "files", "path": name}
        lines += _compare(
            f"Parquet file ({path.stat().st_size / 2**20:,.0f} MiB)",
            lambda: _child("direct", "parquet", str(path)),
            lambda media: _stream(address, media, str(args.cache), options),
            formats,
            args.repeat,
        )
        _encoder_alone(path, args.repeat)
    if "postgresql" in sources:
        with PostgresCluster() as pg:
            pg.create_database("holder")
            conninfo = {"host": pg.host, "port": pg.port, "user": "postgres", "dbname": "holder"}
            t0 = time.perf_counter()
            fill_postgres(conninfo, args.rows)
            print(f"\nfilled a PostgreSQL table in {time.perf_counter() - t0:.0f} s")
            address = {"type": "sql", "url": pg.url("holder"), "table": "product"}
            lines += _compare(
                "PostgreSQL table (COPY)",
                lambda: _child("direct", "postgresql", json.dumps(conninfo), "product"),
                lambda media: _stream(address, media, "/nonexistent", options),
                formats,
                args.repeat,
            )
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(lines, indent=2))


if __name__ == "__main__":
    main()
