"""Dataset commitments: what a certificate says of the rows without letting anyone guess them.

A plain SHA-256 of the rows can be inverted for low-entropy data by trying values; a keyed hash
cannot. The commitment is HMAC-SHA-256 (RFC 2104) keyed by a random 256-bit salt drawn when the
resource is registered, over the RFC 8785 canonical JSON of the rows as one array, in order:

    dataset_commitment = hex(HMAC-SHA-256(key = salt, msg = JCS([row, row, ...])))

The gateway keeps the salt and shows it only to the resource's holder and to auditors, who can
recompute the commitment from the rows; to anyone else it proves nothing they could test a guess
against. The rows are streamed (any iterable of rows). For rows posted with a registration it is
computed once, over the rows exactly as posted, and kept with the embedded dataset.

A resource whose data lives at an external source (sql, http, object, files) is live: its rows
change at the holder's and no value over them would stay true. Its commitment covers what the
registration fixes, the address's public part and the declared fields, under its own scheme:

    address_commitment = hex(HMAC-SHA-256(key = salt,
                                          msg = JCS({"address": public address, "fields": fields})))
"""

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import Any

from ledger import canonical_json

SCHEME = "hmac-sha256-jcs-rows/v1"
ADDRESS_SCHEME = "hmac-sha256-jcs-address/v1"
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


def address_commitment(address: dict[str, Any], fields: list[dict[str, Any]], salt: str) -> str:
    """Return the lowercase hex HMAC-SHA-256, keyed by `salt`, of JCS({address, fields})."""
    message = canonical_json({"address": address, "fields": fields})
    return hmac.new(bytes.fromhex(salt), message, hashlib.sha256).hexdigest()
