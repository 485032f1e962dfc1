"""Secrets at rest: the secret part of a data address, sealed with AES-256-GCM.

The key is 32 random bytes kept in the state folder's keys directory (`data-secrets.key`,
created owner-only, 0600, on first use), beside the gateway's signing key: every gateway
process of one deployment shares that folder's keys already, so they share this one too. A
sealed value is the text

    "v1." base64url(nonce (12 bytes) || ciphertext || tag (16 bytes))

with the associated data `purpose` (say "resource:<id>"), so that a sealed secret copied onto
another row does not open there. Nothing here logs or returns a secret but `open_secret`.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "data-secrets.key"
PREFIX = "v1."
NONCE_BYTES = 12


class SecretsError(Exception):
    """A sealed secret that does not open with this key (altered, moved, or another key)."""


class SecretBox:
    """Seals and opens JSON objects of secret values with one AES-256-GCM key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("the data-secrets key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def for_keys_dir(cls, keys_dir: Path) -> SecretBox:
        """Return the box of `keys_dir/data-secrets.key`, creating the key (0600) if missing."""
        path = Path(keys_dir) / KEY_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first: use theirs
                pass
            else:
                with os.fdopen(fd, "wb") as f:
                    f.write(base64.b64encode(secrets.token_bytes(32)) + b"\n")
        return cls(base64.b64decode(path.read_bytes().strip()))

    def __repr__(self) -> str:
        return "SecretBox(**********)"

    def seal(self, values: dict[str, Any], *, purpose: str) -> str:
        """Return `values` (a JSON object) sealed for `purpose`."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        plain = json.dumps(values, separators=(",", ":"), sort_keys=True).encode()
        sealed = self._aead.encrypt(nonce, plain, purpose.encode())
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open_secret(self, token: str, *, purpose: str) -> dict[str, Any]:
        """Return the values sealed in `token` for `purpose`; raise SecretsError otherwise."""
        if not token.startswith(PREFIX):
            raise SecretsError("not a sealed secret of scheme v1")
        body = token[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], purpose.encode())
        except (InvalidTag, ValueError) as exc:
            raise SecretsError(
                f"the sealed secret for {purpose} does not open with this gateway's key"
            ) from exc
        return json.loads(plain)
