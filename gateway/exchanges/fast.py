"""The exchange route's fast path: `POST /exchanges` answered without FastAPI's routing.

An exchange is the gateway's hot path. FastAPI's routing, dependency solving and the thread hop
of each of its layers cost about a tenth of an exchange's CPU: this pure ASGI middleware, the
innermost of the app's own (inside the metrics, the rate limit and the input guard), answers a
well-formed JSON exchange itself, with the same code the route runs (views.json_pull) in one
worker thread.

It answers only what it is sure to answer exactly as the route would; anything else goes on to
the route, untouched, with the body it read: a request without a bearer token or with one that
does not verify, a body that is not a JSON object the route's model accepts, a content type
other than JSON, an `Accept` that asks for a data format (a streamed pull), an
`Idempotency-Key` longer than the route takes. Every problem raised while it runs the exchange
is rendered by the app's own exception handlers, so a refusal is the same problem+json either
way (tests/e2e/test_exchange_fast_path.py compares the two).
"""

import asyncio
import contextvars
import inspect
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.context import Gateway
from gateway.core.db import session_scope
from gateway.core.errors import Problem
from gateway.core.guard import replaying
from gateway.dataplane.encoders import preferred_data_format
from gateway.exchanges.models import ExchangeRequest
from gateway.exchanges.views import JSON_REPLY, json_pull, router, subject_of

PATH = "/exchanges"
MAX_KEY = 200  # the route's Idempotency-Key max_length
# Exchanges run in a pool of their own, as many threads as AnyIO lends the app's other sync
# routes: handing work to it costs a C queue's put (concurrent.futures), where AnyIO's hop costs
# a Python queue's put and its condition's notify (7% of an exchange's GIL time at c=8).
THREADS = 40
_pool: ThreadPoolExecutor | None = None


def _in_thread(work):
    """Return a future of `work()` run in the exchange pool, with the caller's context vars."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(THREADS, thread_name_prefix="dsgw-exchange")
    loop = asyncio.get_running_loop()
    return loop.run_in_executor(_pool, contextvars.copy_context().run, work)


class ExchangeFastPath:
    """Pure ASGI middleware: a well-formed JSON `POST /exchanges`, answered directly."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The route it answers for, in the scope as the router puts it (the metrics' label).
        self._route = next(
            r
            for r in router.routes
            if r.path == PATH and "POST" in r.methods  # type: ignore[attr-defined]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or _route_path(scope) != PATH:
            await self.app(scope, receive, send)
            return
        body, disconnected = await _read_body(receive)
        replay = replaying(body, receive)
        if disconnected:
            await self.app(scope, replay, send)
            return
        app = scope.get("app")
        request = _parse(scope, body, app)
        if request is None:  # not sure to answer it as the route would: the route answers
            await self.app(scope, replay, send)
            return
        claims, exchange, key = request
        gateway: Gateway = app.state.gateway
        scope["route"] = self._route

        def work():
            # As the route: the preload, the participant, then the JSON exchange (views).
            with session_scope(gateway.sessions) as session:
                me, preloaded = subject_of(session, claims, exchange)
                return json_pull(session, gateway, subject=me, body=exchange, key=key,
                                 preloaded=preloaded)  # fmt: skip

        try:
            response = await _in_thread(work)
        except Exception as exc:
            handler = _handler_of(app, exc)
            if handler is None:
                raise  # as from the route: the server error middleware answers it
            response = handler(Request(scope, replay), exc)
            if inspect.isawaitable(response):
                response = await response
        await response(scope, replay, send)


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """Return the request's whole body (the input guard has read and capped it already), and
    whether the client left before sending it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _route_path(scope: Scope) -> str:
    """Return the request's path below the app's root path, as Starlette's router matches it."""
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] == "/":
        return path[len(root) :]
    return path


def _parse(
    scope: Scope, body: bytes, app: Any
) -> tuple[dict[str, Any], ExchangeRequest, str | None] | None:
    """Return (claims, request, Idempotency-Key) when the route would run the JSON exchange on
    this request with no problem before it; else None (the route then says what is wrong)."""
    if app is None or getattr(app.state, "gateway", None) is None:
        return None
    headers = Headers(scope=scope)  # the first of each, latin-1, as the route reads them
    accept = headers.get("accept")
    if preferred_data_format(accept, besides=JSON_REPLY) is not None:
        return None  # a streamed pull (or compute, which refuses it): the route's
    content_type = headers.get("content-type")
    if content_type is not None and content_type.split(";")[0].strip().lower() != (
        "application/json"
    ):
        return None
    key = headers.get("idempotency-key")
    if key is not None and len(key) > MAX_KEY:
        return None
    authorization = headers.get("authorization") or ""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        exchange = ExchangeRequest.model_validate(json.loads(body))
    except (ValueError, ValidationError, RecursionError):
        return None
    try:
        claims = app.state.issuer.verify(token)
    except Problem:
        return None
    return claims, exchange, key


def _handler_of(app: Any, exc: Exception):
    """Return the app's handler of `exc` (by its class, most specific first), as Starlette's
    exception middleware finds it; None when the app has none."""
    handlers = app.exception_handlers
    for cls in type(exc).__mro__:
        if cls in handlers and cls is not Exception:
            return handlers[cls]
    return None
