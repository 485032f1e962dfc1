"""Rate limits per client and per route, with `limits` (moving window, in-memory storage).

Three route classes, each with its own limits, configured as one string (Settings.rate_limits,
DSGW_RATE_LIMITS; "off" switches limiting off):

    token=300/minute;token_client=60/minute;exchanges=1200/minute;default=6000/minute

Whom a request counts against:

- `token` (POST /oauth/token): the source address, for every request. A flood of bad assertions
  in a victim's name therefore exhausts only the flooder's address.
- `token_client`: the client the assertion names (its `sub`, else `client_id`), counted only when
  a token is issued, so only the key's holder can spend it; tested before the request runs.
- `exchanges` (POST /exchanges) and `default` (every other route but /health): the participant
  of a valid access token, else the source address.

Storage is per process: N gateway processes admit up to N times the limits. Behind a proxy the
source address is the proxy's unless the server is told to trust its forwarded headers.
"""

import json
import math
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import jwt
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.core.errors import PROBLEM_MEDIA_TYPE, problem_type

DEFAULT_RATE_LIMITS = (
    "token=300/minute;token_client=60/minute;exchanges=1200/minute;default=6000/minute"
)
ROUTE_CLASSES = ("token", "token_client", "exchanges", "default")
TOKEN_PATH = "/oauth/token"
EXEMPT_PATHS = frozenset({"/health"})
# Only this much of a token request is read to find the client it names.
_FORM_PEEK_BYTES = 64 * 1024


def parse_rate_limits(spec: str) -> dict[str, list[RateLimitItem]] | None:
    """Return the limits of each route class from `spec`, or None for "off"."""
    if spec.strip().lower() in ("off", "none", "0", "false"):
        return None
    given: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in ROUTE_CLASSES:
            raise ValueError(
                f"rate limits: expected route=limit with route one of {', '.join(ROUTE_CLASSES)}, "
                f"found {part!r}"
            )
        given[name] = value.strip()
    defaults = dict(p.split("=", 1) for p in DEFAULT_RATE_LIMITS.split(";"))
    limits = {}
    for name in ROUTE_CLASSES:
        text = given.get(name, defaults[name])
        try:
            limits[name] = parse_many(text)
        except ValueError:
            raise ValueError(
                f"rate limits: {name}: expected limits such as '600/minute', found {text!r}"
            ) from None
    return limits


@dataclass
class RateLimiter:
    """The limits of each route class and their moving windows in this process's memory."""

    limits: dict[str, list[RateLimitItem]]

    def __post_init__(self) -> None:
        self._windows = MovingWindowRateLimiter(MemoryStorage())

    @classmethod
    def from_spec(cls, spec: str) -> "RateLimiter | None":
        """Return the limiter that `spec` configures, or None when limiting is off."""
        limits = parse_rate_limits(spec)
        return None if limits is None else cls(limits)

    def hit(self, route: str, key: str) -> int | None:
        """Count one request; return None if allowed, else the seconds to wait."""
        for item in self.limits[route]:
            if not self._windows.hit(item, route, key):
                return self._retry_after(item, route, key)
        return None

    def test(self, route: str, key: str) -> int | None:
        """Return None if one more request would be allowed, else the seconds to wait."""
        for item in self.limits[route]:
            if not self._windows.test(item, route, key):
                return self._retry_after(item, route, key)
        return None

    def _retry_after(self, item: RateLimitItem, route: str, key: str) -> int:
        reset = self._windows.get_window_stats(item, route, key).reset_time
        return max(1, math.ceil(reset - time.time()))


def _address(scope: Scope) -> str:
    client = scope.get("client")
    return f"addr:{client[0]}" if client else "addr:unknown"


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


def _participant_key(scope: Scope) -> str:
    """Return the verified participant of the request's access token, else its address."""
    token = _bearer(scope)
    issuer = getattr(scope["app"].state, "issuer", None)
    if token and issuer is not None:
        try:
            return f"sub:{issuer.verify(token)['sub']}"
        except Exception:  # any invalid token: keyed by where it comes from
            pass
    return _address(scope)


def _named_client(form: bytes) -> str | None:
    """Return the client a token request names (not verified: only to key its successes)."""
    try:
        fields = parse_qs(form.decode("utf-8"), max_num_fields=20)
        assertion = fields.get("client_assertion", [""])[0]
        claims = jwt.decode(assertion, options={"verify_signature": False}) if assertion else {}
        named = claims.get("sub") or fields.get("client_id", [None])[0]
    except (ValueError, jwt.PyJWTError, UnicodeDecodeError):
        return None
    return named[:64] if isinstance(named, str) and named else None


class RateLimit:
    """ASGI middleware: 429 problem+json with Retry-After once a client exceeds its limits."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter: RateLimiter | None = None
        if scope["type"] == "http" and "app" in scope:
            limiter = getattr(scope["app"].state, "rate_limiter", None)
        if limiter is None or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if scope["path"] == TOKEN_PATH and scope["method"] == "POST":
            await self._token(limiter, scope, receive, send)
            return
        route = "exchanges" if scope["path"] == "/exchanges" else "default"
        wait = limiter.hit(route, _participant_key(scope))
        if wait is not None:
            await _refuse(scope, send, wait, route)
            return
        await self.app(scope, receive, send)

    async def _token(self, limiter: RateLimiter, scope: Scope, receive: Receive, send: Send):
        wait = limiter.hit("token", _address(scope))
        if wait is not None:
            await _refuse(scope, send, wait, "token")
            return
        read: list[Message] = []
        size, more = 0, True
        while more and size <= _FORM_PEEK_BYTES:
            message = await receive()
            read.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        client = None if more else _named_client(b"".join(m.get("body", b"") for m in read))
        key = f"client:{client}" if client else None
        if key is not None:
            wait = limiter.test("token_client", key)
            if wait is not None:
                await _refuse(scope, send, wait, "token_client")
                return

        async def replay() -> Message:
            return read.pop(0) if read else await receive()

        status = 0

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, replay, watch)
        if key is not None and status == 200:
            limiter.hit("token_client", key)


async def _refuse(scope: Scope, send: Send, wait: int, route: str) -> None:
    body: dict[str, Any] = {
        "type": problem_type("rate-limited"),
        "title": "Too many requests",
        "status": 429,
        "detail": f"the {route} rate limit is exhausted for this client; retry in {wait} s",
        "instance": scope.get("path"),
        "retry_after": wait,
    }
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(raw)).encode()),
                (b"retry-after", str(wait).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})
