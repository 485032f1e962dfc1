"""The evidence ledger: append-only, hash-chained, Ed25519-signed, verifiable offline.

The format is specs/ledger.md. The entries are the leaves of an RFC 9162 Merkle tree
(ledger.merkle) whose roots are signed as C2SP checkpoints (ledger.checkpoint); receipts carry
inclusion proofs (ledger.receipt). The verifier (`verify_export`, `verify_extension`,
`python -m ledger verify`) needs only the standard library, cryptography, rfc8785 and (for
speed, optional) orjson; the database functions (`create_schema`, `append`, `head`,
`iter_entries`, `get_entry`, `count`, and the tree, checkpoint and rotation functions of
ledger.store) need SQLAlchemy and are imported on first use, so `import ledger` does not load it.
"""

from ledger.canonical import b64url, b64url_decode, canonical_json, parse_rfc3339, rfc3339
from ledger.entry import GENESIS_PREV, Entry, build_entry, entry_hash
from ledger.errors import (
    ExportUnreadableError,
    LedgerError,
    LedgerKeyError,
    LedgerVerificationError,
)
from ledger.export import export
from ledger.keys import Signer, jwk_thumbprint, load_or_create_signer, public_key_from_jwk
from ledger.verify import VerifyReport, verify_export, verify_extension

_STORE_NAMES = ("append", "count", "create_schema", "get_entry", "head", "iter_entries")

__all__ = [
    "GENESIS_PREV",
    "Entry",
    "ExportUnreadableError",
    "LedgerError",
    "LedgerKeyError",
    "LedgerVerificationError",
    "Signer",
    "VerifyReport",
    "b64url",
    "b64url_decode",
    "build_entry",
    "canonical_json",
    "entry_hash",
    "export",
    "jwk_thumbprint",
    "load_or_create_signer",
    "parse_rfc3339",
    "public_key_from_jwk",
    "rfc3339",
    "verify_export",
    "verify_extension",
    *_STORE_NAMES,
]


def __getattr__(name: str):
    if name in _STORE_NAMES:
        from ledger import store

        return getattr(store, name)
    raise AttributeError(f"module 'ledger' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_STORE_NAMES})
