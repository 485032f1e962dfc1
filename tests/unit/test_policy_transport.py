"""The lean HTTP/1.1 transport to OPA (gateway/policy/transport.py), against scripted servers.

Each test runs a real TCP server on loopback whose replies are scripted byte for byte: the
framings OPA uses (Content-Length, chunked), the ones it may (a body ended by the close,
Connection: close), and the failures the gateway must map to requests' exceptions (a kept-alive
connection closed under it, no answer, a reply that is not HTTP, a body cut short). The end to
end suite speaks to the real OPA through the same transport.
"""

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.policy.transport import KeepAliveSession


class ScriptedServer:
    """Accepts connections; for each, reads requests and answers them from `script`, a list
    (one per connection) of lists of replies (bytes sent as they are; a 1-tuple of bytes: sent,
    then the connection closed; None: closed instead of an answer; "hang": no answer ever).
    After its replies a connection stays open."""

    def __init__(self, script, *, tls: ssl.SSLContext | None = None) -> None:
        self.script = list(script)
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.requests: list[bytes] = []
        self._open: list[socket.socket] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            if self.tls is not None:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (OSError, ssl.SSLError):
                    conn.close()
                    continue
            self.accepted += 1
            self._open.append(conn)
            replies = self.script.pop(0) if self.script else []
            threading.Thread(target=self._answer, args=(conn, replies), daemon=True).start()

    def _answer(self, conn: socket.socket, replies) -> None:
        buf = b""
        for reply in replies:
            while b"\r\n\r\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            head, _, buf = buf.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(buf) < length:
                buf += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + buf[:length])
            buf = buf[length:]
            if reply is None:
                conn.close()
                return
            if reply == "hang":
                self._stop.wait(10)
                return
            if isinstance(reply, tuple):
                conn.sendall(reply[0])
                conn.close()
                return
            conn.sendall(reply)

    def session(self, **kwargs) -> KeepAliveSession:
        kwargs.setdefault("timeout", 5.0)
        return KeepAliveSession("127.0.0.1", self.port, ssl=self.tls is not None, **kwargs)

    def url(self, path: str = "/v1/data/dsgw/exchange/decision") -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        for conn in self._open:
            try:
                conn.close()
            except OSError:
                pass


@pytest.fixture
def serve():
    servers: list[ScriptedServer] = []

    def start(script, **kwargs) -> ScriptedServer:
        server = ScriptedServer(script, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def reply(body: bytes, *, status: str = "200 OK", headers: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{headers}\r\n"
    ).encode() + body


def chunked(*parts: bytes, trailer: str = "") -> bytes:
    out = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    for i, part in enumerate(parts):
        out += f"{len(part):x}{';ext=1' if i == 0 else ''}\r\n".encode() + part + b"\r\n"
    return out + b"0\r\n" + trailer.encode() + b"\r\n"


def test_a_post_sends_its_json_and_the_session_headers_and_reads_the_reply(serve):
    server = serve([[reply(b'{"result": {"allow": true}}')]])
    session = server.session(headers={"Authorization": "Bearer t0ken"})
    answer = session.post(server.url(), json={"input": {"n": 1, "s": "é"}})
    assert answer.status_code == 200 and answer.ok
    assert answer.json() == {"result": {"allow": True}}
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/data/dsgw/exchange/decision HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in lines
    assert "Content-Type: application/json" in lines
    assert "Authorization: Bearer t0ken" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert json.loads(body) == {"input": {"n": 1, "s": "é"}}


def test_requests_in_a_row_share_one_kept_alive_connection(serve):
    server = serve([[reply(b'{"n": %d}' % i) for i in range(5)]])
    session = server.session()
    assert [session.post(server.url(), json={}).json()["n"] for _ in range(5)] == list(range(5))
    assert server.accepted == 1
    assert server.requests[1].startswith(b"POST ")


def test_a_get_with_a_query_sends_no_body(serve):
    server = serve([[reply(b"{}")]])
    server.session().get(server.url("/v1/policies?pretty=false"))
    head = server.requests[0].decode()
    assert head.startswith("GET /v1/policies?pretty=false HTTP/1.1\r\n")
    assert "Content-Length" not in head


def test_a_chunked_reply_is_joined_with_its_extensions_and_trailers_skipped(serve):
    big = b'{"result": "' + b"x" * 300_000 + b'"}'
    server = serve([[chunked(big[:7], big[7:200_000], big[200_000:], trailer="X-T: 1\r\n"),
                     reply(b'{"after": true}')]])  # fmt: skip
    session = server.session()
    assert session.get(server.url()).content == big
    assert session.get(server.url()).json() == {"after": True}  # the framing stayed in step
    assert server.accepted == 1


def test_a_body_ended_by_the_close_is_read_to_the_end_and_the_connection_dropped(serve):
    server = serve([[(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\": 1}",)],
                    [reply(b'{"b": 2}')]])  # fmt: skip
    session = server.session()
    assert session.post(server.url(), json={}).json() == {"a": 1}
    assert session.post(server.url(), json={}).json() == {"b": 2}
    assert server.accepted == 2


def test_connection_close_and_http_1_0_drop_the_connection(serve):
    server = serve([
        [reply(b"{}", headers="Connection: close\r\n")],
        [b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}"],
        [reply(b'{"third": 3}')],
    ])  # fmt: skip
    session = server.session()
    for _ in range(2):
        assert session.post(server.url(), json={}).json() == {}
    assert session.post(server.url(), json={}).json() == {"third": 3}
    assert server.accepted == 3


def test_a_kept_alive_connection_closed_under_it_is_retried_once_fresh(serve):
    server = serve([[reply(b'{"one": 1}'), None], [reply(b'{"two": 2}')]])
    session = server.session()
    assert session.post(server.url(), json={}).json() == {"one": 1}
    assert session.post(server.url(), json={"again": True}).json() == {"two": 2}
    assert server.accepted == 2
    assert json.loads(server.requests[-1].partition(b"\r\n\r\n")[2]) == {"again": True}


def test_a_fresh_connection_closed_without_a_reply_is_not_retried(serve):
    server = serve([[None], [reply(b"{}")]])
    with pytest.raises(requests.ConnectionError):
        server.session().post(server.url(), json={})
    assert server.accepted == 1


def test_no_answer_within_the_timeout_is_a_timeout_never_retried(serve):
    server = serve([["hang"], [reply(b"{}")]])
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        server.session(timeout=0.3).post(server.url(), json={})
    assert time.monotonic() - started < 5
    assert server.accepted == 1


def test_a_per_request_timeout_overrides_the_session_s(serve):
    server = serve([["hang"]])
    with pytest.raises(requests.Timeout):
        server.session(timeout=30.0).get(server.url(), timeout=0.2)


@pytest.mark.parametrize(
    "garbage",
    [
        b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
        b"HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000,
    ],
    ids=[
        "not-http",
        "bad-status",
        "bad-header",
        "bad-length",
        "negative-length",
        "bad-chunk-size",
        "chunk-without-crlf",
        "head-too-long",
    ],  # fmt: skip
)
def test_a_reply_that_is_not_http_is_a_connection_error(serve, garbage):
    server = serve([[garbage], [reply(b'{"ok": 1}')]])
    session = server.session(timeout=2.0)
    with pytest.raises(requests.ConnectionError):
        session.post(server.url(), json={})
    assert session.post(server.url(), json={}).json() == {"ok": 1}  # on a fresh connection
    assert server.accepted == 2


@pytest.mark.parametrize(
    "cut",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a"',
        b"HTTP/1.1 200 OK\r\nContent-Le",
    ],
    ids=["short-body", "short-chunk", "short-head"],
)
def test_a_reply_cut_short_is_a_connection_error_not_retried(serve, cut):
    server = serve([[(cut,)], [reply(b"{}")]])
    with pytest.raises(requests.ConnectionError):
        server.session(timeout=2.0).post(server.url(), json={})
    assert server.accepted == 1


def test_interim_and_bodiless_statuses(serve):
    server = serve([[b"HTTP/1.1 100 Continue\r\n\r\n" + reply(b'{"x": 1}'),
                     b"HTTP/1.1 204 No Content\r\n\r\n", reply(b'{"y": 2}')]])  # fmt: skip
    session = server.session()
    assert session.post(server.url(), json={}).json() == {"x": 1}
    nothing = session.delete(server.url("/v1/policies/p"))
    assert nothing.status_code == 204 and nothing.content == b""
    assert session.put(server.url("/v1/policies/p"), data="package p").json() == {"y": 2}
    assert server.requests[2].endswith(b"\r\n\r\npackage p")


def test_an_error_status_is_returned_and_raise_for_status_raises_http_error(serve):
    server = serve([[reply(b'{"code": "internal_error"}', status="500 Internal Server Error")]])
    answer = server.session().post(server.url(), json={})
    assert answer.status_code == 500 and not answer.ok and answer.reason == "Internal Server Error"
    with pytest.raises(requests.HTTPError, match="500 Internal Server Error"):
        answer.raise_for_status()


def test_a_refused_connection_is_a_connection_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = KeepAliveSession("127.0.0.1", port, ssl=False, timeout=2.0)
    with pytest.raises(requests.ConnectionError):
        session.get(f"http://127.0.0.1:{port}/health")


def test_a_header_with_a_line_break_is_refused_at_once():
    with pytest.raises(ValueError, match="line break"):
        KeepAliveSession("127.0.0.1", 1, ssl=False, timeout=1.0, headers={"X": "a\r\nY: b"})


def test_close_closes_every_thread_s_connection(serve):
    server = serve([[reply(b"{}"), reply(b"{}")], [reply(b"{}")], [reply(b"{}")]])
    session = server.session()
    session.get(server.url())
    other = threading.Thread(target=lambda: session.get(server.url()))
    other.start()
    other.join()
    assert server.accepted == 2
    session.close()
    session.get(server.url())  # a new connection after close
    assert server.accepted == 3


def _tls_pair(tmp_path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )  # fmt: skip
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


def test_tls_verifies_the_server_and_speaks_the_same_http(serve, tmp_path):
    server_context, client_context = _tls_pair(tmp_path)
    server = serve([[reply(b'{"tls": true}'), reply(b'{"again": true}')]], tls=server_context)
    session = server.session(ssl_context=client_context)
    assert session.post(server.url(), json={}).json() == {"tls": True}
    assert session.post(server.url(), json={}).json() == {"again": True}
    untrusted = server.session()  # the system's roots do not know this certificate
    with pytest.raises(requests.ConnectionError):
        untrusted.post(server.url(), json={})


def test_a_url_whose_target_has_a_space_or_line_break_is_refused_before_sending(serve):
    server = serve([[reply(b"{}")]])
    with pytest.raises(ValueError, match="line break"):
        server.session().get(server.url("/v1/data/a b"))
    with pytest.raises(ValueError, match="line break"):
        server.session().get(server.url("/v1/data/a\r\nX-Injected: 1"))
    assert server.requests == []
