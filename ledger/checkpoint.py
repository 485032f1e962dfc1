"""Signed checkpoints in the C2SP tlog-checkpoint format, as C2SP signed notes with Ed25519.

A checkpoint commits the gateway to the tree of the first `size` entries (specs/ledger.md §11):

    <origin>\\n<size>\\n<base64 root hash>\\n\\n— <key name> <base64(key hash ‖ signature)>\\n

The signature is Ed25519 over the note text (the three lines, each ending in a line feed); the
key hash is the first four bytes of SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key), as the
signed-note spec defines for Ed25519 keys. Standard tooling (Go's golang.org/x/mod/sumdb/note,
witnesses) reads these notes given the verifier key `vkey(name, public key)`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.errors import LedgerError
from ledger.keys import Signer, verify_signature

ED25519_ALG = b"\x01"
_SIG_LINE = re.compile(r"\u2014 (\S+) ([A-Za-z0-9+/=]+)")
_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")


class CheckpointError(LedgerError):
    """A checkpoint is malformed, unsigned by a known key, or holds a different root."""

    def __init__(self, message: str, *, expected: object = "", found: object = "") -> None:
        self.expected = str(expected)
        self.found = str(found)
        super().__init__(f"{message}: expected {self.expected}, found {self.found}")


@dataclass(frozen=True)
class Checkpoint:
    """A parsed checkpoint note: what it claims and its signature lines."""

    origin: str
    size: int
    root: bytes
    text: str
    """The signed note text: origin, size and root lines, each ending in a line feed."""
    signatures: tuple[tuple[str, bytes, bytes], ...]
    """(key name, 4-byte key hash, 64-byte signature) per signature line, in order."""

    @property
    def note(self) -> str:
        """The whole note: text, blank line, signature lines."""
        lines = "".join(
            f"\u2014 {name} {base64.b64encode(kh + sig).decode()}\n"
            for name, kh, sig in self.signatures
        )
        return f"{self.text}\n{lines}"

    def to_json(self) -> dict:
        return {"origin": self.origin, "size": self.size, "root": self.root.hex()}


def public_bytes(key: Ed25519PublicKey) -> bytes:
    """Return the 32 raw bytes of an Ed25519 public key."""
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_hash(name: str, key: Ed25519PublicKey) -> bytes:
    """Return the C2SP signed-note key hash: SHA-256(name ‖ \\n ‖ 0x01 ‖ key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519_ALG + public_bytes(key)).digest()[:4]


def vkey(name: str, key: Ed25519PublicKey) -> str:
    """Return the signed-note verifier key string `<name>+<hex key hash>+<base64(0x01 ‖ key)>`."""
    raw = base64.b64encode(ED25519_ALG + public_bytes(key)).decode()
    return f"{name}+{key_hash(name, key).hex()}+{raw}"


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    """Return the note text of a checkpoint (what is signed)."""
    _check_origin(origin)
    if not isinstance(size, int) or size < 0 or len(root) != 32:
        raise ValueError(f"a checkpoint needs a size >= 0 and a 32-byte root, not {size}, {root!r}")
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def sign_checkpoint(origin: str, size: int, root: bytes, signer: Signer) -> str:
    """Return the checkpoint note for (size, root), signed by `signer` under the key name origin."""
    text = checkpoint_text(origin, size, root)
    sig = signer.sign(text.encode())
    kh = key_hash(origin, signer.public_key())
    return f"{text}\n\u2014 {origin} {base64.b64encode(kh + sig).decode()}\n"


def parse_checkpoint(note: str) -> Checkpoint:
    """Return the checkpoint of a note; raise CheckpointError if it is not well formed."""
    if not isinstance(note, str):
        raise CheckpointError(
            "a checkpoint is text", expected="a string", found=type(note).__name__
        )
    text, sep, sigs = note.partition("\n\n")
    if not sep or not sigs.endswith("\n"):
        raise CheckpointError(
            "a signed note is text, a blank line, then signature lines ending in a line feed",
            expected="text\\n\\n— name signature\\n",
            found=repr(note[:120]),
        )
    lines = text.split("\n")
    if len(lines) < 3:
        raise CheckpointError(
            "a checkpoint has origin, size and root lines", expected=3, found=len(lines)
        )
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    # Lines after the third are tlog-checkpoint extension lines: signed, kept, not interpreted.
    if not origin or _SIZE.fullmatch(size_text) is None:
        raise CheckpointError(
            "the origin line is not empty and the size is a decimal without leading zeros",
            expected="origin, size",
            found=f"{origin!r}, {size_text!r}",
        )
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError):
        root = b""
    if len(root) != 32 or base64.b64encode(root).decode() != root_text:
        raise CheckpointError(
            "the root line is the standard base64 of 32 bytes",
            expected="44 characters",
            found=repr(root_text),
        )
    signatures = []
    for line in sigs[:-1].split("\n"):
        m = _SIG_LINE.fullmatch(line)
        raw = b""
        if m is not None:
            try:
                raw = base64.b64decode(m.group(2), validate=True)
            except (binascii.Error, ValueError):
                raw = b""
        if m is None or len(raw) < 5:
            raise CheckpointError(
                "a signature line is '— <name> <base64(key hash ‖ signature)>'",
                expected="— name base64",
                found=repr(line[:120]),
            )
        signatures.append((m.group(1), raw[:4], raw[4:]))
    return Checkpoint(
        origin=origin,
        size=int(size_text),
        root=root,
        text=text + "\n",
        signatures=tuple(signatures),
    )


def verify_checkpoint(
    note: str | Checkpoint, keys: dict[str, Ed25519PublicKey], *, name: str | None = None
) -> tuple[Checkpoint, str]:
    """Return (checkpoint, kid) for the first signature by one of `keys` (kid -> key) that holds.

    The key name is `name` (default: the checkpoint's origin). Signatures by unknown keys are
    skipped, as the signed-note spec asks; a known key hash with a bad signature is an error, as
    is a note with no signature by any known key.
    """
    cp = note if isinstance(note, Checkpoint) else parse_checkpoint(note)
    name = cp.origin if name is None else name
    hashes = {key_hash(name, key): (kid, key) for kid, key in keys.items()}
    for signame, kh, sig in cp.signatures:
        if signame != name or kh not in hashes:
            continue
        kid, key = hashes[kh]
        if len(sig) != 64 or not verify_signature(key, sig, cp.text.encode()):
            raise CheckpointError(
                f"checkpoint of size {cp.size}: the signature by key {kid} does not verify",
                expected=f"an Ed25519 signature by {kid} over the note text",
                found=base64.b64encode(sig).decode(),
            )
        return cp, kid
    raise CheckpointError(
        f"checkpoint of size {cp.size} is not signed by a known key",
        expected=f"a signature line named {name!r} by one of {', '.join(sorted(keys)) or 'none'}",
        found=", ".join(f"{n} {kh.hex()}" for n, kh, _ in cp.signatures) or "no signature",
    )


def _check_origin(origin: str) -> None:
    if not isinstance(origin, str) or not origin or any(c.isspace() for c in origin):
        raise ValueError(f"a checkpoint origin is non-empty text without spaces, not {origin!r}")
