"""Data-plane tokens (EDC's EDR): a short-lived JWT that opens one transfer's data endpoint only.

Signed with the gateway's Ed25519 key (EdDSA, as access tokens), typed `edr+jwt` so that an
access token (`at+jwt`) is never taken for one, its audience the data endpoint's URL, and bound
by its claims to the transfer, the contract, the consumer (`sub`) and the transfer's token
generation (a resume issues a new generation and retires the earlier tokens).
"""

from datetime import UTC, datetime
from typing import Any

import jwt
from jwt.algorithms import OKPAlgorithm

from gateway.context import Gateway
from gateway.core import clock
from gateway.core.errors import Problem
from gateway.core.ids import new_id
from gateway.transfers.models import DataToken, Transfer

TOKEN_TYPE = "edr+jwt"
MAX_TTL_SECONDS = 600
LEEWAY = 5


def endpoint(gateway: Gateway, transfer_id: str) -> str:
    """Return the public URL of a transfer's data endpoint (the token's audience)."""
    return f"{gateway.settings.issuer.rstrip('/')}/transfers/{transfer_id}/data"


def ttl_seconds(gateway: Gateway) -> int:
    """Return the configured token lifetime, never above MAX_TTL_SECONDS (10 min)."""
    return max(1, min(MAX_TTL_SECONDS, int(gateway.settings.transfer_token_ttl_seconds)))


def issue(gateway: Gateway, transfer: Transfer) -> DataToken:
    """Return a fresh token for `transfer`'s data endpoint."""
    now = clock.now()
    exp = int(now.timestamp()) + ttl_seconds(gateway)
    claims = {
        "iss": gateway.settings.issuer,
        "sub": transfer.consumer_id,
        "aud": endpoint(gateway, transfer.id),
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": exp,
        "jti": new_id("edr"),
        "transfer": transfer.id,
        "contract": transfer.contract_id,
        "gen": transfer.token_generation,
    }
    token = jwt.encode(
        claims,
        OKPAlgorithm.from_jwk(gateway.signer.private_jwk()),
        algorithm="EdDSA",
        headers={"kid": gateway.signer.kid, "typ": TOKEN_TYPE},
    )
    return DataToken(
        endpoint=endpoint(gateway, transfer.id),
        token=token,
        expires_at=clock.rfc3339(datetime.fromtimestamp(exp, UTC)),
    )


def token_problem(detail: str) -> Problem:
    """Return the 401 problem for a token that does not open this data endpoint."""
    return Problem(
        401,
        "unauthorized",
        "Authentication failed",
        detail,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def verify(gateway: Gateway, token: str) -> dict[str, Any]:
    """Return the claims of a data token this gateway signed and that has not expired, else
    raise 401 saying why (an access token, another signer, expired, malformed)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise token_problem("the data endpoint takes a transfer's data token (a JWT)") from None
    if header.get("typ") != TOKEN_TYPE:
        raise token_problem(
            "the data endpoint takes only the data token of its transfer (typ edr+jwt, from "
            "POST /transfers), not an access token"
        )
    try:
        return jwt.decode(
            token,
            OKPAlgorithm.from_jwk(gateway.signer.public_jwk()),
            algorithms=["EdDSA"],
            issuer=gateway.settings.issuer,
            leeway=LEEWAY,
            options={
                "verify_aud": False,  # checked against the transfer by the caller
                "require": ["exp", "iat", "sub", "aud", "iss", "jti", "transfer", "gen"],
            },
        )
    except jwt.ExpiredSignatureError:
        raise token_problem("the data token has expired; POST its /token for a new one") from None
    except jwt.PyJWTError as exc:
        raise token_problem(f"the data token is not valid: {exc}") from None
