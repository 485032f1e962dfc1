"""`http`: the merchant's HTTP endpoint as a source (EDC HttpData), the consumer's as a sink.

A source reply is JSON Lines (NDJSON), read as it arrives (httpx streaming) and parsed block by
block by Arrow's JSON reader, or a sequence of JSON pages, each an object with the rows under
`items_key` and the next page under `next_key` (a URL, absolute or relative to the page, or a
token sent back as `cursor_param`), one page in memory at a time. The source's own
authentication (bearer token, basic, or a secret header) goes with every request.

A sink gets the encoded stream as one POST or PUT with a chunked body.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import orjson
import pyarrow as pa
import pyarrow.json as pa_json

from gateway.dataplane.addresses import HttpAddress, HttpAuth, HttpSecret, HttpSinkAddress, reveal
from gateway.dataplane.encoders import Encoder, encode
from gateway.dataplane.errors import sink_unavailable, source_unavailable
from gateway.dataplane.spi import SinkResult
from gateway.dataplane.stream import DEFAULT_BATCH_SIZE, BatchStream, ChunkReader, rebatch

MAX_PAGE_BYTES = 64 << 20  # a JSON page larger than this is refused, not buffered
MAX_PAGES = 1_000_000


def auth_headers(auth: HttpAuth, secret: HttpSecret) -> dict[str, str]:
    """Return the request headers that carry the address's credentials."""
    if auth.kind == "bearer":
        return {"Authorization": f"Bearer {reveal(secret.token)}"}
    if auth.kind == "header":
        return {auth.header or "": reveal(secret.header_value) or ""}
    return {}


def _client(auth: HttpAuth, secret: HttpSecret, timeout: float) -> httpx.Client:
    basic = None
    if auth.kind == "basic":
        basic = httpx.BasicAuth(auth.username or "", reveal(secret.password) or "")
    return httpx.Client(
        headers=auth_headers(auth, secret), auth=basic, timeout=timeout, follow_redirects=False
    )


def _public_url(url: str) -> str:
    """Return `url` without its query (a query may carry a token)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class HttpSource:
    """Reads the endpoint of one HTTP address."""

    def __init__(self, address: HttpAddress) -> None:
        self.address = address

    @property
    def where(self) -> str:
        return f"endpoint {_public_url(self.address.url)}"

    def _get(self, client: httpx.Client, url: str) -> httpx.Response:
        try:
            response = client.send(client.build_request("GET", url), stream=True)
        except httpx.HTTPError as err:
            raise source_unavailable(f"{self.where} unreachable: {type(err).__name__}") from None
        if response.status_code != 200:
            response.close()
            raise source_unavailable(f"{self.where} answered {response.status_code}")
        return response

    def open(
        self, *, batch_size: int = DEFAULT_BATCH_SIZE, columns: list[str] | None = None
    ) -> BatchStream:
        a = self.address
        client = _client(a.auth, a.secret, a.timeout_seconds)
        try:
            if a.format == "jsonl":
                schema, batches, close = self._jsonl(client, batch_size)
            else:
                schema, batches, close = self._pages(client, batch_size)
        except BaseException:
            client.close()
            raise
        if columns is not None:
            missing = [c for c in columns if schema.get_field_index(c) < 0]
            if missing:
                close()
                client.close()
                raise source_unavailable(f"{self.where} has no column(s) {missing}")
            schema = pa.schema([schema.field(c) for c in columns])
            batches = (b.select(columns) for b in batches)

        def close_all() -> None:
            close()
            client.close()

        return BatchStream(schema, batches, on_close=close_all, threadsafe=True)

    def _jsonl(self, client: httpx.Client, batch_size: int):
        response = self._get(client, self.address.url)
        try:
            reader = pa_json.open_json(
                ChunkReader(response.iter_bytes()),
                read_options=pa_json.ReadOptions(block_size=1 << 20),
            )
        except pa.ArrowException as err:
            response.close()
            raise source_unavailable(f"{self.where} sent no JSON Lines: {err}") from None

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from rebatch(reader, batch_size)
            except (pa.ArrowException, httpx.HTTPError) as err:
                raise source_unavailable(f"{self.where} broke off: {err}") from None

        return reader.schema, batches(), response.close

    def _page(self, client: httpx.Client, url: str) -> tuple[list, str | None]:
        response = self._get(client, url)
        try:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_PAGE_BYTES:
                    raise source_unavailable(
                        f"{self.where} sent a page over {MAX_PAGE_BYTES} bytes"
                    )
        except httpx.HTTPError as err:
            raise source_unavailable(f"{self.where} broke off: {type(err).__name__}") from None
        finally:
            response.close()
        try:
            page = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise source_unavailable(f"{self.where} sent a page that is not JSON") from None
        items = page.get(self.address.items_key) if isinstance(page, dict) else None
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise source_unavailable(
                f"{self.where} sent a page without a list of objects under "
                f"{self.address.items_key!r}"
            )
        nxt = page.get(self.address.next_key)
        if nxt is not None and not isinstance(nxt, str):
            raise source_unavailable(f"{self.where} sent a {self.address.next_key!r} not a string")
        return items, self._next_url(url, nxt) if nxt else None

    def _next_url(self, current: str, nxt: str) -> str:
        if self.address.cursor_param is None:
            target = urljoin(current, nxt)
            if urlsplit(target).netloc != urlsplit(self.address.url).netloc:
                raise source_unavailable(f"{self.where} sent a next link to another host")
            return target
        parts = urlsplit(self.address.url)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != self.address.cursor_param]
        query.append((self.address.cursor_param, nxt))
        return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))

    def _pages(self, client: httpx.Client, batch_size: int):
        items, nxt = self._page(client, self.address.url)
        try:
            first = pa.Table.from_pylist(items)
        except (pa.ArrowException, TypeError, ValueError) as err:
            raise source_unavailable(f"{self.where} sent rows Arrow cannot type: {err}") from None
        schema = first.schema

        def table(rows: list) -> pa.Table:
            try:
                return pa.Table.from_pylist(rows, schema=schema)
            except (pa.ArrowException, TypeError, ValueError) as err:
                raise source_unavailable(
                    f"{self.where}: a page does not fit the first page's columns: {err}"
                ) from None

        def batches() -> Iterator[pa.RecordBatch]:
            yield from first.to_batches(max_chunksize=batch_size)
            url, seen = nxt, 1
            while url is not None:
                seen += 1
                if seen > MAX_PAGES:
                    raise source_unavailable(f"{self.where} sent more than {MAX_PAGES} pages")
                rows, url = self._page(client, url)
                yield from table(rows).to_batches(max_chunksize=batch_size)

        return schema, batches(), lambda: None


class HttpSink:
    """Sends an encoded stream to one HTTP address as a chunked request body."""

    def __init__(self, address: HttpSinkAddress) -> None:
        self.address = address

    def write(self, stream: BatchStream, encoder: Encoder) -> SinkResult:
        a = self.address
        where = _public_url(a.url)

        try:
            with _client(a.auth, a.secret, a.timeout_seconds) as client:
                response = client.request(
                    a.method,
                    a.url,
                    content=encode(stream, encoder),
                    headers={"Content-Type": encoder.media_type},
                )
        except httpx.HTTPError as err:
            raise sink_unavailable(f"endpoint {where} failed: {type(err).__name__}") from None
        finally:
            stream.close()
        if not 200 <= response.status_code < 300:
            raise sink_unavailable(f"endpoint {where} answered {response.status_code}")
        return SinkResult(encoder.rows, encoder.bytes, encoder.sha256, where)
