"""The database: SQLAlchemy 2 engines for SQLite (embedded default) and PostgreSQL (production)."""

import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

import structlog
from sqlalchemy import DateTime, Engine, TypeDecorator, create_engine, event, make_url, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import JSON

from gateway.core.errors import Problem, not_found

T = TypeVar("T")
log = structlog.get_logger("dsgw.db")


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC and always read back as an aware UTC datetime.

    SQLite keeps no offset, so without this the same column would come back naive there and
    aware on PostgreSQL.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the gateway stores aware UTC times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """The declarative base of every gateway table."""

    type_annotation_map = {dict: JSON, list: JSON, datetime: UTCDateTime()}


# The database holds the resource rows: owner only, like the keys, whatever the umask says.
DB_FILE_MODE = 0o600
_TURN = "dsgw_sqlite_turn"  # set on a connection record while its transaction holds the turn
SQLITE_TURN_SECONDS = 30.0  # then BEGIN IMMEDIATE waits in SQLite's busy handler, as before

SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")

# An execution option of a connection whose transaction only reads: on SQLite it runs outside
# BEGIN IMMEDIATE and without the writer turn (a WAL reader waits for no writer), on
# PostgreSQL in autocommit (no BEGIN and COMMIT round trips). See `read_alone`.
READ_ALONE = "dsgw_read_alone"


def read_alone(session: Session) -> bool:
    """Make the session's next transaction a read that waits for no writer; return whether it
    could (False when a transaction is already open: it is then used as it is).

    For one statement that only reads, committed (`session.commit()`) right after it: SQLite
    runs it on its own snapshot without the writer turn, so a request's first read never queues
    behind the sequencer's batch (or behind other requests waiting for the turn); PostgreSQL
    runs it in autocommit. Anything the session does after that commit is an ordinary
    transaction again. A write in a read-alone transaction is refused (`_refuse_writes`).
    """
    if session.in_transaction():
        return False
    bind = session.get_bind()
    options = {READ_ALONE: True}
    if bind.dialect.name != "sqlite":
        options["isolation_level"] = "AUTOCOMMIT"
    session.connection(execution_options=options)
    return True


_READS = ("SELECT", "WITH", "PRAGMA")


def _refuse_writes(conn, _cursor, statement: str, _params, _context, _many) -> None:
    """Refuse a statement that writes in a read-alone transaction (a bug, never data)."""
    alone = conn.get_execution_options().get(READ_ALONE)
    if alone and not statement.lstrip()[:6].upper().startswith(_READS):
        raise RuntimeError(f"a write in a read-alone transaction: {statement[:60]!r}")


def secure_sqlite_files(url: str) -> None:
    """Create a SQLite database file owner-only if missing, and make it and its companions
    (WAL, shared memory, rollback journal) owner-only if they exist; other URLs are left alone.

    SQLite gives the WAL and -shm files it creates later the mode of the database file, so a
    0600 database keeps them 0600 too.
    """
    parsed = make_url(url)
    path = parsed.database
    if not parsed.drivername.startswith("sqlite") or not path or path == ":memory:":
        return
    if path.startswith("file:") or parsed.query.get("mode") == "memory":
        return
    fd = os.open(path, os.O_CREAT | os.O_RDWR, DB_FILE_MODE)  # umask may narrow, never widen
    os.close(fd)
    for suffix in SQLITE_COMPANIONS:
        try:
            os.chmod(path + suffix, DB_FILE_MODE)
        except FileNotFoundError:
            continue


def pg_options(timeouts: Mapping[str, float]) -> str:
    """Return libpq `options` setting each PostgreSQL session limit (seconds; 0: none)."""
    return " ".join(f"-c {name}={int(seconds * 1000)}" for name, seconds in timeouts.items())


def make_engine(url: str, *, timeouts: Mapping[str, float] | None = None) -> Engine:
    """Return an engine; SQLite transactions take the write lock at BEGIN (serialised appends).

    A SQLite database file is created (or fixed) owner-only before the first connection.
    PostgreSQL sessions get `timeouts` (lock_timeout, statement_timeout,
    idle_in_transaction_session_timeout, in seconds) so that no session waits or holds forever.
    """
    if url.startswith("sqlite"):
        secure_sqlite_files(url)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8
        )

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_connection, _record):  # pragma: no cover - driver hook
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        # One writer at a time, handed over by a lock of this process: SQLite's own busy
        # handler makes a waiting transaction sleep (up to 100 ms a try), which at 32 concurrent
        # requests is seconds of latency. A connection takes the turn at its BEGIN and gives it
        # back when it goes back to the pool; the busy handler still arbitrates between
        # processes.
        turn = threading.Lock()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - driver hook
            if conn.get_execution_options().get(READ_ALONE):
                return  # no BEGIN: the driver runs the read on a snapshot of its own
            record = conn.connection._connection_record
            if record is not None and not record.info.get(_TURN):
                record.info[_TURN] = turn.acquire(timeout=SQLITE_TURN_SECONDS)
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                _give_back(record)
                raise

        def _give_back(record) -> None:
            if record is not None and record.info.pop(_TURN, False):
                turn.release()

        # Given back when the connection returns to the pool (after its COMMIT or ROLLBACK has
        # run, not before, as engine-level commit events would), is invalidated or closed.
        @event.listens_for(engine.pool, "checkin")
        @event.listens_for(engine.pool, "close")
        def _returned(_dbapi, record):  # pragma: no cover - pool hook
            _give_back(record)

        @event.listens_for(engine.pool, "reset")
        def _reset(_dbapi, record, _state):  # pragma: no cover - pool hook
            _give_back(record)

        @event.listens_for(engine.pool, "invalidate")
        def _invalidated(_dbapi, record, _exception):  # pragma: no cover - pool hook
            _give_back(record)

        event.listen(engine, "before_cursor_execute", _refuse_writes)
        return engine
    connect_args = {"options": pg_options(timeouts)} if timeouts else {}
    engine = create_engine(
        url, pool_size=10, max_overflow=20, pool_pre_ping=True, connect_args=connect_args
    )
    event.listen(engine, "before_cursor_execute", _refuse_writes)
    return engine


def wait_for_database(engine: Engine, *, seconds: float) -> None:
    """Return once the database answers; retry with back-off for up to `seconds`, then raise
    DatabaseUnreachable naming the last error (a start waits for its database, never crashes
    on the first refused connection)."""
    deadline = time.monotonic() + seconds
    delay, attempts = 0.1, 0
    while True:
        attempts += 1
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
            return
        except (OperationalError, InterfaceError) as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DatabaseUnreachable(
                    f"the database did not answer within {seconds:g} s ({attempts} attempts); "
                    f"last error: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                ) from exc
            log.warning("database not answering yet; retrying", error=type(exc).__name__)
            time.sleep(min(delay, left))
            delay = min(delay * 2, 2.0)


class DatabaseUnreachable(RuntimeError):
    """The database did not answer at start within the configured wait."""


def create_schema(engine: Engine, *, upgrade: bool = False) -> None:
    """Migrate the gateway's tables (gateway.migrations), then set up the ledger's.

    An empty database is migrated to head; an older schema only with `upgrade`, else
    gateway.migrations.SchemaOutdated is raised and nothing is changed.
    """
    from gateway.migrations import migrate
    from ledger import store as ledger_store

    migrate(engine, upgrade=upgrade)
    ledger_store.create_schema(engine)


BOOTSTRAP_LOCK = 7232


@contextmanager
def bootstrap_lock(engine: Engine) -> Iterator[None]:
    """Hold PostgreSQL's start-up lock (a session advisory lock on a connection of its own)
    across the bootstrap's several commits; waits without limit for a process starting before.
    Nothing on SQLite, whose write transactions are serialised already."""
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("SET lock_timeout = 0")
        conn.exec_driver_sql("SET statement_timeout = 0")
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({BOOTSTRAP_LOCK})")
        conn.commit()
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({BOOTSTRAP_LOCK})")
            conn.commit()
            conn.invalidate()  # its session settings differ from the pool's: never reused


def database_unavailable(exc: Exception) -> Problem:
    """Return the 503 problem for a database that could not answer."""
    return Problem(
        503,
        "database-unavailable",
        "Database unavailable",
        f"the database could not complete the request ({type(exc).__name__}); nothing was "
        "changed or delivered; retry later",
    )


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session; roll back on any error and turn database outages into 503 problems."""
    session = factory()
    try:
        yield session
    except (OperationalError, InterfaceError) as exc:
        session.rollback()
        raise database_unavailable(exc) from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def fetch(
    session: Session, model: type[T], ident: str, *, kind: str, for_update: bool = False
) -> T:
    """Return the row of `model` with primary key `ident`, else raise a 404 naming `kind`.

    With `for_update` the row is locked until the transaction ends and re-read from the
    database, so that a lock is never taken over stale attributes.
    """
    query = select(model).where(model.__mapper__.primary_key[0] == ident)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    found = session.execute(query).scalar_one_or_none()
    if found is None:
        raise not_found(kind, ident)
    return found
