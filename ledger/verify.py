"""Offline verification of an exported ledger folder (the algorithm of specs/ledger.md §6).

Needs only the standard library, cryptography, rfc8785 and (optional, for speed) orjson.
Streams entries.jsonl line by line, keeping only the Merkle tree's right frontier, so the size
of the log does not matter, and raises `LedgerVerificationError` at the first failure, naming
the entry, the check, what was expected and what was found. Besides the chain it follows the
key chain (genesis and rotation entries), recomputes the RFC 9162 root at every checkpoint's
size and checks the checkpoints' signatures; `verify_extension` proves OLD ⊑ NEW.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.canonical import b64url_decode, canonical_json, parse_rfc3339
from ledger.checkpoint import Checkpoint, CheckpointError, key_hash, parse_checkpoint
from ledger.entry import BODY_MEMBERS, GENESIS_PREV, TYPE_PATTERN, VERSION
from ledger.errors import ExportUnreadableError, LedgerKeyError, LedgerVerificationError
from ledger.keys import SIGNATURE_BYTES, jwk_thumbprint, public_key_from_jwk, verify_signature
from ledger.merkle import EMPTY_ROOT, CompactRange

try:  # a fast JSON parser makes the 1,000,000-entry target; the strict path needs none
    import orjson

    _orjson_loads = orjson.loads
    _orjson_dumps = orjson.dumps
    _SORT_KEYS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
except ImportError:  # pragma: no cover - orjson is a dependency; keep the verifier standalone

    def _orjson_loads(data: bytes) -> object:
        return json.loads(data)

    def _orjson_dumps(obj: object, option: int = 0) -> bytes:
        return canonical_json(obj)

    _SORT_KEYS = 0

FORMAT = "dsgw-ledger/1"
ENTRIES_FILE = "entries.jsonl"
KEYS_FILE = "keys.json"
MANIFEST_FILE = "manifest.json"
CHECKPOINTS_FILE = "checkpoints.jsonl"
GENESIS_TYPE = "ledger.genesis"
KEY_ROTATED_TYPE = "ledger.key-rotated"
_KEY_TYPES = frozenset({GENESIS_TYPE, KEY_ROTATED_TYPE})
_sha256 = hashlib.sha256
# ,"hash":"<64 hex>","sig":"<86 base64url>"}\n
_TAIL = 9 + 64 + 9 + 86 + 3
_HEX64 = re.compile(rb"[0-9a-f]{64}")
# The time of specs/ledger.md §2 with valid hours, minutes and seconds; the date is checked
# once per distinct date by parse_rfc3339 (the calendar: no February 30th).
_TIME_FAST = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]\.[0-9]{6}Z"
)
_B64SIG = re.compile(rb"[A-Za-z0-9_-]{86}")
_TAIL_LINE = re.compile(rb',"hash":"([0-9a-f]{64})","sig":"([A-Za-z0-9_-]{86})"}\n')
ENTRY_MEMBERS = frozenset({"body", "hash", "sig"})
MANIFEST_MEMBERS = frozenset({"format", "origin", "size", "head", "exported_at", "kid", "sig"})
PROGRESS_EVERY = 5000

_LINE_HEAD = b'{"body":'
# The fast path accepts a body when orjson writes it back byte for byte and nothing in it is
# where orjson's form and RFC 8785's can differ: an integer beyond ±(2^53 - 1) (orjson allows 64
# bits; OPT_STRICT_INTEGER refuses them), a float (orjson keeps 5.0 and 1e+16, RFC 8785 writes 5
# and 10000000000000000; _has_float), and a character beyond U+FFFF (orjson sorts member names by
# code point, RFC 8785 by UTF-16 code units, which differ when such a character meets one of
# U+E000-U+FFFF; its UTF-8 lead byte is F0-F4). Strings need no test: orjson escapes exactly as
# RFC 8785 does (tests/unit/test_ledger_verify_exact.py checks every character).
_NON_BMP = re.compile(rb"[\xf0-\xf4]")


@dataclass(frozen=True)
class VerifyReport:
    """What a verified export holds."""

    size: int
    head: str
    first_time: str | None
    last_time: str | None
    kids: tuple[str, ...]
    """Every kid that signed an entry or the manifest, sorted."""
    types: dict[str, int] = field(default_factory=dict)
    """Number of entries per entry type."""
    origin: str = ""
    exported_at: str = ""
    root: str = EMPTY_ROOT.hex()
    """The RFC 9162 Merkle tree head of the entries, hex."""
    checkpoints: int = 0
    """Number of signed checkpoints verified."""
    signatures: bool = True
    """Whether every entry's signature was checked."""
    nodes: dict = field(default_factory=dict, repr=False)
    """Captured Merkle subtrees (level, index) -> hash (see verify_export's `capture`)."""

    def to_json(self) -> dict:
        """Return the report as a JSON object."""
        return {
            "size": self.size,
            "head": self.head,
            "first_time": self.first_time,
            "last_time": self.last_time,
            "kids": list(self.kids),
            "types": dict(sorted(self.types.items())),
            "origin": self.origin,
            "exported_at": self.exported_at,
            "root": self.root,
            "checkpoints": self.checkpoints,
            "signatures": self.signatures,
        }


def verify_export(
    path: Path,
    *,
    progress: Callable[[int], object] | None = None,
    trusted_kids: Iterable[str] | None = None,
    signatures: bool = True,
    jobs: int = 1,
    capture: Iterable[tuple[int, int]] = (),
) -> VerifyReport:
    """Verify the export folder at `path`; return its report or raise at the first failure.

    Raises `LedgerVerificationError` when a check fails and `ExportUnreadableError` when the
    folder or one of its three files cannot be read. `progress(done)` is called every
    PROGRESS_EVERY entries and once at the end. With `trusted_kids`, only those keys of
    keys.json count as the log's first key (keys announced by a valid rotation entry follow).
    `signatures=False` skips the entries' Ed25519 signatures (the chain, the Merkle root, the
    checkpoints and the manifest are still checked); `jobs` > 1 checks them in that many
    processes. `capture` names Merkle subtrees (level, index) to return in the report's `nodes`.
    """
    path = Path(path)
    if not path.is_dir():
        raise ExportUnreadableError(f"{path} is not a folder (expected a ledger export folder)")
    keys = _load_keys(_read_file(path / KEYS_FILE))
    expected_kid = "a kid of keys.json"
    if trusted_kids is not None:
        trusted = set(trusted_kids)
        keys = {kid: key for kid, key in keys.items() if kid in trusted}
        expected_kid = "a trusted kid of keys.json"
    expected_kid += ": " + (", ".join(sorted(keys)) if keys else "(there is none)")
    manifest_raw = _read_file(path / MANIFEST_FILE)
    checkpoints = _load_checkpoints(path / CHECKPOINTS_FILE)

    sig_checker = _Signatures(jobs) if signatures else None
    chain = _Chain(keys, expected_kid, sig_checker, checkpoints, set(capture))
    try:
        try:
            with open(path / ENTRIES_FILE, "rb") as lines:
                for raw in lines:
                    chain.add(raw)
                    if progress is not None and chain.size % PROGRESS_EVERY == 0:
                        progress(chain.size)
        except OSError as exc:
            raise ExportUnreadableError(
                f"cannot read {path / ENTRIES_FILE}: {exc.strerror}"
            ) from exc
        except LedgerVerificationError as exc:
            if sig_checker is not None and exc.seq is not None:
                sig_checker.finish(before=exc.seq)
            raise
        if sig_checker is not None:
            sig_checker.finish()
    finally:
        if sig_checker is not None:
            sig_checker.close()
    if progress is not None and chain.size % PROGRESS_EVERY != 0:
        progress(chain.size)

    manifest = _check_manifest(manifest_raw, keys, chain, expected_kid)
    cp_kids = _check_checkpoints(checkpoints, chain, manifest)
    return VerifyReport(
        size=chain.size,
        head=chain.head,
        first_time=chain.first_time,
        last_time=chain.last_time,
        kids=tuple(sorted(chain.kids | {manifest["kid"]} | cp_kids)),
        types=dict(chain.types),
        origin=manifest["origin"],
        exported_at=manifest["exported_at"],
        root=chain.merkle.root().hex(),
        checkpoints=len(checkpoints),
        signatures=signatures,
        nodes=chain.nodes,
    )


@dataclass(frozen=True)
class ExtensionReport:
    """OLD and NEW verified, and NEW proven to extend OLD by an RFC 9162 consistency proof."""

    old: VerifyReport
    new: VerifyReport
    proof: tuple[str, ...]
    """The consistency proof from OLD's tree to NEW's, hex hashes."""

    def to_json(self) -> dict:
        return {
            "old": self.old.to_json(),
            "new": self.new.to_json(),
            "consistency_proof": list(self.proof),
        }


def verify_extension(old: Path, new: Path, **options) -> ExtensionReport:
    """Verify the exports OLD and NEW, then prove that NEW extends OLD without rewriting it.

    Both are verified in full (`options` as for verify_export). NEW's tree must hold OLD's
    entries unchanged: the consistency proof from OLD's size to NEW's, built from NEW's entries,
    must rebuild OLD's root (computed from OLD's entries) and NEW's root. A failure names the
    first entry where the two exports differ (check 'consistency').
    """
    from ledger.merkle import (
        InvalidConsistencyProofError,
        consistency_proof,
        consistency_subtrees,
        verify_consistency,
    )

    old_report = verify_export(old, **options)
    new_size = _manifest_size(Path(new))
    new_report = verify_export(
        new, capture=consistency_subtrees(old_report.size, new_size), **options
    )
    if new_report.origin != old_report.origin:
        raise LedgerVerificationError(
            "consistency",
            location=f"{new}/{MANIFEST_FILE}",
            expected=f"origin {old_report.origin} (OLD's)",
            found=new_report.origin,
        )
    if new_report.size < old_report.size:
        # Name the first entry of OLD that NEW does not keep: a changed one, else the first
        # one NEW lacks.
        seq = _first_difference(Path(old), Path(new)) or new_report.size + 1
        raise LedgerVerificationError(
            "consistency",
            seq=seq,
            location=f"entry {seq} of OLD",
            expected=f"at least the {old_report.size} entries of OLD",
            found=f"{new_report.size} entries: NEW is shorter than OLD"
            + ("" if seq > new_report.size else f" and differs from entry {seq} on"),
        )
    nodes = new_report.nodes
    proof = consistency_proof(
        old_report.size, new_report.size, lambda keys: {k: nodes[k] for k in keys if k in nodes}
    )
    try:
        verify_consistency(
            old_report.size,
            new_report.size,
            bytes.fromhex(old_report.root),
            bytes.fromhex(new_report.root),
            proof,
        )
    except InvalidConsistencyProofError as exc:
        seq = _first_difference(Path(old), Path(new))
        raise LedgerVerificationError(
            "consistency",
            seq=seq,
            location=f"entry {seq} of NEW" if seq else str(new),
            expected=f"NEW to keep OLD's {old_report.size} entries ({exc.expected})",
            found=f"a rewritten history ({exc.found})",
        ) from exc
    return ExtensionReport(old_report, new_report, tuple(h.hex() for h in proof))


def _manifest_size(folder: Path) -> int:
    try:
        size = _loads(_read_file(folder / MANIFEST_FILE)).get("size", 0)
    except (ValueError, AttributeError):
        return 0  # verify_export reports the bad manifest
    return size if _is_int(size) and size >= 0 else 0


def _first_difference(old: Path, new: Path) -> int | None:
    """Return the first seq whose line differs between OLD and NEW, or None."""
    with open(old / ENTRIES_FILE, "rb") as a, open(new / ENTRIES_FILE, "rb") as b:
        for n, (x, y) in enumerate(zip(a, b, strict=False), start=1):
            if x != y:
                return n
    return None


class _Chain:
    """The running state of the entry checks: one `add` per line of entries.jsonl."""

    def __init__(
        self,
        keys: dict[str, Ed25519PublicKey],
        expected_kid: str,
        sig_checker: _Signatures | None,
        checkpoints: list[_LoadedCheckpoint],
        capture: set[tuple[int, int]],
    ) -> None:
        self.keys = dict(keys)
        self.expected_kid = expected_kid
        self.sigs = sig_checker
        self.size = 0
        self.head = GENESIS_PREV
        self.first_time: str | None = None
        self.last_body: dict | None = None
        self.kids: set[str] = set()
        self.types: Counter[str] = Counter()
        self.merkle = CompactRange()
        # The key chain: the key that must sign the next entry, and when each key retired.
        self.active: str | None = None
        self.retired: dict[str, int] = {}
        self.activated: dict[str, int] = {}
        self.origin: str | None = None
        self.roots: dict[int, bytes] = {}
        self._due = sorted({cp.size for cp in checkpoints if cp.size > 0})
        self._due.reverse()
        self.capture = capture
        self.nodes: dict[tuple[int, int], bytes] = {}
        self._dates: set[str] = set()  # calendar dates already found valid

    def add(self, raw: bytes) -> None:
        n = self.size + 1
        # The fast path of _fast_parse, inline: this runs once per entry.
        end = len(raw) - _TAIL
        body = None
        if end > 8 and raw.startswith(_LINE_HEAD):
            tail = _TAIL_LINE.fullmatch(raw, end)
            if tail is not None:
                body_bytes = raw[8:end]
                try:
                    body = _orjson_loads(body_bytes)
                    if (
                        type(body) is not dict
                        or _orjson_dumps(body, option=_SORT_KEYS) != body_bytes
                        or not (body_bytes.isascii() or _NON_BMP.search(body_bytes) is None)
                        or _has_float(body.get("data"))
                    ):
                        body = None
                except (ValueError, TypeError, RecursionError):  # orjson's errors; deep nesting
                    body = None
        if body is None:
            body, body_bytes, digest, sig = _fast_parse(n, raw)
        else:
            digest, sig = tail.group(1).decode("ascii"), tail.group(2).decode("ascii")
        seq, v, t = body.get("seq"), body.get("v"), body.get("time")
        if not (
            type(seq) is int
            and seq == n
            and type(v) is int
            and v == VERSION
            and body.keys() == BODY_MEMBERS
            and type(t) is str
            and _TIME_FAST.fullmatch(t) is not None
            and t[:10] in self._dates
            and type(body["type"]) is str
            and (body["type"] in self.types or TYPE_PATTERN.fullmatch(body["type"]) is not None)
            and type(body["data"]) is dict
            and type(body["prev"]) is str
            and type(body["kid"]) is str
        ):
            # The detailed checks name the failure; a body they accept has a new, valid date.
            # A line that is not canonical fails 'parse' first, whatever else is wrong with it.
            _parse_line(n, raw)
            _check_seq(n, body)
            _check_version(n, body)
            _check_format(n, body)
            self._dates.add(t[:10])
        if body["prev"] != self.head:
            raise LedgerVerificationError("chain", seq=n, expected=self.head, found=body["prev"])
        computed = _sha256(body_bytes).hexdigest()
        if digest != computed:
            raise LedgerVerificationError("hash", seq=n, expected=computed, found=digest)
        kid = body["kid"]
        if kid != self.active:
            self._check_key(n, body)
        key = self.keys[kid]
        if body["type"] in _KEY_TYPES:
            # The key chain rests on these: always checked, at once, even without --signatures.
            _check_signature(n, key, sig, body_bytes, kid)
            self._key_entry(n, body)
        elif self.sigs is not None:
            self.sigs.check(n, key, sig, body_bytes, kid)

        leaf = _sha256(b"\x00" + body_bytes).digest()
        if self.capture:
            for level, index, h in self.merkle.append(leaf):
                if (level, index) in self.capture:
                    self.nodes[(level, index)] = h
        else:
            self.merkle.append_fast(leaf)
        self.size = n
        if self._due and self._due[-1] == n:
            self._due.pop()
            self.roots[n] = self.merkle.root()
        self.head = digest
        if n == 1:
            self.first_time = t
        self.last_body = body
        types = self.types
        types[body["type"]] = types.get(body["type"], 0) + 1

    @property
    def last_time(self) -> str | None:
        return None if self.last_body is None else self.last_body["time"]

    def _check_key(self, n: int, body: dict) -> None:
        """The entry's kid is not the active key: the first entry, or a key-chain failure."""
        kid = body["kid"]
        if self.active is None:  # the first entry names the log's first key
            if kid not in self.keys:
                raise LedgerVerificationError("kid", seq=n, expected=self.expected_kid, found=kid)
            self.active = kid
            self.activated[kid] = n
            self.kids.add(kid)
            return
        if kid in self.retired:
            raise LedgerVerificationError(
                "key-chain",
                seq=n,
                expected=f"a signature by the active key {self.active}",
                found=f"key {kid}, retired by the rotation at entry {self.retired[kid]}",
            )
        if kid not in self.keys:
            raise LedgerVerificationError("kid", seq=n, expected=self.expected_kid, found=kid)
        raise LedgerVerificationError(
            "key-chain",
            seq=n,
            expected=f"a signature by the active key {self.active}",
            found=f"key {kid}, which no rotation entry announced",
        )

    def _key_entry(self, n: int, body: dict) -> None:
        """Apply a genesis or key-rotation entry to the key chain (check 'key-chain')."""
        data, kid = body["data"], body["kid"]
        if body["type"] == GENESIS_TYPE:
            if n != 1:
                raise LedgerVerificationError(
                    "key-chain", seq=n, expected="ledger.genesis only as entry 1", found=n
                )
            announced = _announced_kid(n, data, "genesis")
            if announced != kid:
                raise LedgerVerificationError(
                    "key-chain",
                    seq=n,
                    expected=f"the genesis key to be the key that signs it ({kid})",
                    found=announced,
                )
            _check_announced_params(n, data, "key-chain")
            if isinstance(data.get("origin"), str):
                self.origin = data["origin"]
            return
        new_kid = _announced_kid(n, data, "rotation")
        _check_announced_params(n, data, "key-rotation")
        previous = data.get("previous", _MISSING)
        if previous != kid:
            raise LedgerVerificationError(
                "key-rotation",
                seq=n,
                expected=f"data.previous: the kid of the key that signs the rotation, {kid}",
                found=_describe(previous),
            )
        if new_kid == kid or new_kid in self.retired:
            raise LedgerVerificationError(
                "key-rotation",
                seq=n,
                expected="a new key, never used before",
                found=f"key {new_kid}",
            )
        self.keys[new_kid] = public_key_from_jwk(data["key"])
        self.retired[kid] = n
        self.activated[new_kid] = n + 1
        self.active = new_kid
        self.kids.add(new_kid)


def _announced_kid(n: int, data: dict, what: str) -> str:
    jwk = data.get("key")
    try:
        public_key_from_jwk(jwk)
        kid = jwk_thumbprint(jwk)
    except LedgerKeyError as exc:
        raise LedgerVerificationError(
            "key-rotation" if what == "rotation" else "key-chain",
            seq=n,
            expected=f"data.key: the public Ed25519 JWK of the {what} key",
            found=str(exc),
        ) from None
    if "d" in jwk or jwk.get("kid", kid) != kid:
        raise LedgerVerificationError(
            "key-rotation" if what == "rotation" else "key-chain",
            seq=n,
            expected=f"a public JWK with kid {kid} (its thumbprint) and no 'd'",
            found=_describe(jwk.get("kid")) if "d" not in jwk else "a private key",
        )
    return kid


def _check_announced_params(n: int, data: dict, check: str) -> None:
    """A genesis or rotation key's `use` and `alg` follow keys.json's rule (step 1)."""
    problem = _jwk_use_and_alg(data["key"])
    if problem is not None:
        raise LedgerVerificationError(
            check, seq=n, expected=f"data.key with {JWK_USE_AND_ALG}", found=problem
        )


class _Signatures:
    """Entry signatures, checked inline (jobs 1) or in batches by a process pool."""

    BATCH = 4096

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, int(jobs))
        self._pool = None
        self._batch: list[tuple[int, bytes, str, bytes, str]] = []
        self._pending: list = []
        if self.jobs > 1:
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(self.jobs)

    def check(self, n: int, key: Ed25519PublicKey, sig: str, body: bytes, kid: str) -> None:
        if self._pool is None:
            _check_signature(n, key, sig, body, kid)
            return
        self._batch.append((n, _raw_public(key), sig, body, kid))
        if len(self._batch) >= self.BATCH:
            self._pending.append(self._pool.submit(_check_batch, self._batch))
            self._batch = []

    def finish(self, before: int | None = None) -> None:
        """Raise the first signature failure (of an entry before `before`, when given)."""
        if self._pool is None:
            return
        if self._batch:
            self._pending.append(self._pool.submit(_check_batch, self._batch))
            self._batch = []
        for future in self._pending:
            failure = future.result()
            if failure is not None and (before is None or failure.seq < before):
                raise failure

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


def _raw_public(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _check_batch(batch: list[tuple[int, bytes, str, bytes, str]]) -> LedgerVerificationError | None:
    """Return the first failure among (seq, raw key, sig, body, kid), or None (pool worker)."""
    keys: dict[bytes, Ed25519PublicKey] = {}
    for n, raw, sig, body, kid in batch:
        key = keys.get(raw)
        if key is None:
            key = keys[raw] = Ed25519PublicKey.from_public_bytes(raw)
        try:
            _check_signature(n, key, sig, body, kid)
        except LedgerVerificationError as exc:
            return exc
    return None


def _fast_parse(n: int, raw: bytes) -> tuple[dict, bytes, str, str]:
    """Return (body, body bytes, hash, sig) of a line; the strict `_parse_line` decides doubts.

    An entry line as the gateway writes it has a fixed tail (64 hex characters of hash, 86 of
    signature), so the body bytes are sliced out and parsed once; the line is accepted here only
    if re-serialising the body with sorted members gives back exactly those bytes and nothing
    in it is where orjson's form and RFC 8785's could differ (a float, an integer beyond 2^53, a
    character beyond U+FFFF).
    Anything else goes to the full RFC 8785 check, which accepts canonical lines and names the
    first differing byte of others.
    """
    end = len(raw) - _TAIL
    if (
        end > 8
        and raw.startswith(_LINE_HEAD)
        and raw[end : end + 9] == b',"hash":"'
        and raw[end + 73 : end + 82] == b'","sig":"'
        and raw.endswith(b'"}\n')
    ):
        body_bytes = raw[8:end]
        digest = raw[end + 9 : end + 73]
        sig = raw[end + 82 : end + 168]
        if _HEX64.fullmatch(digest) and _B64SIG.fullmatch(sig):
            try:
                body = _orjson_loads(body_bytes)
                exact = (
                    isinstance(body, dict)
                    and _orjson_dumps(body, option=_SORT_KEYS) == body_bytes
                    and not _has_float(body)
                    and (body_bytes.isascii() or _NON_BMP.search(body_bytes) is None)
                )
            except (ValueError, TypeError, RecursionError):  # orjson's errors; deep nesting
                exact = False
            if exact:
                return body, body_bytes, digest.decode("ascii"), sig.decode("ascii")
    entry, body_bytes = _parse_line(n, raw)
    return entry["body"], body_bytes, entry["hash"], entry["sig"]


def _has_float(value: object) -> bool:
    """Return whether the parsed JSON `value` holds a float anywhere."""
    kind = type(value)
    if kind is float:
        return True
    if kind is dict:
        value = value.values()  # type: ignore[union-attr]
    elif kind is not list:
        return False
    for item in value:  # type: ignore[union-attr]
        kind = type(item)
        if kind is float or ((kind is dict or kind is list) and _has_float(item)):
            return True
    return False


def _parse_line(n: int, raw: bytes) -> tuple[dict, bytes]:
    """Return the parsed line and the canonical bytes of its body (check 'parse')."""
    if not raw.endswith(b"\n"):
        _fail_parse(n, "a line ending in a line feed", "the end of the file inside the line")
    text = raw[:-1]
    try:
        obj = json.loads(
            text.decode("utf-8"),
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_reject_constant,
        )
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, duplicates, NaN
        _fail_parse(n, "one JSON value in UTF-8", f"{exc}: {_excerpt(text)}")
    except RecursionError:
        _fail_parse(n, "JSON nested less deep than the parser's limit", _excerpt(text))
    if not isinstance(obj, dict) or set(obj) != ENTRY_MEMBERS:
        _fail_parse(n, "an object with exactly the members body, hash, sig", _describe(obj))
    if not isinstance(obj["body"], dict):
        _fail_parse(n, "body to be an object", _describe(obj["body"]))
    for name in ("hash", "sig"):
        if not isinstance(obj[name], str):
            _fail_parse(n, f"{name} to be a string", _describe(obj[name]))
    try:
        body_bytes = canonical_json(obj["body"])
        canonical = b"".join(
            (
                _LINE_HEAD,
                body_bytes,
                b',"hash":',
                canonical_json(obj["hash"]),
                b',"sig":',
                canonical_json(obj["sig"]),
                b"}",
            )
        )
    except ValueError as exc:  # rfc8785.CanonicalizationError: e.g. 1e400, 2**53
        _fail_parse(n, "values that RFC 8785 can represent", str(exc))
    except RecursionError:
        _fail_parse(n, "JSON nested less deep than the parser's limit", _excerpt(text))
    if canonical != text:
        at = next(
            (i for i, (a, b) in enumerate(zip(canonical, text, strict=False)) if a != b), None
        )
        at = min(len(canonical), len(text)) if at is None else at
        _fail_parse(
            n,
            f"the line in its RFC 8785 canonical form, which differs from byte {at} on: "
            f"{_excerpt(canonical[at:], 60)}",
            _excerpt(text[at:], 60),
        )
    return obj, body_bytes


def _check_seq(n: int, body: dict) -> None:
    seq = body.get("seq", _MISSING)
    if not _is_int(seq) or seq != n:
        raise LedgerVerificationError("seq", seq=n, expected=n, found=_describe(seq))


def _check_version(n: int, body: dict) -> None:
    v = body.get("v", _MISSING)
    if not _is_int(v) or v != VERSION:
        raise LedgerVerificationError("version", seq=n, expected=VERSION, found=_describe(v))


def _check_format(n: int, body: dict) -> None:
    def fail(expected: str, found: object) -> NoReturn:
        raise LedgerVerificationError("format", seq=n, expected=expected, found=found)

    if set(body) != BODY_MEMBERS:
        missing, extra = sorted(BODY_MEMBERS - set(body)), sorted(set(body) - BODY_MEMBERS)
        fail(
            f"the body members {', '.join(sorted(BODY_MEMBERS))}",
            "; ".join(
                f"{label} {', '.join(names)}"
                for label, names in (("missing", missing), ("extra", extra))
                if names
            ),
        )
    try:
        parse_rfc3339(body["time"])
    except ValueError:
        fail("time as YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC)", _describe(body["time"]))
    if not isinstance(body["type"], str) or TYPE_PATTERN.fullmatch(body["type"]) is None:
        fail("type of 1 to 128 characters A-Z a-z 0-9 . _ : -", _describe(body["type"]))
    if not isinstance(body["data"], dict):
        fail("data to be an object", _describe(body["data"]))
    for name in ("prev", "kid"):
        if not isinstance(body[name], str):
            fail(f"{name} to be a string", _describe(body[name]))


def _check_hash(n: int, entry: dict, body_bytes: bytes) -> None:
    digest = hashlib.sha256(body_bytes).hexdigest()
    if entry["hash"] != digest:
        raise LedgerVerificationError("hash", seq=n, expected=digest, found=entry["hash"])


def _check_signature(
    n: int | None,
    key: Ed25519PublicKey,
    sig: str,
    signed: bytes,
    kid: str,
    *,
    check: str = "signature",
    location: str | None = None,
) -> None:
    try:
        raw = b64url_decode(sig)
    except ValueError:
        raw = b""
    if len(raw) != SIGNATURE_BYTES:
        raise LedgerVerificationError(
            check,
            seq=n,
            location=location,
            expected=f"unpadded base64url of a {SIGNATURE_BYTES}-byte Ed25519 signature",
            found=_describe(sig),
        )
    if not verify_signature(key, raw, signed):
        raise LedgerVerificationError(
            check,
            seq=n,
            location=location,
            expected=f"an Ed25519 signature by key {kid} over the canonical bytes",
            found=f"{sig}, which does not verify",
        )


def _check_manifest(
    raw: bytes, keys: dict[str, Ed25519PublicKey], chain: _Chain, expected_kid: str
) -> dict:
    """Return the manifest after its checks: format, kid, signature, size, head."""
    where = MANIFEST_FILE

    def fail(check: str, expected: object, found: object) -> NoReturn:
        raise LedgerVerificationError(check, location=where, expected=expected, found=found)

    try:
        manifest = _loads(raw)
    except ValueError as exc:
        fail("manifest-format", "a JSON object in UTF-8", str(exc))
    if not isinstance(manifest, dict) or set(manifest) != MANIFEST_MEMBERS:
        members = ", ".join(sorted(MANIFEST_MEMBERS))
        fail(
            "manifest-format", f"an object with exactly the members {members}", _describe(manifest)
        )
    if manifest["format"] != FORMAT:
        fail("manifest-format", f"format {FORMAT!r}", _describe(manifest["format"]))
    for name in ("origin", "head", "kid", "sig", "exported_at"):
        if not isinstance(manifest[name], str):
            fail("manifest-format", f"{name} to be a string", _describe(manifest[name]))
    try:
        parse_rfc3339(manifest["exported_at"])
    except ValueError:
        fail(
            "manifest-format", "exported_at as YYYY-MM-DDTHH:MM:SS.ffffffZ", manifest["exported_at"]
        )
    if not _is_int(manifest["size"]) or manifest["size"] < 0:
        fail("manifest-format", "size to be an integer >= 0", _describe(manifest["size"]))

    key = chain.keys.get(manifest["kid"])
    if key is None:
        fail("manifest-kid", expected_kid, manifest["kid"])
    if chain.active is not None and manifest["kid"] != chain.active:
        fail(
            "manifest-kid",
            f"the active key at the end of the log, {chain.active}",
            f"{manifest['kid']}, retired at entry {chain.retired.get(manifest['kid'])}"
            if manifest["kid"] in chain.retired
            else manifest["kid"],
        )
    unsigned = {name: value for name, value in manifest.items() if name != "sig"}
    try:
        signed = canonical_json(unsigned)
    except ValueError as exc:
        fail("manifest-format", "values that RFC 8785 can represent", str(exc))
    _check_signature(
        None,
        key,
        manifest["sig"],
        signed,
        manifest["kid"],
        check="manifest-signature",
        location=where,
    )
    if manifest["size"] != chain.size:
        fail("manifest-size", f"{manifest['size']} entries", f"{chain.size} entries")
    if manifest["head"] != chain.head:
        fail("manifest-head", manifest["head"], chain.head)
    return manifest


@dataclass(frozen=True)
class _LoadedCheckpoint:
    line: int
    checkpoint: Checkpoint

    @property
    def size(self) -> int:
        return self.checkpoint.size


def _load_checkpoints(path: Path) -> list[_LoadedCheckpoint]:
    """Return checkpoints.jsonl's notes, in strictly increasing size (check 'checkpoint-format').

    The file is optional: an export without it has no checkpoint to check.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ExportUnreadableError(f"cannot read {path}: {exc.strerror}") from exc
    out: list[_LoadedCheckpoint] = []
    lines = raw.split(b"\n")
    last = lines.pop()  # after the final line feed: nothing
    for i, line in enumerate([*lines, last] if last else lines, start=1):
        where = f"{CHECKPOINTS_FILE} line {i}"

        def fail(expected: object, found: object, where: str = where) -> NoReturn:
            raise LedgerVerificationError(
                "checkpoint-format", location=where, expected=expected, found=found
            )

        if i > len(lines):
            fail("a line ending in a line feed (the last line too)", "the end of the file")
        try:
            obj = _loads(line)
        except ValueError as exc:
            fail('a JSON object {"note": "<signed note>"}', str(exc))
        if not isinstance(obj, dict) or set(obj) != {"note"} or not isinstance(obj["note"], str):
            fail('a JSON object {"note": "<signed note>"}', _describe(obj))
        try:
            canonical = canonical_json(obj)
        except ValueError as exc:  # a lone surrogate
            fail("a note of valid Unicode", str(exc))
        if canonical != line:
            fail(f"the line in its RFC 8785 form, {_excerpt(canonical, 60)}", _excerpt(line, 60))
        try:
            cp = parse_checkpoint(obj["note"])
        except CheckpointError as exc:
            fail("a C2SP tlog-checkpoint signed note", str(exc))
        if cp.size == 0:
            fail("a size of at least 1 (the empty tree needs no checkpoint)", 0)
        if out and cp.size <= out[-1].size:
            fail(f"a size above {out[-1].size} (checkpoints in increasing size)", cp.size)
        out.append(_LoadedCheckpoint(i, cp))
    return out


def _check_checkpoints(
    checkpoints: list[_LoadedCheckpoint], chain: _Chain, manifest: dict
) -> set[str]:
    """Check every checkpoint against the entries' Merkle tree and the key chain; return kids."""
    if chain.origin is not None and manifest["origin"] != chain.origin:
        raise LedgerVerificationError(
            "manifest-origin",
            location=MANIFEST_FILE,
            expected=chain.origin,
            found=manifest["origin"],
        )
    kids = set()
    chain_keys = {kid: chain.keys[kid] for kid in chain.activated}
    for loaded in checkpoints:
        cp = loaded.checkpoint
        where = f"{CHECKPOINTS_FILE} line {loaded.line} (checkpoint of size {cp.size})"

        def fail(check: str, expected: object, found: object, where: str = where) -> NoReturn:
            raise LedgerVerificationError(check, location=where, expected=expected, found=found)

        if cp.origin != manifest["origin"]:
            fail("checkpoint-origin", manifest["origin"], cp.origin)
        if cp.size > chain.size:
            fail("checkpoint-size", f"at most {chain.size} (the entries)", cp.size)
        root = chain.roots.get(cp.size, EMPTY_ROOT if cp.size == 0 else None)
        if root != cp.root:
            fail("checkpoint-root", root.hex() if root else "?", cp.root.hex())
        signers = _checkpoint_signers(cp, chain_keys, fail)
        current = [k for k in signers if not (k in chain.retired and cp.size > chain.retired[k])]
        if not current:
            kid = signers[0]
            fail(
                "checkpoint-kid",
                f"a key active at or after entry {cp.size}",
                f"{kid}, retired at entry {chain.retired[kid]}",
            )
        kids.update(current)
    return kids


def _checkpoint_signers(
    cp: Checkpoint, keys: dict[str, Ed25519PublicKey], fail: Callable[..., NoReturn]
) -> list[str]:
    """Return the kids of the key chain that sign `cp` (check 'checkpoint-signature').

    Every signature line named by the origin whose key hash is one of `keys` must verify; lines
    of other names or key hashes (witnesses' cosignatures) are skipped; at least one must be
    by a key of `keys`. Whether a signer was still active at the checkpoint's size is the
    caller's 'checkpoint-kid' check.
    """
    hashes = {key_hash(cp.origin, key): kid for kid, key in keys.items()}
    signers: list[str] = []
    text = cp.text.encode()
    for name, kh, sig in cp.signatures:
        kid = hashes.get(kh) if name == cp.origin else None
        if kid is None:
            continue
        if len(sig) != SIGNATURE_BYTES or not verify_signature(keys[kid], sig, text):
            fail(
                "checkpoint-signature",
                f"an Ed25519 signature by {kid} over the note text",
                base64.b64encode(sig).decode(),
            )
        if kid not in signers:
            signers.append(kid)
    if not signers:
        fail(
            "checkpoint-signature",
            f"a signature line named {cp.origin!r} by one of "
            + (", ".join(sorted(keys)) or "(no key)"),
            ", ".join(f"{n} {kh.hex()}" for n, kh, _ in cp.signatures) or "no signature",
        )
    return signers


def _load_keys(raw: bytes) -> dict[str, Ed25519PublicKey]:
    """Return keys.json's Ed25519 keys by kid (check 'keys')."""

    def fail(expected: str, found: object) -> NoReturn:
        raise LedgerVerificationError("keys", location=KEYS_FILE, expected=expected, found=found)

    try:
        jwks = _loads(raw)
    except ValueError as exc:
        fail("a JSON object in UTF-8", str(exc))
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        fail('a JWK set {"keys": [...]}', _describe(jwks))
    keys: dict[str, Ed25519PublicKey] = {}
    for i, jwk in enumerate(jwks["keys"]):
        try:
            key = public_key_from_jwk(jwk)
        except LedgerKeyError as exc:
            fail("public Ed25519 JWKs (kty OKP, crv Ed25519, x)", f"key {i}: {exc}")
        if "d" in jwk:
            fail(
                "public keys only",
                f"key {i} is a private key (has 'd'): its signatures prove nothing",
            )
        kid = jwk_thumbprint(jwk)
        if jwk.get("kid", kid) != kid:
            fail(f"key {i} to have kid {kid} (its RFC 7638 thumbprint)", _describe(jwk["kid"]))
        problem = _jwk_use_and_alg(jwk)
        if problem is not None:
            fail(JWK_USE_AND_ALG, f"key {i}: {problem}")
        keys[kid] = key
    return keys


JWK_ALGS = ("EdDSA", "Ed25519")
"""The `alg` a ledger key may carry (RFC 8037's EdDSA, RFC 9864's fully specified Ed25519)."""
JWK_USE_AND_ALG = "use 'sig' and alg 'EdDSA' or 'Ed25519' where given"


def _jwk_use_and_alg(jwk: dict) -> str | None:
    """Return what is wrong with a public JWK's `use` and `alg` (specs/ledger.md §4), or None."""
    use, alg = jwk.get("use", "sig"), jwk.get("alg", "EdDSA")
    if use != "sig" or alg not in JWK_ALGS:
        found_use, found_alg = jwk.get("use", _MISSING), jwk.get("alg", _MISSING)
        return f"use {_describe(found_use)}, alg {_describe(found_alg)}"
    return None


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ExportUnreadableError(f"cannot read {path}: {exc.strerror}") from exc


def _loads(raw: bytes) -> object:
    """Return the JSON value of UTF-8 `raw`, refusing duplicate members, NaN and Infinity.

    Raises ValueError for anything else, nesting too deep for the parser included.
    """
    try:
        return json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_object_without_duplicates,
            parse_constant=_reject_constant,
        )
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def _object_without_duplicates(pairs: list[tuple[str, object]]) -> dict:
    obj: dict = {}
    for name, value in pairs:
        if name in obj:
            raise ValueError(f"duplicate member name {name!r}")
        obj[name] = value
    return obj


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _fail_parse(n: int, expected: str, found: str) -> NoReturn:
    raise LedgerVerificationError("parse", seq=n, expected=expected, found=found)


class _Missing:
    def __repr__(self) -> str:
        return "nothing (member missing)"


_MISSING = _Missing()


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _describe(value: object) -> str:
    """Return a short JSON-ish rendering of `value` for an error message."""
    if isinstance(value, _Missing):
        return repr(value)
    if isinstance(value, dict):
        return "an object with the members " + (", ".join(sorted(value)) or "(none)")
    if isinstance(value, list):
        return f"an array of {len(value)} values"
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text


def _excerpt(data: bytes, limit: int = 120) -> str:
    text = data.decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[:limit] + "..."
