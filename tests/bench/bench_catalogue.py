"""Benchmark: a filtered catalogue page over 10,000 products, on SQLite and on PostgreSQL.

Target: p95 under 100 ms per page, measured through the HTTP route (token check, query, DCAT
rendering of 50 datasets with their ODRL offers) in-process. Not a test: it prints its figures.

    .venv/bin/python -m tests.bench.bench_catalogue                 # both engines
    .venv/bin/python -m tests.bench.bench_catalogue --engines sqlite --products 10000 --runs 200

The participants, resources and authorisation are registered through the API (with their ledger
entries); the 10,000 products and their offers are then inserted in bulk, straight into the
tables, because walking each through its life cycle would only measure the seeding.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: tests.support

from fastapi.testclient import TestClient
from sqlalchemy import insert

from contracts import Offer
from gateway.app import build_gateway, create_app
from gateway.core.config import Settings
from gateway.core.logging import configure_logging
from gateway.demo import Party, random_uscc, register_resource
from gateway.participants.service import PLATFORM_ADMIN_ID
from gateway.products.models import Product, ProductOffer, StatedQuality
from gateway.products.quality import report
from gateway.products.service import modes_key, search_text
from ledger import Signer, load_or_create_signer

BASE = "http://localhost"
TARGET_MS = 100.0
RESOURCES = [
    ("finance/credit", "general", "L3"),
    ("finance/insurance", "general", "L2"),
    ("energy/grid", "core", None),
    ("energy/solar", "general", "L1"),
    ("transport/ports", "important", None),
    ("transport/traffic", "general", "L2"),
    ("health/hospitals", "important", None),
    ("agriculture/weather", "general", "L1"),
]
WORDS = (
    "credit score district monthly traffic flow grid load weather harvest port berth claims "
    "clinic solar yield risk open"
).split()
OFFER_TERMS = Offer(purposes=["research"], term="P30D", quota_rows=1000).model_dump(mode="json")
MODES = [["api"], ["file"], ["compute"], ["api", "file"], ["api", "compute"]]
SCENARIOS: list[tuple[str, str, dict]] = [
    ("first page", "consumer", {}),
    ("grade=general", "consumer", {"grade": "general"}),
    ("domain=finance", "consumer", {"domain": "finance"}),
    ("delivery=file", "consumer", {"delivery": "file"}),
    ("q=credit", "consumer", {"q": "credit"}),
    ("grade+domain+delivery+q", "consumer",
     {"grade": "general", "domain": "transport", "delivery": "api", "q": "flow"}),
    ("deep page offset=5000", "consumer", {"offset": 5000}),
    ("cross-border consumer", "abroad", {}),
    ("cross-border, domain=transport", "abroad", {"domain": "transport"}),
]  # fmt: skip


def _party(admin: Party, name: str, roles: list[str], region: str = "domestic") -> Party:
    key = Signer.generate()
    body = {
        "name": name,
        "uscc": random_uscc(random.Random()),
        "roles": roles,
        "region": region,
        "jwks": {"keys": [key.public_jwk()]},
    }
    response = admin.call("POST", "/participants", json=body)
    response.raise_for_status()
    return Party(admin.client, name, key, response.json()["id"])


def seed(client: TestClient, gateway, state_dir: Path, products: int) -> dict[str, Party]:
    """Register the cast and resources over the API; bulk-insert `products` products."""
    admin = Party(
        client, "admin", load_or_create_signer(state_dir / "keys" / "admin-ed25519.jwk"),
        PLATFORM_ADMIN_ID,
    )  # fmt: skip
    holder = _party(admin, "holder", ["holder"])
    merchant = _party(admin, "merchant", ["operator", "merchant"])
    consumer = _party(admin, "consumer", ["consumer"])
    abroad = _party(admin, "abroad", ["consumer"], region="cross_border")
    fields = [{"name": "k", "description": "key"}, {"name": "v", "description": "value"}]
    resources = []
    for domain, grade, level in RESOURCES:
        body = {"name": domain, "domain": domain, "grade": grade, "fields": fields,
                "rows": [{"k": "a", "v": 1}, {"k": "b", "v": None}]}  # fmt: skip
        if level:
            body["level"] = level
        response = holder.call("POST", "/resources", json=body)
        response.raise_for_status()
        # Only a coded resource can be authorised: accept, review, publicise (1 s), code.
        resources.append(register_resource(client, admin, holder, response.json()))
    granted = holder.call(
        "POST",
        "/authorisations",
        json={"operator_id": merchant.id, "resource_ids": [r["id"] for r in resources],
              "not_after": "2099-01-01T00:00:00Z", "fee_cap_fen": 500_000},
    )  # fmt: skip
    granted.raise_for_status()
    quality = report(fields, [{"k": "a", "v": 1}, {"k": "b", "v": None}], StatedQuality())
    rng = random.Random(5)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    product_rows, offer_rows = [], []
    for n in range(products):
        resource = resources[n % len(resources)]
        modes = MODES[rng.randrange(len(MODES))]
        words = " ".join(rng.sample(WORDS, 3))
        pid = f"prd_bench{n:06d}"
        name = f"{resource['domain']} {words} #{n}"
        description = f"{words} data from {resource['name']}"
        status = rng.choices(["listed", "draft", "suspended", "delisted"], [90, 4, 3, 3])[0]
        at = start + timedelta(minutes=n)
        product_rows.append(
            {
                "id": pid, "merchant_id": merchant.id, "authorisation_id": granted.json()["id"],
                "resource_id": resource["id"], "name": name, "description": description,
                "search_text": search_text(name, description), "delivery_modes": modes,
                "modes": modes_key(modes), "public_interest": n % 10 == 0,
                "grade": resource["grade"], "level": resource["level"],
                "domain": resource["domain"], "holder_id": holder.id, "quality": quality,
                "status": status, "status_reason": None, "created_at": at, "updated_at": at,
            }
        )  # fmt: skip
        for position in range(2):
            terms = {
                **OFFER_TERMS,
                "price_fen": 0 if n % 10 == 0 else 100 * position,
                "region": "any" if position == 1 and n % 3 == 0 else "domestic",
            }
            offer_rows.append(
                {"id": f"off_bench{n:06d}_{position}", "product_id": pid, "position": position,
                 "region": terms["region"], "terms": terms, "created_at": at}
            )  # fmt: skip
    with gateway.engine.begin() as conn:
        for i in range(0, len(product_rows), 1000):
            conn.execute(insert(Product), product_rows[i : i + 1000])
        for i in range(0, len(offer_rows), 2000):
            conn.execute(insert(ProductOffer), offer_rows[i : i + 2000])
        conn.exec_driver_sql("ANALYZE")  # fresh statistics, as a running database would have
    return {"consumer": consumer, "abroad": abroad}


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def measure(parties: dict[str, Party], runs: int) -> list[tuple[str, int, float, float, float]]:
    """Time each scenario `runs` times after a warm-up; return (name, total, p50, p95, max)."""
    results = []
    for name, who, params in SCENARIOS:
        party = parties[who]
        party.token()
        for _ in range(10):
            party.call("GET", "/catalogue", params=params).raise_for_status()
        timings = []
        for _ in range(runs):
            began = time.perf_counter()
            response = party.call("GET", "/catalogue", params=params)
            timings.append((time.perf_counter() - began) * 1000)
            response.raise_for_status()
        total = response.json()["total"]
        results.append(
            (name, total, statistics.median(timings), _percentile(timings, 95), max(timings))
        )
    # The reference, in the same run: the same client and app answering GET /health (no
    # database, no policy), so a figure reads as a multiple of the framework's own cost.
    timings = []
    client = next(iter(parties.values())).client
    for _ in range(runs):
        began = time.perf_counter()
        client.get("/health").raise_for_status()
        timings.append((time.perf_counter() - began) * 1000)
    results.append(
        ("reference: GET /health", 0, statistics.median(timings), _percentile(timings, 95),
         max(timings))
    )  # fmt: skip
    return results


def run_engine(engine: str, products: int, runs: int) -> list[tuple]:
    """Seed a fresh database of `engine` and measure; return the rows of figures."""
    with tempfile.TemporaryDirectory(prefix="dsgw-bench-") as tmp:
        cluster = None
        if engine == "sqlite":
            url = f"sqlite:///{Path(tmp) / 'gateway.db'}"
        else:
            from tests.support.pg import PostgresCluster

            cluster = PostgresCluster().start()
            cluster.create_database("bench")
            url = cluster.url("bench")
        try:
            settings = Settings(
                state_dir=Path(tmp) / "state", database_url=url, issuer=BASE,
                opa_url="http://127.0.0.1:9",  # the catalogue never asks the policy
            )  # fmt: skip
            gateway = build_gateway(settings)
            try:
                with TestClient(create_app(gateway=gateway), base_url=BASE) as client:
                    began = time.perf_counter()
                    parties = seed(client, gateway, settings.state_dir, products)
                    print(f"[{engine}] seeded {products} products in "
                          f"{time.perf_counter() - began:.1f} s", flush=True)  # fmt: skip
                    return measure(parties, runs)
            finally:
                gateway.policy.close()
                gateway.engine.dispose()
        finally:
            if cluster is not None:
                cluster.stop()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures (whether a target is met is printed, not an
    exit status: a benchmark asserts nothing)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=200, help="timed requests per scenario")
    args = parser.parse_args(argv)
    configure_logging("WARNING")  # the per-request log lines would be timed too
    missed = False
    print(f"load average at start {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", flush=True)
    for engine in [e.strip() for e in args.engines.split(",") if e.strip()]:
        rows = run_engine(engine, args.products, args.runs)
        print(f"\n{engine}: GET /catalogue (page of 50), {args.runs} requests per scenario")
        reference = rows[-1][2]
        print(f"  {'scenario':34} {'total':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} "
              f"{'p50 / ref':>9}")  # fmt: skip
        for name, total, p50, p95, worst in rows:
            flag = "" if p95 < TARGET_MS else "  ← over target"
            if not name.startswith("reference"):
                missed |= p95 >= TARGET_MS
            print(f"  {name:34} {total:>6} {p50:>8.1f} {p95:>8.1f} {worst:>8.1f} "
                  f"{p50 / reference:>8.1f}x{flag}")  # fmt: skip
    print(f"\nload average at end {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"target p95 < {TARGET_MS:.0f} ms: {'missed' if missed else 'met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
