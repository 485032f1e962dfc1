"""Benchmark: closing a period of 1M metered exchanges over 10,000 contracts (issue 12), on
SQLite and PostgreSQL, and the auditor's recomputation of it from the export, in the same run.

    .venv/bin/python tests/bench/bench_settlement.py [--exchanges 1000000] [--contracts 10000]
        [--consumers 1000] [--engines sqlite,postgresql] [--with-chain] [--keep]

Per engine: a fresh database with the gateway's schema (its migrations) is seeded straight
through the ledger library (`ledger.store.append_many`'s steps with orjson serialising the
data, 5,000 well-formed, chained and signed entries per transaction): an authorisation, a
priced product, the contracts' finalisations in November 2026 and the exchanges
(`exchange.delivered`, spread over November and the contracts).
Then, each in a process of its own, so that its peak memory (max RSS) is its own:

- `close`: `gateway.settlement.service.close` of 2026-11, as the admin route runs it (a
  reference: `read`, the same process reading the entries the close reads, alone);
- `december`: 1% more exchanges in December, and its close: a close reads only the entries
  after the last one's `through_seq` (time comparable to the share of new entries, not the
  ledger);
- `recompute`: the auditor's recomputation of 2026-11 from the export (what `dsgw settlement
  verify` does after verifying the export's chain: `ledger.settlement.replay`, streamed),
  beside the reference `export-read` (every line of the export parsed, nothing else); with
  `--with-chain` also the whole `verify_settlement` (chain, hashes and every signature first:
  tests/bench/bench_verify.py measures that part on its own).

Prints seconds and max RSS (MB) of each, and the ratios to their references. A process that
only imports the same modules is the memory floor (`baseline`). Times are wall-clock on a
shared machine: read them as orders of magnitude.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ledger.settlement import content_hash  # noqa: E402

PERIOD = "2026-11"
START = datetime(2026, 11, 1, tzinfo=UTC)
TERMS = {
    "purposes": ["credit-risk-assessment"],
    "term": "P90D",
    "price_fen": 1000,
    "price": {"per_call_fen": 7, "per_1000_rows_fen": 333},
}
BATCH = 5_000


def _engine(url: str):
    from gateway.core.db import make_engine

    return make_engine(url)


def _context(contracts: int, consumers: int) -> list[tuple[str, dict, datetime]]:
    """The entries a close needs besides the usage: authorisation, product, finalisations."""
    items = [
        ("authorisation.granted", {"authorisation": "auz_bench", "holder": "prt_holder",
         "operator": "prt_operator", "fee_cap_fen": 10**12,
         "revenue_share": {"holder": 40, "operator": 50, "platform": 10}}, START),
        ("product.drafted", {"product": "prd_bench", "authorisation": "auz_bench",
         "public_interest": False, "grade": "general", "domain": "finance",
         "offers": [{"offer": "off_bench", "terms_hash": content_hash(TERMS)}]}, START),
    ]  # fmt: skip
    for n in range(contracts):
        items.append(
            ("contract.finalized", {"contract": f"ctr_{n:06d}", "offer": "off_bench",
             "product": "prd_bench", "consumer": f"prt_c{n % consumers:05d}",
             "provider": "prt_operator"}, START + timedelta(seconds=n))
        )  # fmt: skip
    return items


def _usage(count: int, contracts: int, consumers: int, start: datetime, span: timedelta):
    """Yield `count` exchange.delivered items spread over the contracts and the span."""
    step = span / max(count, 1)
    for i in range(count):
        n = i % contracts
        yield (
            "exchange.delivered",
            {"decision": f"dec_{start:%m}{i:08d}", "contract": f"ctr_{n:06d}",
             "consumer": f"prt_c{n % consumers:05d}", "provider": "prt_operator",
             "product": "prd_bench", "delivery": "api", "rows": i % 50},
            start + step * i,
        )  # fmt: skip


def _append_many(conn, items: list, signer) -> None:
    """`ledger.store.append_many` with the data serialised by orjson (sorted keys: RFC 8785
    for this ASCII-only, integer-only data) instead of the pure-Python serialiser, and the
    body not read back: the same bytes, hash, signature and head move, 5x faster. The
    benchmark's `verify` checks every entry's chain, hash and signature afterwards."""
    import hashlib

    import orjson

    from ledger import store
    from ledger.canonical import b64url, rfc3339
    from ledger.entry import _canonical_body

    seq, prev, _ = conn.execute(store._LOCK_HEAD).first()
    first, rows = seq, []
    for type_, data, at in items:
        seq += 1
        data_bytes = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        canonical = _canonical_body(seq, rfc3339(at), type_, data_bytes, prev, signer.kid)
        prev = hashlib.sha256(canonical).hexdigest()
        rows.append({"seq": seq, "time": rfc3339(at), "type": type_,
                     "body": canonical.decode("ascii"), "hash": prev,
                     "sig": b64url(signer.sign(canonical)), "kid": signer.kid})  # fmt: skip
    conn.execute(store._INSERT_ENTRY, rows)
    moved = conn.execute(
        store._MOVE_HEAD, {"old_seq": first, "new_seq": seq, "new_hash": prev,
                           "new_kid": signer.kid},
    )  # fmt: skip
    assert moved.rowcount == 1


def seed(url: str, key: Path, items) -> float:
    """Append the items to the ledger, BATCH per transaction; return the seconds it took."""
    from ledger.keys import Signer

    signer = Signer.from_jwk(json.loads(key.read_text()))
    engine = _engine(url)
    started = time.perf_counter()
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == BATCH:
            with engine.begin() as conn:
                _append_many(conn, batch, signer)
            batch = []
    if batch:
        with engine.begin() as conn:
            _append_many(conn, batch, signer)
    engine.dispose()
    return time.perf_counter() - started


def prepare(url: str, key: Path) -> None:
    """The gateway's schema, and the product offer whose terms the close rates under (its
    product row is not needed by a close: foreign keys are off for this one insert)."""
    from sqlalchemy import create_engine, insert

    from gateway.core.db import create_schema
    from gateway.products.models import ProductOffer

    engine = _engine(url)
    create_schema(engine)
    engine.dispose()
    row = {"id": "off_bench", "product_id": "prd_bench", "position": 0, "region": "domestic",
           "terms": TERMS, "exposure": None, "created_at": START}  # fmt: skip
    if url.startswith("sqlite"):
        plain = create_engine(url)  # no PRAGMA foreign_keys=ON
        with plain.begin() as conn:
            conn.execute(insert(ProductOffer.__table__), row)
        plain.dispose()
    else:
        engine = _engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            conn.execute(insert(ProductOffer.__table__), row)
        engine.dispose()


# --- the measured steps, each in a process of its own ----------------------------------------


def _child_close(url: str, key: Path, period: str, now: datetime) -> dict:
    from types import SimpleNamespace

    from gateway.core import clock
    from gateway.participants.models import Participant
    from gateway.settlement import service
    from ledger.keys import Signer

    clock.now = lambda: now  # the close reads the one clock; the period must be over
    engine = _engine(url)
    from sqlalchemy.orm import sessionmaker

    session = sessionmaker(engine, expire_on_commit=False)()
    admin = Participant(id="prt_admin", roles=["admin"], status="active")
    gateway = SimpleNamespace(signer=Signer.from_jwk(json.loads(key.read_text())))
    started = time.perf_counter()
    result = service.close(session, gateway, period=period, by=admin)
    took = time.perf_counter() - started
    session.close()
    return {"seconds": took, "invoices": len(result.invoices),
            "statements": len(result.statements), "invoiced_fen": result.invoiced_fen}  # fmt: skip


def _child_read(url: str) -> dict:
    """The reference of a close: stream and parse the entries it reads, nothing else."""
    from sqlalchemy.orm import sessionmaker

    from gateway.settlement.service import _bodies

    engine = _engine(url)
    session = sessionmaker(engine)()
    started = time.perf_counter()
    n = sum(1 for _ in _bodies(session, 2**62))
    return {"seconds": time.perf_counter() - started, "entries": n}


def _child_verify(folder: Path, full: bool) -> dict:
    from ledger.settlement import (
        _keys,
        _settlement_bodies,
        horizon_of,
        iter_bodies,
        replay,
        verify_settlement,
    )

    started = time.perf_counter()
    if full:
        report = verify_settlement(folder, PERIOD)
        ok, lines = report.ok, len(report.findings)
    else:
        horizon = horizon_of(_settlement_bodies(folder))
        _, found = replay(iter_bodies(folder, []), period=PERIOD, keys=_keys(folder),
                          horizon=horizon)  # fmt: skip
        ok, lines = all(f.ok for f in found), len(found)
    return {"seconds": time.perf_counter() - started, "ok": ok, "lines": lines}


def _child_export_read(folder: Path) -> dict:
    """The reference of the recomputation: every line of the export parsed."""
    started = time.perf_counter()
    n = 0
    with (folder / "entries.jsonl").open("rb") as f:
        for raw in f:
            json.loads(raw)
            n += 1
    return {"seconds": time.perf_counter() - started, "entries": n}


def _child_baseline() -> dict:
    import gateway.settlement.service  # noqa: F401 - the same imports as the others
    import ledger.settlement  # noqa: F401

    return {"seconds": 0.0}


def child(args: argparse.Namespace) -> None:
    now = datetime.fromisoformat(args.now) if args.now else None
    if args.child == "close":
        out = _child_close(args.url, Path(args.key), args.period, now)
    elif args.child == "read":
        out = _child_read(args.url)
    elif args.child in ("verify", "recompute"):
        out = _child_verify(Path(args.export), args.child == "verify")
    elif args.child == "export-read":
        out = _child_export_read(Path(args.export))
    else:
        out = _child_baseline()
    out["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def run_child(*argv: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *argv], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"child {argv[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def export(url: str, key: Path, folder: Path) -> float:
    from ledger.export import export as write
    from ledger.keys import Signer

    signer = Signer.from_jwk(json.loads(key.read_text()))
    engine = _engine(url)
    started = time.perf_counter()
    with engine.connect() as conn:
        write(conn, folder, public_jwks=[signer.public_jwk()], signer=signer,
              origin="bench.dsgw/ledger", now=datetime(2026, 12, 2, tzinfo=UTC))  # fmt: skip
    engine.dispose()
    return time.perf_counter() - started


def _line(name: str, r: dict, ref: dict | None = None) -> str:
    ratio = f"  ({r['seconds'] / ref['seconds']:.1f}x {ref['name']})" if ref else ""
    return f"  {name:<46} {r['seconds']:8.2f} s {r['max_rss_mb']:6.0f} MB max RSS{ratio}"


def bench(engine_name: str, args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="dsgw-bench-settlement-"))
    cluster = None
    if engine_name == "sqlite":
        url = f"sqlite:///{work / 'bench.db'}"
    else:
        from tests.support.pg import PostgresCluster

        cluster = PostgresCluster().start()
        url = cluster.create_database("bench")
    try:
        from ledger.keys import Signer

        key = work / "ledger.jwk"
        key.write_text(json.dumps(Signer.generate().private_jwk()))
        prepare(url, key)
        span = timedelta(days=29)
        seeded = seed(url, key, [*_context(args.contracts, args.consumers)])
        seeded += seed(url, key, _usage(args.exchanges, args.contracts, args.consumers,
                                        START + timedelta(hours=3), span))  # fmt: skip
        print(f"{engine_name}: seeded {args.contracts:,} contracts and {args.exchanges:,} "
              f"exchanges in {seeded:.0f} s ({BATCH} entries per transaction)")  # fmt: skip
        base = run_child("baseline")
        read = run_child("read", "--url", url)
        close = run_child("close", "--url", url, "--key", str(key), "--period", PERIOD,
                          "--now", "2026-12-01T00:00:01+00:00")  # fmt: skip
        print(f"  {'baseline (imports only)':<46} {'':>10} {base['max_rss_mb']:6.0f} MB max RSS")
        print(_line(f"read {read['entries']:,} entries (reference)", read))
        print(_line(f"close {PERIOD}: {close['invoices']:,} invoices", close,
                    {**read, "name": "read"}))  # fmt: skip
        more = max(1, args.exchanges // 100)
        december_usage = _usage(
            more, args.contracts, args.consumers, datetime(2026, 12, 1, 1, tzinfo=UTC), span
        )
        seed(url, key, december_usage)  # 1% more, in December
        december = run_child("close", "--url", url, "--key", str(key), "--period", "2026-12",
                             "--now", "2027-01-01T00:00:01+00:00")  # fmt: skip
        print(_line(f"close 2026-12 (+{more:,} exchanges)", december,
                    {**close, "name": "November's close"}))  # fmt: skip
        folder = work / "export"
        took = export(url, key, folder)
        print(f"  {'export':<46} {took:8.2f} s")
        ref = run_child("export-read", "--export", str(folder))
        recompute = run_child("recompute", "--export", str(folder))
        assert recompute["ok"], recompute
        print(_line(f"read the export ({ref['entries']:,} lines, reference)", ref))
        print(_line(f"recompute {PERIOD} ({recompute['lines']:,} lines)", recompute,
                    {**ref, "name": "reading"}))  # fmt: skip
        if args.with_chain:
            verify = run_child("verify", "--export", str(folder))
            assert verify["ok"], verify
            print(_line(f"settlement verify {PERIOD} (+ the chain)", verify,
                        {**ref, "name": "reading"}))  # fmt: skip
    finally:
        if cluster is not None:
            cluster.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exchanges", type=int, default=1_000_000)
    parser.add_argument("--contracts", type=int, default=10_000)
    parser.add_argument("--consumers", type=int, default=1_000)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--keep", action="store_true", help="keep the databases and exports")
    parser.add_argument("--with-chain", action="store_true", help="also verify_settlement whole")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    for name in ("url", "key", "period", "now", "export"):
        parser.add_argument(f"--{name}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    print(f"closing {PERIOD}: {args.exchanges:,} exchanges over {args.contracts:,} contracts "
          f"({args.consumers:,} consumers)")  # fmt: skip
    for name in args.engines.split(","):
        bench(name, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
