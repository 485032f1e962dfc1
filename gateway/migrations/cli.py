"""`dsgw db upgrade` and `dsgw db current`: the schema revision of a gateway database.

dsgw --state /var/lib/dsgw db upgrade        # the state folder's SQLite database
dsgw db upgrade --database-url postgresql+psycopg://gw@db/dsgw
dsgw db current
"""

import argparse
import sys
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError


def _engine(args: argparse.Namespace):
    from gateway.core.config import Settings
    from gateway.core.db import make_engine

    state = Path(args.state).resolve() if getattr(args, "state", None) else None
    settings = Settings.from_env(state_dir=state, database_url=args.database_url)
    url = settings.resolved_database_url
    if url.startswith("sqlite") and not args.database_url:
        settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return make_engine(url)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Migrate the database to head in place, then set up the ledger's tables and triggers."""
    from gateway.migrations import SchemaOutdated, migrate
    from ledger import store as ledger_store

    engine = _engine(args)
    try:
        outcome = migrate(engine, upgrade=True)
        ledger_store.create_schema(engine)
    except (SchemaOutdated, SQLAlchemyError) as exc:
        print(f"dsgw db upgrade: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"database {engine.url.render_as_string(hide_password=True)}")
    print(outcome.describe())
    return 0


def cmd_db_current(args: argparse.Namespace) -> int:
    """Print the database's schema revision and this gateway's head."""
    from gateway.migrations import current, head

    engine = _engine(args)
    try:
        with engine.connect() as conn:
            found = current(conn)
    except SQLAlchemyError as exc:
        print(f"dsgw db current: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    target = head()
    shown = {None: "none (empty database)", "legacy": "legacy (pre-Alembic, release ac7d7e6)"}
    print(f"database {engine.url.render_as_string(hide_password=True)}")
    print(f"current  {shown.get(found, found)}{' (head)' if found == target else ''}")
    print(f"head     {target}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register `db upgrade` and `db current` on the top-level subparsers."""
    db = sub.add_parser("db", help="the database schema: migrate in place, show the revision")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    for name, func, text in (
        ("upgrade", cmd_db_upgrade, "migrate the database schema to this release's head"),
        ("current", cmd_db_current, "print the database's schema revision and the head"),
    ):
        step = db_sub.add_parser(name, help=text)
        where = step.add_mutually_exclusive_group()
        # Also after the command (`dsgw db upgrade --state DIR`); SUPPRESS keeps the top-level
        # --state when this one is not given.
        where.add_argument("--state", default=argparse.SUPPRESS, help="state folder (SQLite)")
        where.add_argument(
            "--database-url", help="SQLAlchemy URL; default SQLite in the state folder"
        )
        step.set_defaults(func=func)
