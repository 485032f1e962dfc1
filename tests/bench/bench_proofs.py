"""Benchmark: inclusion and consistency proofs for a 1,000,000-entry ledger, and receipt checks.

    .venv/bin/python tests/bench/bench_proofs.py [--size 1000000] [--samples 2000]

Generation is timed twice: from memory (every perfect subtree in lists) and from the database
(ledger_tree in SQLite, as the gateway serves it: one indexed query per proof). Checking is
the RFC 9162 verification. Each figure is printed beside the bare SHA-256 work of the same
number of hashes, measured in the same run, as a ratio; the receipt check beside one bare
Ed25519 verification (a receipt needs two: the entry and the checkpoint).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sqlalchemy import create_engine, insert  # noqa: E402

from ledger.checkpoint import sign_checkpoint  # noqa: E402
from ledger.entry import GENESIS_PREV, build_entry  # noqa: E402
from ledger.keys import Signer  # noqa: E402
from ledger.merkle import (  # noqa: E402
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    memory_source,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from ledger.receipt import build_receipt, check_receipt  # noqa: E402
from ledger.store import NODE_LEVEL, ledger_tree, metadata, node_source  # noqa: E402

SIGNER = Signer.generate()


def per_call(fn, samples: list) -> float:
    start = time.perf_counter()
    for s in samples:
        fn(s)
    return (time.perf_counter() - start) / len(samples)


def bare_sha(count: int) -> float:
    a, b = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    start = time.perf_counter()
    for _ in range(count):
        hashlib.sha256(b"\x01" + a + b).digest()
    return (time.perf_counter() - start) / count


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    n = args.size
    rng = random.Random(1)

    # A real entry as leaf n (its receipt is checked below); the others are synthetic leaves.
    entry = build_entry(
        seq=n,
        time=datetime.now(UTC),
        type="exchange.delivered",
        data={"rows": 3},
        prev=GENESIS_PREV,
        signer=SIGNER,
    )
    leaves = [leaf_hash(i.to_bytes(8, "big")) for i in range(n - 1)] + [leaf_hash(entry.canonical)]
    t = time.perf_counter()
    source = memory_source(leaves)
    print(f"tree of {n} leaves built in memory in {time.perf_counter() - t:.1f} s")
    root = source([(n.bit_length() - 1, 0)])  # warm
    from ledger.merkle import tree_root

    root = tree_root(n, source)
    bare = bare_sha(20_000)
    depth = (n - 1).bit_length()

    idx = [rng.randrange(n) for _ in range(args.samples)]
    gen = per_call(lambda i: inclusion_proof(i, n, source), idx)
    proofs = {i: inclusion_proof(i, n, source) for i in idx[:200]}
    chk = per_call(lambda i: verify_inclusion(leaves[i], i, n, proofs[i], root), idx[:200])
    print(
        f"inclusion proof, generate (memory): {gen * 1e6:.1f} us; check: {chk * 1e6:.1f} us; "
        f"bare SHA-256 of a {depth}-hash path {depth * bare * 1e6:.1f} us; "
        f"ratios {gen / (depth * bare):.1f}x, {chk / (depth * bare):.1f}x"
    )

    olds = [rng.randrange(1, n) for _ in range(args.samples)]
    gen = per_call(lambda m: consistency_proof(m, n, source), olds)
    cproofs = {m: consistency_proof(m, n, source) for m in olds[:200]}
    old_roots = {m: tree_root(m, source) for m in olds[:200]}
    chk = per_call(lambda m: verify_consistency(m, n, old_roots[m], root, cproofs[m]), olds[:200])
    hashes = sum(len(p) for p in cproofs.values()) / len(cproofs) * 2
    print(
        f"consistency proof, generate (memory): {gen * 1e6:.1f} us; check: {chk * 1e6:.1f} us; "
        f"bare SHA-256 of ~{hashes:.0f} hashes {hashes * bare * 1e6:.1f} us; "
        f"check ratio {chk / (hashes * bare):.1f}x"
    )

    # The same from the database, as GET /ledger/proofs/inclusion does it.
    folder = Path(tempfile.mkdtemp(prefix="dsgw-bench-proofs-"))
    engine = create_engine(f"sqlite:///{folder / 'tree.db'}")
    metadata.create_all(engine, tables=[ledger_tree])
    t = time.perf_counter()
    with engine.begin() as conn:
        level, nodes = 0, leaves
        while nodes:
            rows = [{"node": level * NODE_LEVEL + i, "hash": h.hex()} for i, h in enumerate(nodes)]
            for k in range(0, len(rows), 50_000):
                conn.execute(insert(ledger_tree), rows[k : k + 50_000])
            if len(nodes) == 1:
                break
            nodes = [node_hash(nodes[i], nodes[i + 1]) for i in range(0, len(nodes) - 1, 2)]
            level += 1
    print(f"ledger_tree of {n} leaves stored in SQLite in {time.perf_counter() - t:.1f} s")
    with engine.connect() as conn:
        db_source = node_source(conn)
        assert inclusion_proof(idx[0], n, db_source) == inclusion_proof(idx[0], n, source)
        gen = per_call(lambda i: inclusion_proof(i, n, db_source), idx)
        print(f"inclusion proof, generate (SQLite ledger_tree): {gen * 1e6:.1f} us per proof")
        gen = per_call(lambda m: consistency_proof(m, n, db_source), olds)
        print(f"consistency proof, generate (SQLite ledger_tree): {gen * 1e6:.1f} us per proof")
    engine.dispose()
    shutil.rmtree(folder, ignore_errors=True)

    note = sign_checkpoint("bench.dsgw/ledger", n, root, SIGNER)
    proof = inclusion_proof(n - 1, n, source)
    receipt = build_receipt(
        entry.to_json(),
        {"checkpoint": note, "index": n - 1, "size": n, "hashes": [h.hex() for h in proof]},
    )
    keys = {SIGNER.kid: SIGNER.public_key()}
    assert check_receipt(receipt, keys).checkpoint_size == n
    took = per_call(lambda _: check_receipt(receipt, keys), range(500))
    key = SIGNER.public_key()
    sig = SIGNER.sign(entry.canonical)
    ed = per_call(lambda _: key.verify(sig, entry.canonical), range(500))
    print(
        f"receipt check (entry signature, hash, {len(proof)}-hash inclusion proof, "
        f"checkpoint signature): {took * 1e6:.0f} us; bare Ed25519 verify {ed * 1e6:.0f} us; "
        f"ratio {took / ed:.1f}x (two verifications needed)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
