"""Sign-in: OAuth 2.0 client credentials with `private_key_jwt` (RFC 7523), and the signing key.

The client assertion is a JWT (EdDSA, the key's `kid` in its header) with `iss` = `sub` = the
participant, `aud` = the token endpoint the gateway's RFC 8414 metadata names (its configured
issuer, whatever URL reaches it), a minute of life and a fresh `jti` (specs/auth.md). The token is
kept until shortly before it expires.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from gateway.client.errors import ClientError, GatewayProblem, GatewayUnreachable
from ledger import LedgerError, Signer

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_SECONDS = 60
REFRESH_MARGIN_SECONDS = 30
"""A cached token is replaced this long before its `expires_in` runs out."""

KeyLike = str | Path | dict | Signer | Ed25519PrivateKey


def load_key(key: KeyLike) -> Signer:
    """Return the participant's private Ed25519 key from a JWK file path, a JWK, or a key."""
    if isinstance(key, Signer):
        return key
    if isinstance(key, Ed25519PrivateKey):
        return Signer(key)
    try:
        if isinstance(key, (str, Path)):
            key = json.loads(Path(key).read_text(encoding="utf-8"))
        if not isinstance(key, dict):
            raise ValueError("expected a JWK object")
        if "d" not in key:
            raise ValueError("the JWK holds no private part 'd': give the private key file")
        return Signer.from_jwk(key)
    except (OSError, ValueError, TypeError, LedgerError) as exc:
        raise ClientError(f"cannot read the private key: {exc}") from None


def client_assertion(key: Signer, participant_id: str, audience: str) -> str:
    """Return an RFC 7523 client assertion of `participant_id`, signed with `key` (EdDSA)."""
    now = int(time.time())
    claims = {
        "iss": participant_id,
        "sub": participant_id,
        "aud": audience,
        "iat": now,
        "exp": now + ASSERTION_SECONDS,
        "jti": str(uuid.uuid4()),
    }
    private = OKPAlgorithm.from_jwk(key.private_jwk())
    return jwt.encode(claims, private, algorithm="EdDSA", headers={"kid": key.kid})


class TokenSource:
    """The participant's access token, fetched with a client assertion and cached."""

    def __init__(
        self,
        http: httpx.Client,
        participant_id: str,
        key: Signer,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._participant_id = participant_id
        self._key = key
        self._monotonic = monotonic
        self._token: str | None = None
        self._until = 0.0
        self._token_endpoint: str | None = None

    def token(self) -> str:
        """Return a token valid for a while yet, fetching a new one when needed."""
        if self._token is None or self._monotonic() >= self._until:
            self._token, lifetime = self._fetch()
            self._until = self._monotonic() + max(0.0, lifetime - REFRESH_MARGIN_SECONDS)
        return self._token

    def forget(self) -> None:
        """Drop the cached token (the gateway refused it: a key retired, a suspension)."""
        self._token = None

    def _endpoint(self) -> str:
        if self._token_endpoint is None:
            try:
                meta = self._http.get("/.well-known/oauth-authorization-server")
            except httpx.HTTPError as exc:
                raise GatewayUnreachable(f"cannot reach {self._http.base_url}: {exc}") from None
            body = _json(meta)
            endpoint = body.get("token_endpoint")
            if meta.status_code != 200 or not isinstance(endpoint, str):
                raise GatewayUnreachable(
                    f"{self._http.base_url} does not answer as a dsgw gateway "
                    f"(HTTP {meta.status_code} for its OAuth metadata)"
                )
            self._token_endpoint = endpoint
        return self._token_endpoint

    def _fetch(self) -> tuple[str, float]:
        audience = self._endpoint()
        try:
            response = self._http.post(
                "/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": client_assertion(self._key, self._participant_id, audience),
                },
            )
        except httpx.HTTPError as exc:
            raise GatewayUnreachable(f"cannot reach {self._http.base_url}: {exc}") from None
        body = _json(response)
        if response.status_code != 200 or not isinstance(body.get("access_token"), str):
            raise GatewayProblem.from_response(response)
        lifetime = body.get("expires_in")
        return body["access_token"], float(lifetime) if isinstance(lifetime, int) else 60.0


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
