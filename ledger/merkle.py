"""RFC 9162 §2.1 Merkle trees: tree hashes, inclusion and consistency proofs.

Leaves are hashed as SHA-256(0x00 ‖ leaf bytes), interior nodes as SHA-256(0x01 ‖ left ‖ right);
the tree over n leaves splits at k, the largest power of two below n (RFC 9162 §2.1.1). For the
ledger, the leaf bytes of entry seq are its canonical body bytes C (specs/ledger.md §10).

Proof *generation* works over any `NodeSource`: a function that returns the hashes of perfect,
aligned subtrees, identified by (level, index) — the subtree of leaves
[index·2^level, (index+1)·2^level). The database keeps exactly those nodes (ledger.store), so a
proof for a 1,000,000-entry log needs a few dozen lookups, not a recomputation. Proof
*verification* needs only the standard library; failures raise a specific exception naming what
was expected and what was found.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from ledger.errors import LedgerError

_sha256 = hashlib.sha256
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = _sha256(b"").digest()

# (level, index) -> hash for each requested perfect subtree.
NodeSource = Callable[[Iterable[tuple[int, int]]], dict[tuple[int, int], bytes]]


class MerkleError(LedgerError):
    """A Merkle computation was asked for something that does not exist (e.g. index >= size)."""


class InvalidProofError(LedgerError):
    """A proof does not verify; `expected` and `found` say what differed."""

    def __init__(self, message: str, *, expected: object = "", found: object = "") -> None:
        self.expected = expected.hex() if isinstance(expected, bytes) else str(expected)
        self.found = found.hex() if isinstance(found, bytes) else str(found)
        super().__init__(f"{message}: expected {self.expected}, found {self.found}")


class InvalidInclusionProofError(InvalidProofError):
    """An inclusion proof does not lead from the leaf to the root."""


class InvalidConsistencyProofError(InvalidProofError):
    """A consistency proof does not join the older root to the newer one."""


def leaf_hash(leaf: bytes) -> bytes:
    """Return SHA-256(0x00 ‖ leaf)."""
    return _sha256(LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 ‖ left ‖ right)."""
    return _sha256(NODE_PREFIX + left + right).digest()


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the RFC 9162 tree head (MTH) of the leaves with these hashes."""
    if not leaf_hashes:
        return EMPTY_ROOT
    frontier = CompactRange()
    for h in leaf_hashes:
        frontier.append(h)
    return frontier.root()


class CompactRange:
    """The right frontier of a growing tree: O(log n) memory, amortised one node hash per leaf.

    `append` adds a leaf hash; `root` returns the MTH of all leaves so far. The stack holds the
    roots of the perfect subtrees that make up the tree, largest (leftmost) first.
    """

    __slots__ = ("size", "_stack")

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []

    def append(self, h: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return the perfect subtrees completed: (level, index, hash)."""
        done = [(0, self.size, h)]
        stack = self._stack
        n = self.size
        level = 0
        while n & 1:
            h = _sha256(NODE_PREFIX + stack.pop() + h).digest()
            level += 1
            n >>= 1
            done.append((level, n, h))
        stack.append(h)
        self.size += 1
        return done

    def append_fast(self, h: bytes) -> None:
        """Add a leaf hash (as `append`, without reporting the completed subtrees)."""
        stack = self._stack
        n = self.size
        while n & 1:
            h = _sha256(NODE_PREFIX + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
        self.size += 1

    def root(self) -> bytes:
        """Return the MTH of the leaves appended so far."""
        if not self._stack:
            return EMPTY_ROOT
        it = reversed(self._stack)
        h = next(it)
        for left in it:
            h = _sha256(NODE_PREFIX + left + h).digest()
        return h

    def frontier(self) -> list[tuple[int, int]]:
        """Return the (level, index) of each perfect subtree on the stack, leftmost first."""
        return _perfect_subtrees(0, self.size)

    @classmethod
    def resume(cls, size: int, source: NodeSource) -> CompactRange:
        """Return the frontier of a tree of `size` leaves whose nodes `source` holds."""
        keys = _perfect_subtrees(0, size)
        found = source(keys)
        rng = cls()
        rng.size = size
        rng._stack = [found[k] for k in keys]
        return rng


def _split(n: int) -> int:
    """Return the largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _perfect_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """Return the aligned perfect subtrees whose right fold is MTH(D[start:end]).

    Valid for the ranges RFC 9162 proofs ask for, whose start is a multiple of the largest
    power of two not above their length (true for every range reached by splitting at k).
    """
    keys = []
    while start < end:
        n = end - start
        level = n.bit_length() - 1
        if n == 1 << level:  # a perfect subtree
            keys.append((level, start >> level))
            break
        keys.append((level, start >> level))
        start += 1 << level
    return keys


def _fold(hashes: list[bytes]) -> bytes:
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = node_hash(left, h)
    return h


def _inclusion_ranges(m: int, start: int, end: int, out: list[tuple[int, int]]) -> None:
    """RFC 9162 §2.1.3.1 PATH(m, D[start:end]) as the ranges whose MTH it lists (deepest first)."""
    n = end - start
    if n <= 1:
        return
    k = _split(n)
    if m < k:
        _inclusion_ranges(m, start, start + k, out)
        out.append((start + k, end))
    else:
        _inclusion_ranges(m - k, start + k, end, out)
        out.append((start, start + k))


def _consistency_ranges(
    m: int, start: int, end: int, complete: bool, out: list[tuple[int, int]]
) -> None:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[start:end], b) as ranges (in proof order)."""
    n = end - start
    if m == n:
        if not complete:
            out.append((start, end))
        return
    k = _split(n)
    if m <= k:
        _consistency_ranges(m, start, start + k, complete, out)
        out.append((start + k, end))
    else:
        _consistency_ranges(m - k, start + k, end, False, out)
        out.append((start, start + k))


def _resolve(ranges: list[tuple[int, int]], source: NodeSource) -> list[bytes]:
    """Return MTH of each range, fetching all needed perfect subtrees in one call."""
    plans = [_perfect_subtrees(a, b) for a, b in ranges]
    found = source({key for plan in plans for key in plan})
    missing = [key for plan in plans for key in plan if key not in found]
    if missing:
        raise MerkleError(f"the tree store lacks the subtrees {sorted(set(missing))[:5]}")
    return [_fold([found[key] for key in plan]) for plan in plans]


def inclusion_proof(index: int, size: int, source: NodeSource) -> list[bytes]:
    """Return the RFC 9162 inclusion proof of leaf `index` (0-based) in the tree of `size`."""
    if not 0 <= index < size:
        raise MerkleError(f"leaf index {index} is outside a tree of {size} leaves")
    ranges: list[tuple[int, int]] = []
    _inclusion_ranges(index, 0, size, ranges)
    return _resolve(ranges, source)


def consistency_proof(old_size: int, new_size: int, source: NodeSource) -> list[bytes]:
    """Return the RFC 9162 consistency proof from the tree of `old_size` to that of `new_size`."""
    if not 0 <= old_size <= new_size:
        raise MerkleError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    ranges: list[tuple[int, int]] = []
    _consistency_ranges(old_size, 0, new_size, True, ranges)
    return _resolve(ranges, source)


def consistency_subtrees(old_size: int, new_size: int) -> set[tuple[int, int]]:
    """Return the perfect subtrees (level, index) that consistency_proof(old, new) reads."""
    if old_size == 0 or old_size >= new_size:
        return set()
    ranges: list[tuple[int, int]] = []
    _consistency_ranges(old_size, 0, new_size, True, ranges)
    return {key for a, b in ranges for key in _perfect_subtrees(a, b)}


def tree_root(size: int, source: NodeSource) -> bytes:
    """Return MTH of the first `size` leaves from the stored subtrees."""
    if size == 0:
        return EMPTY_ROOT
    return _resolve([(0, size)], source)[0]


def memory_source(leaf_hashes: Sequence[bytes]) -> NodeSource:
    """Return a NodeSource over leaf hashes held in memory (builds every perfect subtree once)."""
    levels = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])

    def source(keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        out = {}
        for level, index in keys:
            if level < len(levels) and index < len(levels[level]):
                out[(level, index)] = levels[level][index]
        return out

    return source


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that `leaf` (the leaf hash) is leaf `index` of the tree of `size` with `root`.

    RFC 9162 §2.1.3.2. Raises InvalidInclusionProofError naming what differed.
    """
    if not 0 <= index < size:
        raise InvalidInclusionProofError(
            "leaf index outside the tree", expected=f"an index below {size}", found=index
        )
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        _check_hash_length(p, InvalidInclusionProofError)
        if sn == 0:
            raise InvalidInclusionProofError(
                "inclusion proof too long",
                expected=f"at most {_path_length(index, size)} hashes",
                found=f"{len(proof)} hashes",
            )
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidInclusionProofError(
            "inclusion proof too short",
            expected=f"{_path_length(index, size)} hashes",
            found=f"{len(proof)} hashes",
        )
    if r != root:
        raise InvalidInclusionProofError(
            f"inclusion proof of leaf {index} in a tree of {size} leads to another root",
            expected=root,
            found=r,
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (new_size, new_root) extends (old_size, old_root); RFC 9162 §2.1.4.2.

    Raises InvalidConsistencyProofError naming what differed.
    """
    err = InvalidConsistencyProofError
    if not 0 <= old_size <= new_size:
        raise err("sizes out of order", expected=f"old size <= {new_size}", found=old_size)
    for p in proof:
        _check_hash_length(p, err)
    if old_size == new_size:
        if proof:
            raise err("a proof between equal sizes must be empty", expected=0, found=len(proof))
        if old_root != new_root:
            raise err(
                f"two trees of size {old_size} with different roots",
                expected=old_root,
                found=new_root,
            )
        return
    if old_size == 0:
        if proof:
            raise err("a proof from the empty tree must be empty", expected=0, found=len(proof))
        return
    if not proof:
        raise err("empty consistency proof", expected="at least one hash", found="none")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise err(
                "consistency proof too long", expected="fewer hashes", found=f"{len(proof)} hashes"
            )
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise err(
            "consistency proof too short", expected="more hashes", found=f"{len(proof)} hashes"
        )
    if fr != old_root:
        raise err(
            f"the proof rebuilds another root for the old tree of size {old_size}",
            expected=old_root,
            found=fr,
        )
    if sr != new_root:
        raise err(
            f"the proof rebuilds another root for the new tree of size {new_size}",
            expected=new_root,
            found=sr,
        )


def _path_length(index: int, size: int) -> int:
    out: list[tuple[int, int]] = []
    _inclusion_ranges(index, 0, size, out)
    return len(out)


def _check_hash_length(h: object, err: type[InvalidProofError]) -> None:
    if not isinstance(h, bytes) or len(h) != 32:
        raise err(
            "a proof node is not a SHA-256 hash",
            expected="32 bytes",
            found=f"{len(h) if isinstance(h, bytes) else type(h).__name__}",
        )
