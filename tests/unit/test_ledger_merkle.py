"""RFC 9162 Merkle trees: roots, inclusion and consistency proofs against a direct reading of
the RFC's recursive definitions, for every size and index up to 40 leaves."""

import hashlib

import pytest

from ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    InvalidConsistencyProofError,
    InvalidInclusionProofError,
    MerkleError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    memory_source,
    node_hash,
    root_of,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [leaf_hash(f"leaf {i}".encode()) for i in range(40)]


def _k(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d):
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m, d):
    if len(d) <= 1:
        return []
    k = _k(len(d))
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m, d, b):
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = _k(n)
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def test_leaf_and_node_hashes_use_the_rfc_9162_prefixes():
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert (
        node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )
    assert root_of([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("n", range(0, 41))
def test_roots_and_proofs_match_the_rfc_definitions(n):
    d = LEAVES[:n]
    source = memory_source(d)
    assert root_of(d) == mth(d) == tree_root(n, source)
    for m in range(n):
        proof = inclusion_proof(m, n, source)
        assert proof == path(m, d)
        verify_inclusion(d[m], m, n, proof, mth(d))
    for m in range(1, n + 1):
        proof = consistency_proof(m, n, source)
        assert proof == (subproof(m, d, True) if m < n else [])
        verify_consistency(m, n, mth(d[:m]), mth(d), proof)


def test_compact_range_reports_every_completed_subtree_and_resumes():
    rng = CompactRange()
    stored = {}
    for h in LEAVES[:13]:
        for level, index, node in rng.append(h):
            stored[(level, index)] = node
    assert rng.root() == mth(LEAVES[:13])
    resumed = CompactRange.resume(13, lambda keys: {k: stored[k] for k in keys})
    for h in LEAVES[13:]:
        resumed.append(h)
    assert resumed.root() == mth(LEAVES)


def test_a_changed_leaf_or_proof_node_fails_naming_the_roots():
    d = LEAVES[:21]
    proof = inclusion_proof(5, 21, memory_source(d))
    with pytest.raises(InvalidInclusionProofError, match="expected .*, found"):
        verify_inclusion(LEAVES[6], 5, 21, proof, mth(d))
    bad = list(proof)
    bad[2] = bytes(32)
    with pytest.raises(InvalidInclusionProofError):
        verify_inclusion(d[5], 5, 21, bad, mth(d))
    with pytest.raises(InvalidInclusionProofError, match="too short"):
        verify_inclusion(d[5], 5, 21, proof[:-1], mth(d))
    with pytest.raises(InvalidInclusionProofError, match="too long"):
        verify_inclusion(d[5], 5, 21, proof + [bytes(32)], mth(d))
    with pytest.raises(InvalidInclusionProofError, match="outside"):
        verify_inclusion(d[5], 21, 21, proof, mth(d))


def test_a_rewritten_history_fails_the_consistency_proof():
    d = LEAVES[:30]
    proof = consistency_proof(11, 30, memory_source(d))
    rewritten = list(d[:11])
    rewritten[3] = LEAVES[39]
    with pytest.raises(InvalidConsistencyProofError, match="old tree"):
        verify_consistency(11, 30, mth(rewritten), mth(d), proof)
    with pytest.raises(InvalidConsistencyProofError):
        verify_consistency(11, 30, mth(d[:11]), mth(d), proof[:-1])
    with pytest.raises(InvalidConsistencyProofError):
        verify_consistency(8, 8, mth(d[:8]), mth(rewritten[:8]), [])


def test_proofs_outside_the_tree_are_refused():
    with pytest.raises(MerkleError):
        inclusion_proof(3, 3, memory_source(LEAVES[:3]))
    with pytest.raises(MerkleError):
        consistency_proof(4, 3, memory_source(LEAVES[:3]))
