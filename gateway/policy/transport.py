"""A lean HTTP transport for opa-python-client: one kept-alive HTTP/1.1 connection per thread.

opa-python-client speaks to OPA through a `requests.Session`. On this machine requests and
urllib3 cost about 0.6 ms per call on top of the socket round trip, more than the gateway's
whole overhead budget over OPA's own evaluation (1 ms at p50, see tests/bench/bench_policy.py);
the standard library's `http.client` still costs about 0.15 ms of CPU per decision (most of it
building the request's headers and parsing the reply's with the `email` package), a twentieth
of an exchange's. `KeepAliveSession` is the slice of `requests.Session` the client uses (`get`,
`post`, `put`, `patch`, `delete`, `close`), speaking HTTP/1.1 on a socket itself: the request
head is built once per session, the reply's head split on its line breaks, its body read by
Content-Length, chunks or the connection's close. It raises requests' own exception types so
that callers handle failures exactly as with requests: `requests.ConnectionError` (OPA
unreachable, connection lost, a reply that is not HTTP), `requests.Timeout` (no answer within the
timeout), `requests.HTTPError` (from `raise_for_status`).

A request on a kept-alive connection that OPA has meanwhile closed (OPA restarted) is retried
once on a fresh connection; nothing else is retried, and a timeout never is.
"""

import functools
import json as jsonlib
import socket
import ssl as ssllib
import threading
from typing import Any
from urllib.parse import urlsplit

import requests

MAX_HEAD = 64 * 1024  # a reply head longer than this is no OPA's
READ = 256 * 1024  # bytes asked of the socket at a time
NO_BODY = frozenset({204, 304})


class Stale(ConnectionError):
    """The kept-alive connection was closed before any byte of the reply came: retry, fresh."""


class BadReply(Exception):
    """The peer answered something that is not an HTTP/1.x reply (or broke off in one)."""


# Failures that mean "the kept-alive connection was closed under us": retry once, fresh.
_STALE = (Stale, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class Response:
    """The part of `requests.Response` that opa-python-client reads."""

    def __init__(self, status: int, reason: str, content: bytes, url: str) -> None:
        self.status_code = status
        self.reason = reason
        self.content = content
        self.url = url

    @property
    def ok(self) -> bool:
        return self.status_code < 400

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """Return the decoded JSON body; ValueError when it is not JSON."""
        return jsonlib.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise requests.HTTPError(
                f"{self.status_code} {self.reason} for url {self.url}: {self.text[:300]}"
            )


class Connection:
    """One HTTP/1.1 connection: a request sent, its reply read whole; kept alive between."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buf = bytearray()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:  # pragma: no cover - closing a socket that is already gone
            pass

    def exchange(
        self, head: bytes, body: bytes | None, method: str
    ) -> tuple[int, str, bytes, bool]:
        """Send `head` (the request line and headers, ending with the blank line) and `body`;
        return the reply's status, reason, body and whether the connection must then close."""
        self.sock.sendall(head + body if body else head)
        while True:
            status, reason, headers, closes = self._head()
            if 100 <= status < 200 and status != 101:
                continue  # an interim reply (100 Continue): the real one follows
            break
        if method == "HEAD" or status in NO_BODY or status < 200:
            content = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            content = self._chunked()
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                raise BadReply(f"Content-Length {headers['content-length']!r}") from None
            if length < 0:
                raise BadReply(f"Content-Length {length}")
            content = self._exactly(length)
        else:  # delimited by the connection's close
            content = self._until_close()
            closes = True
        return status, reason, content, closes

    def _fill(self) -> int:
        data = self.sock.recv(READ)
        self._buf += data
        return len(data)

    def _head(self) -> tuple[int, str, dict[str, str], bool]:
        first = not self._buf
        while (end := self._buf.find(b"\r\n\r\n")) < 0:
            if len(self._buf) > MAX_HEAD:
                raise BadReply(f"a reply head longer than {MAX_HEAD} bytes")
            if not self._fill():
                if first and not self._buf:
                    raise Stale("the connection was closed before the reply")
                raise BadReply("the connection was closed inside the reply's head")
        lines = bytes(self._buf[:end]).decode("latin-1").split("\r\n")
        del self._buf[: end + 4]
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not code.isdigit():
            raise BadReply(f"not an HTTP/1.x status line: {lines[0][:100]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            if not colon:
                raise BadReply(f"not a header line: {line[:100]!r}")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        closes = "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens)
        return int(code), reason, headers, closes

    def _exactly(self, n: int) -> bytes:
        while len(self._buf) < n:
            if not self._fill():
                raise BadReply(f"the connection was closed {n - len(self._buf)} bytes short")
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _line(self) -> bytes:
        while (end := self._buf.find(b"\r\n")) < 0:
            if len(self._buf) > MAX_HEAD:
                raise BadReply("a chunk line too long")
            if not self._fill():
                raise BadReply("the connection was closed inside a chunked body")
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size_text = self._line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BadReply(f"a chunk size {size_text[:20]!r}") from None
            if size < 0:
                raise BadReply(f"a chunk size {size_text[:20]!r}")
            if size == 0:
                while self._line():  # trailers, up to the blank line
                    pass
                return b"".join(parts)
            parts.append(self._exactly(size))
            if self._exactly(2) != b"\r\n":
                raise BadReply("a chunk not followed by CRLF")

    def _until_close(self) -> bytes:
        while self._fill():
            pass
        out = bytes(self._buf)
        self._buf.clear()
        return out


@functools.lru_cache(maxsize=256)
def _target(url: str) -> str:
    """Return the request target (path and query) of `url`; ValueError if it cannot be one."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if any(c in target for c in "\r\n \t"):
        raise ValueError(f"a request target with a space or line break: {target[:100]!r}")
    return target


class KeepAliveSession:
    """Requests-compatible session to one OPA: one persistent connection per thread."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl: bool,
        timeout: float,
        headers: dict | None = None,
        ssl_context: ssllib.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl = ssl
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self._ssl_context = ssl_context
        authority = f"[{host}]" if ":" in host else host
        default_port = 443 if ssl else 80
        self._host_header = authority if port == default_port else f"{authority}:{port}"
        lines = [f"Host: {self._host_header}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        for line in lines:
            if "\r" in line or "\n" in line:
                raise ValueError(f"a header with a line break: {line[:100]!r}")
        self._fixed = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        self._local = threading.local()
        self._all: list[Connection] = []
        self._lock = threading.Lock()

    def _new_connection(self, timeout: float) -> Connection:
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl:
                context = self._ssl_context or ssllib.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        conn = Connection(sock)
        with self._lock:
            self._all.append(conn)
        return conn

    def _connection(self, timeout: float) -> tuple[Connection, bool]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._new_connection(timeout)
            return conn, True
        conn.sock.settimeout(timeout)
        return conn, False

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            with self._lock:
                if conn in self._all:
                    self._all.remove(conn)
        self._local.conn = None

    def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        timeout: float | None = None,
        **_: Any,
    ) -> Response:
        """Send one request; return its response, or raise a requests exception."""
        target = _target(url)
        if json is not None:
            body: bytes | None = jsonlib.dumps(json, separators=(",", ":")).encode("utf-8")
        elif isinstance(data, str):
            body = data.encode("utf-8")
        else:
            body = data
        if body is None and method in ("GET", "HEAD", "DELETE"):
            length = b""
        else:
            length = b"Content-Length: %d\r\n" % len(body or b"")
        line = f"{method} {target} HTTP/1.1\r\n".encode("latin-1")
        head = b"".join((line, self._fixed, length, b"\r\n"))
        limit = self.timeout if timeout is None else timeout
        for attempt in (1, 2):
            try:
                conn, fresh = self._connection(limit)
                status, reason, content, closes = conn.exchange(head, body, method)
                if closes:
                    self._drop()
                return Response(status, reason, content, url)
            except TimeoutError as exc:
                self._drop()
                raise requests.Timeout(f"no answer from {url} within {limit} s") from exc
            except _STALE as exc:
                self._drop()
                if fresh or attempt == 2:
                    raise requests.ConnectionError(f"{url}: {exc!r}") from exc
            except (OSError, BadReply) as exc:
                self._drop()
                raise requests.ConnectionError(f"{url}: {exc!r}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def get(self, url: str, **kwargs: Any) -> Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> Response:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        """Close every connection this session opened, in any thread."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()
