"""A lean HTTP transport for opa-python-client: one kept-alive http.client connection per thread.

opa-python-client speaks to OPA through a `requests.Session`. On this machine requests and
urllib3 cost about 0.6 ms per call on top of the socket round trip, more than the gateway's
whole overhead budget over OPA's own evaluation (1 ms at p50, see tests/bench/bench_policy.py).
`KeepAliveSession` is the slice of `requests.Session` the client uses (`get`, `post`, `put`,
`patch`, `delete`, `close`), implemented over the standard library's `http.client`, raising
requests' own exception types so that callers handle failures exactly as with requests:
`requests.ConnectionError` (OPA unreachable, connection lost), `requests.Timeout` (no answer
within the timeout), `requests.HTTPError` (from `raise_for_status`).

A request on a kept-alive connection that OPA has meanwhile closed (OPA restarted) is retried
once on a fresh connection; nothing else is retried, and a timeout never is.
"""

import http.client
import json as jsonlib
import ssl as ssllib
import threading
from typing import Any
from urllib.parse import urlsplit

import requests

# Failures that mean "the kept-alive connection was closed under us": retry once, fresh.
_STALE = (
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
    http.client.RemoteDisconnected,
    http.client.CannotSendRequest,
    http.client.BadStatusLine,
)


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


class KeepAliveSession:
    """Requests-compatible session to one OPA: one persistent connection per thread."""

    def __init__(
        self, host: str, port: int, *, ssl: bool, timeout: float, headers: dict | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.ssl = ssl
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _new_connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.ssl:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=ssllib.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        with self._lock:
            self._all.append(conn)
        return conn

    def _connection(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._new_connection(timeout)
            return conn, True
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn, conn.sock is None

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
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if json is not None:
            body: bytes | None = jsonlib.dumps(json, separators=(",", ":")).encode("utf-8")
        elif isinstance(data, str):
            body = data.encode("utf-8")
        else:
            body = data
        limit = self.timeout if timeout is None else timeout
        for attempt in (1, 2):
            conn, fresh = self._connection(limit)
            try:
                conn.request(method, target, body=body, headers=self.headers)
                answer = conn.getresponse()
                content = answer.read()
                if answer.will_close:
                    self._drop()
                return Response(answer.status, answer.reason, content, url)
            except TimeoutError as exc:
                self._drop()
                raise requests.Timeout(f"no answer from {url} within {limit} s") from exc
            except _STALE as exc:
                self._drop()
                if fresh or attempt == 2:
                    raise requests.ConnectionError(f"{url}: {exc!r}") from exc
            except OSError as exc:
                self._drop()
                raise requests.ConnectionError(f"{url}: {exc!r}") from exc
            except http.client.HTTPException as exc:
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
