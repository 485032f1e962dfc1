"""Content hashes: SHA-256 over the RFC 8785 canonical form."""

import hashlib
from typing import Any

from ledger import canonical_json


def content_hash(value: Any) -> str:
    """Return the lowercase hex SHA-256 of the canonical JSON of `value`."""
    return hashlib.sha256(canonical_json(value)).hexdigest()
