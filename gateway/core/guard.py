"""Input the databases cannot hold is refused at the door, the same way on every engine.

PostgreSQL text cannot contain NUL characters, SQLite can: without this guard the same request
would be a 404 on one engine and a database error on the other. A lone UTF-16 surrogate (a JSON
`\\ud800` escape without its pair, or its raw bytes) has no UTF-8 form at all: no database, no
canonical form (RFC 8785) and no log line can hold it, so it is refused here for every route at
once. The guard also caps the size of request bodies.
"""

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.core.errors import PROBLEM_MEDIA_TYPE, problem_type

MAX_BODY_BYTES = 32 * 1024 * 1024
# A JSON \u0000 escape: a backslash that is not itself escaped, then u0000.
_JSON_NUL = re.compile(rb"(?:^|[^\\])(?:\\\\)*\\u0000", re.IGNORECASE)


# A surrogate's UTF-8-like bytes (ED A0..BF): json.loads decodes them with 'surrogatepass'.
_RAW_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")
_PERCENT_SURROGATE = re.compile(rb"%ed%[ab][0-9a-f]", re.IGNORECASE)
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
# Every backslash escape of a JSON text, left to right (so that an escaped backslash is one).
_ESCAPE = re.compile(rb"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)


def _has_nul(raw: bytes) -> bool:
    return b"\x00" in raw or b"%00" in raw or _JSON_NUL.search(raw) is not None


def _has_lone_surrogate(raw: bytes) -> bool:
    """Return whether a JSON text holds a surrogate that is not half of a \\uD8xx\\uDCxx pair."""
    if _RAW_SURROGATE.search(raw):
        return True
    if not _SURROGATE_ESCAPE.search(raw):
        return False
    high_ends_at = None  # where the escape after an unpaired high surrogate must start
    for match in _ESCAPE.finditer(raw):
        code = int(match[1], 16) if match[1] else None
        if high_ends_at is not None:
            if match.start() != high_ends_at or code is None or not 0xDC00 <= code <= 0xDFFF:
                return True
            high_ends_at = None
            continue
        if code is not None and 0xD800 <= code <= 0xDBFF:
            high_ends_at = match.end()
        elif code is not None and 0xDC00 <= code <= 0xDFFF:
            return True
    return high_ends_at is not None


class InputGuard:
    """ASGI middleware: 422 for NUL or lone surrogates in the request, 413 for huge bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        query = scope.get("query_string", b"")
        if _PERCENT_SURROGATE.search(raw_path + b"?" + query):
            await _refuse(
                scope,
                send,
                422,
                "invalid-request",
                "Invalid request",
                "the URL contains an encoded UTF-16 surrogate, which is not a character",
            )
            return
        if _has_nul(raw_path) or b"%00" in query:
            await _refuse(
                scope,
                send,
                422,
                "invalid-request",
                "Invalid request",
                "the URL contains a NUL character, which no identifier or value may hold",
            )
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                await _refuse(
                    scope,
                    send,
                    413,
                    "body-too-large",
                    "Request body too large",
                    f"request bodies are limited to {MAX_BODY_BYTES} bytes",
                )
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if _has_nul(body.replace(b"%00", b"")):
            await _refuse(
                scope,
                send,
                422,
                "invalid-request",
                "Invalid request",
                "the body contains a NUL character (\\u0000), which no value may hold",
            )
            return
        form = _header(scope, b"content-type").startswith(b"application/x-www-form-urlencoded")
        if _has_lone_surrogate(body) or (form and _PERCENT_SURROGATE.search(body)):
            await _refuse(
                scope,
                send,
                422,
                "invalid-request",
                "Invalid request",
                "the body contains a lone UTF-16 surrogate (such as \\ud800 without its pair), "
                "which is not a character",
            )
            return
        await self.app(scope, replaying(body, receive), send)


def replaying(body: bytes, receive: Receive) -> Receive:
    """Return a `receive` that gives the app `body` (already read, whole) as one message, then
    whatever the client sends next (its disconnect)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.lower()
    return b""


async def _refuse(scope: Scope, send: Send, status: int, slug: str, title: str, detail: str):
    body = json.dumps(
        {
            "type": problem_type(slug),
            "title": title,
            "status": status,
            "detail": detail,
            "instance": scope.get("path"),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
