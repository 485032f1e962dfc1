"""Benchmark: offline verification of a large export, beside the bare SHA-256 / Ed25519 cost.

    .venv/bin/python tests/bench/bench_verify.py [--size 1000000] [--jobs 2] [--signatures]

Prints (best of --repeat runs) entries per second for the chain + Merkle roots + checkpoints
(no entry signatures) and,
with --signatures, with every entry's signature, each beside the bare cost of the same hashing
(SHA-256 of every body, every leaf and every interior node) or the same Ed25519 verifications,
measured in the same run over the same bytes, and their ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: E402

from ledger.canonical import b64url_decode  # noqa: E402
from ledger.verify import verify_export  # noqa: E402
from tests.bench._export import SIGNER, bench_export  # noqa: E402

_TAIL = 171


def bare_hashing(bodies: list[bytes]) -> float:
    """Seconds for the SHA-256 work verification needs: body hash, leaf hash, tree nodes."""
    sha = hashlib.sha256
    start = time.perf_counter()
    stack: list[bytes] = []
    for i, body in enumerate(bodies):
        sha(body).hexdigest()
        h = sha(b"\x00" + body).digest()
        n = i
        while n & 1:
            h = sha(b"\x01" + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
    return time.perf_counter() - start


def bare_signatures(bodies: list[bytes], sigs: list[bytes], count: int) -> float:
    """Seconds for `count` Ed25519 verifications of these bodies (one core)."""
    key: Ed25519PublicKey = SIGNER.public_key()
    start = time.perf_counter()
    for body, sig in zip(bodies[:count], sigs[:count], strict=True):
        key.verify(sig, body)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--signatures", action="store_true", help="also time entry signatures")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    args = parser.parse_args()

    t = time.perf_counter()
    folder = bench_export(args.size)
    print(f"export of {args.size} entries at {folder} ({time.perf_counter() - t:.1f} s to get)")
    lines = (folder / "entries.jsonl").read_bytes().splitlines(keepends=True)
    bodies = [line[8 : len(line) - _TAIL] for line in lines]

    # The machine is shared: take the best of `--repeat` runs of each, interleaved.
    bare, took = float("inf"), float("inf")
    for _ in range(args.repeat):
        bare = min(bare, bare_hashing(bodies))
        start = time.perf_counter()
        report = verify_export(folder, signatures=False)
        took = min(took, time.perf_counter() - start)
        assert report.size == args.size
    print(
        f"verify (chain, Merkle root, {report.checkpoints} checkpoints, no entry signatures): "
        f"{took:.2f} s = {args.size / took:,.0f} entries/s; bare SHA-256 work {bare:.2f} s; "
        f"ratio {took / bare:.2f}x"
    )
    if args.signatures:
        sigs = [b64url_decode(line[len(line) - 89 : len(line) - 3].decode()) for line in lines]
        bare_sig = bare_signatures(bodies, sigs, args.size)
        for jobs in sorted({1, args.jobs}):
            start = time.perf_counter()
            verify_export(folder, signatures=True, jobs=jobs)
            took = time.perf_counter() - start
            print(
                f"verify with every entry signature, jobs={jobs}: {took:.2f} s = "
                f"{args.size / took:,.0f} entries/s; bare Ed25519 + SHA-256 work (one core) "
                f"{bare_sig + bare:.2f} s; ratio {took / (bare_sig + bare):.2f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
