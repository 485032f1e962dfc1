"""Each source kind streams the right rows with the right schema, against the real servers:
PostgreSQL (a holder database on the test cluster), SQLite, versitygw (S3), an HTTP merchant,
and local files confined to their folder."""

import io
import os
import time
import uuid

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from gateway.dataplane import (
    DataPlaneConfig,
    DataPlaneError,
    EmbeddedStore,
    Obligations,
    apply,
    open_source,
    parse_source_address,
)
from tests.support import http_source, s3
from tests.support.http_source import row

N = 2500


def _expected(n: int = N) -> list[dict]:
    return [row(i) for i in range(n)]


def _table(n: int = N) -> pa.Table:
    return pa.Table.from_pylist(_expected(n))


def _read(address: dict, tmp_path=None, **open_args) -> tuple[pa.Schema, list[pa.RecordBatch]]:
    config = DataPlaneConfig.for_state_dir(tmp_path or "/nonexistent")
    with open_source(parse_source_address(address), config=config).open(**open_args) as stream:
        return stream.schema, list(stream)


# -- sql ---------------------------------------------------------------------------------------


@pytest.fixture
def holder_pg(pg_cluster):
    """A second PostgreSQL database: the holder's own, not the gateway's."""
    name = f"holder_{uuid.uuid4().hex[:10]}"
    cluster_url = pg_cluster.create_database(name)
    with psycopg.connect(
        host=pg_cluster.host, port=pg_cluster.port, user="postgres", dbname=name, autocommit=True
    ) as conn:
        conn.execute(
            "CREATE TABLE trips (id bigint, name text, phone text, score double precision,"
            " ok boolean, day date, at timestamptz, note text)"
        )
        conn.execute(
            "INSERT INTO trips SELECT i, 'name-' || i, '138' || lpad(i::text, 8, '0'), i / 4.0,"
            " i % 2 = 0, date '2024-01-01' + i, timestamptz '2024-01-01 00:00:00+00' + i * interval"
            " '1 second', CASE WHEN i % 3 = 0 THEN NULL WHEN i % 3 = 1 THEN '' ELSE 'a,\"b\"' END"
            f" FROM generate_series(0, {N - 1}) AS i"
        )
        conn.execute("CREATE VIEW even_trips AS SELECT id, name FROM trips WHERE id % 2 = 0")
    yield cluster_url
    pg_cluster.drop_database(name)


def test_sql_postgresql_streams_the_table_with_its_types(holder_pg):
    schema, batches = _read(
        {"type": "sql", "url": holder_pg, "table": "public.trips"}, batch_size=1000
    )
    assert all(b.num_rows <= 1000 for b in batches) and len(batches) >= 3
    assert schema.names == ["id", "name", "phone", "score", "ok", "day", "at", "note"]
    assert schema.field("id").type == pa.int64() and schema.field("ok").type == pa.bool_()
    assert schema.field("day").type == pa.date32()
    assert schema.field("at").type == pa.timestamp("us", tz="UTC")
    rows = pa.Table.from_batches(batches).to_pylist()
    assert [r["id"] for r in rows] == list(range(N))
    assert rows[7]["phone"] == "13800000007" and rows[7]["score"] == 1.75
    # NULL stays null, '' stays '', and quotes and commas come through COPY's CSV intact
    assert [rows[i]["note"] for i in (0, 1, 2)] == [None, "", 'a,"b"']


def test_sql_postgresql_reads_a_view_and_selected_columns(holder_pg):
    schema, batches = _read({"type": "sql", "url": holder_pg, "table": "even_trips"})
    assert schema.names == ["id", "name"]
    assert pa.Table.from_batches(batches).num_rows == N // 2
    schema, _ = _read({"type": "sql", "url": holder_pg, "table": "trips", "columns": ["phone"]})
    assert schema.names == ["phone"]


def test_sql_order_by_reads_the_rows_in_that_order(holder_pg):
    # Shuffle the table's physical order: an UPDATE writes every row anew, in its own order.
    with psycopg.connect(holder_pg.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("UPDATE trips SET note = note WHERE id % 2 = 0")
    address = {"type": "sql", "url": holder_pg, "table": "trips", "columns": ["name"]}
    _, batches = _read(address)
    unordered = pa.Table.from_batches(batches).column("name").to_pylist()
    assert unordered != [f"name-{i}" for i in range(N)]  # the shuffle took
    _, batches = _read({**address, "order_by": ["score"]})
    names = pa.Table.from_batches(batches).column("name").to_pylist()
    assert names == [f"name-{i}" for i in range(N)]  # ordered by a column not delivered
    _, batches = _read({**address, "columns": ["id"], "order_by": ["id"]})
    assert pa.Table.from_batches(batches).column("id").to_pylist() == list(range(N))
    with pytest.raises(DataPlaneError):
        _read({**address, "order_by": ["nosuch"]})
    with pytest.raises(ValueError, match="not a plain identifier"):
        parse_source_address({**address, "order_by": ["id; DROP TABLE trips"]})


def test_sql_a_missing_table_or_column_is_a_problem_not_a_crash(holder_pg):
    with pytest.raises(DataPlaneError) as err:
        _read({"type": "sql", "url": holder_pg, "table": "nosuch"})
    assert err.value.slug == "data-source-unavailable"
    with pytest.raises(DataPlaneError):
        _read({"type": "sql", "url": holder_pg, "table": "trips", "columns": ["nosuch"]})


def test_sql_a_wrong_password_is_a_problem_that_names_no_secret(pg_cluster):
    url = f"postgresql://nobody@{pg_cluster.host}:{pg_cluster.port}/nosuchdb"
    with pytest.raises(DataPlaneError) as err:
        _read({"type": "sql", "url": url, "table": "t", "secret": {"password": "hunter2-pw"}})
    assert err.value.slug == "data-source-unavailable"
    assert "hunter2-pw" not in str(err.value.body())


def test_sql_sqlite_streams_with_yield_per(tmp_path):
    import sqlalchemy as sa

    db = tmp_path / "holder.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE trips (id INTEGER, name TEXT, phone TEXT, score REAL)")
        conn.exec_driver_sql(
            "INSERT INTO trips VALUES (?, ?, ?, ?)",
            [(r["id"], r["name"], r["phone"], r["score"]) for r in _expected()],
        )
    engine.dispose()
    schema, batches = _read(
        {"type": "sql", "url": f"sqlite:///{db}", "table": "trips"}, batch_size=1000
    )
    assert [b.num_rows for b in batches] == [1000, 1000, 500]
    assert schema.field("id").type == pa.int64() and schema.field("score").type == pa.float64()
    assert pa.Table.from_batches(batches).to_pylist() == _expected()


# -- object (versitygw) ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bucket():
    server = s3.shared()
    name = f"holder-{uuid.uuid4().hex[:8]}"
    server.create_bucket(name)
    fs = server.filesystem()
    table = _table()
    with fs.open_output_stream(f"{name}/trips.parquet") as f:
        pq.write_table(table, f, row_group_size=700)
    with fs.open_output_stream(f"{name}/trips.csv") as f:
        pa_csv.write_csv(table, f)
    with fs.open_output_stream(f"{name}/dir/trips.jsonl") as f:
        f.write("".join(__import__("json").dumps(r) + "\n" for r in _expected()).encode())
    return server, name


@pytest.mark.parametrize("key", ["trips.parquet", "trips.csv", "dir/trips.jsonl"])
def test_object_streams_each_format_from_s3(bucket, key):
    server, name = bucket
    address = {
        "type": "object",
        "endpoint": server.endpoint,
        "bucket": name,
        "key": key,
        "secret": server.secret(),
    }
    schema, batches = _read(address, batch_size=1000)
    assert all(b.num_rows <= 1000 for b in batches)
    assert schema.names == ["id", "name", "phone", "score"]
    got = pa.Table.from_batches(batches, schema=schema).to_pylist()
    if key.endswith(".csv"):  # CSV has no types: the phone reads back as digits
        got = [{**r, "phone": f"{r['phone']:011d}"} for r in got]
    assert got == _expected()


def test_object_with_wrong_credentials_is_refused(bucket):
    server, name = bucket
    address = {
        "type": "object",
        "endpoint": server.endpoint,
        "bucket": name,
        "key": "trips.parquet",
        "secret": {"access_key_id": "wrong", "secret_access_key": "wrong-secret-x"},
    }
    with pytest.raises(DataPlaneError) as err:
        _read(address)
    assert err.value.slug == "data-source-unavailable"
    assert "wrong-secret-x" not in str(err.value.body())


def test_object_missing_key_is_a_problem(bucket):
    server, name = bucket
    address = {
        "type": "object",
        "endpoint": server.endpoint,
        "bucket": name,
        "key": "nosuch.parquet",
        "secret": server.secret(),
    }
    with pytest.raises(DataPlaneError):
        _read(address)


# -- http --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def merchant():
    return http_source.shared()


@pytest.mark.parametrize("auth", ["bearer", "basic", "header"])
def test_http_jsonl_streams_with_the_sources_own_auth(merchant, auth):
    secret, auth_spec = {
        "bearer": ({"token": merchant.token}, {"kind": "bearer"}),
        "basic": ({"password": merchant.password}, {"kind": "basic", "username": "merchant"}),
        "header": ({"header_value": merchant.api_key}, {"kind": "header", "header": "X-Api-Key"}),
    }[auth]
    address = {
        "type": "http",
        "url": f"{merchant.url}/{auth}/rows.jsonl?n={N}",
        "auth": auth_spec,
        "secret": secret,
    }
    schema, batches = _read(address, batch_size=1000)
    assert schema.names == ["id", "name", "phone", "score"]
    assert all(b.num_rows <= 1000 for b in batches)
    assert pa.Table.from_batches(batches).to_pylist() == _expected()


def test_http_without_the_right_credentials_is_refused(merchant):
    address = {
        "type": "http",
        "url": f"{merchant.url}/bearer/rows.jsonl?n=5",
        "auth": {"kind": "bearer"},
        "secret": {"token": "wrong-token-zz"},
    }
    with pytest.raises(DataPlaneError) as err:
        _read(address)
    assert "401" in err.value.detail and "wrong-token-zz" not in str(err.value.body())


@pytest.mark.parametrize("style", ["link", "token"])
def test_http_json_pages_follow_next_to_the_end(merchant, style):
    url = f"{merchant.url}/bearer/pages?n={N}&size=300"
    address = {
        "type": "http",
        "url": url + ("&style=token" if style == "token" else ""),
        "format": "json-pages",
        "auth": {"kind": "bearer"},
        "secret": {"token": merchant.token},
    }
    if style == "token":
        address["cursor_param"] = "cursor"
    schema, batches = _read(address, batch_size=1000)
    assert schema.names == ["id", "name", "phone", "score"]
    assert pa.Table.from_batches(batches).to_pylist() == _expected()


# -- files and the embedded store ----------------------------------------------------------------


def test_files_stream_each_format_from_the_data_folder(tmp_path):
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    table = _table()
    pq.write_table(table, root / "sub" / "t.parquet", row_group_size=500)
    pa_csv.write_csv(table, root / "t.csv")
    for path in ("sub/t.parquet", "t.csv"):
        schema, batches = _read({"type": "files", "path": path}, tmp_path, batch_size=400)
        assert all(b.num_rows <= 400 for b in batches)
        assert pa.Table.from_batches(batches).column("id").to_pylist() == list(range(N))


def test_files_a_symlink_out_of_the_data_folder_is_refused(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    outside = tmp_path / "outside.csv"
    outside.write_text("secret\n1\n")
    os.symlink(outside, root / "link.csv")
    os.symlink(tmp_path, root / "up")
    for path in ("link.csv", "up/outside.csv"):
        with pytest.raises(DataPlaneError) as err:
            _read({"type": "files", "path": path}, tmp_path)
        assert err.value.slug == "data-address-invalid"


def test_embedded_store_writes_rows_as_parquet_and_reads_them_back(tmp_path):
    config = DataPlaneConfig.for_state_dir(tmp_path)
    address = EmbeddedStore(config.embedded_root).write("res_1", iter(_expected()))
    assert address.rows == N and address.path == "res_1.parquet"
    assert pq.read_metadata(config.embedded_root / "res_1.parquet").num_rows == N
    with open_source(address, config=config).open() as stream:
        assert stream.read_all().to_pylist() == _expected()
    # the obligations run on it like on any source
    with apply(open_source(address, config=config).open(), Obligations(row_cap=3)) as stream:
        assert stream.read_all().num_rows == 3
    assert not io.BytesIO().getvalue()


def _backends_left(pg_cluster, url: str) -> int:
    """Return how many backends are still connected to the database of `url`. A closed
    connection's backend leaves pg_stat_activity a moment after the close (it exits on its own
    time), a leaked one stays: wait up to 5 s for the count to reach 0, and return it."""
    dbname = url.rsplit("/", 1)[1]
    deadline = time.monotonic() + 5
    with psycopg.connect(host=pg_cluster.host, port=pg_cluster.port, user="postgres",
                         dbname="postgres") as conn:  # fmt: skip
        while True:
            busy = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (dbname,)
            ).fetchone()[0]
            if busy == 0 or time.monotonic() > deadline:
                return busy
            time.sleep(0.05)


def test_sql_postgresql_a_stream_left_early_cancels_the_copy_and_releases_the_database(
    holder_pg, pg_cluster
):
    address = parse_source_address({"type": "sql", "url": holder_pg, "table": "trips"})
    for _ in range(3):  # a COPY left running would block the next close, or leak a backend
        capped = apply(open_source(address, config=None).open(batch_size=100),
                       Obligations(row_cap=150))  # fmt: skip
        assert capped.read_all().column("id").to_pylist() == list(range(150))
    assert _backends_left(pg_cluster, holder_pg) == 0


def test_sql_postgresql_an_error_the_server_sends_midway_is_the_source_problem(
    holder_pg, pg_cluster
):
    # The rows before the error are read straight from libpq; the error ends the COPY there.
    dbname = holder_pg.rsplit("/", 1)[1]
    with psycopg.connect(host=pg_cluster.host, port=pg_cluster.port, user="postgres",
                         dbname=dbname, autocommit=True) as conn:  # fmt: skip
        conn.execute("CREATE VIEW broken AS SELECT id, 1 / (id - 2000) AS x FROM trips")
    address = parse_source_address({"type": "sql", "url": holder_pg, "table": "broken"})
    seen = 0
    with pytest.raises(DataPlaneError) as err:
        for batch in open_source(address, config=None).open(batch_size=100):
            seen += batch.num_rows
    assert err.value.status == 502
    assert seen < 2000


def test_sql_postgresql_an_encoded_stream_left_early_releases_the_database(holder_pg, pg_cluster):
    # encode() reads a PostgreSQL stream ahead in a thread: leaving it must still cancel the
    # COPY and close the connection, from that thread, before close returns.
    from gateway.dataplane import JSONL, encode, encoder_for

    address = parse_source_address({"type": "sql", "url": holder_pg, "table": "trips"})
    for _ in range(3):
        stream = open_source(address, config=None).open(batch_size=100)
        assert stream.threadsafe
        chunks = encode(stream, encoder_for(JSONL, stream.schema))
        assert next(chunks).startswith(b'{"at":')
        chunks.close()
    assert _backends_left(pg_cluster, holder_pg) == 0


def test_sql_postgresql_encoded_bytes_are_those_of_the_rows_in_order(holder_pg):
    from gateway.dataplane import JSONL, encode, encoder_for
    from gateway.dataplane.encoders import JsonLinesEncoder

    address = parse_source_address({"type": "sql", "url": holder_pg, "table": "trips"})
    stream = open_source(address, config=None).open(batch_size=100)
    data = b"".join(encode(stream, encoder_for(JSONL, stream.schema)))
    with open_source(address, config=None).open() as again:
        table = again.read_all()
    assert data == JsonLinesEncoder(table.schema).batch(table.combine_chunks().to_batches()[0])
    assert data.count(b"\n") == N
