"""The embedded store: rows posted with a registration, kept as one Parquet file per resource
in the state folder (never as a JSON column)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gateway.dataplane.addresses import EmbeddedAddress
from gateway.dataplane.errors import address_invalid
from gateway.dataplane.files import confined

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
