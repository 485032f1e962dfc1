"""`object`: Parquet, CSV or JSON Lines objects in S3-compatible storage, read and written with
pyarrow's S3FileSystem (ranged reads by row group or block; writes as multipart uploads)."""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pa_fs

from gateway.dataplane.addresses import ObjectAddress, reveal
from gateway.dataplane.encoders import Encoder, encode
from gateway.dataplane.errors import sink_unavailable
from gateway.dataplane.formats import open_file
from gateway.dataplane.spi import SinkResult
from gateway.dataplane.stream import DEFAULT_BATCH_SIZE, BatchStream


def filesystem(address: ObjectAddress) -> pa_fs.S3FileSystem:
    """Return an S3 filesystem for the address's endpoint, region and credentials."""
    options: dict = {"region": address.region}
    if address.endpoint:
        parts = urlsplit(address.endpoint)
        options["endpoint_override"] = parts.netloc
        options["scheme"] = parts.scheme
    key_id, key = reveal(address.secret.access_key_id), reveal(address.secret.secret_access_key)
    if key_id is not None and key is not None:
        options.update(access_key=key_id, secret_key=key)
        token = reveal(address.secret.session_token)
        if token is not None:
            options["session_token"] = token
    else:
        options["anonymous"] = True
    # Fail fast: the defaults retry for minutes against an unreachable endpoint.
    options["connect_timeout"] = 10
    options["request_timeout"] = 60
    options["retry_strategy"] = pa_fs.AwsStandardS3RetryStrategy(max_attempts=3)
    return pa_fs.S3FileSystem(**options)


def location(address: ObjectAddress) -> str:
    """Return the object's public location, s3://bucket/key."""
    return f"s3://{address.bucket}/{address.key}"


class ObjectSource:
    """Reads one object."""

    def __init__(self, address: ObjectAddress) -> None:
        self.address = address

    def open(
        self, *, batch_size: int = DEFAULT_BATCH_SIZE, columns: list[str] | None = None
    ) -> BatchStream:
        return open_file(
            filesystem(self.address),
            f"{self.address.bucket}/{self.address.key}",
            self.address.resolved_format,
            batch_size=batch_size,
            columns=columns,
            where=f"object {location(self.address)}",
        )


class ObjectSink:
    """Writes one object as a streamed multipart upload (parts of 10 MB at most in memory)."""

    def __init__(self, address: ObjectAddress) -> None:
        self.address = address

    def write(self, stream: BatchStream, encoder: Encoder) -> SinkResult:
        where = location(self.address)
        fs = filesystem(self.address)
        path = f"{self.address.bucket}/{self.address.key}"
        try:
            out = fs.open_output_stream(path, metadata={"Content-Type": encoder.media_type})
        except (OSError, pa.ArrowException) as err:
            raise sink_unavailable(f"object {where} could not be opened: {err}") from None
        try:
            for chunk in encode(stream, encoder):
                out.write(chunk)
            out.close()
        except BaseException as err:
            # Arrow completes a multipart upload when its stream is released, so a write cut
            # short would leave part of the data under the full key: remove it.
            _discard(fs, out, path)
            if isinstance(err, OSError | pa.ArrowException):
                raise sink_unavailable(f"object {where} could not be written: {err}") from None
            raise
        finally:
            stream.close()
        return SinkResult(encoder.rows, encoder.bytes, encoder.sha256, where)


def _discard(fs, out, path: str) -> None:
    """Release a half-written object's stream and delete whatever it left under `path`."""
    with contextlib.suppress(OSError, pa.ArrowException):
        out.close()
    with contextlib.suppress(OSError, pa.ArrowException):
        fs.delete_file(path)
