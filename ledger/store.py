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
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    func,
    insert,
    select,
    text,
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
    Index("ledger_entries_type", "type"),
)

ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    # The kid of the key that must sign the next entry (None until the first entry).
    Column("kid", String(64), nullable=True),
    CheckConstraint("id = 1", name="ledger_head_single_row"),
)

# The Merkle tree (RFC 9162) over the entries, kept as its perfect aligned subtrees: the node
# (level, idx) is the hash of leaves [idx * 2**level, (idx + 1) * 2**level), level 0 the leaf
# hashes, stored under the single key node = level * 2**48 + idx (one indexed IN per proof).
# Nodes are derived from the entries and only ever added (ledger.merkle.NodeSource).
ledger_tree = Table(
    "ledger_tree",
    metadata,
    Column("node", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", String(64), nullable=False),
)
NODE_LEVEL = 1 << 48


# Signed checkpoints (C2SP tlog-checkpoint notes), one per tree size.
ledger_checkpoints = Table(
    "ledger_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", String(64), nullable=False),
    Column("time", String(32), nullable=False),
    Column("kid", String(64), nullable=False),
    Column("note", Text, nullable=False),
)

BATCH = 1000
APPEND_ONLY = ("ledger_entries", "ledger_tree", "ledger_checkpoints")


def create_schema(engine: Engine) -> None:
    """Create the ledger's tables, head row (seq 0, GENESIS_PREV) and guard triggers if missing."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several gateway processes may start at once on one database: each waits its turn
            # (no lock or statement limit for this set-up transaction).
            conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
            conn.execute(text("SELECT pg_advisory_xact_lock(7231)"))
        metadata.create_all(conn)
        _insert_head_if_absent(conn)
        _upgrade(conn)
        _create_triggers(conn)


def _upgrade(conn: Connection) -> None:
    """Bring a ledger created before checkpoints (issue 2's schema) up to this one, in place.

    Adds ledger_head.kid (the active key: the announced key if the last entry is a rotation,
    else the last entry's signer) and the index on ledger_entries.type. Runs before the guard
    triggers exist on such a database; a no-op on a current one.
    """
    from sqlalchemy import inspect

    columns = {c["name"] for c in inspect(conn).get_columns("ledger_head")}
    if "kid" not in columns:
        conn.exec_driver_sql("ALTER TABLE ledger_head ADD COLUMN kid VARCHAR(64)")
        seq = conn.execute(select(ledger_head.c.seq).where(ledger_head.c.id == 1)).scalar_one()
        last = get_entry(conn, int(seq)) if seq else None
        if last is not None:
            kid = _announced_kid(last.data) if last.type == KEY_ROTATED else last.kid
            conn.execute(update(ledger_head).where(ledger_head.c.id == 1).values(kid=kid))
    conn.exec_driver_sql("CREATE INDEX IF NOT EXISTS ledger_entries_type ON ledger_entries (type)")


def _create_triggers(conn: Connection) -> None:
    """Refuse UPDATE and DELETE (and TRUNCATE) of the ledger in the database itself.

    ledger_entries, ledger_tree and ledger_checkpoints only grow. A new entry must take the seq
    after the last one (no gap, no reuse); the head only moves forward, to an entry that exists
    with that hash, and is never deleted. Someone with the rights to drop triggers can still
    rewrite the database; the signatures, the chain and the signed checkpoints catch that.
    """
    if conn.dialect.name == "sqlite":
        for table in APPEND_ONLY:
            for op in ("UPDATE", "DELETE"):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'ledger: {op} on {table} is refused: the ledger "
                    "is append-only'); END"
                )
        conn.exec_driver_sql(
            "CREATE TRIGGER IF NOT EXISTS ledger_entries_dense BEFORE INSERT ON ledger_entries "
            "WHEN NEW.seq <> COALESCE((SELECT max(seq) FROM ledger_entries), 0) + 1 "
            "BEGIN SELECT RAISE(ABORT, 'ledger: an entry must take the next seq after the "
            "head (no gap, no reuse)'); END"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER IF NOT EXISTS ledger_head_no_delete BEFORE DELETE ON ledger_head "
            "BEGIN SELECT RAISE(ABORT, 'ledger: DELETE on ledger_head is refused'); END"
        )
        conn.exec_driver_sql(
            "CREATE TRIGGER IF NOT EXISTS ledger_head_forward BEFORE UPDATE ON ledger_head "
            "WHEN NEW.id <> OLD.id OR NEW.seq <= OLD.seq OR NOT EXISTS (SELECT 1 FROM "
            "ledger_entries WHERE seq = NEW.seq AND hash = NEW.hash) "
            "BEGIN SELECT RAISE(ABORT, 'ledger: the head only moves forward to an existing "
            "entry'); END"
        )
        return
    if conn.dialect.name != "postgresql":  # pragma: no cover - other engines: no guard
        return
    conn.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION ledger_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'ledger: %% on %% is refused: the ledger is append-only', "
        "TG_OP, TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation'; END $$"
    )
    conn.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION ledger_entries_dense() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF NEW.seq <> COALESCE((SELECT max(seq) FROM ledger_entries), 0) + 1 THEN "
        "RAISE EXCEPTION 'ledger: entry %% must take the next seq after the head (no gap, no "
        "reuse)', NEW.seq USING ERRCODE = 'integrity_constraint_violation'; END IF; "
        "RETURN NEW; END $$"
    )
    conn.exec_driver_sql(
        "CREATE OR REPLACE FUNCTION ledger_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF NEW.id <> OLD.id OR NEW.seq <= OLD.seq OR NOT EXISTS (SELECT 1 FROM "
        "ledger_entries WHERE seq = NEW.seq AND hash = NEW.hash) THEN "
        "RAISE EXCEPTION 'ledger: the head only moves forward to an existing entry' "
        "USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NEW; END $$"
    )
    triggers = [
        *(
            (f"{t}_no_rewrite", t, "BEFORE UPDATE OR DELETE", "ROW", "ledger_refuse")
            for t in APPEND_ONLY
        ),
        *(
            (f"{t}_no_truncate", t, "BEFORE TRUNCATE", "STATEMENT", "ledger_refuse")
            for t in (*APPEND_ONLY, "ledger_head")
        ),
        ("ledger_entries_dense", "ledger_entries", "BEFORE INSERT", "ROW", "ledger_entries_dense"),
        ("ledger_head_no_delete", "ledger_head", "BEFORE DELETE", "ROW", "ledger_refuse"),
        ("ledger_head_forward", "ledger_head", "BEFORE UPDATE", "ROW", "ledger_head_forward"),
    ]
    for name, table, when, level, function in triggers:
        conn.exec_driver_sql(
            f"CREATE OR REPLACE TRIGGER {name} {when} ON {table} "
            f"FOR EACH {level} EXECUTE FUNCTION {function}()"
        )


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
_HEAD = select(ledger_head.c.seq, ledger_head.c.hash, ledger_head.c.kid).where(
    ledger_head.c.id == 1
)
_LOCK_HEAD = _HEAD.with_for_update()
_INSERT_ENTRY = insert(ledger_entries)
_MOVE_HEAD = (
    update(ledger_head)
    .where(ledger_head.c.id == 1, ledger_head.c.seq == bindparam("old_seq"))
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"), kid=bindparam("new_kid"))
)


def append(conn: Connection, *, type: str, data: dict, time: datetime, signer: Signer) -> Entry:
    """Append an entry in the caller's transaction and return it; never commits.

    Locks the head row, builds entry head.seq + 1 chained to head.hash, inserts it and moves
    the head. If the caller rolls back, the entry and the head move are undone together.
    """
    row = conn.execute(_LOCK_HEAD).first()
    if row is None:
        raise LedgerError("the ledger has no head row: run ledger.store.create_schema(engine)")
    seq, prev, active = row
    if active is not None and active != signer.kid:
        raise LedgerError(
            f"the key {signer.kid} may not sign entry {seq + 1}: the ledger's active key is "
            f"{active} (a retired key, or a key this ledger never announced)"
        )
    next_kid = signer.kid
    if type == KEY_ROTATED:
        next_kid = _announced_kid(data)
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
    moved = conn.execute(
        _MOVE_HEAD,
        {"old_seq": seq, "new_seq": entry.seq, "new_hash": entry.hash, "new_kid": next_kid},
    )
    if moved.rowcount != 1:  # pragma: no cover - only without the lock the callers must take
        raise LedgerError(
            f"the ledger head moved past {seq} during an append: the head row was not locked"
        )
    return entry


KEY_ROTATED = "ledger.key-rotated"


def _announced_kid(data: dict) -> str:
    """Return the kid of the public key a rotation entry announces; LedgerError if it is none."""
    from ledger.keys import jwk_thumbprint, public_key_from_jwk

    jwk = data.get("key") if isinstance(data, dict) else None
    try:
        public_key_from_jwk(jwk)
    except LedgerError as exc:
        raise LedgerError(f"a key rotation must announce a public Ed25519 JWK: {exc}") from exc
    if "d" in jwk:
        raise LedgerError("a key rotation must announce the public key, never the private one")
    return jwk_thumbprint(jwk)


def append_many(
    conn: Connection, items: list[tuple[str, dict, datetime]], *, signer: Signer
) -> list[Entry | ValueError]:
    """Append several entries (type, data, time) in order in the caller's transaction.

    One head lock, one multi-row insert and one head move for the lot: what a group commit
    needs. Returns, per item, its Entry or the ValueError that refused it (an ill-formed type
    or data); refused items take no seq. Never commits.
    """
    row = conn.execute(_LOCK_HEAD).first()
    if row is None:
        raise LedgerError("the ledger has no head row: run ledger.store.create_schema(engine)")
    seq, prev, active = row
    if active is not None and active != signer.kid:
        raise LedgerError(
            f"the key {signer.kid} may not sign entry {seq + 1}: the ledger's active key is "
            f"{active} (a retired key, or a key this ledger never announced)"
        )
    out: list[Entry | ValueError] = []
    rows = []
    next_kid = signer.kid
    for type_, data, time in items:
        if next_kid != signer.kid:  # a rotation in the batch: later items need the new key
            out.append(ValueError("the batch's key was rotated by an earlier item"))
            continue
        try:
            if type_ == KEY_ROTATED:
                next_kid = _announced_kid(data)
            entry = build_entry(
                seq=seq + 1, time=time, type=type_, data=data, prev=prev, signer=signer
            )
        except (ValueError, LedgerError) as exc:
            out.append(exc if isinstance(exc, ValueError) else ValueError(str(exc)))
            continue
        rows.append(
            {
                "seq": entry.seq,
                "time": entry.time,
                "type": entry.type,
                "body": entry.canonical.decode("utf-8"),
                "hash": entry.hash,
                "sig": entry.sig,
                "kid": entry.kid,
            }
        )
        out.append(entry)
        seq, prev = entry.seq, entry.hash
    if rows:
        conn.execute(_INSERT_ENTRY, rows)
        moved = conn.execute(
            _MOVE_HEAD,
            {"old_seq": rows[0]["seq"] - 1, "new_seq": seq, "new_hash": prev, "new_kid": next_kid},
        )
        if moved.rowcount != 1:  # pragma: no cover - only without the lock
            raise LedgerError("the ledger head moved during an append: the head row was not locked")
    return out


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


KEY_TYPES = ("ledger.genesis", "ledger.key-rotated")


def key_chain(conn: Connection) -> list[dict]:
    """Return the public JWKs the ledger announced (genesis key, then each rotation's), in order.

    The last one is the key that must sign the next entry.
    """
    rows = conn.execute(
        select(ledger_entries.c.body)
        .where(ledger_entries.c.type.in_(KEY_TYPES))
        .order_by(ledger_entries.c.seq)
    )
    keys = []
    for (body,) in rows:
        jwk = json.loads(body)["data"].get("key")
        if isinstance(jwk, dict):
            keys.append(jwk)
    return keys


def _columns():
    return select(
        ledger_entries.c.seq, ledger_entries.c.body, ledger_entries.c.hash, ledger_entries.c.sig
    )


def _entry(row) -> Entry:
    return Entry(body=json.loads(row.body), hash=row.hash, sig=row.sig)


# -- Merkle tree and checkpoints (specs/ledger.md §10, §11) ---------------------------------------


def tree_size(conn: Connection) -> int:
    """Return the number of leaves the stored tree holds (entries 1..size)."""
    last = conn.execute(select(func.max(ledger_tree.c.node)).where(ledger_tree.c.node < NODE_LEVEL))
    value = last.scalar_one()
    return 0 if value is None else int(value) + 1


_NODES = select(ledger_tree.c.node, ledger_tree.c.hash).where(
    ledger_tree.c.node.in_(bindparam("nodes", expanding=True))
)


def node_source(conn: Connection):
    """Return a ledger.merkle.NodeSource reading the stored subtrees (one query per call)."""

    def source(keys) -> dict[tuple[int, int], bytes]:
        nodes = [level * NODE_LEVEL + idx for level, idx in keys]
        out: dict[tuple[int, int], bytes] = {}
        for i in range(0, len(nodes), 500):
            for node, h in conn.execute(_NODES, {"nodes": nodes[i : i + 500]}):
                out[divmod(int(node), NODE_LEVEL)] = bytes.fromhex(h)
        return out

    return source


def extend_tree(conn: Connection, upto: int) -> int:
    """Add the leaves of entries tree_size+1..upto and every subtree they complete; return upto.

    The caller holds the head lock (or otherwise serialises extenders); entries must exist.
    """
    from ledger.merkle import CompactRange, leaf_hash

    size = tree_size(conn)
    if upto <= size:
        return size
    rng = CompactRange.resume(size, node_source(conn))
    rows = []
    for entry in iter_entries(conn, size + 1, upto + 1):
        if entry.seq != rng.size + 1:
            raise LedgerError(f"entry {rng.size + 1} is missing: the ledger has a gap")
        for level, idx, h in rng.append(leaf_hash(entry.canonical)):
            rows.append({"node": level * NODE_LEVEL + idx, "hash": h.hex()})
        if len(rows) >= 5000:
            conn.execute(insert(ledger_tree), rows)
            rows = []
    if rows:
        conn.execute(insert(ledger_tree), rows)
    if rng.size != upto:
        raise LedgerError(f"entry {rng.size + 1} is missing: the ledger has a gap")
    return upto


def cut_checkpoint(conn: Connection, *, signer: Signer, origin: str, time: datetime) -> dict | None:
    """Sign a checkpoint of the whole ledger as it is now, in the caller's transaction.

    Returns the new checkpoint row, or None when the latest checkpoint already covers the head
    (or the ledger is empty). Locks the head row, so entries and checkpoints stay in step.
    """
    from ledger.canonical import rfc3339
    from ledger.checkpoint import sign_checkpoint
    from ledger.merkle import tree_root

    row = conn.execute(_LOCK_HEAD).first()
    if row is None:
        raise LedgerError("the ledger has no head row: run ledger.store.create_schema(engine)")
    size = int(row.seq)
    last = latest_checkpoint(conn)
    if size == 0 or (last is not None and last["size"] >= size):
        return None
    extend_tree(conn, size)
    root = tree_root(size, node_source(conn))
    values = {
        "size": size,
        "root": root.hex(),
        "time": rfc3339(time),
        "kid": signer.kid,
        "note": sign_checkpoint(origin, size, root, signer),
    }
    conn.execute(insert(ledger_checkpoints), values)
    return values


_CHECKPOINT_COLUMNS = (
    ledger_checkpoints.c.size,
    ledger_checkpoints.c.root,
    ledger_checkpoints.c.time,
    ledger_checkpoints.c.kid,
    ledger_checkpoints.c.note,
)


def latest_checkpoint(conn: Connection) -> dict | None:
    """Return the checkpoint of the largest size, or None."""
    row = conn.execute(
        select(*_CHECKPOINT_COLUMNS).order_by(ledger_checkpoints.c.size.desc()).limit(1)
    ).first()
    return None if row is None else _checkpoint(row)


def get_checkpoint(conn: Connection, size: int) -> dict | None:
    """Return the checkpoint of tree size `size`, or None."""
    row = conn.execute(
        select(*_CHECKPOINT_COLUMNS).where(ledger_checkpoints.c.size == size)
    ).first()
    return None if row is None else _checkpoint(row)


def covering_checkpoint(conn: Connection, seq: int) -> dict | None:
    """Return the first checkpoint whose tree holds entry `seq`, or None if none does yet."""
    row = conn.execute(
        select(*_CHECKPOINT_COLUMNS)
        .where(ledger_checkpoints.c.size >= seq)
        .order_by(ledger_checkpoints.c.size)
        .limit(1)
    ).first()
    return None if row is None else _checkpoint(row)


def iter_checkpoints(
    conn: Connection, upto: int | None = None, *, offset: int = 0, limit: int | None = None
) -> Iterator[dict]:
    """Yield the checkpoints in size order (those of size <= upto when given), skipping the
    first `offset` and at most `limit` of them when given."""
    query = select(*_CHECKPOINT_COLUMNS).order_by(ledger_checkpoints.c.size)
    if upto is not None:
        query = query.where(ledger_checkpoints.c.size <= upto)
    query = query.offset(offset).limit(limit)
    for row in conn.execute(query):
        yield _checkpoint(row)


def _checkpoint(row) -> dict:
    return {
        "size": int(row.size),
        "root": row.root,
        "time": row.time,
        "kid": row.kid,
        "note": row.note,
    }


def inclusion_proof(conn: Connection, seq: int, size: int) -> list[bytes]:
    """Return the RFC 9162 inclusion proof of entry `seq` in the tree of the first `size`."""
    from ledger.merkle import inclusion_proof as _proof

    return _proof(seq - 1, size, node_source(conn))


def consistency_proof(conn: Connection, old_size: int, new_size: int) -> list[bytes]:
    """Return the RFC 9162 consistency proof between the trees of `old_size` and `new_size`."""
    from ledger.merkle import consistency_proof as _proof

    return _proof(old_size, new_size, node_source(conn))


def active_kid(conn: Connection) -> str | None:
    """Return the kid of the key that must sign the next entry; None for an empty ledger."""
    row = conn.execute(_HEAD).first()
    if row is None:
        raise LedgerError("the ledger has no head row: run ledger.store.create_schema(engine)")
    return row.kid


def rotate_key(conn: Connection, *, old: Signer, new: Signer, time: datetime) -> Entry:
    """Append the `ledger.key-rotated` entry announcing `new`, signed by `old`; return it.

    `old` must be the ledger's active key and `new` a key it never used. From the next entry on,
    only `new` may sign; a verifier rejects anything `old` signs later.
    """
    row = conn.execute(_LOCK_HEAD).first()
    if row is None:
        raise LedgerError("the ledger has no head row: run ledger.store.create_schema(engine)")
    active = row.kid
    if active is not None and active != old.kid:
        raise LedgerError(
            f"the ledger's active key is {active}, not {old.kid}: only it can announce the next"
        )
    used = {old.kid, *(jwk.get("kid") for jwk in key_chain(conn))}
    if new.kid in used:
        raise LedgerError(f"the key {new.kid} was already used by this ledger; take a new one")
    return append(
        conn,
        type=KEY_ROTATED,
        data={"key": new.public_jwk(), "previous": old.kid},
        time=time,
        signer=old,
    )
