"""Compute over 1M rows: the differentially private release vs the same DuckDB query unchecked.

Both run in this process, on the same Arrow table, in the same run: the release goes through
the plan, the locked-down sandbox (one connection per query, 256 MB, one thread, a watchdog),
contribution bounding when a subject column is declared, OpenDP noise on every declared group
and the threshold on noisy subject counts; the baseline is a plain DuckDB connection (default
threads and memory) running the GROUP BY alone. Prints figures; asserts nothing. Usage:

    .venv/bin/python tests/bench/bench_compute.py [--rows 1000000] [--repeat 5]
"""

import argparse
import random
import resource
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import duckdb
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from contracts.compute import ComputeTerms  # noqa: E402
from gateway.compute import service  # noqa: E402
from gateway.exchanges.models import ExchangeRequest  # noqa: E402
from gateway.exchanges.obligations import mask_value  # noqa: E402

DISTRICTS = [f"D{i:02d}" for i in range(16)]
BASELINE = (
    'SELECT "district", "gender", count(*) AS n, sum("income") AS s, avg("income") AS m '
    'FROM data WHERE "district" IN ({}) GROUP BY "district", "gender"'
)


def _table(rows: int) -> pa.Table:
    rng = random.Random(8)
    return pa.table(
        {
            "person_id": pa.array([f"p{i:07d}" for i in range(rows)]),
            "district": pa.array([rng.choice(DISTRICTS) for _ in range(rows)]),
            "gender": pa.array([rng.choice("FM") for _ in range(rows)]),
            "income": pa.array([rng.uniform(0, 60_000) for _ in range(rows)], type=pa.float64()),
        }
    )


def _terms(subject: str | None) -> ComputeTerms:
    return ComputeTerms(
        subject=subject,
        aggregates=["count", "sum", "mean"],
        columns={
            "district": {"rule": "group_key", "values": DISTRICTS},
            "gender": {"rule": "group_key", "values": ["F", "M"]},
            "income": {"rule": "aggregate", "lower": 0, "upper": 50_000},
        },
    )


REQUEST = ExchangeRequest(
    contract_id="ctr_bench",
    purpose="bench",
    delivery="compute",
    group_by=["district", "gender"],
    aggregates=[
        {"op": "count"},
        {"op": "sum", "field": "income"},
        {"op": "mean", "field": "income"},
    ],
)


def _baseline(table: pa.Table, config: dict | None = None) -> list:
    conn = duckdb.connect(":memory:", config=config or {})
    try:
        conn.register("data", table)
        sql = BASELINE.format(", ".join("?" for _ in DISTRICTS))
        return conn.execute(sql, DISTRICTS).fetchall()
    finally:
        conn.close()


def _release(table: pa.Table, terms: ComputeTerms):
    return service.release(
        table,
        terms=terms,
        request=REQUEST,
        epsilon=0.5,
        min_group_size=10,
        mask=set(),
        mask_value=mask_value,
        watermark=None,
    )


def _timed(fn, repeat: int) -> tuple[float, int]:
    """Return the median seconds of `repeat` runs and the peak Python allocation (bytes)."""
    times = []
    tracemalloc.start()
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), peak


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    table = _table(args.rows)
    print(f"rows: {args.rows:,}; groups declared: {len(DISTRICTS) * 2}; repeat: {args.repeat}")
    print(f"peak RSS after building the Arrow table: {_rss_mb():.0f} MB")
    base, base_peak = _timed(lambda: _baseline(table), args.repeat)
    print(f"peak RSS after the baseline runs: {_rss_mb():.0f} MB")
    print(
        f"baseline DuckDB GROUP BY, no checks:        {base * 1000:8.1f} ms"
        f"  (python peak {base_peak / 1e6:.1f} MB)"
    )
    limits = {"threads": 1, "memory_limit": "256MB"}
    one, _ = _timed(lambda: _baseline(table, limits), args.repeat)
    print(f"baseline, sandbox limits (1 thread, 256MB): {one * 1000:8.1f} ms")
    for label, subject in (
        ("rows as subjects", None),
        ("subject column, 1 row/subject", "person_id"),
    ):
        terms = _terms(subject)
        dp, dp_peak = _timed(lambda terms=terms: _release(table, terms), args.repeat)
        print(
            f"DP release ({label:<29}): {dp * 1000:8.1f} ms"
            f"  (python peak {dp_peak / 1e6:.1f} MB)  ratio {dp / base:5.2f}x"
            f" ({dp / one:5.2f}x at the same limits)"
        )
        print(f"peak RSS after these runs: {_rss_mb():.0f} MB")
    out = _release(table, _terms("person_id"))
    print(f"released groups: {len(out.rows)} of {len(DISTRICTS) * 2}; ε {out.epsilon}")


if __name__ == "__main__":
    main()
