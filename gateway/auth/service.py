"""OAuth 2.0 client credentials with private_key_jwt (RFC 6749, RFC 7523), and access tokens.

authlib runs the token endpoint: it parses the request, authenticates the client assertion and
drives the grant. Access tokens are JWTs (RFC 7519) signed by the gateway's Ed25519 key; pyjwt
verifies them on every call.
"""

import re
import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    InsecureTransportError,
    InvalidClientError,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, OAuth2Request
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt as joserfc_jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OKPKey
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.auth.models import UsedAssertion
from gateway.core import clock
from gateway.core.config import Settings
from gateway.core.errors import Problem
from gateway.core.ids import new_id
from gateway.participants.models import ED25519_ALGS, Participant
from ledger import Signer

# The names of an Ed25519 JWS: RFC 8037's "EdDSA" (what the gateway emits, and what pyjwt and
# most clients know) and RFC 9864's fully specified "Ed25519". Both are accepted, and only with
# the participant's registered Ed25519 keys (their points checked by ledger.ed25519).
EMITTED_ALG = "EdDSA"
ACCEPTED_ALGS = ED25519_ALGS
# joserfc warns that RFC 9864 prefers the name "Ed25519" to "EdDSA"; we still emit EdDSA (pyjwt
# verifies nothing else), so the warning is noise for our users.
warnings.filterwarnings("ignore", message="EdDSA is deprecated via RFC 9864")
AUTH_METHOD = "private_key_jwt"
# Allowance for clock skew between client and gateway, in seconds.
LEEWAY = 5
# What a participant id looks like (prt_ + base32, or prt_platform); anything else is unknown.
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")

# pyjwt knows the algorithm only as "EdDSA"; teach this instance RFC 9864's name for it (the
# key is the gateway's own Ed25519 key, so both names mean the same computation).
_ACCESS_TOKENS = jwt.PyJWT()
_ACCESS_TOKENS._jws.register_algorithm("Ed25519", OKPAlgorithm())


class _Client(ClientMixin):
    """An active participant seen as an OAuth 2.0 client."""

    def __init__(self, participant: Participant) -> None:
        self.participant = participant

    def get_client_id(self) -> str:
        return self.participant.id

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == AUTH_METHOD and endpoint == "token"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"

    def get_allowed_scope(self, scope: str | None) -> str:
        return ""


class _FormRequest(OAuth2Request):
    """An already-parsed form POST, as authlib wants to see it."""

    def __init__(self, uri: str, form: dict[str, str], headers: dict[str, str]) -> None:
        super().__init__("POST", uri, headers=headers)
        self._form = form
        self.payload = BasicOAuth2Payload(form)

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


class _PrivateKeyJWT(JWTBearerClientAssertion):
    """RFC 7523 client authentication against the participant's registered Ed25519 keys."""

    CLIENT_AUTH_METHOD = AUTH_METHOD

    def __init__(self, session: Session, audiences: list[str], max_age: int) -> None:
        super().__init__(validate_jti=True, leeway=LEEWAY)
        self._session = session
        self._audiences = audiences
        self._max_age = max_age

    def __call__(self, query_client, request):
        client = super().__call__(query_client, request)
        named = request.form.get("client_id")
        if client is not None and named is not None and named != client.get_client_id():
            # RFC 7523 §3: iss and sub are the client id; a client_id naming anyone else is a
            # request that does not know who it is.
            raise InvalidClientError(
                description=f"client_id {named[:80]!r} is not the client the assertion "
                f"authenticates (iss and sub {client.get_client_id()!r})"
            )
        return client

    def get_audiences(self) -> list[str]:
        return self._audiences

    def extract_assertion(self, assertion: str):
        headers, claims = super().extract_assertion(assertion)
        alg = headers.get("alg")
        if alg not in ACCEPTED_ALGS:
            raise InvalidClientError(
                description=f"the client assertion must be signed with EdDSA or Ed25519 (RFC "
                f"9864), the algorithms of the registered Ed25519 keys; found alg {alg!r}"
            )
        return headers, claims

    def process_assertion_claims(self, assertion: str, resolve_key):
        # authlib's default registry only takes "recommended" algorithms; name ours explicitly.
        try:
            token = joserfc_jwt.decode(assertion, resolve_key, algorithms=list(ACCEPTED_ALGS))
        except JoseError as exc:
            raise InvalidClientError(
                description=exc.description
                or f"the client assertion does not verify with the registered keys ({exc.error})"
            ) from exc
        self.verify_claims(token.claims)
        return token.claims

    def resolve_client_public_key(self, client: _Client) -> KeySet:
        keys = []
        for jwk in client.participant.usable_keys():
            # The JWK's alg names one of two spellings of the same algorithm: leave the choice
            # to the assertion's header (checked above), not to joserfc's alg match.
            try:
                keys.append(OKPKey.import_key({k: jwk[k] for k in ("kty", "crv", "x", "kid")}))
            except (JoseError, ValueError, TypeError):
                continue
        if not keys:
            raise InvalidClientError(
                description=f"participant {client.participant.id} has no usable key: ask the "
                "platform admin to add one (dsgw participants keys add)"
            )
        return KeySet(keys)

    def verify_claims(self, claims) -> None:
        exp = claims.get("exp")
        if isinstance(exp, int | float):
            horizon = clock.now().timestamp() + self._max_age + LEEWAY
            if exp > horizon:
                raise InvalidClientError(
                    description=f"the client assertion lives too long: exp must be at most "
                    f"{self._max_age} s ahead"
                )
        super().verify_claims(claims)

    def validate_jti(self, claims, jti: str) -> bool:
        if not isinstance(jti, str) or not jti or len(jti) > 200:
            return False
        # Kept until the assertion itself expires (verify_claims has checked exp is a number
        # within max_age), so that it cannot be replayed at any moment of its life.
        now = clock.now()
        remaining = max(0.0, float(claims["exp"]) - now.timestamp())
        expires = now + timedelta(seconds=remaining + LEEWAY)
        try:
            with self._session.begin_nested():
                self._session.add(
                    UsedAssertion(client_id=claims["sub"], jti=jti, expires_at=expires)
                )
        except IntegrityError:
            return False
        return True


class _ClientCredentials(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = [AUTH_METHOD]


class TokenIssuer:
    """Issues and verifies the gateway's access tokens."""

    def __init__(self, settings: Settings, signer: Signer) -> None:
        self.settings = settings
        self.kid = signer.kid
        self._private = OKPAlgorithm.from_jwk(signer.private_jwk())
        self._public = OKPAlgorithm.from_jwk(signer.public_jwk())
        # Tokens whose signature and claims were checked, by their exact text: a request's token
        # is verified by the rate limiter and again by the route, and a client sends the same
        # one for its whole life. Time-bound claims are checked again at every use.
        self._verified: dict[str, dict[str, Any]] = {}

    def issue(self, participant: Participant) -> dict[str, Any]:
        """Return the token response for an authenticated participant."""
        now = clock.now()
        ttl = self.settings.token_ttl_seconds
        claims = {
            "iss": self.settings.issuer,
            "sub": participant.id,
            "aud": self.settings.audience,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(now.timestamp()) + ttl,
            "jti": new_id("tok"),
            # Sub-second time of authentication: a key retirement revokes earlier tokens.
            "auth_time": now.timestamp(),
            "client_id": participant.id,
            "roles": list(participant.roles),
        }
        token = jwt.encode(
            claims,
            self._private,
            algorithm=EMITTED_ALG,
            headers={"kid": self.kid, "typ": "at+jwt"},
        )
        return {"access_token": token, "token_type": "Bearer", "expires_in": ttl}

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid access token, else raise a 401 problem saying why."""
        claims = self._verified.get(token)
        if claims is not None and _still_timely(claims):
            return dict(claims)
        self._verified.pop(token, None)
        claims = self._decode(token)
        if len(self._verified) >= VERIFIED_TOKENS_KEPT:
            self._verified.clear()
        self._verified[token] = claims
        return dict(claims)

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            return _ACCESS_TOKENS.decode(
                token,
                self._public,
                algorithms=list(ACCEPTED_ALGS),
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                options={"require": ["exp", "iat", "sub", "aud", "iss", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("invalid-token", "the access token has expired") from None
        except jwt.InvalidAudienceError:
            raise unauthorized(
                "invalid-token",
                f"the access token is not for this API (audience must be "
                f"{self.settings.audience!r})",
            ) from None
        except jwt.InvalidAlgorithmError:
            raise unauthorized(
                "invalid-token",
                "the access token must be signed with EdDSA (or Ed25519) by this gateway",
            ) from None
        except jwt.PyJWTError as exc:
            raise unauthorized("invalid-token", f"the access token is not valid: {exc}") from None


VERIFIED_TOKENS_KEPT = 10_000  # tokens whose verification is remembered (then forgotten at once)


def _still_timely(claims: dict[str, Any]) -> bool:
    """Whether a verified token's time-bound claims still hold now, as PyJWT checks them
    (exp passed, nbf or iat ahead: not timely, and the full check says why)."""
    now = datetime.now(tz=UTC).timestamp()
    return claims["exp"] > now and claims.get("nbf", now) <= now and claims["iat"] <= now


def unauthorized(error: str, detail: str) -> Problem:
    """Return a 401 problem with the RFC 6750 challenge."""
    return Problem(
        401,
        "unauthorized",
        "Authentication failed",
        detail,
        headers={"WWW-Authenticate": f'Bearer error="{error}"'},
    )


def token_response(
    *,
    session: Session,
    settings: Settings,
    issuer: TokenIssuer,
    form: dict[str, str],
    headers: dict[str, str],
) -> tuple[int, dict[str, Any]]:
    """Run the token endpoint; return the HTTP status and the JSON body (token or OAuth error).

    The audiences an assertion may name, and the URL authlib sees, come from the configured
    issuer, never from the request (its Host or X-Forwarded-* headers say nothing trustworthy).
    """
    token_endpoint = token_endpoint_url(settings)
    audiences = sorted({settings.issuer.rstrip("/"), token_endpoint})
    try:
        oauth_request = _FormRequest(token_endpoint, form, headers)
    except InsecureTransportError:
        return 400, {
            "error": "invalid_request",
            "error_description": f"this gateway's issuer {settings.issuer!r} is not an https URL "
            "(nor loopback): OAuth 2.0 needs TLS (RFC 6749 §3.2); the operator must start it "
            "with --issuer https://… behind a TLS-terminating proxy",
        }

    class _Server(AuthorizationServer):
        def query_client(self, client_id: str):
            # The assertion's sub, unverified yet: only a well-formed id reaches the database.
            if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
                return None
            participant = session.get(Participant, client_id)
            if participant is None or participant.status != "active":
                return None
            return _Client(participant)

        def save_token(self, token, request) -> None:
            return None

        def create_oauth2_request(self, request):
            return request

        def handle_response(self, status, body, headers):
            return status, body

        def send_signal(self, name, *args, **kwargs) -> None:
            return None

    server = _Server()
    server.register_client_auth_method(
        AUTH_METHOD, _PrivateKeyJWT(session, audiences, settings.assertion_max_age_seconds)
    )
    server.register_grant(_ClientCredentials)

    def _generate(grant_type, client, user=None, scope=None, **_):
        return issuer.issue(client.participant)

    server.register_token_generator("default", _generate)
    _purge_expired_assertions(session)
    status, body = server.create_token_response(oauth_request)
    if status == 200:
        session.commit()
    else:
        session.rollback()
    return status, body


def token_endpoint_url(settings: Settings) -> str:
    """Return the token endpoint's public URL: the configured issuer's /oauth/token."""
    return f"{settings.issuer.rstrip('/')}/oauth/token"


def _purge_expired_assertions(session: Session) -> None:
    """Forget used assertion ids whose assertions have expired anyway."""
    session.execute(delete(UsedAssertion).where(UsedAssertion.expires_at < clock.now()))


def load_participant(session: Session, participant_id: str) -> Participant:
    """Return the active participant a token names, else raise 401."""
    participant = session.get(Participant, participant_id)  # found in the session if read
    if participant is None:
        raise unauthorized("invalid-token", "the token's participant is not registered")
    if participant.status != "active":
        raise unauthorized("invalid-token", f"participant {participant.id} is {participant.status}")
    return participant


def check_not_revoked(participant: Participant, claims: dict[str, Any]) -> None:
    """Raise 401 if the token was issued before the participant last retired a key."""
    if participant.tokens_not_before is None:
        return
    issued = claims.get("auth_time", claims.get("iat"))
    if not isinstance(issued, int | float) or issued < participant.tokens_not_before.timestamp():
        raise unauthorized(
            "invalid-token",
            f"the access token was issued before a key of {participant.id} was retired "
            f"({clock.rfc3339(participant.tokens_not_before)}); get a new token",
        )
