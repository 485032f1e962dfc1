"""`sql`: a table or view in the holder's own database, any SQLAlchemy URL.

PostgreSQL (psycopg 3) is streamed with `COPY (SELECT ...) TO STDOUT (FORMAT csv)`, its rows
gathered into blocks of about 1 MiB (64 KiB for the first, so the first batch is early) that
Arrow's CSV parser reads with the column types of the query's result description. Of the ways
measured, it is the fastest (tests/bench/bench_dataplane.py times a server-side cursor fed to
Arrow beside it); text CSV rather than COPY's binary format, because Arrow parses CSV in C++
while the binary format would be decoded in Python. The rows are taken from libpq in C, the
GIL released (`gateway/dataplane/_pgcopy.c`: PQgetCopyData into one buffer per block, in the
libpq psycopg loaded), or, where that module is not built or `DSGW_PGCOPY_NATIVE=0`, in Python
one row at a time (`_rows`); both give the same rows. The COPY's final result is checked as
psycopg checks it (an error the server sends midway, a statement_timeout included, is the
stream's 502), and the last block leaves only once it is known good. Leaving a stream early
cancels the COPY on the server. Every other engine (SQLite, the embedded default, included) is
streamed through SQLAlchemy with `yield_per`, one batch per partition.

Identifiers are validated by the address (letters, digits, _ and $) and quoted by the dialect;
nothing from the address is interpolated into SQL unquoted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url

from gateway.dataplane.addresses import SqlAddress, reveal, valid_identifier
from gateway.dataplane.errors import address_invalid, source_unavailable
from gateway.dataplane.stream import DEFAULT_BATCH_SIZE, BatchStream

COPY_BLOCK = 1 << 20  # bytes of COPY rows parsed at a time
FIRST_BLOCK = 64 << 10  # the first block is small, so that the first batch leaves early

_log = structlog.get_logger("gateway.dataplane")

# PostgreSQL type OIDs -> Arrow types for COPY's CSV text. Unlisted types arrive as text.
_PG_TYPES = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    700: pa.float32(),
    701: pa.float64(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
}


def _engine_url(address: SqlAddress) -> sa.URL:
    try:
        url = make_url(address.url)
    except Exception:
        raise address_invalid("url is not a SQLAlchemy URL") from None
    if url.get_backend_name() == "postgresql" and url.get_driver_name() in ("", "psycopg2"):
        url = url.set(drivername="postgresql+psycopg")
    password = reveal(address.secret.password)
    return url.set(password=password) if password is not None else url


def _unreadable(where: str, err: Exception):
    """Return the problem for a failed read, naming the error's type only (never the URL)."""
    return source_unavailable(f"{where} could not be read: {type(err).__name__}")


class SqlSource:
    """Reads one table or view."""

    def __init__(self, address: SqlAddress) -> None:
        self.address = address

    @property
    def where(self) -> str:
        return f"table {self.address.table!r}"

    def open(
        self, *, batch_size: int = DEFAULT_BATCH_SIZE, columns: list[str] | None = None
    ) -> BatchStream:
        columns = columns if columns is not None else self.address.columns
        for name in columns or []:
            if not isinstance(name, str) or not valid_identifier(name):
                raise address_invalid(f"column {name!r} is not a plain identifier")
        try:
            engine = sa.create_engine(_engine_url(self.address), poolclass=sa.pool.NullPool)
        except Exception as err:  # an unknown dialect or driver
            detail = f"no database driver for this url: {type(err).__name__}"
            raise address_invalid(detail) from None
        try:
            conn = engine.connect()
        except sa.exc.SQLAlchemyError as err:
            engine.dispose()
            raise source_unavailable(f"database unreachable: {type(err).__name__}") from None

        def close() -> None:
            # A connection the server ended (a terminated backend, a restart) fails its
            # closing rollback: the stream's own failure, raised already, is what counts.
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                conn.close()
            engine.dispose()

        try:
            query = self._select(conn, columns)
            if engine.dialect.name == "postgresql":
                schema, batches = _copy_csv(conn, query, batch_size, self.where)
            else:
                schema, batches = _yield_per(conn, query, batch_size, self.where)
        except BaseException:
            close()
            raise
        # psycopg's connection may be used from another thread (one at a time); SQLite's may
        # not, so only a PostgreSQL stream is read ahead (stream.prefetch).
        threadsafe = engine.dialect.name == "postgresql"
        return BatchStream(schema, batches, on_close=close, threadsafe=threadsafe)

    def _select(self, conn: sa.Connection, columns: list[str] | None) -> sa.Select:
        """Return SELECT <columns> FROM <table> with every name quoted by the dialect.

        The table's columns are the names of one `SELECT * FROM <table> LIMIT 0`: one round
        trip, where SQLAlchemy's inspector ran catalogue queries that took 8-20 ms of a
        PostgreSQL stream's first byte.
        """
        schema, name = self.address.schema_name, self.address.table_name
        probe = sa.select(sa.text("*")).select_from(sa.table(name, schema=schema)).limit(0)
        try:
            result = conn.execute(probe)
            known = list(result.keys())
            result.close()
        except sa.exc.SQLAlchemyError as err:
            if not _no_such_table(err):
                raise _unreadable(self.where, err) from None
            known = []
        if not known:
            raise source_unavailable(f"{self.where} does not exist or has no columns")
        wanted = columns or known
        order = list(self.address.order_by or [])
        missing = [c for c in [*wanted, *order] if c not in known]
        if missing:
            raise source_unavailable(f"{self.where} has no column(s) {missing}")
        every = list(dict.fromkeys([*wanted, *order]))
        table = sa.table(name, *(sa.column(c) for c in every), schema=schema)
        return sa.select(*(table.c[c] for c in wanted)).order_by(*(table.c[c] for c in order))


def _no_such_table(err: sa.exc.SQLAlchemyError) -> bool:
    """Return whether a failed query failed for want of its table (PostgreSQL's SQLSTATE
    42P01, SQLite's "no such table")."""
    orig = getattr(err, "orig", None)
    if getattr(orig, "sqlstate", None) == "42P01":
        return True
    return "no such table" in str(orig).lower()


def _copy_csv(
    conn: sa.Connection, query: sa.Select, batch_size: int, where: str
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    raw = conn.connection.driver_connection  # the psycopg connection
    sql_text = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cur = raw.cursor()
    try:
        cur.execute("SET TIME ZONE 'UTC'")
        cur.execute("SET DateStyle TO ISO")
        cur.execute(f"SELECT * FROM ({sql_text}) AS q LIMIT 0")
        description = cur.description or []
    except Exception as err:
        cur.close()
        raise _unreadable(where, err) from None
    schema = pa.schema(
        [pa.field(d.name, _PG_TYPES.get(d.type_code, pa.string())) for d in description]
    )

    read_options = pa_csv.ReadOptions(column_names=schema.names, use_threads=True)
    convert_options = pa_csv.ConvertOptions(
        column_types=schema,
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
        true_values=["t"],
        false_values=["f"],
    )

    def parse(block: bytearray) -> Iterator[pa.RecordBatch]:
        table = pa_csv.read_csv(
            pa.py_buffer(block),
            read_options=read_options,
            convert_options=convert_options,
        )
        yield from table.to_batches(max_chunksize=batch_size)

    def batches() -> Iterator[pa.RecordBatch]:
        finished = left = False
        try:
            with cur.copy(f"COPY ({sql_text}) TO STDOUT (FORMAT csv, HEADER false)") as copy:
                try:
                    for block in _blocks(raw, copy):
                        yield from parse(block)
                    finished = True
                except GeneratorExit:
                    left = True
                    raise
                finally:
                    if not finished:
                        # Left early (a row cap, a consumer gone) or failed: stop the server's
                        # COPY, or leaving the COPY would read it to its end.
                        raw.cancel_safe(timeout=10)
        except GeneratorExit:
            raise
        except pa.ArrowException as err:
            raise source_unavailable(f"{where} could not be read: {err}") from None
        except Exception as err:  # psycopg errors midway
            if type(err).__module__.startswith("psycopg"):
                # Only the end of the COPY this stream cancelled on leaving is quiet: a
                # statement the server cancelled itself (statement_timeout, an operator's
                # pg_cancel_backend) is a failure, not the end of the rows.
                if left and _cancelled(err):
                    return
                raise _unreadable(where, err) from None
            raise
        finally:
            with contextlib.suppress(Exception):
                cur.close()

    return schema, batches()


def _blocks(raw, copy) -> Iterator[bytes | bytearray]:
    """Yield the rows of a COPY TO in blocks of whole rows, the first of about FIRST_BLOCK
    bytes and the others of about COPY_BLOCK: drained by the native module when it is usable
    (`native_copy`), else by `_rows` in Python."""
    drain = native_copy()
    if drain is not None:
        yield from _native_blocks(raw, copy, drain)
        return
    # Rows are appended to one buffer (each libpq buffer is freed at once: holding a million
    # of them costs more than the copy).
    block = bytearray()
    limit = FIRST_BLOCK  # a small first block: the first batch is early
    for chunk in _rows(raw, copy):
        block += chunk
        if len(block) >= limit:
            yield block
            block, limit = bytearray(), COPY_BLOCK
    if block:
        yield block


def _native_blocks(raw, copy, drain) -> Iterator[bytes]:
    """Yield the blocks `_pgcopy.drain` fills from libpq (the GIL released while it waits for
    the socket and gathers the rows); its end and its failures are handled as `_rows` does."""
    pgconn = raw.pgconn
    limit = FIRST_BLOCK
    while True:
        ptr = pgconn.pgconn_ptr
        if ptr is None:  # the connection was closed under the stream: psycopg raises
            _failed(copy)
        data, status = drain(ptr, limit, IDLE_MS)
        if status == -1:  # the last rows leave only once the COPY is known to have succeeded
            _final_result(raw)
            if data:
                yield data
            return
        if status == -2:  # libpq failed: psycopg reads once more and raises its error
            _failed(copy)
        if data:
            yield data
            limit = COPY_BLOCK


def _final_result(raw) -> None:
    """Fetch and check the COPY's final result as psycopg does: an error the server sent
    midway (a statement_timeout, say) is raised here, as psycopg's own error."""
    from psycopg import errors, generators, pq

    results = raw.wait(generators.fetch_many(raw.pgconn))
    for result in results:
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise errors.error_from_result(result, encoding=raw.info.encoding)


def _rows(raw, copy) -> Iterator[memoryview]:
    """Yield the rows of a COPY TO as libpq hands them over, each its own buffer (the pure
    path, when the native module is not built or is switched off).

    The rows already received are taken straight from libpq (`PQgetCopyData`, non-blocking):
    psycopg's `Copy.read()` costs some microseconds a row in Python, more than the server
    takes to send it. When libpq has no row ready, `copy.read()` waits for the socket (and
    raises the server's error); at the end of the COPY, its final result is fetched and
    checked as psycopg does (an error the server sent midway is raised here).
    """
    pgconn = raw.pgconn
    get = pgconn.get_copy_data
    read = copy.read
    while True:
        nbytes, data = get(1)
        if nbytes > 0:
            yield data
        elif nbytes == 0:  # no row ready: psycopg waits for the socket and reads one
            data = read()
            if not data:
                return
            yield data
        elif nbytes == -1:  # the end: the COPY's final result (or the server's error)
            _final_result(raw)
            return
        else:  # -2: the connection failed; psycopg raises its error
            _failed(copy)


def _failed(copy) -> NoReturn:
    """Raise the error of a COPY whose connection failed: psycopg's, as its own read raises it,
    else (a read that returned instead) an OperationalError: never an end that looks whole."""
    from psycopg import OperationalError

    copy.read()
    raise OperationalError("the COPY's connection failed")


# -- the native drain (gateway/dataplane/_pgcopy.c) ------------------------------------------

try:
    from gateway.dataplane import _pgcopy
except ImportError:  # not built (no C compiler where it was installed): the pure path
    _pgcopy = None

IDLE_MS = 50  # a drain that waited this long for a row hands back what it has
_LIBPQ_FUNCTIONS = ("PQgetCopyData", "PQfreemem", "PQconsumeInput", "PQsocket")
_native_state: dict[str, object] = {}
_native_lock = threading.Lock()


def native_copy() -> Callable[[int, int, int], tuple[bytes, int]] | None:
    """Return the native drain (`_pgcopy.drain`) bound to the libpq psycopg uses, or None for
    the pure path: the module is not built, `DSGW_PGCOPY_NATIVE=0` forces the pure path (for
    comparison), or the one libpq loaded in the process cannot be told (`_loaded_libpq`).
    Which one is used is logged once (`pgcopy drain`, native or python)."""
    if _pgcopy is None or os.environ.get("DSGW_PGCOPY_NATIVE", "1").strip() == "0":
        mode = "python"
    else:
        with _native_lock:
            if "bound" not in _native_state:
                _native_state["bound"] = _bind()
        mode = "native" if _native_state["bound"] else "python"
    if _native_state.get("logged") != mode:
        _native_state["logged"] = mode
        _log.info("pgcopy drain", mode=mode, built=_pgcopy is not None)
    return _pgcopy.drain if mode == "native" and _pgcopy is not None else None


def _bind() -> bool:
    """Give `_pgcopy` the addresses of libpq's functions in the libpq psycopg loaded."""
    import ctypes

    import psycopg.pq  # loads psycopg's libpq (its own, for the binary package)

    assert _pgcopy is not None
    path = _loaded_libpq()
    if path is None or psycopg.pq.__impl__ not in ("binary", "c", "python"):
        return False
    try:
        lib = ctypes.CDLL(path)  # already loaded: the same handle, the same functions
        addresses = [ctypes.cast(getattr(lib, n), ctypes.c_void_p).value for n in _LIBPQ_FUNCTIONS]
        if not all(addresses):
            return False
        _pgcopy.bind(*addresses)
    except (OSError, AttributeError, ValueError):
        return False
    return True


def _loaded_libpq() -> str | None:
    """Return the path of the one libpq mapped into this process (psycopg's: the binary
    package's bundled copy, or the system's for the C and ctypes builds), or None when none
    or several are (the PGconn could then belong to either: the pure path is taken)."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux
        return None
    paths = set()
    for line in maps.splitlines():
        parts = line.split(None, 5)  # address perms offset dev inode path
        if len(parts) == 6 and "libpq" in parts[5]:
            name = Path(parts[5].strip()).name
            if name.startswith("libpq") and ".so" in name:
                paths.add(parts[5].strip())
    return paths.pop() if len(paths) == 1 else None


def _cancelled(err: BaseException) -> bool:
    """Return whether `err` is the end of a COPY we cancelled."""
    return "cancel" in str(err).lower() or type(err).__name__ == "QueryCanceled"


def _arrow_type(sql_type: sa.types.TypeEngine) -> pa.DataType | None:
    """Return the Arrow type for a SQLAlchemy result type, or None to infer from the values."""
    try:
        python = sql_type.python_type
    except NotImplementedError:
        return None
    return {
        bool: pa.bool_(),
        int: pa.int64(),
        float: pa.float64(),
        str: pa.string(),
        bytes: pa.binary(),
        dt.date: pa.date32(),
        dt.datetime: pa.timestamp("us"),
        decimal.Decimal: pa.float64(),
    }.get(python)


def _yield_per(
    conn: sa.Connection, query: sa.Select, batch_size: int, where: str
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    try:
        result = conn.execution_options(yield_per=batch_size).execute(query)
    except sa.exc.SQLAlchemyError as err:
        raise _unreadable(where, err) from None
    names = list(result.keys())
    partitions = result.partitions()
    try:
        first = next(partitions, [])
    except sa.exc.SQLAlchemyError as err:
        raise _unreadable(where, err) from None
    types = [_arrow_type(c.type) for c in query.selected_columns]
    fields = []
    for i, (name, t) in enumerate(zip(names, types, strict=True)):
        if t is None:  # declared type unknown (SQLite allows any): infer from the first rows
            t = pa.array([row[i] for row in first]).type if first else pa.string()
            t = pa.string() if pa.types.is_null(t) else t
        fields.append(pa.field(name, t))
    schema = pa.schema(fields)

    def to_batch(rows) -> pa.RecordBatch:
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
        try:
            arrays = [pa.array(col, type=f.type) for col, f in zip(columns, schema, strict=True)]
        except (pa.ArrowException, TypeError, ValueError) as err:
            detail = f"{where}: a value does not fit its column's type: {err}"
            raise source_unavailable(detail) from None
        return pa.RecordBatch.from_arrays(arrays, schema=schema)

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            if first:
                yield to_batch(first)
            for rows in partitions:
                yield to_batch(rows)
        except sa.exc.SQLAlchemyError as err:
            raise _unreadable(where, err) from None
        finally:
            result.close()

    return schema, batches()
