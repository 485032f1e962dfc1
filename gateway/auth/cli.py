"""`dsgw token --as ID --key FILE [--url URL]`: print an access token, for the shell.

    TOKEN=$(dsgw token --as "$CONSUMER" --key consumer.jwk --url "$GW")
    curl -H "Authorization: Bearer $TOKEN" "$GW/catalogue"

It reads the gateway's RFC 8414 metadata for the token endpoint (the audience of the assertion is
the configured issuer's token endpoint, whatever URL reaches the gateway), signs an RFC 7523
client assertion with the private key, runs the client-credentials grant, and prints only the
token on stdout. Without --as/--key it signs in as the platform admin with the state folder's key.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx

# The participant's own client signs the assertion the same way: one implementation of it.
from gateway.client.auth import ASSERTION_TYPE
from gateway.client.auth import client_assertion as assertion
from ledger import LedgerError, Signer

client_factory = httpx.Client  # tests hand in an in-process client


def read_key(args: argparse.Namespace) -> Signer:
    """Return the private key of --key, else the platform admin's in the state folder."""
    from gateway.core.config import Settings

    if args.key:
        path = Path(args.key)
    else:
        state = Path(args.state).resolve() if getattr(args, "state", None) else None
        path = Settings.from_env(state_dir=state).admin_key_path
    try:
        return Signer.from_jwk(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, LedgerError) as exc:
        raise SystemExit(f"dsgw: cannot read the private key {path}: {exc}") from None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class TokenRefused(Exception):
    """The gateway could not be asked, or refused to issue a token; str() says why."""


def fetch_token(client: httpx.Client, key: Signer, participant_id: str) -> str:
    """Return an access token of `participant_id` from the gateway `client` talks to.

    The assertion's audience is the token endpoint the gateway's RFC 8414 metadata names (its
    configured issuer), so this works through a proxy or an internal address alike.
    """
    try:
        meta = client.get("/.well-known/oauth-authorization-server")
        token_endpoint = _json(meta).get("token_endpoint")
        if meta.status_code != 200 or not isinstance(token_endpoint, str):
            raise TokenRefused(
                f"{client.base_url} does not answer as a dsgw gateway (HTTP {meta.status_code})"
            )
        response = client.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion(key, participant_id, token_endpoint),
            },
        )
    except httpx.HTTPError as exc:
        raise TokenRefused(f"cannot reach {client.base_url}: {exc}") from None
    body = _json(response)
    if response.status_code != 200 or not isinstance(body.get("access_token"), str):
        detail = body.get("detail") or body.get("error_description") or response.text[:200]
        raise TokenRefused(
            f"sign-in of {participant_id} refused (HTTP {response.status_code}): {detail}"
        )
    return body["access_token"]


def cmd_token(args: argparse.Namespace) -> int:
    """Print an access token for the participant (client credentials, private_key_jwt)."""
    from gateway.participants.service import PLATFORM_ADMIN_ID

    key = read_key(args)
    try:
        with client_factory(base_url=args.url.rstrip("/"), timeout=30) as client:
            token = fetch_token(client, key, args.as_id or PLATFORM_ADMIN_ID)
    except TokenRefused as exc:
        print(f"dsgw token: {exc}", file=sys.stderr)
        return 1
    print(token)
    return 0


def add_parsers(sub: Any) -> None:
    """Add `token` to the `dsgw` sub-commands."""
    token = sub.add_parser(
        "token", help="print an access token for a participant (TOKEN=$(dsgw token …))"
    )
    token.add_argument(
        "--as", dest="as_id", help="participant id to sign in as (default: the platform admin)"
    )
    token.add_argument(
        "--key", help="that participant's private Ed25519 JWK file (default: the admin's)"
    )
    token.add_argument("--url", default="http://127.0.0.1:8080", help="the gateway")
    token.set_defaults(func=cmd_token)
