"""Streaming encoders: exact bytes (JSON Lines as to_jsonl), digest and counters of those bytes."""

import datetime as dt
import hashlib
import io

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.ipc as pa_ipc
import pyarrow.parquet as pq
import pytest

from gateway.dataplane import (
    ARROW,
    CSV,
    JSONL,
    PARQUET,
    BatchStream,
    DataPlaneError,
    encode,
    encoder_for,
    encoders,
    negotiate,
)
from gateway.exchanges.obligations import to_jsonl

ROWS = [
    {"b": 'quote " back \\ nl \n tab \t ctl \x01\x1f del \x7f', "a": 1, "c": 1.5, "d": True,
     "e": None, "f": [1, 2], "g": {"z": 1, "a": None}, "王": "欧阳娜娜 \u2028 é"},
    {"b": None, "a": -(2**62), "c": 1e20, "d": False, "e": None, "f": None, "g": None, "王": ""},
    {"b": "", "a": None, "c": 2.5e-7, "d": None, "e": None, "f": [], "g": {"z": 2, "a": 3},
     "王": None},
    {"b": "plain", "a": 0, "c": 123456789.0, "d": True, "e": None, "f": [None], "g": None,
     "王": "x"},
    {"b": "x", "a": 7, "c": float("nan"), "d": True, "e": None, "f": None, "g": None, "王": "y"},
]  # fmt: skip


def _stream(table: pa.Table, batch: int = 2) -> BatchStream:
    return BatchStream(table.schema, table.to_batches(max_chunksize=batch))


def _run(media: str, table: pa.Table) -> tuple[bytes, object]:
    enc = encoder_for(media, table.schema)
    data = b"".join(encode(_stream(table), enc))
    return data, enc


def test_jsonl_bytes_equal_to_jsonl_of_the_same_rows():
    table = pa.Table.from_pylist(ROWS)
    data, _ = _run(JSONL, table)
    assert data == to_jsonl(table.to_pylist())


def test_jsonl_of_many_generated_rows_equals_to_jsonl():
    n = 5000
    table = pa.table(
        {
            "id": range(n),
            "s": [f'v{i} "q" \\ {chr(0x4E00 + i % 500)}' if i % 7 else None for i in range(n)],
            "f": [i / 3 if i % 5 else None for i in range(n)],
            "big": [i * 1e14 for i in range(n)],
            "ok": [i % 2 == 0 for i in range(n)],
        }
    )
    data, enc = _run(JSONL, table)
    assert data == to_jsonl(table.to_pylist())
    assert enc.rows == n


def test_jsonl_writes_dates_and_timestamps_as_iso_text():
    table = pa.table(
        {
            "d": pa.array([dt.date(2024, 1, 2)]),
            "t": pa.array([dt.datetime(2024, 1, 2, 3, 4, 5)], pa.timestamp("us")),
        }
    )
    data, _ = _run(JSONL, table)
    assert data == b'{"d":"2024-01-02","t":"2024-01-02 03:04:05.000000"}\n'


@pytest.mark.parametrize("media", [JSONL, CSV, ARROW, PARQUET])
def test_digest_and_counters_are_those_of_exactly_the_bytes_produced(media):
    table = pa.table({"id": list(range(1000)), "name": [f"n{i}" for i in range(1000)]})
    data, enc = _run(media, table)
    assert enc.sha256 == hashlib.sha256(data).hexdigest()
    assert enc.bytes == len(data)
    assert enc.rows == 1000


def test_the_digest_of_large_and_small_chunks_mixed_is_of_the_bytes_in_order():
    # Chunks of HASH_AHEAD bytes or more are hashed on another thread while the next is made;
    # a small chunk between two large ones, and a digest read midway, must see them in order.
    big = encoders.HASH_AHEAD
    chunks = [b"a" * big, b"b", b"c" * (big + 1), b"d" * (3 * big), b"", b"e" * 7, b"f" * big]
    digest = encoders._Digest()
    for n, chunk in enumerate(chunks):
        digest.update(chunk)
        if n == 3:  # read midway: what was given so far
            assert digest.hexdigest() == hashlib.sha256(b"".join(chunks[:4])).hexdigest()
    assert digest.hexdigest() == hashlib.sha256(b"".join(chunks)).hexdigest()


@pytest.mark.parametrize("media", [JSONL, CSV, ARROW, PARQUET])
def test_the_digest_of_a_stream_of_large_batches_is_of_exactly_its_bytes(media):
    rows = 60_000  # batches whose bytes are larger than HASH_AHEAD, in every format
    names = [hashlib.sha256(b"%d" % i).hexdigest() for i in range(rows)]  # little to compress
    table = pa.table({"id": list(range(rows)), "name": names})
    enc = encoder_for(media, table.schema)
    chunks = list(encode(_stream(table, batch=30_000), enc))
    assert max(len(c) for c in chunks) >= encoders.HASH_AHEAD
    data = b"".join(chunks)
    assert enc.sha256 == hashlib.sha256(data).hexdigest()
    assert enc.bytes == len(data)


@pytest.mark.parametrize("media", [CSV, ARROW, PARQUET])
def test_binary_formats_read_back_as_the_same_table(media):
    table = pa.table(
        {"id": list(range(50)), "name": [f"n{i}" if i % 3 else None for i in range(50)]}
    )
    data, _ = _run(media, table)
    if media == CSV:
        back = pa_csv.read_csv(io.BytesIO(data))
    elif media == ARROW:
        back = pa_ipc.open_stream(data).read_all()
    else:
        back = pq.read_table(io.BytesIO(data))
    assert back.column("id").to_pylist() == list(range(50))
    if media != CSV:
        assert back.equals(table)


def test_an_empty_stream_still_encodes_a_valid_empty_file():
    table = pa.table({"id": pa.array([], pa.int64())})
    data, enc = _run(ARROW, table)
    assert pa_ipc.open_stream(data).read_all().num_rows == 0 and enc.rows == 0
    assert _run(JSONL, table)[0] == b""


@pytest.mark.parametrize(
    "accept,expected",
    [
        (None, JSONL),
        ("", JSONL),
        ("*/*", JSONL),
        ("application/x-ndjson", JSONL),
        ("text/csv;q=0.5, application/vnd.apache.arrow.stream", ARROW),
        ("application/vnd.apache.parquet;q=0.9, text/csv;q=0.1", PARQUET),
        ("text/html, text/csv;q=0.2", CSV),
    ],
)
def test_accept_chooses_the_format(accept, expected):
    assert negotiate(accept) == expected


@pytest.mark.parametrize("accept", ["text/html", "application/xml;q=1, text/csv;q=0", "a;q=x"])
def test_an_accept_naming_no_known_format_is_406(accept):
    with pytest.raises(DataPlaneError) as err:
        negotiate(accept)
    assert err.value.status == 406


def test_jsonl_of_columns_with_a_repeated_name_is_a_problem_not_a_crash():
    schema = pa.schema([("a", pa.int64()), ("a", pa.int64())])
    with pytest.raises(DataPlaneError):
        encoder_for(JSONL, schema)


def test_jsonl_of_null_free_text_dates_and_floats_of_every_range_equals_to_jsonl():
    # Null-free text and dates take the path that writes their quotes around the column; the
    # floats cross the ranges where Arrow's text and repr's differ (exponents, tiny values).
    n = 600
    table = pa.table(
        {
            "t": [f"v{i}" if i % 50 else 'q"\\\n\x01' for i in range(n)],
            "u": [f"王{i}" for i in range(n)],
            "d": pa.array([dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(n)]),
            "f": [[1e14, 1e-5, 0.00001234, 1e10, 2.0, -0.0, 0.25, 1e16][i % 8] for i in range(n)],
            "g": [float(i) for i in range(n)],
            "h": [i + 0.5 for i in range(n)],
        }
    )
    expected = to_jsonl([dict(r, d=r["d"].isoformat()) for r in table.to_pylist()])
    for batch in (1, 7, 300):
        enc = encoder_for(JSONL, table.schema)
        assert b"".join(encode(_stream(table, batch), enc)) == expected, batch


def test_jsonl_of_a_batch_written_in_two_halves_is_the_bytes_of_one():
    from gateway.dataplane.encoders import SPLIT_ROWS

    n = 2 * SPLIT_ROWS + 1024 + 3  # after the first rows, enough for two halves at once
    table = pa.table({"id": range(n), "s": [f"v{i}" for i in range(n)]})
    enc = encoder_for(JSONL, table.schema)
    chunks = list(encode(BatchStream(table.schema, table.to_batches()), enc))
    data = b"".join(chunks)
    assert data == to_jsonl(table.to_pylist())
    assert enc.rows == n and enc.sha256 == hashlib.sha256(data).hexdigest()
    assert enc.bytes == len(data)
    # The first rows on their own, then the rest's two halves as two pieces (not joined).
    assert len(chunks) == 3 and chunks[0] == to_jsonl(table.slice(0, 1024).to_pylist())
    assert chunks[1].count(b"\n") == (n - 1024) // 2
    # batch() still returns one piece: the same bytes.
    again = encoder_for(JSONL, table.schema)
    assert again.batch(table.to_batches()[0]) == data and again.rows == n


def test_arrow_sends_its_schema_message_before_the_first_batch_is_read():
    # pyarrow's writer writes the schema only with the first batch: the first byte of a reply
    # waited for the source's first batch. The encoder sends it before reading one.
    table = pa.table({"id": list(range(3000)), "d": pa.array([None] * 3000, pa.dictionary(
        pa.int8(), pa.string()))})  # fmt: skip
    read = []

    def batches():
        read.append(True)
        yield from table.to_batches(max_chunksize=1000)

    enc = encoder_for(ARROW, table.schema)
    chunks = encode(BatchStream(table.schema, batches()), enc)
    first = next(chunks)
    assert read == []  # the first chunk left before the source was read
    assert first == table.schema.serialize().to_pybytes()
    data = first + b"".join(chunks)
    # The bytes are those pyarrow's own writer writes for the same batches, byte for byte.
    sink = pa.BufferOutputStream()
    with pa_ipc.new_stream(sink, table.schema) as writer:
        for batch in table.to_batches(max_chunksize=1000):
            writer.write_batch(batch)
    assert data == sink.getvalue().to_pybytes()
    assert enc.sha256 == hashlib.sha256(data).hexdigest() and enc.bytes == len(data)
    assert pa_ipc.open_stream(data).read_all().equals(table)


def _writer_bytes(schema: pa.Schema, batches: list[pa.RecordBatch]) -> bytes:
    sink = pa.BufferOutputStream()
    with pa_ipc.new_stream(sink, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def test_arrow_without_dictionaries_is_byte_for_byte_pyarrows_stream_of_the_same_batches():
    # Without dictionaries the encoder writes each batch's own message (no stream writer); its
    # bytes must stay exactly the writer's, for every kind of column and for sliced batches
    # (offsets into shared buffers, as a masked or capped batch is).
    n = 5000
    table = pa.table({
        "id": pa.array(range(n), pa.int64()),
        "small": pa.array([i % 100 for i in range(n)], pa.int8()),
        "text": [f"值{i}" if i % 7 else None for i in range(n)],
        "big": pa.array([f"t{i}" for i in range(n)], pa.large_string()),
        "raw": pa.array([bytes([i % 256]) * (i % 5) for i in range(n)], pa.binary()),
        "f": [i / 3 if i % 11 else None for i in range(n)],
        "b": [bool(i % 2) if i % 5 else None for i in range(n)],
        "day": pa.array([dt.date(2026, 1, 1) + dt.timedelta(days=i % 400) for i in range(n)]),
        "at": pa.array([i * 1_000_003 for i in range(n)], pa.timestamp("us", tz="UTC")),
        "tags": [[i, None] if i % 3 else None for i in range(n)],
        "pair": [{"k": i, "v": str(i)} if i % 4 else None for i in range(n)],
        "amount": pa.array([i * 7 for i in range(n)], pa.decimal128(12, 2)),
    })  # fmt: skip
    batches = [table.to_batches(max_chunksize=1500)[0].slice(3, 1000)]
    batches += table.slice(1003).to_batches(max_chunksize=1700)
    enc = encoder_for(ARROW, table.schema)
    chunks = list(encode(BatchStream(table.schema, iter(batches)), enc))
    data = b"".join(chunks)
    assert data == _writer_bytes(table.schema, batches)
    assert enc.rows == n - 3 and enc.bytes == len(data)
    assert enc.sha256 == hashlib.sha256(data).hexdigest()
    assert pa_ipc.open_stream(data).read_all().equals(table.slice(3))


@pytest.mark.parametrize(
    "kind",
    [pa.dictionary(pa.int8(), pa.string()), pa.list_(pa.dictionary(pa.int8(), pa.string())),
     pa.struct([("d", pa.dictionary(pa.int16(), pa.string()))])],
)  # fmt: skip
def test_arrow_with_a_dictionary_anywhere_writes_its_dictionaries(kind):
    values = {"dictionary": ["a", "b", None], "list": [["a"], None, ["b", "a"]],
              "struct": [{"d": "a"}, None, {"d": "b"}]}  # fmt: skip
    key = "dictionary" if pa.types.is_dictionary(kind) else str(kind).split("<")[0]
    table = pa.table({"id": [1, 2, 3], "x": pa.array(values[key], kind)})
    data, _ = _run(ARROW, table)
    assert data == _writer_bytes(table.schema, table.to_batches(max_chunksize=2))
    assert pa_ipc.open_stream(data).read_all().equals(table)


def test_arrow_refuses_a_batch_of_another_schema_as_the_writer_does():
    schema = pa.schema([("id", pa.int64())])
    enc = encoder_for(ARROW, schema)
    enc.begin()
    with pytest.raises(pa.ArrowInvalid):
        enc.batch(pa.record_batch({"id": pa.array([1], pa.int32())}))
