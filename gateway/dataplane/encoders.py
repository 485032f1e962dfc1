"""Streaming encoders: record batches to JSON Lines, CSV, Arrow IPC or Parquet bytes.

Each encoder counts the rows and bytes it produced and keeps a running SHA-256 of exactly those
bytes, so what a transfer records is the digest of what the consumer received. Use `encode` to
drive one:

    enc = encoder_for("application/jsonl", stream.schema)
    for chunk in encode(stream, enc):
        send(chunk)
    enc.rows, enc.bytes, enc.sha256

JSON Lines are the same bytes as `gateway.exchanges.obligations.to_jsonl` of the same rows (one
compact JSON object per line, keys sorted, UTF-8 unescaped). Values JSON has no type for: dates,
times and timestamps are written as the ISO 8601 text Arrow casts them to (`2024-01-01`,
`2024-01-01 10:00:00.000000`), decimals as JSON numbers of their exact text, binary as base64
text.

Two writers make those bytes. The native one (`gateway/dataplane/_jsonl.c`, built by setup.py
where a C compiler is) writes the lines of a batch in C from the columns' Arrow buffers, the GIL
released: strings escaped as json.dumps does, integers, booleans and date32 from their values,
floats from Arrow's shortest text placed as repr() places it; decimals, times, timestamps and
nested values are prepared here as JSON text. The pure one builds the lines column-wise with
Arrow compute (`_json_value`, `binary_join_element_wise`). `JsonLinesEncoder` takes the native
writer when it was built, unless `DSGW_JSONL_NATIVE=0`; the process logs which one it uses
(`jsonl encoder`, writer native or python) when it first writes JSON Lines.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq
import structlog

from gateway.dataplane.errors import not_acceptable, source_unavailable
from gateway.dataplane.stream import BatchStream, prefetch

JSONL = "application/jsonl"
CSV = "text/csv"
ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"

# Media types accepted for each format (the first is the one replies carry).
MEDIA_TYPES = {
    JSONL: (JSONL, "application/x-ndjson", "application/jsonlines", "application/json-lines"),
    CSV: (CSV,),
    ARROW: (ARROW, "application/vnd.apache.arrow.file"),
    PARQUET: (PARQUET, "application/x-parquet"),
}
EXTENSIONS = {JSONL: "jsonl", CSV: "csv", ARROW: "arrows", PARQUET: "parquet"}


HASH_AHEAD = 1 << 18  # chunks of this many bytes or more are hashed on a thread of their own
_POOLS: dict[str, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(name: str, workers: int) -> ThreadPoolExecutor:
    """Return the process's thread pool `name` (of `workers` threads), made on first use: the
    hashers of large chunks (one per core), the writer of JSON Lines' second halves (one)."""
    with _POOLS_LOCK:
        pool = _POOLS.get(name)
        if pool is None:
            pool = _POOLS[name] = ThreadPoolExecutor(workers, thread_name_prefix=name)
        return pool


class _Digest:
    """The SHA-256 of every chunk given, in order; a large chunk is hashed on another thread
    while the caller makes the next one (hashlib releases the GIL), at most one chunk in
    flight: `update` waits for the one before, so the order is kept and memory is constant.
    Reading the digest waits for the last one."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._pending: Future | None = None

    def update(self, data: bytes) -> None:
        self._settle()
        if len(data) >= HASH_AHEAD and (os.cpu_count() or 1) > 1:
            self._pending = _pool("dataplane-hash", os.cpu_count() or 1).submit(
                self._hash.update, data
            )
        else:
            self._hash.update(data)

    def _settle(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def hexdigest(self) -> str:
        self._settle()
        return self._hash.hexdigest()


class Encoder:
    """Base class: `begin()`, `batch(b)` and `end()` return the bytes to send next."""

    media_type = ""
    extension = ""
    split_first = False  # whether batch boundaries leave the bytes as they are (see `encode`)

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.rows = 0
        self.bytes = 0
        self._digest = _Digest()

    @property
    def sha256(self) -> str:
        """Return the hex SHA-256 of every byte produced so far."""
        return self._digest.hexdigest()

    def _out(self, data: bytes | memoryview) -> bytes | memoryview:
        self.bytes += len(data)
        self._digest.update(data)
        return data

    def begin(self) -> bytes:
        return self._out(self._begin())

    def batch(self, batch: pa.RecordBatch) -> bytes | memoryview:
        parts = self.pieces(batch)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def pieces(self, batch: pa.RecordBatch) -> list[bytes | memoryview]:
        """Return the bytes of `batch` in one or more pieces, to be sent in order (`batch()`'s
        bytes, not joined: joining a batch's megabytes costs a copy of them)."""
        self.rows += batch.num_rows
        return [self._out(part) for part in self._pieces(batch)]

    def _pieces(self, batch: pa.RecordBatch) -> list[bytes | memoryview]:
        return [self._batch(batch)]

    def end(self) -> bytes:
        return self._out(self._end())

    def _begin(self) -> bytes:
        return b""

    def _batch(self, batch: pa.RecordBatch) -> bytes | memoryview:
        raise NotImplementedError

    def _end(self) -> bytes:
        return b""


FIRST_ROWS = 1024  # rows of the first chunk of a text format: the first byte leaves early


def encode(stream: BatchStream, encoder: Encoder) -> Iterator[bytes | memoryview]:
    """Yield the encoded bytes of `stream` (no empty chunks, each bytes or a memoryview of
    them), then close the stream.

    A `threadsafe` stream is read ahead in a thread of its own (`prefetch`: a bounded queue), so
    that reading the source and encoding overlap. For formats whose bytes do not depend on how
    the rows are batched (JSON Lines, CSV), the first `FIRST_ROWS` rows are encoded and sent
    on their own, ahead of the rest of the first batch.
    """
    ahead = prefetch(stream)
    try:
        for chunk in _chunks(ahead, encoder):
            if chunk:
                yield chunk
    finally:
        ahead.close()
        stream.close()


def _chunks(stream: BatchStream, encoder: Encoder) -> Iterator[bytes | memoryview]:
    yield encoder.begin()
    first = encoder.split_first
    for batch in stream:
        if first and batch.num_rows > FIRST_ROWS:
            yield from encoder.pieces(batch.slice(0, FIRST_ROWS))
            batch = batch.slice(FIRST_ROWS)
        first = False
        yield from encoder.pieces(batch)
    yield encoder.end()


# -- JSON Lines ------------------------------------------------------------------------------

_CONTROL = [chr(c) for c in range(0x20)]
_SHORT = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _octets(values: pa.Array) -> pa.Array | None:
    """Return the bytes of the values of a string array as one uint8 array (None if none)."""
    _validity, offsets, data = values.buffers()
    if data is None or not len(values):
        return None
    ends = memoryview(offsets).cast("i")
    start, stop = ends[values.offset], ends[values.offset + len(values)]
    if stop <= start:
        return None
    return pa.Array.from_buffers(pa.uint8(), stop - start, [None, data.slice(start, stop - start)])


def _has_byte(octets: pa.Array, byte: str) -> bool:
    # a uint8 scalar: an int would have Arrow cast every byte to int64 first
    return pc.any(pc.equal(octets, pa.scalar(ord(byte), pa.uint8()))).as_py()


def _needs_escape(values: pa.Array) -> bool:
    """Return whether any string value holds a byte JSON escapes (a control, a quote, a
    backslash), by looking at the bytes of the values as one uint8 array (no per-value work)."""
    octets = _octets(values)
    if octets is None:
        return False
    return pc.min(octets).as_py() < 0x20 or _has_byte(octets, '"') or _has_byte(octets, "\\")


def _json_text(values: pa.Array) -> pa.Array:
    """Return string values as JSON string literals (json.dumps, ensure_ascii=False)."""
    return pc.binary_join_element_wise('"', _escaped(values), '"', "")


def _escaped(values: pa.Array) -> pa.Array:
    """Return string values escaped as inside a JSON string literal (without the quotes)."""
    out = values
    # Most text needs no escape at all: one scan decides, and only what occurs is replaced.
    if _needs_escape(values):
        out = pc.replace_substring(out, "\\", "\\\\")
        out = pc.replace_substring(out, '"', '\\"')
        if pc.any(pc.match_substring_regex(out, "[\\x00-\\x1f]")).as_py():
            for ch in _CONTROL:
                out = pc.replace_substring(out, ch, _SHORT.get(ch, f"\\u{ord(ch):04x}"))
    return out


def _python_json(values: pa.Array) -> pa.Array:
    """Return each value as json.dumps would write it (the fallback for floats and nested)."""
    dump = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode
    return pa.array([None if v is None else dump(v) for v in values.to_pylist()], type=pa.string())


def _json_float(values: pa.Array) -> pa.Array:
    """Return floats as Python's repr writes them (json.dumps), vectorised where they agree.

    Arrow's shortest text equals repr's for 1e-4 <= |v| < 1e16 (and 0) once an integral value
    gets its ".0", unless Arrow chose an exponent (1e+10); outside that range, for NaN and the
    infinities, and for a batch with an exponent, the values are written by Python.
    Whole-column bounds and one scan of the text's bytes decide, not a test of each value.
    """
    values = values.cast(pa.float64())
    if not _repr_range(values):
        return _python_json(values)
    text = values.cast(pa.string())
    octets = _octets(text)
    if octets is not None and _has_byte(octets, "e"):
        return _python_json(values)
    integral = pc.equal(pc.floor(values), values)
    if not pc.any(integral).as_py():
        return text
    if pc.all(integral).as_py():
        return pc.binary_join_element_wise(text, ".0", "")
    return pc.binary_join_element_wise(text, pc.if_else(integral, ".0", ""), "")


def _repr_range(values: pa.Array) -> bool:
    """Return whether every value is finite and 0 or of 1e-4 <= |v| < 1e16 (nulls aside)."""
    if values.null_count == len(values):
        return True
    if not pc.all(pc.is_finite(values)).as_py():
        return False
    magnitude = pc.abs(values)
    bounds = pc.min_max(magnitude)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if high >= 1e16:
        return False
    if low == 0.0:  # zeros are written alike; the smallest other value decides
        low = pc.min(pc.if_else(pc.equal(magnitude, 0.0), float("inf"), magnitude)).as_py()
    return low >= 1e-4


def _json_column(values: pa.Array) -> pa.Array:
    """Return the JSON text of every value of one column ("null" for null)."""
    t = values.type
    if pa.types.is_dictionary(t):
        values, t = values.dictionary_decode(), t.value_type
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        out = _json_text(values.cast(pa.string()))
    elif pa.types.is_integer(t) or pa.types.is_decimal(t):
        out = values.cast(pa.string())
    elif pa.types.is_boolean(t):
        out = pc.if_else(values, "true", "false")
    elif pa.types.is_null(t):
        out = pa.nulls(len(values), pa.string())
    elif pa.types.is_temporal(t):
        out = _json_text(values.cast(pa.string()))
    elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        out = _json_text(
            pa.array(
                [None if v is None else base64.b64encode(v).decode() for v in values.to_pylist()],
                pa.string(),
            )
        )
    elif pa.types.is_floating(t):
        out = _json_float(values)
    else:  # lists, structs, maps
        out = _python_json(values)
    return pc.fill_null(out, "null")


def _json_value(values: pa.Array) -> tuple[pa.Array, bool]:
    """Return (text, quoted): the JSON of every value of one column, or, when `quoted`, the
    inside of a JSON string for every value (no null among them), the quotes left to the
    encoder to write into the text around it: no copy of a column that needs no escape."""
    t = values.type
    if pa.types.is_dictionary(t):
        values, t = values.dictionary_decode(), t.value_type
    if values.null_count == 0:
        if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
            return _escaped(values.cast(pa.string())), True
        if pa.types.is_temporal(t):
            return _escaped(values.cast(pa.string())), True
    return _json_column(values), False


SPLIT_ROWS = 4096  # JSON Lines of a batch of twice as many rows are written in two halves


class JsonLinesEncoder(Encoder):
    media_type = JSONL
    extension = "jsonl"
    split_first = True

    def __init__(self, schema: pa.Schema) -> None:
        super().__init__(schema)
        names = schema.names
        if len(set(names)) != len(names):
            raise source_unavailable(f"the columns {names} repeat a name: JSON Lines cannot say it")
        self._order = sorted(range(len(names)), key=lambda i: names[i])
        self._keys = [
            ("{" if n == 0 else ",") + json.dumps(names[i], ensure_ascii=False) + ":"
            for n, i in enumerate(self._order)
        ]
        self._native = native_jsonl()
        self._key_bytes = [key.encode() for key in self._keys]

    def _pieces(self, batch: pa.RecordBatch) -> list[bytes | memoryview]:
        if not self._order:
            return [b"{}\n" * batch.num_rows]
        if batch.num_rows >= 2 * SPLIT_ROWS and (os.cpu_count() or 1) > 1:
            # Two halves at once: Arrow's kernels and the native writer release the GIL, so a
            # second core writes one. They are sent as two pieces, not joined (a copy).
            half = batch.num_rows // 2
            later = _pool("dataplane-jsonl", 1).submit(self._lines, batch.slice(half))
            first = self._lines(batch.slice(0, half))
            return [first, later.result()]
        return [self._lines(batch)]

    def _lines(self, batch: pa.RecordBatch) -> bytes:
        if self._native:
            return _native_lines(batch, self._order, self._key_bytes)
        parts: list = []
        literal = ""  # the text between two values: a key, and a string's closing quote
        for key, i in zip(self._keys, self._order, strict=True):
            text, quoted = _json_value(batch.column(i))
            parts += [literal + key + ('"' if quoted else ""), text]
            literal = '"' if quoted else ""
        line = pc.binary_join_element_wise(*parts, literal + "}\n", "")
        _validity, offsets, data = line.buffers()
        ends = memoryview(offsets).cast("i")
        return data[ends[line.offset] : ends[line.offset + len(line)]].to_pybytes()


# -- JSON Lines, native (gateway/dataplane/_jsonl.c) -----------------------------------------

try:  # built by `pip install` where a C compiler is (setup.py: optional)
    from gateway.dataplane import _jsonl
except ImportError:  # pragma: no cover - a machine without a compiler: the pure path
    _jsonl = None

_log = structlog.get_logger("gateway.dataplane")
_LOGGED: set[str] = set()


def native_jsonl() -> bool:
    """Return whether JSON Lines are written by the native writer: it was built and
    `DSGW_JSONL_NATIVE` is not 0 (which forces the pure path, for comparison)."""
    use = _jsonl is not None and os.environ.get("DSGW_JSONL_NATIVE", "1").strip() != "0"
    mode = "native" if use else "python"
    if mode not in _LOGGED:  # once per process and mode: which writer serves JSON Lines
        _LOGGED.add(mode)
        _log.info("jsonl encoder", writer=mode, built=_jsonl is not None)
    return use


def _base64_text(values: pa.Array) -> pa.Array:
    return pa.array(
        [None if v is None else base64.b64encode(v).decode() for v in values.to_pylist()],
        pa.string(),
    )


def _native_column(values: pa.Array) -> tuple[int, pa.Array]:
    """Return (kind, array) for the native writer: string kinds as `string`, integers and
    booleans as they are, and the JSON text ("raw") of the kinds the pure path writes as text
    already (floats, decimals, nested values)."""
    assert _jsonl is not None
    t = values.type
    if pa.types.is_dictionary(t):
        values, t = values.dictionary_decode(), t.value_type
    if pa.types.is_string(t):
        return _jsonl.STRING, values
    if pa.types.is_date32(t) and _dates_written_natively(values):
        return _jsonl.DATE32, values
    if pa.types.is_large_string(t) or pa.types.is_string_view(t) or pa.types.is_temporal(t):
        return _jsonl.STRING, values.cast(pa.string())
    if pa.types.is_integer(t):
        kind = ("UINT" if pa.types.is_unsigned_integer(t) else "INT") + str(t.bit_width)
        return getattr(_jsonl, kind), values
    if pa.types.is_boolean(t):
        return _jsonl.BOOL, values
    if pa.types.is_null(t):
        return _jsonl.NULL, values
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return _jsonl.STRING, _base64_text(values)
    if pa.types.is_decimal(t):
        return _jsonl.RAW, values.cast(pa.string())
    if pa.types.is_floating(t):  # Arrow's shortest text, which the writer places as repr does
        return _jsonl.FLOAT, values.cast(pa.float64()).cast(pa.string())
    return _jsonl.RAW, _python_json(values)  # lists, structs, maps


def _dates_written_natively(values: pa.Array) -> bool:
    """Return whether every date32 is of the years 1 to 9999 (the writer's; Arrow's text of
    the others is left to Arrow's cast)."""
    bounds = pc.min_max(values.view(pa.int32()))
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    return low is None or (_DATE_FIRST <= low and high <= _DATE_LAST)


_DATE_FIRST, _DATE_LAST = -719162, 2932896  # 0001-01-01 and 9999-12-31, days since 1970


def _native_lines(batch: pa.RecordBatch, order: list[int], keys: list[bytes]) -> bytes:
    """Return the JSON Lines of `batch` written by the native writer (the GIL released)."""
    assert _jsonl is not None
    columns = []
    for key, i in zip(keys, order, strict=True):
        kind, values = _native_column(batch.column(i))
        buffers = values.buffers()
        if kind == _jsonl.NULL:
            validity = main = data = None
        else:
            validity, main, *rest = buffers
            data = rest[0] if rest else None
        columns.append((key, kind, values.offset, validity, main, data))
    return _jsonl.lines(batch.num_rows, columns, b"}\n")


# -- CSV, Arrow IPC, Parquet -----------------------------------------------------------------


class _Tap(io.RawIOBase):
    """A write-only file that hands back what was written since the last `drain()`.

    `sent`: bytes the writer will write first that were sent already; they are checked as they
    come and not handed back again (a writer that wrote otherwise raises RuntimeError)."""

    def __init__(self, sent: bytes = b"") -> None:
        self._parts: list[bytes] = []
        self._sent = memoryview(sent)

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        data = bytes(data)
        size = len(data)
        if len(self._sent):
            n = min(len(self._sent), size)
            if data[:n] != self._sent[:n]:
                raise RuntimeError("the writer did not begin with the bytes sent for it")
            self._sent, data = self._sent[n:], data[n:]
        if data:
            self._parts.append(data)
        return size

    def drain(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


class _WriterEncoder(Encoder):
    """An encoder over one of pyarrow's streaming writers, tapped for the bytes it writes."""

    def _open(self, sink: _Tap) -> Any:
        raise NotImplementedError

    def _begin(self) -> bytes:
        self._tap = _Tap()
        self._writer = self._open(self._tap)
        return self._tap.drain()

    def _batch(self, batch: pa.RecordBatch) -> bytes:
        self._writer.write_batch(batch)
        return self._tap.drain()

    def _end(self) -> bytes:
        self._writer.close()
        return self._tap.drain()


class CsvEncoder(_WriterEncoder):
    """RFC 4180 CSV with a header line (pyarrow's writer: quoted strings, empty for null)."""

    media_type = CSV
    extension = "csv"
    split_first = True

    def _open(self, sink: _Tap) -> Any:
        return pa_csv.CSVWriter(sink, self.schema)


class ArrowStreamEncoder(_WriterEncoder):
    """The Arrow IPC streaming format: a schema message, one message per batch, end marker.

    A schema without dictionaries (the usual case) is written without the stream writer: its
    stream is the schema message, each batch's own encapsulated message (`serialize()`: the
    bytes the writer writes for it) and the end marker, and a batch's message is handed on as
    a view of the Arrow buffer it was written to, with no copy through a Python file (the
    writer's writes each cost a copy, and joining them another: a third of its time). A
    schema with dictionaries goes through the writer, which writes their batches."""

    media_type = ARROW
    extension = "arrows"

    def __init__(self, schema: pa.Schema) -> None:
        super().__init__(schema)
        self._direct = not any(_has_dictionary(field.type) for field in schema)

    def _open(self, sink: _Tap) -> Any:
        return pa_ipc.new_stream(sink, self.schema)

    def _batch(self, batch: pa.RecordBatch) -> bytes | memoryview:
        if not self._direct:
            return super()._batch(batch)
        if not batch.schema.equals(self.schema):
            raise pa.ArrowInvalid("Tried to write record batch with different schema")
        return memoryview(batch.serialize())

    def _end(self) -> bytes:
        return _IPC_END if self._direct else super()._end()

    def _begin(self) -> bytes:
        """Return the schema message at once: pyarrow's writer writes it only with the first
        batch, so the first byte of a reply waited for the source's first batch (a Parquet
        row group's pages, 16,384 rows decoded and masked). The same bytes the writer will
        write are taken from a writer closed at once (its schema, then the end-of-stream
        marker), and the tap drops them from the real writer's first write."""
        scratch = _Tap()
        pa_ipc.new_stream(scratch, self.schema).close()
        head = scratch.drain()
        if not head.endswith(_IPC_END) or len(head) <= len(_IPC_END):
            self._direct = False
            return super()._begin()  # not the layout known here: the writer's own order
        head = head[: -len(_IPC_END)]
        if self._direct:
            return head
        self._tap = _Tap(sent=head)
        self._writer = self._open(self._tap)
        return head + self._tap.drain()


_IPC_END = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # the IPC stream's end-of-stream marker


def _has_dictionary(kind: pa.DataType) -> bool:
    """Whether `kind` is, or holds anywhere inside it, a dictionary type."""
    if pa.types.is_dictionary(kind):
        return True
    return any(_has_dictionary(kind.field(i).type) for i in range(kind.num_fields))


class ParquetEncoder(_WriterEncoder):
    """Parquet, one row group per batch (zstd); the footer comes with `end()`."""

    media_type = PARQUET
    extension = "parquet"

    def _open(self, sink: _Tap) -> Any:
        return pq.ParquetWriter(sink, self.schema, compression="zstd")


ENCODERS: dict[str, type[Encoder]] = {
    JSONL: JsonLinesEncoder,
    CSV: CsvEncoder,
    ARROW: ArrowStreamEncoder,
    PARQUET: ParquetEncoder,
}


def _offers(accept: str) -> list[str]:
    """Return the media ranges of an Accept header with q > 0, most preferred first."""
    offers = []
    for position, item in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media and q > 0:
            offers.append((-q, position, media.lower()))
    return [media for _q, _pos, media in sorted(offers)]


def _canonical(media: str) -> str | None:
    for canonical, aliases in MEDIA_TYPES.items():
        if media in aliases:
            return canonical
    return None


def negotiate(accept: str | None, default: str = JSONL) -> str:
    """Return the format (its canonical media type) an Accept header asks for.

    Follows the q-values; `*/*`, an empty or absent header mean `default`. Raises the 406
    problem when the header names only formats the data plane does not write.
    """
    if not accept or not accept.strip():
        return default
    for media in _offers(accept):
        if media in ("*/*", "application/*"):
            return default
        if (canonical := _canonical(media)) is not None:
            return canonical
    raise not_acceptable(
        f"Accept {accept!r} names no format the data plane writes; it writes "
        f"{', '.join(MEDIA_TYPES)}"
    )


def preferred_data_format(accept: str | None, *, besides: tuple[str, ...]) -> str | None:
    """Return the data format an Accept header prefers to every media type in `besides` (say
    application/json, a reply the caller serves itself), else None: absent, `*/*`, a range in
    `besides` first, or no data format named at all."""
    if not accept or not accept.strip():
        return None
    for media in _offers(accept):
        if media in ("*/*", "application/*") or media in besides:
            return None
        if (canonical := _canonical(media)) is not None:
            return canonical
    return None


def encoder_for(media_type: str, schema: pa.Schema) -> Encoder:
    """Return a new encoder for a canonical media type (see `negotiate`)."""
    try:
        return ENCODERS[media_type](schema)
    except KeyError:
        raise not_acceptable(f"no encoder for {media_type!r}") from None
