"""Identifiers: a short prefix naming the kind of object, then 20 random base32 characters."""

import base64
import secrets


def new_id(prefix: str) -> str:
    """Return a fresh identifier such as `prt_k2j4...`."""
    raw = base64.b32encode(secrets.token_bytes(15)).decode("ascii").lower()
    return f"{prefix}_{raw}"
