"""Token endpoint, the gateway's public keys, and the bearer-token dependency."""

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from gateway.auth.models import TokenResponse
from gateway.auth.service import (
    ACCEPTED_ALGS,
    TokenIssuer,
    check_not_revoked,
    load_participant,
    token_endpoint_url,
    token_response,
    unauthorized,
)
from gateway.context import Gateway, get_gateway, get_session
from gateway.core.db import session_scope
from gateway.core.errors import PROBLEM_MEDIA_TYPE, Problem, forbidden, problem_responses
from gateway.participants.models import Participant

router = APIRouter(tags=["auth"])
_bearer = HTTPBearer(auto_error=False, description="Access token from POST /oauth/token")
_OAUTH_ERROR_STATUS = {"invalid_client": 401, "unauthorized_client": 401}


async def get_issuer(request: Request) -> TokenIssuer:
    """Return the token issuer of this gateway."""
    return request.app.state.issuer


async def bearer_claims(
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    issuer: TokenIssuer = Depends(get_issuer),
) -> dict[str, Any]:
    """Return the claims of the request's valid bearer token, else raise 401 (async: checking a
    signature needs no thread hop)."""
    return claims_of(credentials, issuer)


def claims_of(credentials: HTTPAuthorizationCredentials | None, issuer: TokenIssuer) -> dict:
    """Return the claims of a valid bearer token, else raise 401."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("invalid_request", "this call needs an access token (Bearer)")
    return issuer.verify(credentials.credentials)


def participant_of(session: Session, claims: dict[str, Any]) -> Participant:
    """Return the active participant a verified token names, else raise 401 (for routes that
    load it in their own thread with the rest of their work: one hop instead of two)."""
    participant = load_participant(session, claims["sub"])
    check_not_revoked(participant, claims)
    return participant


def current_participant(
    claims: dict[str, Any] = Depends(bearer_claims),
    session: Session = Depends(get_session),
) -> Participant:
    """Return the active participant behind the request's bearer token, else raise 401."""
    participant = participant_of(session, claims)
    # No transaction is held across the hop to the route's thread: on SQLite it holds the write
    # lock, and with every worker thread waiting for that lock, the route holding it could not
    # be given a thread to go on (the stall at 256 concurrent exchanges).
    session.commit()
    return participant


def require_role(participant: Participant, *roles: str) -> None:
    """Raise 403 unless the participant has one of `roles`."""
    if not set(roles) & set(participant.roles):
        raise forbidden(
            f"this needs the role {' or '.join(roles)}; participant {participant.id} has "
            f"{', '.join(participant.roles)}"
        )


@router.post(
    "/oauth/token",
    response_model=TokenResponse,
    responses=problem_responses(400, 401),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type", "client_assertion_type", "client_assertion"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "client_assertion_type": {
                                "type": "string",
                                "enum": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
                            },
                            "client_assertion": {
                                "type": "string",
                                "description": "JWT (alg EdDSA or Ed25519) signed with one of "
                                "the participant's Ed25519 keys: iss = sub = the participant "
                                "id, aud = the issuer or its token endpoint, exp at most "
                                "assertion_max_age_seconds (3600) ahead, a fresh jti "
                                "(specs/auth.md)",
                            },
                            "client_id": {
                                "type": "string",
                                "description": "optional; if given, the assertion's iss/sub",
                            },
                            "scope": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
async def token(request: Request, gateway: Gateway = Depends(get_gateway)) -> Any:
    """Issue an access token: OAuth 2.0 client credentials, authenticated by private_key_jwt."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        raise Problem(
            400,
            "invalid-token-request",
            "Invalid token request",
            "send the token request as application/x-www-form-urlencoded (RFC 6749 §4.4)",
            error="invalid_request",
        )
    try:
        form = await request.form()
    except Exception as exc:  # a malformed body is the client's error, never ours
        raise Problem(
            400, "invalid-token-request", "Invalid token request", f"unreadable form: {exc}"
        ) from None
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    issuer: TokenIssuer = request.app.state.issuer

    def _run() -> tuple[int, dict[str, Any]]:
        with session_scope(gateway.sessions) as session:
            return token_response(
                session=session,
                settings=gateway.settings,
                issuer=issuer,
                form=fields,
                headers=dict(request.headers),
            )

    status, body = await run_in_threadpool(_run)
    if status == 200:
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
    error = body.get("error", "invalid_request")
    status = _OAUTH_ERROR_STATUS.get(error, status)
    detail = body.get("error_description") or error
    problem = Problem(
        status,
        "invalid-client" if error == "invalid_client" else "invalid-token-request",
        "Client authentication failed" if error == "invalid_client" else "Invalid token request",
        detail,
        error=error,
        error_description=detail,
    )
    return JSONResponse(
        problem.body(instance=request.url.path),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers={"Cache-Control": "no-store"},
    )


@router.get("/.well-known/jwks.json")
def jwks(gateway: Gateway = Depends(get_gateway)) -> dict[str, Any]:
    """Return the gateway's public signing keys (RFC 7517), for tokens, receipts and the ledger."""
    return {"keys": [gateway.signer.public_jwk()]}


@router.get("/.well-known/oauth-authorization-server")
def metadata(gateway: Gateway = Depends(get_gateway)) -> dict[str, Any]:
    """Return the authorisation server metadata (RFC 8414)."""
    issuer = gateway.settings.issuer
    return {
        "issuer": issuer,
        "token_endpoint": token_endpoint_url(gateway.settings),
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt"],
        # RFC 9864: the fully specified name beside the polymorphic one (both Ed25519 only).
        "token_endpoint_auth_signing_alg_values_supported": list(ACCEPTED_ALGS),
    }
