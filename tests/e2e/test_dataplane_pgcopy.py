"""The rows of a PostgreSQL COPY, drained by the native module (gateway/dataplane/_pgcopy.c)
or by the pure-Python path: the same rows, the same failures, the same cancel, against the real
PostgreSQL of the test suite (a holder database of its own)."""

import os
import threading
import time
import uuid

import psycopg
import pyarrow as pa
import pytest

from gateway.dataplane import DataPlaneError, Obligations, apply, open_source, parse_source_address
from gateway.dataplane import sql as sql_source
from tests.e2e import test_resource_sources as sources

# Rows without end, streamed as they are made (an SRF in the select list; in FROM, PostgreSQL
# would gather them all before the first).
ENDLESS = (
    "CREATE VIEW endless AS SELECT i AS id, 'name-' || i AS name"
    " FROM (SELECT generate_series(1, 1000000000000) AS i) AS s"
)
world = sources.world  # the fixtures of the gateway-level test
holder_db = sources.holder_db
NOT_BUILT = "gateway/dataplane/_pgcopy.c was not built (no C compiler where it was installed)"

# Values COPY's CSV must quote, escape or mark as NULL, and text beyond ASCII.
TRICKY = [
    None,
    "",
    '"',
    '""',
    'a,"b"',
    "line\nbreak",
    "crlf\r\nend",
    "back\\slash",
    "tab\there",
    "海淀区 ü é 🎉",
    " leading and trailing ",
    "\\N",
    "x" * 200_000,  # one row longer than the first block: the buffer grows past its limit
]


@pytest.fixture(params=["native", "python"])
def drain(request, monkeypatch):
    """Each test runs with either drain; `native` must be usable when the module is built."""
    if request.param == "native":
        if sql_source._pgcopy is None:
            if os.environ.get("CI") == "true":  # CI has gcc: the extension must have been built
                pytest.fail(NOT_BUILT, pytrace=False)
            pytest.skip(NOT_BUILT)
        monkeypatch.setenv("DSGW_PGCOPY_NATIVE", "1")
        assert sql_source.native_copy() is not None
    else:
        monkeypatch.setenv("DSGW_PGCOPY_NATIVE", "0")
        assert sql_source.native_copy() is None
    return request.param


@pytest.fixture
def holder(pg_cluster):
    """A holder database of its own; yields (SQLAlchemy URL, a function running SQL in it)."""
    name = f"holder_{uuid.uuid4().hex[:10]}"
    url = pg_cluster.create_database(name)

    def run(statement: str, params=None) -> None:
        with psycopg.connect(host=pg_cluster.host, port=pg_cluster.port, user="postgres",
                             dbname=name, autocommit=True) as conn:  # fmt: skip
            conn.execute(statement, params)

    yield url, run
    pg_cluster.drop_database(name)


def _stream(url: str, table: str, **open_args):
    address = parse_source_address({"type": "sql", "url": url, "table": table})
    return open_source(address, config=None).open(**open_args)


def _busy(pg_cluster, url: str) -> int:
    """Return how many backends are connected to the database of `url` (other than ours)."""
    with psycopg.connect(host=pg_cluster.host, port=pg_cluster.port, user="postgres",
                         dbname="postgres") as conn:  # fmt: skip
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (url.rsplit("/", 1)[1],)
        ).fetchone()[0]


def _read_with(monkeypatch, mode: str, url: str, table: str, **open_args) -> pa.Table:
    monkeypatch.setenv("DSGW_PGCOPY_NATIVE", "1" if mode == "native" else "0")
    with _stream(url, table, **open_args) as stream:
        return stream.read_all()


def test_the_native_drain_is_built_and_bound_under_ci():
    if sql_source._pgcopy is None:
        if os.environ.get("CI") == "true":
            pytest.fail(NOT_BUILT, pytrace=False)
        pytest.skip(NOT_BUILT)
    # It calls the one libpq psycopg loaded (the binary package's own copy here).
    assert sql_source._loaded_libpq() is not None
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DSGW_PGCOPY_NATIVE", "1")
        assert sql_source.native_copy() is sql_source._pgcopy.drain


def test_both_drains_read_quotes_newlines_nulls_and_unicode_as_the_database_holds_them(
    holder, monkeypatch
):
    url, run = holder
    run("CREATE TABLE odd (id bigint, t text, n integer, ok boolean)")
    values = [(i, TRICKY[i % len(TRICKY)], None if i % 4 == 0 else i, i % 3 == 0) for i in
              range(3 * len(TRICKY))]  # fmt: skip
    # Many more plain rows after them: the rows cross the blocks' boundaries.
    run("INSERT INTO odd SELECT * FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::bool[])",
        [list(c) for c in zip(*values, strict=True)])  # fmt: skip
    run("INSERT INTO odd SELECT i, 'row ' || i || ' \"q\", ' || repeat('é', i % 50), i, NULL"
        " FROM generate_series(1000, 40999) AS i")  # fmt: skip
    native = _read_with(monkeypatch, "native", url, "odd", batch_size=1000)
    python = _read_with(monkeypatch, "python", url, "odd", batch_size=1000)
    assert native.num_rows == len(values) + 40_000
    assert native.equals(python)
    got = native.slice(0, len(values)).to_pylist()
    assert [(r["id"], r["t"], r["n"], r["ok"]) for r in got] == values


def test_both_drains_stream_an_empty_table_with_its_schema(holder, drain):
    url, run = holder
    run("CREATE TABLE nothing (id bigint, name text, at timestamptz)")
    with _stream(url, "nothing") as stream:
        assert stream.schema.names == ["id", "name", "at"]
        assert stream.schema.field("at").type == pa.timestamp("us", tz="UTC")
        assert stream.read_all().num_rows == 0


def test_an_error_the_server_sends_after_some_blocks_is_the_source_problem_on_both_drains(
    holder, drain
):
    url, run = holder
    # ~100 bytes a row: the error comes after the first blocks were parsed and delivered.
    run("CREATE VIEW breaks AS SELECT i AS id, repeat('v', 100) AS pad, 1 / (i - 30000) AS x"
        " FROM generate_series(1, 40000) AS i")  # fmt: skip
    seen = 0
    with pytest.raises(DataPlaneError) as err:
        for batch in _stream(url, "breaks", batch_size=1000):
            seen += batch.num_rows
    assert err.value.status == 502
    assert err.value.slug == "data-source-unavailable"
    assert 0 < seen < 30_000  # rows left before the error, none of those after it


def test_a_statement_timeout_midway_is_the_source_problem_on_both_drains(holder, drain):
    url, run = holder
    run(ENDLESS)
    # Long enough that the first blocks leave even on a loaded machine, short enough to wait.
    timed = f"{url}?options=-c%20statement_timeout%3D2000"
    seen = 0
    with pytest.raises(DataPlaneError) as err:
        for batch in _stream(timed, "endless", batch_size=10_000):
            seen += batch.num_rows
    assert err.value.status == 502
    assert seen > 0  # the server streamed rows, then cancelled the statement at its timeout


def test_a_connection_killed_midway_is_the_source_problem_on_both_drains(holder, drain, pg_cluster):
    url, run = holder
    run(ENDLESS)
    stream = _stream(url, "endless", batch_size=10_000)
    seen = 0

    def kill_once_streaming() -> None:
        deadline = time.monotonic() + 30
        while seen == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        run("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE query LIKE 'COPY%%' AND pid <> pg_backend_pid()")  # fmt: skip

    killer = threading.Thread(target=kill_once_streaming, daemon=True)
    killer.start()
    with pytest.raises(DataPlaneError) as err:
        for batch in stream:
            seen += batch.num_rows
    killer.join(10)
    assert err.value.status == 502


def test_leaving_an_endless_copy_early_cancels_it_on_both_drains(holder, drain, pg_cluster):
    url, run = holder
    run(ENDLESS)
    for _ in range(2):  # without the cancel, leaving would read the COPY to its (distant) end
        capped = apply(_stream(url, "endless", batch_size=1000), Obligations(row_cap=2500))
        assert capped.read_all().column("id").to_pylist() == list(range(1, 2501))
    assert _busy(pg_cluster, url) == 0


def test_a_pull_from_a_table_whose_rows_fail_midway_is_a_recorded_502_on_both_drains(
    world, settings, holder_db, pg_cluster, drain
):
    # The holder's view fails on a row once the holder flips a switch (after publishing: the
    # quality report read every row). The exchange is then refused as a source failure.
    dbname = holder_db["cluster_url"].rsplit("/", 1)[1]
    with psycopg.connect(host=pg_cluster.host, port=pg_cluster.port, user="postgres",
                         dbname=dbname, autocommit=True) as conn:  # fmt: skip
        conn.execute("CREATE TABLE switch (broken boolean)")
        conn.execute("INSERT INTO switch VALUES (false)")
        conn.execute(
            "CREATE VIEW trips_v AS SELECT id, name, phone, score / CASE WHEN id = 3 AND"
            " (SELECT broken FROM switch) THEN 0 ELSE 1 END AS score FROM trips"
        )
        reader = holder_db["url"].split("://", 1)[1].split("@", 1)[0]
        conn.execute(f"GRANT SELECT ON trips_v, switch TO {reader}")
    source = sources.address_for("sql", settings=settings, holder_db=holder_db)
    source["data_address"]["table"] = "public.trips_v"
    _, product = sources.coded_product(world, source)
    contract = world.contract(product["offers"][0]["id"])
    with psycopg.connect(host=pg_cluster.host, port=pg_cluster.port, user="postgres",
                         dbname=dbname, autocommit=True) as conn:  # fmt: skip
        conn.execute("UPDATE switch SET broken = true")
    pulled = world.pull(contract["id"])
    assert pulled.status_code == 502, pulled.text
    problem = pulled.json()
    assert problem["type"] == "urn:dsgw:problem:data-source-unavailable"
    assert [r["code"] for r in problem["reasons"]] == ["SOURCE_UNAVAILABLE"]


def test_without_the_module_or_a_single_libpq_the_pure_path_reads_the_rows(holder, monkeypatch):
    url, run = holder
    run("CREATE TABLE few AS SELECT i AS id, 'n' || i AS name FROM generate_series(1, 5000) i")
    monkeypatch.setenv("DSGW_PGCOPY_NATIVE", "1")
    monkeypatch.setattr(sql_source, "_pgcopy", None)  # not built
    assert sql_source.native_copy() is None
    with _stream(url, "few") as stream:
        assert stream.read_all().column("id").to_pylist() == list(range(1, 5001))
    monkeypatch.undo()
    if sql_source._pgcopy is None:
        return
    # Two libpq mapped (or none): which one the PGconn belongs to is not known, so none is used.
    monkeypatch.setenv("DSGW_PGCOPY_NATIVE", "1")
    monkeypatch.setattr(sql_source, "_native_state", {})
    monkeypatch.setattr(sql_source, "_loaded_libpq", lambda: None)
    assert sql_source.native_copy() is None
    with _stream(url, "few") as stream:
        assert stream.read_all().num_rows == 5000
