"""Reading Parquet, CSV and JSON Lines files as batch streams, from any pyarrow filesystem.

Parquet is read row group by row group (`ParquetFile.iter_batches`), CSV and JSON Lines block by
block (`pyarrow.csv.open_csv`, `pyarrow.json.open_json`): memory holds a row group or a block,
never the file.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.fs as pa_fs
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from gateway.dataplane.errors import source_unavailable
from gateway.dataplane.stream import BatchStream, rebatch

BLOCK_SIZE = 1 << 20  # bytes per CSV / JSON block


def _project(schema: pa.Schema, columns: list[str] | None, where: str) -> list[str] | None:
    if columns is None:
        return None
    missing = [c for c in columns if schema.get_field_index(c) < 0]
    if missing:
        raise source_unavailable(f"{where} has no column(s) {missing}")
    return columns


def open_file(
    fs: pa_fs.FileSystem,
    path: str,
    fmt: str,
    *,
    batch_size: int,
    columns: list[str] | None,
    where: str,
) -> BatchStream:
    """Return a stream of the file `path` on `fs` in format `fmt` (parquet, csv, jsonl)."""
    try:
        if fmt == "parquet":
            handle = fs.open_input_file(path)
            try:
                # Pages are read as they are decoded (buffer_size), not a row group at once.
                reader = pq.ParquetFile(handle, pre_buffer=False, buffer_size=1 << 20)
                schema = reader.schema_arrow
                cols = _project(schema, columns, where)
                if cols is not None:
                    schema = pa.schema([schema.field(c) for c in cols])
                batches = reader.iter_batches(batch_size=batch_size, columns=cols)
            except BaseException:
                handle.close()
                raise
            return BatchStream(
                schema, _guard(batches, where), on_close=handle.close, threadsafe=True
            )
        handle = fs.open_input_stream(path)
        try:
            if fmt == "csv":
                reader = pa_csv.open_csv(
                    handle,
                    read_options=pa_csv.ReadOptions(block_size=BLOCK_SIZE),
                    convert_options=pa_csv.ConvertOptions(include_columns=columns),
                )
            elif fmt == "jsonl":
                reader = pa_json.open_json(
                    handle, read_options=pa_json.ReadOptions(block_size=BLOCK_SIZE)
                )
            else:
                raise source_unavailable(f"{where}: unknown format {fmt!r}")
            schema = reader.schema
            cols = _project(schema, columns, where)
        except BaseException:
            handle.close()
            raise
        batches = rebatch(_guard(reader, where), batch_size)
        if fmt == "jsonl" and cols is not None:
            schema = pa.schema([schema.field(c) for c in cols])
            batches = (b.select(cols) for b in batches)
        return BatchStream(schema, batches, on_close=handle.close, threadsafe=True)
    except FileNotFoundError:
        raise source_unavailable(f"{where} does not exist") from None
    except (OSError, pa.ArrowException) as err:
        raise source_unavailable(f"{where} could not be read: {err}") from None


def _guard(batches: Iterator[pa.RecordBatch], where: str) -> Iterator[pa.RecordBatch]:
    """Yield `batches`, turning a read failure midway into the data-plane problem."""
    try:
        yield from batches
    except (OSError, pa.ArrowException) as err:
        raise source_unavailable(f"{where} could not be read: {err}") from None
