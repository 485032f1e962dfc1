"""The data plane: data addresses, sources and sinks (one module per kind), vectorised
obligations on Arrow batches, streaming encoders with a digest of the exact bytes, paging cursors.

It knows nothing of contracts or policy; see specs/dataplane.md. The surface:

    address = parse_source_address({...})            # addresses.py
    stream = open_source(address, config=cfg).open(batch_size=65536)
    stream = apply(stream, Obligations(mask={"phone": "phone"}, row_cap=1000))
    enc = encoder_for(negotiate(accept), stream.schema)
    for chunk in encode(stream, enc): ...             # enc.rows, enc.bytes, enc.sha256
    open_sink(parse_sink_address({...})).write(stream, enc) -> SinkResult
"""

from gateway.dataplane.addresses import (
    EmbeddedAddress,
    FilesAddress,
    HttpAddress,
    HttpAuth,
    HttpSinkAddress,
    ObjectAddress,
    SqlAddress,
    parse_sink_address,
    parse_source_address,
)
from gateway.dataplane.cursor import decode_cursor, encode_cursor
from gateway.dataplane.embedded import EmbeddedStore
from gateway.dataplane.encoders import (
    ARROW,
    CSV,
    JSONL,
    PARQUET,
    Encoder,
    encode,
    encoder_for,
    negotiate,
)
from gateway.dataplane.errors import DataPlaneError
from gateway.dataplane.obligations import WATERMARK_COLUMN, Obligations, apply, mask_array
from gateway.dataplane.spi import (
    DataPlaneConfig,
    DataSink,
    DataSource,
    SinkResult,
    open_sink,
    open_source,
)
from gateway.dataplane.stream import DEFAULT_BATCH_SIZE, BatchStream, slice_stream

__all__ = [
    "ARROW",
    "CSV",
    "DEFAULT_BATCH_SIZE",
    "JSONL",
    "PARQUET",
    "WATERMARK_COLUMN",
    "BatchStream",
    "DataPlaneConfig",
    "DataPlaneError",
    "DataSink",
    "DataSource",
    "EmbeddedAddress",
    "EmbeddedStore",
    "Encoder",
    "FilesAddress",
    "HttpAddress",
    "HttpAuth",
    "HttpSinkAddress",
    "ObjectAddress",
    "Obligations",
    "SinkResult",
    "SqlAddress",
    "apply",
    "decode_cursor",
    "encode",
    "encode_cursor",
    "encoder_for",
    "mask_array",
    "negotiate",
    "open_sink",
    "open_source",
    "parse_sink_address",
    "parse_source_address",
    "slice_stream",
]
