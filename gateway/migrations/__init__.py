"""The gateway's schema as Alembic migrations, run in place at start or by `dsgw db upgrade`.

Every change to a table of the gateway (a model under gateway/*/models.py) is a migration in
gateway/migrations/versions/, numbered after the last one:

1. change the model;
2. write the revision `NNNN_what.py` (down_revision = the previous head). Autogenerate may draft
   it (`alembic -x ... revision --autogenerate` needs an alembic.ini; or call
   alembic.autogenerate.produce_migrations against a database migrated to head), but the
   file is reviewed code: it must run on SQLite (no ALTER of a column: add columns with a
   default, or use op.batch_alter_table) and on PostgreSQL, and backfill what a new non-null
   column needs in existing rows;
3. tests/e2e/test_migrations.py fails until the migrations produce exactly the models
   (alembic's compare_metadata on a migrated database finds no difference).

Revision 0001 is the schema release ac7d7e6 made with create_all; a database made by that
release (tables, no alembic_version) is stamped 0001 and upgraded from there. The ledger's
tables and append-only triggers are not migrated here: ledger/ stays independent of the gateway,
and ledger.store.create_schema (idempotent) runs after the migrations.

No alembic.ini is needed at run time: the configuration is built here, and the migrations run
on the caller's connection in one transaction (PostgreSQL: under an advisory lock, so that
several processes starting at once migrate once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, text

HERE = Path(__file__).resolve().parent
BASELINE = "0001"
# pg_advisory_xact_lock key of schema migration (the ledger's set-up takes 7231).
MIGRATION_LOCK = 7230
UPGRADE_HINT = (
    "back up the database, then run `dsgw db upgrade` (with the same --state or "
    "--database-url), or start with `dsgw serve --upgrade` (DSGW_DB_UPGRADE=1)"
)


class SchemaOutdated(RuntimeError):
    """The database's schema is older (or other) than this gateway's: it refuses to start."""


@dataclass
class Outcome:
    """What a migration run found and did."""

    before: str | None  # the revision found; None: empty database; "legacy": pre-Alembic
    after: str | None
    applied: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """Return one line saying what was done."""
        found = {None: "empty database", "legacy": "pre-Alembic schema (release ac7d7e6)"}
        was = found.get(self.before, f"revision {self.before}")
        if not self.applied:
            return f"{was}: at head {self.after}, nothing to do"
        return f"{was}: applied {' -> '.join(self.applied)}; now at head {self.after}"


def target_metadata() -> MetaData:
    """Return the gateway's metadata with every table module imported."""
    from gateway import models_registry  # noqa: F401
    from gateway.core.db import Base

    return Base.metadata


def _ledger_tables() -> set[str]:
    from ledger import store as ledger_store

    return set(ledger_store.metadata.tables)


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """Leave the ledger's tables (and their indexes) to the ledger."""
    table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
    return table not in _ledger_tables()


def config() -> Config:
    """Return the Alembic configuration of the package's migrations (no ini file)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("path_separator", "os")
    return cfg


def head() -> str:
    """Return the head revision of the package's migrations."""
    found = ScriptDirectory.from_config(config()).get_current_head()
    assert found is not None
    return found


def current(conn: Connection) -> str | None:
    """Return the database's revision: None when empty, "legacy" when made by create_all."""
    revision = MigrationContext.configure(conn).get_current_revision()
    if revision is not None:
        return revision
    tables = set(inspect(conn).get_table_names())
    return "legacy" if tables & set(target_metadata().tables) else None


def _lock(conn: Connection) -> None:
    """Take the migration lock (PostgreSQL): processes starting together migrate one at a time.

    The session limits (gateway.core.db.make_engine) do not apply to this transaction: a start
    waits for the one migrating before it, and a long migration is not cut short."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
        conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def _path(start: str, end: str) -> list[str]:
    script = ScriptDirectory.from_config(config())
    revisions = list(script.iterate_revisions(end, start))
    return [r.revision for r in reversed(revisions) if r.revision != start]


def migrate(engine: Engine, *, upgrade: bool) -> Outcome:
    """Bring the gateway's tables to head: an empty database always, an older one when asked.

    Raise SchemaOutdated (having changed nothing) for an older schema without `upgrade`, and
    for a revision this gateway does not know (a newer release's database).
    """
    target = head()
    cfg = config()
    with engine.begin() as conn:
        _lock(conn)
        before = current(conn)
        if before == target:
            return Outcome(before, target)
        known = {r.revision for r in ScriptDirectory.from_config(cfg).walk_revisions()}
        if before not in (None, "legacy") and before not in known:
            raise SchemaOutdated(
                f"the database is at schema revision {before}, which this gateway does not know "
                f"(its head is {target}): it was migrated by a newer release; run that release"
            )
        if before is not None and not upgrade:
            shown = (
                "has a pre-Alembic schema (release ac7d7e6)"
                if before == "legacy"
                else f"is at schema revision {before}"
            )
            raise SchemaOutdated(
                f"the database {shown}; this gateway needs revision {target}: " + UPGRADE_HINT
            )
        cfg.attributes["connection"] = conn
        start = BASELINE if before == "legacy" else before
        if before == "legacy":
            command.stamp(cfg, BASELINE)
        applied = _path(start, target) if start else _path("base", target)
        command.upgrade(cfg, "head")
        return Outcome(before, target, applied)
