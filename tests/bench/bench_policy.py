"""Benchmark: decision latency through the gateway's OPA client beside `opa bench`, same run.

    .venv/bin/python tests/bench/bench_policy.py [--n 3000] [--input FILE] [--json]

Starts a real OPA server on policies/ (loopback), asks it for `dsgw.exchange.decision` through
the gateway's PolicyClient (opa-python-client, keep-alive HTTP, strict validation of the
decision) N times after a warm-up, and runs `opa bench` on the same policy and input twice: the
evaluation alone, and `--e2e` (OPA's own HTTP handler, in process). It prints p50 and p99 of each,
the ratio client / opa, and the gateway's overhead over OPA's own evaluation at p50 (target:
under 1 ms). Figures only: nothing here is asserted; tests never assert durations.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from gateway.policy.client import PolicyClient  # noqa: E402
from gateway.policy.opa_process import POLICIES_DIR, OpaServer, find_opa  # noqa: E402

QUERY = "data.dsgw.exchange.decision"


def percentile(samples: list[float], q: float) -> float:
    """Return the q-th percentile (0-100) of samples, nearest-rank."""
    ordered = sorted(samples)
    rank = max(1, round(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def client_latencies(url: str, policy_input: dict, n: int) -> list[float]:
    """Return n decision latencies in ms through the gateway's PolicyClient."""
    client = PolicyClient(url, timeout=5.0)
    try:
        for _ in range(max(50, n // 10)):
            client.decide(policy_input)
        samples = []
        for _ in range(n):
            started = time.perf_counter_ns()
            decision = client.decide(policy_input)
            samples.append((time.perf_counter_ns() - started) / 1e6)
            assert decision.allow is not None
        return samples
    finally:
        client.close()


def opa_bench(input_path: Path, *, e2e: bool) -> dict[str, float]:
    """Return `opa bench` p50, p99 (ms) and its iteration count for the same policy and input."""
    args = [
        find_opa(),
        "bench",
        "--data",
        str(POLICIES_DIR),
        "--ignore",
        "schemas",
        "--input",
        str(input_path),
        "--format",
        "json",
        "--count",
        "1",
        QUERY,
    ]
    if e2e:
        args.insert(2, "--e2e")
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    extra = report["Extra"]
    # The evaluation alone, or OPA's whole HTTP handler (input parsing and eval included).
    key = "histogram_timer_server_handler_ns" if e2e else "histogram_timer_rego_query_eval_ns"
    return {
        "p50": extra[f"{key}_median"] / 1e6,
        "p99": extra[f"{key}_99%"] / 1e6,
        "n": report["N"],
        "metric": key,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3000, help="client decisions to time")
    parser.add_argument("--input", default=str(Path(__file__).with_name("exchange-input.json")))
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    input_path = Path(args.input)
    policy_input = json.loads(input_path.read_text())
    with OpaServer(policies=POLICIES_DIR) as opa:
        samples = client_latencies(opa.url, policy_input, args.n)
    client = {
        "p50": percentile(samples, 50),
        "p99": percentile(samples, 99),
        "mean": statistics.fmean(samples),
        "n": len(samples),
    }
    evaluation = opa_bench(input_path, e2e=False)
    e2e = opa_bench(input_path, e2e=True)
    figures = {
        "gateway_client": client,
        "opa_bench": evaluation,
        "opa_bench_e2e": e2e,
        "ratio_p50": client["p50"] / evaluation["p50"],
        "ratio_p99": client["p99"] / evaluation["p99"],
        "overhead_p50_ms": client["p50"] - evaluation["p50"],
        "overhead_over_e2e_p50_ms": client["p50"] - e2e["p50"],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"policy {QUERY} on {input_path.name}; OPA at loopback, keep-alive HTTP")
    print(f"{'':30}{'p50 ms':>10}{'p99 ms':>10}{'n':>8}")
    for name, row in (
        ("gateway PolicyClient.decide", client),
        ("opa bench (evaluation)", evaluation),
        ("opa bench --e2e (OPA's HTTP)", e2e),
    ):
        print(f"{name:30}{row['p50']:>10.3f}{row['p99']:>10.3f}{row['n']:>8}")
    print(
        f"ratio gateway / opa bench: p50 {figures['ratio_p50']:.2f}x, "
        f"p99 {figures['ratio_p99']:.2f}x"
    )
    print(
        f"gateway overhead at p50: {figures['overhead_p50_ms']:.3f} ms over OPA's evaluation "
        f"({figures['overhead_over_e2e_p50_ms']:.3f} ms over opa bench --e2e); target < 1 ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
