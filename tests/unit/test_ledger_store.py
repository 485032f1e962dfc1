"""ledger.store and ledger.export against SQLite and PostgreSQL: dense, chained, transactional."""

import json
import os
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, event, text, update
from sqlalchemy.exc import DBAPIError

from ledger.canonical import b64url_decode, canonical_json
from ledger.checkpoint import verify_checkpoint
from ledger.entry import GENESIS_PREV, entry_hash
from ledger.errors import LedgerError, LedgerVerificationError
from ledger.export import export
from ledger.keys import Signer, public_key_from_jwk
from ledger.merkle import leaf_hash, root_of, verify_consistency, verify_inclusion
from ledger.store import (
    active_kid,
    append,
    count,
    covering_checkpoint,
    create_schema,
    cut_checkpoint,
    get_entry,
    head,
    iter_entries,
    latest_checkpoint,
    ledger_entries,
)
from ledger.store import consistency_proof as store_consistency_proof
from ledger.store import inclusion_proof as store_inclusion_proof
from ledger.verify import verify_export

SIGNER = Signer.generate()
T0 = datetime(2026, 11, 21, 20, 10, tzinfo=UTC)

_DATABASES = os.environ.get("DSGW_TEST_DATABASES")
_WANTED = {d.strip().lower() for d in (_DATABASES or "sqlite,postgresql").split(",")}


def _sqlite_engine(path):
    """An engine set up as the gateway's: SQLite transactions begin IMMEDIATE (write-locked)."""
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@pytest.fixture(scope="module")
def postgres():
    from tests.support.pg import PostgresCluster

    with PostgresCluster() as pg:
        yield pg


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.skipif("sqlite" not in _WANTED, reason="off")),
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(
                "postgresql" not in _WANTED,
                reason=f"DSGW_TEST_DATABASES={_DATABASES!r} does not include postgresql",
            ),
        ),
    ]
)
def engine(request, tmp_path):
    if request.param == "sqlite":
        engine = _sqlite_engine(tmp_path / "ledger.db")
    else:
        pg = request.getfixturevalue("postgres")
        name = f"ledger_{os.getpid()}_{abs(hash(request.node.nodeid)) % 10**8}"
        engine = create_engine(pg.create_database(name), pool_size=10)
    create_schema(engine)
    yield engine
    engine.dispose()
    if request.param == "postgresql":
        request.getfixturevalue("postgres").drop_database(name)


def _drop_guards(conn) -> None:
    """Remove the append-only triggers, as someone with DDL rights on the database could."""
    if conn.dialect.name == "sqlite":
        names = conn.execute(text("select name from sqlite_master where type = 'trigger'"))
        for (name,) in names.all():
            conn.execute(text(f"drop trigger {name}"))
    else:
        for table in ("ledger_entries", "ledger_head", "ledger_tree", "ledger_checkpoints"):
            conn.execute(text(f"alter table {table} disable trigger user"))


def _append(conn, i: int, signer: Signer = SIGNER):
    return append(
        conn, type="exchange.decided", data={"i": i}, time=T0 + timedelta(seconds=i), signer=signer
    )


def test_schema_starts_empty_at_the_genesis_head_and_is_idempotent(engine):
    create_schema(engine)
    create_schema(engine)
    with engine.connect() as conn:
        assert head(conn) == (0, GENESIS_PREV)
        assert count(conn) == 0
        assert conn.execute(text("select count(*) from ledger_head")).scalar_one() == 1


def test_appends_across_transactions_are_dense_and_chained(engine):
    appended = []
    for batch in ([1], [2, 3], [4, 5, 6]):
        with engine.begin() as conn:
            appended += [_append(conn, i) for i in batch]
    with engine.connect() as conn:
        stored = list(iter_entries(conn))
        assert head(conn) == (6, stored[-1].hash)
        assert count(conn) == 6
    assert stored == appended
    assert [e.seq for e in stored] == [1, 2, 3, 4, 5, 6]
    prev = GENESIS_PREV
    public_key = public_key_from_jwk(SIGNER.public_jwk())
    for entry in stored:
        assert entry.prev == prev
        assert entry.hash == entry_hash(entry.body)
        public_key.verify(b64url_decode(entry.sig), canonical_json(entry.body))
        prev = entry.hash


def test_rolled_back_transaction_leaves_no_entry_and_no_gap(engine):
    with engine.begin() as conn:
        first = _append(conn, 1)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        _append(conn, 2)
        _append(conn, 3)
        raise RuntimeError("the state change failed after its entries were appended")
    with engine.connect() as conn:
        assert head(conn) == (1, first.hash)
        assert count(conn) == 1
    with engine.begin() as conn:
        second = _append(conn, 4)
    assert (second.seq, second.prev) == (2, first.hash)


def test_append_does_not_commit_the_callers_transaction(engine):
    conn = engine.connect()
    try:
        conn.begin()
        _append(conn, 1)
        conn.rollback()
    finally:
        conn.close()
    with engine.connect() as conn:
        assert count(conn) == 0


def test_concurrent_appends_queue_up_and_stay_dense(engine):
    threads, per_thread = 4, 8
    errors: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            for j in range(per_thread):
                with engine.begin() as conn:
                    _append(conn, k * 100 + j)
        except BaseException as exc:  # reported below
            errors.append(exc)

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        seqs = [e.seq for e in iter_entries(conn)]
        prevs = [(e.prev, e.hash) for e in iter_entries(conn)]
    assert seqs == list(range(1, threads * per_thread + 1))
    assert all(prevs[i + 1][0] == prevs[i][1] for i in range(len(prevs) - 1))


def test_iter_entries_streams_ranges_in_order_across_batches(engine):
    with engine.begin() as conn:
        for i in range(1, 8):
            _append(conn, i)
    with engine.connect() as conn:
        assert [e.seq for e in iter_entries(conn, batch=3)] == [1, 2, 3, 4, 5, 6, 7]
        assert [e.seq for e in iter_entries(conn, 3, 6, batch=2)] == [3, 4, 5]
        assert [e.seq for e in iter_entries(conn, 6, batch=1)] == [6, 7]
        assert list(iter_entries(conn, 8)) == []
        assert get_entry(conn, 4).data == {"i": 4}
        assert get_entry(conn, 99) is None


def test_body_column_holds_the_canonical_json_text(engine):
    with engine.begin() as conn:
        entry = append(conn, type="x.y", data={"b": 1, "a": "数据"}, time=T0, signer=SIGNER)
        stored = conn.execute(ledger_entries.select()).one()
    assert stored.body == canonical_json(entry.body).decode("utf-8")
    assert (stored.seq, stored.time, stored.type, stored.kid) == (1, entry.time, "x.y", SIGNER.kid)


def test_append_without_a_schema_says_so(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    create_schema(engine)
    with engine.begin() as conn:
        _drop_guards(conn)
        conn.execute(text("delete from ledger_head"))
    with pytest.raises(LedgerError, match="create_schema"), engine.begin() as conn:
        _append(conn, 1)
    engine.dispose()


# -- export ---------------------------------------------------------------------------------------


def test_export_writes_canonical_lines_and_a_manifest_that_verifies(engine, tmp_path):
    with engine.begin() as conn:
        entries = [_append(conn, i) for i in range(1, 4)]
    with engine.connect() as conn:
        manifest = export(
            conn, tmp_path / "out", public_jwks=[], signer=SIGNER, origin="test.dsgw/ledger", now=T0
        )
    lines = (tmp_path / "out" / "entries.jsonl").read_bytes()
    assert lines == b"".join(canonical_json(e.to_json()) + b"\n" for e in entries)
    assert manifest == json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert (manifest["size"], manifest["head"], manifest["kid"]) == (
        3,
        entries[-1].hash,
        SIGNER.kid,
    )
    assert verify_export(tmp_path / "out").size == 3


def test_export_publishes_only_public_key_members(engine, tmp_path):
    with engine.begin() as conn:
        _append(conn, 1)
        export(
            conn,
            tmp_path / "out",
            public_jwks=[SIGNER.private_jwk()],
            signer=SIGNER,
            origin="o",
            now=T0,
        )
    keys = json.loads((tmp_path / "out" / "keys.json").read_text())["keys"]
    assert keys == [SIGNER.public_jwk()]


def test_export_refuses_entries_signed_by_an_unpublished_key(engine, tmp_path):
    retired = Signer.generate()
    with engine.begin() as conn:
        _append(conn, 1, signer=retired)
    with pytest.raises(LedgerError, match=retired.kid), engine.connect() as conn:
        export(conn, tmp_path / "out", public_jwks=[], signer=SIGNER, origin="o", now=T0)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_export_refuses_to_seal_a_damaged_database(engine, tmp_path):
    with engine.begin() as conn:
        for i in range(1, 4):
            _append(conn, i)
        damaged = get_entry(conn, 2).body | {"data": {"i": 999}}
        _drop_guards(conn)
        conn.execute(
            update(ledger_entries).where(ledger_entries.c.seq == 2).values(body=json.dumps(damaged))
        )
    with pytest.raises(LedgerVerificationError) as info, engine.connect() as conn:
        export(conn, tmp_path / "out", public_jwks=[], signer=SIGNER, origin="o", now=T0)
    assert (info.value.seq, info.value.check) == (2, "hash")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_export_refuses_a_head_that_points_past_the_entries(engine, tmp_path):
    with engine.begin() as conn:
        for i in range(1, 4):
            _append(conn, i)
        _drop_guards(conn)
        conn.execute(ledger_entries.delete().where(ledger_entries.c.seq == 3))
    with pytest.raises(LedgerVerificationError) as info, engine.connect() as conn:
        export(conn, tmp_path / "out", public_jwks=[], signer=SIGNER, origin="o", now=T0)
    assert (info.value.seq, info.value.check) == (3, "seq")


def test_a_later_export_into_the_same_folder_extends_the_earlier_one(engine, tmp_path):
    out = tmp_path / "out"
    with engine.begin() as conn:
        for i in range(1, 3):
            _append(conn, i)
        earlier = export(conn, out, public_jwks=[], signer=SIGNER, origin="o", now=T0)
        for i in range(3, 6):
            _append(conn, i)
        later = export(conn, out, public_jwks=[], signer=SIGNER, origin="o", now=T0)
    assert verify_export(out).size == later["size"] == 5
    lines = (out / "entries.jsonl").read_text().splitlines()
    assert json.loads(lines[earlier["size"] - 1])["hash"] == earlier["head"]
    assert sorted(p.name for p in out.iterdir()) == [
        "checkpoints.jsonl",
        "entries.jsonl",
        "keys.json",
        "manifest.json",
    ]


# -- storage that refuses rewriting ---------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "update ledger_entries set type = 'x.forged' where seq = 2",
        "delete from ledger_entries where seq = 3",
        "delete from ledger_entries",
        "delete from ledger_head",
        "update ledger_head set seq = 1",
        "update ledger_tree set hash = 'ab' where node = 0",
        "delete from ledger_tree",
        "update ledger_checkpoints set root = 'ab'",
        "delete from ledger_checkpoints",
    ],
)
def test_the_database_refuses_to_rewrite_the_ledger(engine, statement):
    with engine.begin() as conn:
        for i in range(1, 4):
            _append(conn, i)
        cut_checkpoint(conn, signer=SIGNER, origin="test.dsgw/ledger", time=T0)
    with pytest.raises(DBAPIError, match="ledger"), engine.begin() as conn:
        conn.execute(text(statement))
    with engine.connect() as conn:
        assert head(conn)[0] == count(conn) == 3
        assert latest_checkpoint(conn)["size"] == 3


def test_the_database_refuses_truncate_on_postgresql(engine):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("truncate ledger_entries cascade"))


def test_the_database_refuses_a_gap_or_a_reused_seq(engine):
    with engine.begin() as conn:
        entry = _append(conn, 1)
    row = {
        "time": entry.time,
        "type": entry.type,
        "body": entry.canonical.decode(),
        "sig": entry.sig,
        "kid": entry.kid,
    }
    for seq, digest in ((3, "c" * 64), (1, "d" * 64)):
        with pytest.raises(DBAPIError, match="next seq"), engine.begin() as conn:
            conn.execute(ledger_entries.insert().values(seq=seq, hash=digest, **row))


def test_checkpoints_sign_the_rfc_9162_root_and_proofs_verify_against_them(engine):
    with engine.begin() as conn:
        entries = [_append(conn, i) for i in range(1, 8)]
        first = cut_checkpoint(conn, signer=SIGNER, origin="test.dsgw/ledger", time=T0)
        assert cut_checkpoint(conn, signer=SIGNER, origin="test.dsgw/ledger", time=T0) is None
        entries += [_append(conn, i) for i in range(8, 20)]
        second = cut_checkpoint(conn, signer=SIGNER, origin="test.dsgw/ledger", time=T0)
    leaves = [leaf_hash(e.canonical) for e in entries]
    assert (first["size"], second["size"]) == (7, 19)
    assert bytes.fromhex(second["root"]) == root_of(leaves)
    cp, kid = verify_checkpoint(second["note"], {SIGNER.kid: SIGNER.public_key()})
    assert (cp.size, cp.root, kid) == (19, root_of(leaves), SIGNER.kid)
    with engine.connect() as conn:
        assert covering_checkpoint(conn, 5)["size"] == 7
        assert covering_checkpoint(conn, 8)["size"] == 19
        assert covering_checkpoint(conn, 20) is None
        for seq in (1, 7, 12, 19):
            proof = store_inclusion_proof(conn, seq, 19)
            verify_inclusion(leaves[seq - 1], seq - 1, 19, proof, cp.root)
        proof = store_consistency_proof(conn, 7, 19)
    verify_consistency(7, 19, root_of(leaves[:7]), cp.root, proof)


def test_a_ledger_from_before_checkpoints_is_upgraded_in_place(engine):
    with engine.begin() as conn:
        for i in range(1, 4):
            _append(conn, i)
        _drop_guards(conn)
        if conn.dialect.name == "postgresql":
            for table in ("ledger_entries", "ledger_head", "ledger_tree", "ledger_checkpoints"):
                conn.execute(text(f"alter table {table} enable trigger user"))
            conn.execute(text("drop function ledger_head_forward() cascade"))
        conn.execute(text("drop index ledger_entries_type"))
        conn.execute(text("alter table ledger_head drop column kid"))
    create_schema(engine)
    with engine.begin() as conn:
        assert active_kid(conn) == SIGNER.kid
        assert _append(conn, 4).seq == 4
        with pytest.raises(LedgerError, match="active key"):
            _append(conn, 5, signer=Signer.generate())


# -- group commit ---------------------------------------------------------------------------------


def test_group_commit_batches_concurrent_appends_densely_and_refuses_bad_items(engine, tmp_path):
    from ledger.group import GroupCommitter

    committer = GroupCommitter(engine, SIGNER, max_batch=50)
    results: list = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        for i in range(20):
            bad = n == 3 and i == 5
            try:
                entry = committer.append(
                    type="bad type!" if bad else "load.test", data={"n": n, "i": i}, time=T0
                )
            except ValueError as exc:
                entry = exc
            with lock:
                results.append(entry)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    committer.close()
    entries = [r for r in results if not isinstance(r, ValueError)]
    assert len(entries) == 16 * 20 - 1
    assert sum(isinstance(r, ValueError) for r in results) == 1
    assert sorted(e.seq for e in entries) == list(range(1, len(entries) + 1))
    with engine.connect() as conn:
        assert head(conn)[0] == count(conn) == len(entries)
        stored = {e.seq: e.hash for e in iter_entries(conn)}
        export(conn, tmp_path / "out", public_jwks=[], signer=SIGNER, origin="o", now=T0)
    assert all(stored[e.seq] == e.hash for e in entries)
    assert verify_export(tmp_path / "out").size == len(entries)


def test_group_commit_joins_claims_and_writes_to_entries_and_isolates_a_failing_item(engine):
    """An item's claim decides whether it is appended (refused: no entry, no seq, nothing of it
    written); its `after` write commits with its entry; an item whose write fails fails alone."""
    from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update

    from ledger.group import GroupCommitter

    meta = MetaData()
    quota = Table("quota", meta, Column("id", Integer, primary_key=True), Column("used", Integer))
    seen = Table("seen", meta, Column("seq", Integer, primary_key=True), Column("what", String))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(quota).values(id=1, used=0))
    batches: list[int] = []
    committer = GroupCommitter(engine, SIGNER, on_batch=batches.append)

    def claim(conn) -> bool:  # at most 3 uses of the quota
        bump = update(quota).where(quota.c.id == 1, quota.c.used < 3)
        return conn.execute(bump.values(used=quota.c.used + 1)).rowcount == 1

    def keep(what: str):
        def after(conn, entry) -> None:
            if what == "boom":
                raise RuntimeError("the item's own write failed")
            conn.execute(insert(seen).values(seq=entry.seq, what=what))

        return after

    results: list = []
    lock = threading.Lock()

    def one(i: int) -> None:
        what = "boom" if i == 2 else f"use-{i}"
        try:
            got = committer.submit(
                type="quota.used", data={"i": i}, time=T0, claim=claim, after=keep(what)
            )
        except RuntimeError as exc:
            got = exc
        with lock:
            results.append(got)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    committer.close()
    entries = [r for r in results if r is not None and not isinstance(r, Exception)]
    assert sum(isinstance(r, RuntimeError) for r in results) == 1  # only the failing item
    assert len(entries) == 3 and results.count(None) == 4  # the quota held: 3 uses, 4 refused
    with engine.connect() as conn:
        assert conn.execute(select(quota.c.used)).scalar_one() == 3
        kept = dict(conn.execute(select(seen.c.seq, seen.c.what)).all())
        assert head(conn)[0] == count(conn) == 3
    assert sorted(kept) == sorted(e.seq for e in entries) == [1, 2, 3]
    assert sum(batches) >= 8 - 1  # every committed batch was reported


def test_group_commit_runs_the_writes_items_return_as_one_statement_with_their_entries(engine):
    """`after` may return its write (statement, parameters): a batch's writes of one statement
    run as one executemany in the batch's transaction, each row naming its own entry; an item
    whose returned write fails leaves neither its row nor its entry."""
    import time

    from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

    from ledger.group import GroupCommitter

    meta = MetaData()
    seen = Table("seen2", meta, Column("seq", Integer, primary_key=True), Column("what", String))
    meta.create_all(engine)
    statement = insert(seen)
    many: list[int] = []

    def count_many(_conn, _cursor, sql, params, _context, executemany):
        if sql.startswith("INSERT INTO seen2") and executemany:
            many.append(len(params))

    event.listen(engine, "before_cursor_execute", count_many)
    committer = GroupCommitter(engine, SIGNER)
    gate, holding = threading.Event(), threading.Event()

    def hold(_conn, _entry) -> None:
        holding.set()
        gate.wait(5)

    # The first item holds the committer until the six below are queued: they make one batch.
    first = threading.Thread(
        target=lambda: committer.submit(type="held", data={}, time=T0, after=hold)
    )
    first.start()
    assert holding.wait(5)

    def one(what: str) -> None:
        committer.submit(
            type="seen", data={"what": what}, time=T0,
            after=lambda _conn, entry: (statement, {"seq": entry.seq, "what": what}),
        )  # fmt: skip

    threads = [threading.Thread(target=one, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    gate.set()
    for t in [first, *threads]:
        t.join()
    with engine.begin() as conn:  # the next entry's seq is taken in seen2: its write fails
        conn.execute(insert(seen).values(seq=8, what="taken"))
    with pytest.raises(Exception):  # noqa: B017 - the driver's integrity error
        committer.submit(type="seen", data={"what": "x"}, time=T0,
                         after=lambda _c, e: (statement, {"seq": e.seq, "what": "x"}))  # fmt: skip
    committer.close()
    event.remove(engine, "before_cursor_execute", count_many)
    with engine.connect() as conn:
        rows = dict(conn.execute(select(seen.c.seq, seen.c.what)).all())
        entries = {e.seq: e for e in iter_entries(conn)}
        assert head(conn)[0] == count(conn) == 7  # the failed item took no seq
    assert 6 in many  # the six rows went in one statement
    assert {s: w for s, w in rows.items() if s != 8} == {
        seq: entries[seq].data["what"] for seq in range(2, 8)
    }
    assert rows[8] == "taken"
