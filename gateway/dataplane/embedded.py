"""The embedded store: rows posted with a registration, kept as Parquet, never as a JSON column.

Two homes for the same Parquet: `EmbeddedStore` writes one file per resource under a folder;
`rows_to_parquet` makes the bytes, `decoded` and `TableSource` read the gateway keeps in its own
database (table `embedded_datasets`, gateway/resources/models.py), so that several gateway
processes on one PostgreSQL see the same datasets and a migration moves rows in one
transaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import math
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gateway.dataplane.addresses import EmbeddedAddress
from gateway.dataplane.errors import address_invalid
from gateway.dataplane.files import confined
from gateway.dataplane.stream import DEFAULT_BATCH_SIZE, BatchStream

CHUNK_ROWS = 65_536


class EmbeddedStore:
    """Parquet files under `root`, one per resource id (`<resource_id>.parquet`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def write(
        self,
        resource_id: str,
        data: Iterable[Mapping[str, Any]] | Iterable[pa.RecordBatch] | pa.Table,
        *,
        schema: pa.Schema | None = None,
    ) -> EmbeddedAddress:
        """Write `data` (rows as dicts, record batches, or a table) as the resource's file.

        The file is written beside its final place and renamed in, so a reader sees the old
        file or the new one, never half of one. Rows as dicts take `schema` when given, else
        the one Arrow infers from the first 65,536 rows.
        """
        if not resource_id or not all(c.isalnum() or c in "-_" for c in resource_id):
            raise address_invalid(f"resource id {resource_id!r} cannot name a file")
        name = f"{resource_id}.parquet"
        self.root.mkdir(parents=True, exist_ok=True)
        target = confined(self.root, name)
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{resource_id}.", suffix=".tmp")
        os.close(fd)
        rows = 0
        writer: pq.ParquetWriter | None = None
        try:
            for batch in _batches(data, schema):
                if writer is None:
                    writer = pq.ParquetWriter(tmp, batch.schema, compression="zstd")
                writer.write_batch(batch)
                rows += batch.num_rows
            if writer is None:
                writer = pq.ParquetWriter(tmp, schema or pa.schema([]), compression="zstd")
            writer.close()
            digest = _sha256(Path(tmp))
            os.replace(tmp, target)
        except BaseException:
            if writer is not None:
                writer.close()
            Path(tmp).unlink(missing_ok=True)
            raise
        return EmbeddedAddress(path=name, rows=rows, sha256=digest)

    def delete(self, address: EmbeddedAddress) -> None:
        """Remove the file of `address` (nothing when it is gone already)."""
        confined(self.root, address.path).unlink(missing_ok=True)


def _batches(data: Any, schema: pa.Schema | None):
    if isinstance(data, pa.Table):
        yield from data.to_batches(max_chunksize=CHUNK_ROWS)
        return
    chunk: list = []
    for item in data:
        if isinstance(item, pa.RecordBatch):
            yield item
            continue
        chunk.append(item)
        if len(chunk) >= CHUNK_ROWS:
            batch = pa.RecordBatch.from_pylist(chunk, schema=schema)
            schema = schema or batch.schema
            yield batch
            chunk = []
    if chunk:
        yield pa.RecordBatch.from_pylist(chunk, schema=schema)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -- the embedded dataset as bytes (kept in the gateway's database) ----------------------------

# Field metadata of a column whose values are JSON text: values of mixed types or nested
# values, which no one Arrow type holds; readers that hand rows back as JSON decode them.
JSON_TEXT = b"dsgw:json"


def _column(values: list[Any]) -> tuple[pa.Array, bool]:
    """Return the Arrow array of one column's values and whether it holds JSON text."""
    present = [v for v in values if v is not None]
    kinds = {bool if isinstance(v, bool) else float if isinstance(v, int) else type(v)
             for v in present}  # fmt: skip
    if len(kinds) <= 1 and not (kinds & {dict, list}):
        try:
            return pa.array(values), False
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            pass
    text = [None if v is None else json.dumps(v, ensure_ascii=False, sort_keys=True)
            for v in values]  # fmt: skip
    return pa.array(text, type=pa.string()), True


def rows_to_parquet(rows: list[Mapping[str, Any]]) -> tuple[bytes, int, str]:
    """Return (Parquet bytes, rows, SHA-256 of the bytes) of JSON rows.

    The columns are the keys the rows use, in the order first met; a column of one JSON kind
    takes the Arrow type of its values (integers with floats: float64), any other column is
    JSON text marked `dsgw:json` in its field metadata.
    """
    names = list(dict.fromkeys(name for row in rows for name in row))
    arrays, fields = [], []
    for name in names:
        array, is_json = _column([row.get(name) for row in rows])
        arrays.append(array)
        meta = {JSON_TEXT: b"1"} if is_json else None
        fields.append(pa.field(name, array.type, metadata=meta))
    schema = pa.schema(fields)
    table = pa.Table.from_arrays(arrays, schema=schema) if names else schema.empty_table()
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=CHUNK_ROWS)
    data = sink.getvalue().to_pybytes()
    return data, len(rows), hashlib.sha256(data).hexdigest()


def parquet_columns(data: bytes) -> list[str]:
    """Return the column names of a Parquet file held in `data`."""
    return pq.ParquetFile(pa.BufferReader(data)).schema_arrow.names


class TableSource:
    """A DataSource over a decoded Arrow table (an embedded dataset held by `decoded`).

    Columns asked for that the table lacks (declared fields no posted row used) are null.
    """

    def __init__(self, table: pa.Table) -> None:
        self.table = table

    def open(
        self, *, batch_size: int = DEFAULT_BATCH_SIZE, columns: list[str] | None = None
    ) -> BatchStream:
        have = self.table.schema
        wanted = list(have.names) if columns is None else list(columns)
        n = self.table.num_rows
        schema = pa.schema(
            [have.field(c) if c in have.names else pa.field(c, pa.null()) for c in wanted]
        )
        table = pa.Table.from_arrays(
            [self.table.column(c) if c in have.names else pa.nulls(n) for c in wanted],
            schema=schema,
        )
        return BatchStream(schema, iter(table.to_batches(max_chunksize=batch_size)))


# Decoded embedded datasets by the SHA-256 of their Parquet bytes: an exchange of a small
# dataset then costs neither the blob's read nor its decoding. Content-addressed, so a replaced
# dataset is a new key and never served stale; bounded by the bytes the tables hold.
CACHE_BYTES = int(os.environ.get("DSGW_EMBEDDED_CACHE_BYTES", str(256 * 1024 * 1024)))
_decoded: OrderedDict[str, pa.Table] = OrderedDict()
_decoded_lock = threading.Lock()


def decoded(sha256: str, load: Callable[[], bytes]) -> pa.Table:
    """Return the table of the Parquet bytes whose SHA-256 is `sha256`, decoding `load()` once.

    The bytes are checked against `sha256` before they are kept: a cache entry is always the
    dataset its key names."""
    with _decoded_lock:
        table = _decoded.get(sha256)
        if table is not None:
            _decoded.move_to_end(sha256)
            return table
    data = load()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError("the embedded dataset's bytes do not match their recorded SHA-256")
    table = pq.read_table(pa.BufferReader(data))
    if table.nbytes > CACHE_BYTES:
        return table
    with _decoded_lock:
        _decoded[sha256] = table
        total = sum(t.nbytes for t in _decoded.values())
        while total > CACHE_BYTES and len(_decoded) > 1:
            _, dropped = _decoded.popitem(last=False)
            total -= dropped.nbytes
    return table


def _plain(value: Any) -> Any:
    """Return `value` as JSON holds it: dates and times as text (as the JSON Lines encoder
    writes them), bytes as base64, non-finite floats as null, decimals as text."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)  # Decimal, timedelta, ...: their text


_PLAIN_TYPES = (pa.types.is_integer, pa.types.is_string, pa.types.is_large_string,
                pa.types.is_boolean, pa.types.is_null)  # fmt: skip


def json_rows(stream: BatchStream) -> list[dict[str, Any]]:
    """Return every row of `stream` as a JSON object: JSON-text columns (`dsgw:json`) decoded,
    every other value as JSON holds it (dates as text, non-finite floats as null...)."""
    decode = [f.name for f in stream.schema if f.metadata and f.metadata.get(JSON_TEXT) == b"1"]
    convert = [
        f.name
        for f in stream.schema
        if f.name not in decode and not any(check(f.type) for check in _PLAIN_TYPES)
    ]
    out: list[dict[str, Any]] = []
    with stream:
        for batch in stream:
            rows = batch.to_pylist()
            for name in decode:
                for row in rows:
                    if row[name] is not None:
                        row[name] = json.loads(row[name])
            for name in convert:
                for row in rows:
                    row[name] = _plain(row[name])
            out.extend(rows)
    return out
