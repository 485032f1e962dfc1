"""Offline verification of an exported ledger folder (the algorithm of specs/ledger.md §6).

Needs only the standard library, cryptography and rfc8785. Streams entries.jsonl line by line,
so the size of the log does not matter, and raises `LedgerVerificationError` at the first
failure, naming the entry, the check, what was expected and what was found.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.canonical import b64url_decode, canonical_json, parse_rfc3339
from ledger.entry import BODY_MEMBERS, GENESIS_PREV, TYPE_PATTERN, VERSION
from ledger.errors import ExportUnreadableError, LedgerKeyError, LedgerVerificationError
from ledger.keys import SIGNATURE_BYTES, jwk_thumbprint, public_key_from_jwk, verify_signature

FORMAT = "dsgw-ledger/1"
ENTRIES_FILE = "entries.jsonl"
KEYS_FILE = "keys.json"
MANIFEST_FILE = "manifest.json"
ENTRY_MEMBERS = frozenset({"body", "hash", "sig"})
MANIFEST_MEMBERS = frozenset({"format", "origin", "size", "head", "exported_at", "kid", "sig"})
PROGRESS_EVERY = 5000

_LINE_HEAD = b'{"body":'


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
        }


def verify_export(
    path: Path,
    *,
    progress: Callable[[int], object] | None = None,
    trusted_kids: Iterable[str] | None = None,
) -> VerifyReport:
    """Verify the export folder at `path`; return its report or raise at the first failure.

    Raises `LedgerVerificationError` when a check fails and `ExportUnreadableError` when the
    folder or one of its three files cannot be read. `progress(done)` is called every
    PROGRESS_EVERY entries and once at the end. With `trusted_kids`, only those keys of
    keys.json count: anything signed by another key fails its 'kid' / 'manifest-kid' check.
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

    chain = _Chain(keys, expected_kid)
    try:
        with open(path / ENTRIES_FILE, "rb") as lines:
            for raw in lines:
                chain.add(raw)
                if progress is not None and chain.size % PROGRESS_EVERY == 0:
                    progress(chain.size)
    except OSError as exc:
        raise ExportUnreadableError(f"cannot read {path / ENTRIES_FILE}: {exc.strerror}") from exc
    if progress is not None and chain.size % PROGRESS_EVERY != 0:
        progress(chain.size)

    manifest = _check_manifest(manifest_raw, keys, chain, expected_kid)
    return VerifyReport(
        size=chain.size,
        head=chain.head,
        first_time=chain.first_time,
        last_time=chain.last_time,
        kids=tuple(sorted(chain.kids | {manifest["kid"]})),
        types=dict(chain.types),
        origin=manifest["origin"],
        exported_at=manifest["exported_at"],
    )


class _Chain:
    """The running state of the entry checks: one `add` per line of entries.jsonl."""

    def __init__(self, keys: dict[str, Ed25519PublicKey], expected_kid: str) -> None:
        self.keys = keys
        self.expected_kid = expected_kid
        self.size = 0
        self.head = GENESIS_PREV
        self.first_time: str | None = None
        self.last_time: str | None = None
        self.kids: set[str] = set()
        self.types: Counter[str] = Counter()

    def add(self, raw: bytes) -> None:
        n = self.size + 1
        entry, body_bytes = _parse_line(n, raw)
        body = entry["body"]
        _check_seq(n, body)
        _check_version(n, body)
        _check_format(n, body)
        if body["prev"] != self.head:
            raise LedgerVerificationError("chain", seq=n, expected=self.head, found=body["prev"])
        _check_hash(n, entry, body_bytes)
        key = self.keys.get(body["kid"])
        if key is None:
            raise LedgerVerificationError(
                "kid", seq=n, expected=self.expected_kid, found=body["kid"]
            )
        _check_signature(n, key, entry["sig"], body_bytes, body["kid"])

        self.size = n
        self.head = entry["hash"]
        if self.first_time is None:
            self.first_time = body["time"]
        self.last_time = body["time"]
        self.kids.add(body["kid"])
        self.types[body["type"]] += 1


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

    key = keys.get(manifest["kid"])
    if key is None:
        fail("manifest-kid", expected_kid, manifest["kid"])
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
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", "EdDSA") != "EdDSA":
            fail(
                "use 'sig' and alg 'EdDSA' where given",
                f"key {i}: use {jwk.get('use')!r}, alg {jwk.get('alg')!r}",
            )
        keys[kid] = key
    return keys


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ExportUnreadableError(f"cannot read {path}: {exc.strerror}") from exc


def _loads(raw: bytes) -> object:
    """Return the JSON value of UTF-8 `raw`, refusing duplicate members, NaN and Infinity."""
    return json.loads(
        raw.decode("utf-8"),
        object_pairs_hook=_object_without_duplicates,
        parse_constant=_reject_constant,
    )


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
