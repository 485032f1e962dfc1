"""Push sinks: the encoded stream lands in the consumer's S3 bucket (multipart upload) or HTTP
endpoint (chunked body), and the digest each sink reports is that of the bytes that arrived."""

import hashlib
import io
import uuid

import pyarrow as pa
import pyarrow.fs as pa_fs
import pyarrow.parquet as pq
import pytest

from gateway.dataplane import (
    JSONL,
    PARQUET,
    BatchStream,
    DataPlaneError,
    Obligations,
    apply,
    encoder_for,
    open_sink,
    parse_sink_address,
)
from gateway.dataplane.errors import source_unavailable
from gateway.exchanges.obligations import to_jsonl
from tests.support import http_source, s3

N = 200_000


def _stream(n: int = N) -> BatchStream:
    table = pa.table(
        {"id": pa.array(range(n), pa.int64()), "phone": [f"138{i:08d}" for i in range(n)]}
    )
    return apply(
        BatchStream(table.schema, table.to_batches(max_chunksize=10_000)),
        Obligations(mask={"phone": "phone"}, watermark="wm"),
    )


def test_object_sink_uploads_the_stream_and_reports_the_digest_of_the_object():
    server = s3.shared()
    bucket = f"consumer-{uuid.uuid4().hex[:8]}"
    server.create_bucket(bucket)
    sink = open_sink(
        parse_sink_address(
            {
                "type": "object",
                "endpoint": server.endpoint,
                "bucket": bucket,
                "key": "in/delivery.parquet",
                "secret": server.secret(),
            }
        )
    )
    stream = _stream()
    result = sink.write(stream, encoder_for(PARQUET, stream.schema))
    with server.filesystem().open_input_file(f"{bucket}/in/delivery.parquet") as f:
        stored = f.read()
    assert result.sha256 == hashlib.sha256(stored).hexdigest() and result.bytes == len(stored)
    assert result.rows == N and result.location == f"s3://{bucket}/in/delivery.parquet"
    back = pq.read_table(io.BytesIO(stored))
    assert back.num_rows == N and back.column("phone")[5].as_py() == "138****0005"


def test_an_object_sink_whose_source_fails_midway_leaves_no_partial_object():
    server = s3.shared()
    bucket = f"consumer-{uuid.uuid4().hex[:8]}"
    server.create_bucket(bucket)
    sink = open_sink(
        parse_sink_address(
            {
                "type": "object",
                "endpoint": server.endpoint,
                "bucket": bucket,
                "key": "in/cut.jsonl",
                "secret": server.secret(),
            }
        )
    )
    whole = _stream()

    def batches():
        for index, batch in enumerate(whole):
            if index == 3:
                raise source_unavailable("the source left midway")
            yield batch

    stream = BatchStream(whole.schema, batches())
    with pytest.raises(DataPlaneError):
        sink.write(stream, encoder_for(JSONL, stream.schema))
    listed = server.filesystem().get_file_info(pa_fs.FileSelector(bucket, recursive=True))
    assert [info.path for info in listed if info.type == pa_fs.FileType.File] == []


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_http_sink_streams_a_chunked_body_with_the_consumers_credentials(method):
    server = http_source.shared()
    name = f"d-{uuid.uuid4().hex[:8]}"
    sink = open_sink(
        parse_sink_address(
            {
                "type": "http",
                "url": f"{server.url}/bearer/upload/{name}",
                "method": method,
                "auth": {"kind": "bearer"},
                "secret": {"token": server.token},
            }
        )
    )
    stream = _stream(5000)
    result = sink.write(stream, encoder_for(JSONL, stream.schema))
    upload = server.uploads[name]
    assert upload["chunked"] and upload["method"] == method
    assert upload["content_type"] == JSONL
    assert result.sha256 == hashlib.sha256(upload["body"]).hexdigest()
    assert upload["body"] == to_jsonl(
        [{"id": i, "phone": f"138****{i:04d}"[:11], "_watermark": "wm"} for i in range(5000)]
    )


def test_http_sink_refusing_the_credentials_is_a_problem():
    server = http_source.shared()
    sink = open_sink(
        parse_sink_address(
            {
                "type": "http",
                "url": f"{server.url}/bearer/upload/x",
                "auth": {"kind": "bearer"},
                "secret": {"token": "not-the-token"},
            }
        )
    )
    stream = _stream(10)
    with pytest.raises(DataPlaneError) as err:
        sink.write(stream, encoder_for(JSONL, stream.schema))
    assert err.value.slug == "data-sink-unavailable" and "401" in err.value.detail
