"""Input the databases cannot hold is refused at the door, the same way on every engine.

PostgreSQL text cannot contain NUL characters, SQLite can: without this guard the same request
would be a 404 on one engine and a database error on the other. The guard also caps the size of
request bodies.
"""

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.core.errors import PROBLEM_MEDIA_TYPE, problem_type

MAX_BODY_BYTES = 32 * 1024 * 1024
# A JSON \u0000 escape: a backslash that is not itself escaped, then u0000.
_JSON_NUL = re.compile(rb"(?:^|[^\\])(?:\\\\)*\\u0000", re.IGNORECASE)


def _has_nul(raw: bytes) -> bool:
    return b"\x00" in raw or b"%00" in raw or _JSON_NUL.search(raw) is not None


class InputGuard:
    """ASGI middleware: 422 for NUL characters anywhere in the request, 413 for huge bodies."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        if _has_nul(raw_path) or b"%00" in scope.get("query_string", b""):
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
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


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
