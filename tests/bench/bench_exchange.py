"""Exchange throughput and latency through a real gateway (hypercorn) and a real OPA.

Prints figures; asserts nothing. Usage:
    .venv/bin/python tests/bench/bench_exchange.py [--requests 400] [--threads 8] [--postgres]
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gateway.demo import Party  # noqa: E402
from gateway.policy.opa_process import free_port  # noqa: E402
from tests.e2e.world import build_world  # noqa: E402


def _serve(state: Path, database_url: str | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    args = [sys.executable, "-m", "gateway.cli", "--state", str(state), "serve"]
    args += ["--port", str(port)]
    if database_url:
        args += ["--database-url", database_url]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("gateway did not start")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    with ExitStack() as stack:
        state = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        database_url = None
        if args.postgres:
            from tests.support.pg import PostgresCluster

            cluster = stack.enter_context(PostgresCluster())
            cluster.create_database("bench")
            database_url = cluster.url("bench")
        process, url = _serve(state, database_url)
        stack.callback(process.terminate)
        client = stack.enter_context(httpx.Client(base_url=url, timeout=30))
        world = build_world(client, state)
        offer = world.publish(offers=[{"purposes": ["credit-risk-assessment"], "term": "P1D"}])
        contract = world.contract(offer["offers"][0]["id"])
        body = {"contract_id": contract["id"], "purpose": "credit-risk-assessment"}

        def pull(party: Party) -> float:
            started = time.perf_counter()
            response = party.call("POST", "/exchanges", json=body)
            assert response.status_code == 200, response.text
            return (time.perf_counter() - started) * 1000

        for _ in range(20):
            pull(world.consumer)
        sequential = [pull(world.consumer) for _ in range(args.requests)]
        parties = []
        for _ in range(args.threads):
            clone = Party(httpx.Client(base_url=url, timeout=30), "c", world.consumer.key,
                          world.consumer.id)
            parties.append(clone)
        started = time.perf_counter()
        with ThreadPoolExecutor(args.threads) as pool:
            concurrent = list(pool.map(pull, [parties[i % args.threads]
                                              for i in range(args.requests)]))
        elapsed = time.perf_counter() - started
        engine = "postgresql" if args.postgres else "sqlite"
        print(f"engine {engine}; each exchange: OPA decision, masking, metering, signed ledger "
              "entry, commit")
        print(f"sequential : p50 {statistics.median(sequential):6.2f} ms  "
              f"p99 {_percentile(sequential, 0.99):6.2f} ms  "
              f"({1000 / statistics.mean(sequential):6.1f} exchanges/s)")
        print(f"{args.threads} threads  : p50 {statistics.median(concurrent):6.2f} ms  "
              f"p99 {_percentile(concurrent, 0.99):6.2f} ms  "
              f"({args.requests / elapsed:6.1f} exchanges/s)")


if __name__ == "__main__":
    main()
