"""A real HTTP server playing the merchant's endpoint and the consumer's sink (http.server in a
thread, on a free 127.0.0.1 port).

Routes (every one needs the server's credentials: `Authorization: Bearer <token>` on /bearer/,
basic `merchant:<password>` on /basic/, `X-Api-Key: <key>` on /header/; 401 otherwise):

- `GET /<auth>/rows.jsonl?n=N`: N rows as JSON Lines, written in chunks as they are made;
- `GET /<auth>/pages?n=N&size=S[&cursor=K]`: JSON pages `{"items": [...], "next": ...}`;
  `next` is a relative link, or with `&style=token` a bare token for `cursor`;
- `POST|PUT /<auth>/upload/<name>`: stores the body (chunked or not) under `name`.

Row i is `{"id": i, "name": "name-<i>", "phone": "138<8 digits of i>", "score": i / 4}`.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HOST = "127.0.0.1"


def row(i: int) -> dict:
    """Return row i of the served data."""
    return {"id": i, "name": f"name-{i}", "phone": f"138{i:08d}", "score": i / 4}


class HttpSourceServer:
    """The merchant endpoint and consumer sink of the tests; a context manager."""

    def __init__(self) -> None:
        self.token = secrets.token_urlsafe(16)
        self.password = secrets.token_urlsafe(16)
        self.api_key = secrets.token_urlsafe(16)
        self.uploads: dict[str, dict] = {}
        self.requests: list[dict] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> HttpSourceServer:
        self._server = ThreadingHTTPServer((HOST, 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> HttpSourceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler(owner: HttpSourceServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _authorised(self, kind: str) -> bool:
            header = self.headers.get("Authorization", "")
            if kind == "bearer":
                return header == f"Bearer {owner.token}"
            if kind == "basic":
                expected = base64.b64encode(f"merchant:{owner.password}".encode()).decode()
                return header == f"Basic {expected}"
            if kind == "header":
                return self.headers.get("X-Api-Key") == owner.api_key
            return False

        def _send(self, status: int, body: bytes, media: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _route(self) -> tuple[str, str, dict] | None:
            parts = urlsplit(self.path)
            segments = parts.path.strip("/").split("/", 1)
            owner.requests.append({"method": self.command, "path": parts.path,
                                   "headers": dict(self.headers)})  # fmt: skip
            if len(segments) != 2 or not self._authorised(segments[0]):
                self._send(401, b'{"error":"unauthorised"}')
                return None
            return segments[0], segments[1], parse_qs(parts.query)

        def do_GET(self) -> None:
            route = self._route()
            if route is None:
                return
            kind, rest, query = route
            n = int(query.get("n", ["0"])[0])
            if rest == "rows.jsonl":
                self.send_response(200)
                self.send_header("Content-Type", "application/jsonl")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, n, 1000):
                    chunk = "".join(
                        json.dumps(row(i)) + "\n" for i in range(start, min(n, start + 1000))
                    ).encode()
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                return
            if rest == "pages":
                size = int(query.get("size", ["10"])[0])
                start = int(query.get("cursor", ["0"])[0])
                items = [row(i) for i in range(start, min(n, start + size))]
                nxt = None
                if start + size < n:
                    if query.get("style", [""])[0] == "token":
                        nxt = str(start + size)
                    else:
                        nxt = f"pages?n={n}&size={size}&cursor={start + size}"
                self._send(200, json.dumps({"items": items, "next": nxt}).encode())
                return
            self._send(404, b'{"error":"not found"}')

        def _upload(self) -> None:
            route = self._route()
            if route is None:
                return
            _kind, rest, _query = route
            if not rest.startswith("upload/"):
                self._send(404, b"{}")
                return
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    body += self.rfile.read(size)
                    self.rfile.readline()
                chunked = True
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                chunked = False
            owner.uploads[rest.removeprefix("upload/")] = {
                "body": bytes(body),
                "chunked": chunked,
                "method": self.command,
                "content_type": self.headers.get("Content-Type"),
            }
            self._send(201, b"{}")

        do_POST = _upload
        do_PUT = _upload

    return Handler


_SHARED: HttpSourceServer | None = None


def shared() -> HttpSourceServer:
    """Return the test process's one HTTP source server, starting it on first use."""
    global _SHARED
    if _SHARED is None:
        _SHARED = HttpSourceServer().start()
    return _SHARED
