"""The data-plane SPI (after Eclipse EDC's): a `DataSource` opens a stream of record batches,
a `DataSink` consumes one; one implementation per address `type`, chosen by `open_source` and
`open_sink`.

Nothing here knows about contracts or policy: what to deliver reaches the data plane as an
`Obligations` value (gateway/dataplane/obligations.py) and a format (encoders.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from gateway.dataplane.addresses import (
    EmbeddedAddress,
    FilesAddress,
    HttpAddress,
    HttpSinkAddress,
    ObjectAddress,
    SqlAddress,
)
from gateway.dataplane.encoders import Encoder
from gateway.dataplane.errors import address_invalid
from gateway.dataplane.stream import DEFAULT_BATCH_SIZE, BatchStream


@dataclass(frozen=True)
class DataPlaneConfig:
    """Where the local kinds live: `files_root` for `files`, `embedded_root` for `embedded`."""

    files_root: Path
    embedded_root: Path

    @classmethod
    def for_state_dir(cls, state_dir: Path) -> DataPlaneConfig:
        """Return the default layout: <state>/data for files, <state>/embedded for the store."""
        return cls(files_root=Path(state_dir) / "data", embedded_root=Path(state_dir) / "embedded")


@runtime_checkable
class DataSource(Protocol):
    """Opens the data at one address as a stream of record batches."""

    def open(
        self, *, batch_size: int = DEFAULT_BATCH_SIZE, columns: list[str] | None = None
    ) -> BatchStream:
        """Return a stream of at most `batch_size` rows per batch (only `columns`, if given)."""
        ...


@dataclass(frozen=True)
class SinkResult:
    """What a sink received: exactly the bytes the encoder produced."""

    rows: int
    bytes: int
    sha256: str
    location: str  # the public location written (s3://bucket/key, or the URL)


@runtime_checkable
class DataSink(Protocol):
    """Writes an encoded stream to one address."""

    def write(self, stream: BatchStream, encoder: Encoder) -> SinkResult:
        """Encode `stream` with `encoder`, send every byte, return the counts and digest."""
        ...


def open_source(
    address: SqlAddress | HttpAddress | ObjectAddress | FilesAddress | EmbeddedAddress,
    *,
    config: DataPlaneConfig,
) -> DataSource:
    """Return the source for `address` (its `type` chooses the implementation)."""
    if isinstance(address, SqlAddress):
        from gateway.dataplane.sql import SqlSource

        return SqlSource(address)
    if isinstance(address, HttpAddress):
        from gateway.dataplane.http import HttpSource

        return HttpSource(address)
    if isinstance(address, ObjectAddress):
        from gateway.dataplane.object import ObjectSource

        return ObjectSource(address)
    if isinstance(address, FilesAddress):
        from gateway.dataplane.files import FilesSource

        return FilesSource(address, root=config.files_root)
    if isinstance(address, EmbeddedAddress):
        from gateway.dataplane.files import FilesSource

        return FilesSource(
            FilesAddress(path=address.path, format="parquet"), root=config.embedded_root
        )
    raise address_invalid(f"no data source for address type {getattr(address, 'type', None)!r}")


def open_sink(address: ObjectAddress | HttpSinkAddress) -> DataSink:
    """Return the sink for `address` (object: an S3 object; http: a chunked request)."""
    if isinstance(address, ObjectAddress):
        from gateway.dataplane.object import ObjectSink

        return ObjectSink(address)
    if isinstance(address, HttpSinkAddress):
        from gateway.dataplane.http import HttpSink

        return HttpSink(address)
    raise address_invalid(f"no data sink for address type {getattr(address, 'type', None)!r}")
