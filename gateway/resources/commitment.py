"""Dataset commitments: what a certificate says of the rows without letting anyone guess them.

A plain SHA-256 of the rows can be inverted for low-entropy data by trying values; a keyed hash
cannot. The commitment is HMAC-SHA-256 (RFC 2104) keyed by a random 256-bit salt drawn when the
resource is registered, over the RFC 8785 canonical JSON of the rows as one array, in order:

    dataset_commitment = hex(HMAC-SHA-256(key = salt, msg = JCS([row, row, ...])))

The gateway keeps the salt and shows it only to the resource's holder and to auditors, who can
recompute the commitment from the rows; to anyone else it proves nothing they could test a guess
against. The rows are streamed (any iterable of rows), so it reads the same wherever they live.
"""

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import Any

from ledger import canonical_json

SCHEME = "hmac-sha256-jcs-rows/v1"
SALT_BYTES = 32


def new_salt() -> str:
    """Return a fresh random 256-bit salt, lowercase hex."""
    return secrets.token_hex(SALT_BYTES)


def dataset_commitment(rows: Iterable[dict[str, Any]], salt: str) -> str:
    """Return the lowercase hex HMAC-SHA-256, keyed by `salt` (hex), of JCS(list(rows))."""
    mac = hmac.new(bytes.fromhex(salt), digestmod=hashlib.sha256)
    mac.update(b"[")
    for index, row in enumerate(rows):
        if index:
            mac.update(b",")
        mac.update(canonical_json(row))
    mac.update(b"]")
    return mac.hexdigest()


def opens(commitment: str, rows: Iterable[dict[str, Any]], salt: str) -> bool:
    """Return whether `commitment` is the commitment of `rows` under `salt`."""
    return hmac.compare_digest(commitment, dataset_commitment(rows, salt))
