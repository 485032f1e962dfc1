"""The ledger in the database: SQLAlchemy 2 Core tables and the one way to append.

Two tables with their own MetaData: `ledger_entries` (one row per entry, the body kept as its
canonical JSON text) and `ledger_head` (one row, id 1: the last seq and hash). `append` runs in
the caller's transaction, so an entry is written if and only if the state change it records is
committed; it locks the head row first (SELECT ... FOR UPDATE on PostgreSQL; SQLite callers run
their transactions as BEGIN IMMEDIATE), so concurrent appends queue up and seqs stay dense.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    func,
    insert,
    select,
    update,
)

from ledger.entry import GENESIS_PREV, Entry, build_entry
from ledger.errors import LedgerError
from ledger.keys import Signer

metadata = MetaData()

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("time", String(32), nullable=False),
    Column("type", String(128), nullable=False),
    Column("body", Text, nullable=False),  # the canonical (RFC 8785) JSON text of the body
    Column("hash", String(64), nullable=False, unique=True),
    Column("sig", String(128), nullable=False),
    Column("kid", String(64), nullable=False),
)

ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    CheckConstraint("id = 1", name="ledger_head_single_row"),
)

BATCH = 1000


def create_schema(engine: Engine) -> None:
    """Create the ledger's tables and its head row (seq 0, GENESIS_PREV) when missing."""
    metadata.create_all(engine)
    with engine.begin() as conn:
        _insert_head_if_absent(conn)


def _insert_head_if_absent(conn: Connection) -> None:
    values = {"id": 1, "seq": 0, "hash": GENESIS_PREV}
    dialect = conn.dialect.name
    if dialect in ("postgresql", "sqlite"):
        # ON CONFLICT DO NOTHING: two processes starting at once both succeed.
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        stmt = dialect_insert(ledger_head).values(values).on_conflict_do_nothing()
        conn.execute(stmt)
    elif conn.execute(select(ledger_head.c.id).where(ledger_head.c.id == 1)).first() is None:
        conn.execute(insert(ledger_head).values(values))


# Built once: constructing statements per call costs more than executing them.
_HEAD = select(ledger_head.c.seq, ledger_head.c.hash).where(ledger_head.c.id == 1)
_LOCK_HEAD = _HEAD.with_for_update()
_INSERT_ENTRY = insert(ledger_entries)
_MOVE_HEAD = (
    update(ledger_head)
    .where(ledger_head.c.id == 1, ledger_head.c.seq == bindparam("old_seq"))
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)


def append(conn: Connection, *, type: str, data: dict, time: datetime, signer: Signer) -> Entry:
    """Append an entry in the caller's transaction and return it; never commits.

    Locks the head row, builds entry head.seq + 1 chained to head.hash, inserts it and moves
    the head. If the caller rolls back, the entry and the head move are undone together.
    """
    row = conn.execute(_LOCK_HEAD).first()
    if row is None:
        raise LedgerError("the ledger has no head row: run ledger.store.create_schema(engine)")
    seq, prev = row
    entry = build_entry(seq=seq + 1, time=time, type=type, data=data, prev=prev, signer=signer)
    conn.execute(
        _INSERT_ENTRY,
        {
            "seq": entry.seq,
            "time": entry.time,
            "type": entry.type,
            "body": entry.canonical.decode("utf-8"),
            "hash": entry.hash,
            "sig": entry.sig,
            "kid": entry.kid,
        },
    )
    moved = conn.execute(_MOVE_HEAD, {"old_seq": seq, "new_seq": entry.seq, "new_hash": entry.hash})
    if moved.rowcount != 1:  # pragma: no cover - only without the lock the callers must take
        raise LedgerError(
            f"the ledger head moved past {seq} during an append: the head row was not locked"
        )
    return entry


def head(conn: Connection) -> tuple[int, str]:
    """Return (seq, hash) of the last entry; (0, GENESIS_PREV) for an empty ledger."""
    row = conn.execute(_HEAD).first()
    if row is None:
        raise LedgerError("the ledger has no head row: run ledger.store.create_schema(engine)")
    return int(row.seq), row.hash


def count(conn: Connection) -> int:
    """Return the number of entries."""
    return int(conn.execute(select(func.count()).select_from(ledger_entries)).scalar_one())


def get_entry(conn: Connection, seq: int) -> Entry | None:
    """Return entry `seq`, or None if there is none."""
    row = conn.execute(_columns().where(ledger_entries.c.seq == seq)).first()
    return None if row is None else _entry(row)


def iter_entries(
    conn: Connection, start: int = 1, stop: int | None = None, *, batch: int = BATCH
) -> Iterator[Entry]:
    """Yield the entries with start <= seq < stop (stop None: to the end), ordered by seq.

    Reads `batch` rows per query (keyset pagination), so memory does not grow with the log.
    """
    cursor = start
    while stop is None or cursor < stop:
        query = _columns().where(ledger_entries.c.seq >= cursor)
        if stop is not None:
            query = query.where(ledger_entries.c.seq < stop)
        rows = conn.execute(query.order_by(ledger_entries.c.seq).limit(batch)).all()
        for row in rows:
            yield _entry(row)
        if len(rows) < batch:
            return
        cursor = int(rows[-1].seq) + 1


def _columns():
    return select(
        ledger_entries.c.seq, ledger_entries.c.body, ledger_entries.c.hash, ledger_entries.c.sig
    )


def _entry(row) -> Entry:
    return Entry(body=json.loads(row.body), hash=row.hash, sig=row.sig)
