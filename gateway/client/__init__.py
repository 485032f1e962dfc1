"""A participant's client of a dsgw gateway: sign in, browse, contract, sign, exchange, pull,
and check the evidence offline (specs/client.md).

It imports nothing of the rest of `gateway`: only `contracts`, `ledger`, httpx, cryptography and
pyjwt, so a consumer's or a merchant's own code can use it without the server.
"""

from gateway.client.api import FORMATS, Client, PullResult, public_keys
from gateway.client.auth import client_assertion, load_key
from gateway.client.errors import (
    ClientError,
    GatewayProblem,
    GatewayUnreachable,
    VerificationFailed,
)

__all__ = [
    "FORMATS",
    "Client",
    "ClientError",
    "GatewayProblem",
    "GatewayUnreachable",
    "PullResult",
    "VerificationFailed",
    "client_assertion",
    "load_key",
    "public_keys",
]
