"""Offline ledger administration for `dsgw`: checkpoints on demand and signing-key rotation.

Both work on the state folder's key and database (or --database-url), with the gateway stopped
for a rotation: a running gateway keeps its old key in memory, and the ledger refuses what a
retired key signs (its appends fail with 503 evidence-unavailable until it is restarted).
"""

from __future__ import annotations

import json
import os
import sys

from sqlalchemy.exc import SQLAlchemyError

from gateway.core import clock
from gateway.core.config import Settings
from gateway.core.db import make_engine
from ledger import LedgerError, Signer, load_or_create_signer
from ledger import store as ledger_store


def _has_ledger(settings: Settings, command: str) -> bool:
    if settings.database_url is None and not (settings.state_dir / "gateway.db").exists():
        print(
            f"dsgw {command}: no ledger in {settings.state_dir} (pass --state or --database-url)",
            file=sys.stderr,
        )
        return False
    return True


def cut_checkpoint(settings: Settings) -> int:
    """Sign a checkpoint of the whole ledger; print it. Exit status 0, or 2 on failure."""
    if not _has_ledger(settings, "ledger checkpoint"):
        return 2
    engine = make_engine(settings.resolved_database_url)
    try:
        signer = load_or_create_signer(settings.gateway_key_path)
        with engine.begin() as conn:
            cp = ledger_store.cut_checkpoint(
                conn, signer=signer, origin=settings.origin, time=clock.now()
            )
            latest = cp or ledger_store.latest_checkpoint(conn)
    except (SQLAlchemyError, LedgerError, OSError) as exc:
        print(f"dsgw ledger checkpoint: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if latest is None:
        print("the ledger is empty: nothing to checkpoint")
        return 0
    print("signed a new checkpoint:" if cp else "the latest checkpoint already covers the head:")
    print(latest["note"], end="")
    return 0


def rotate_key(settings: Settings) -> int:
    """Replace the gateway key; the old key signs the entry announcing the new one.

    Order, so that a crash at any point can be finished by running the command again: the new
    key is written to `<key>.next` first; then the rotation entry is committed; then the old key
    file moves to keys/retired/<kid>.jwk and the new one takes its place.
    """
    if not _has_ledger(settings, "keys rotate"):
        return 2
    key_path = settings.gateway_key_path
    next_path = key_path.with_name(key_path.name + ".next")
    retired_dir = settings.keys_dir / "retired"
    engine = make_engine(settings.resolved_database_url)
    try:
        old = load_or_create_signer(key_path)
        new = load_or_create_signer(next_path)
        with engine.begin() as conn:
            active = ledger_store.active_kid(conn)
            if active == new.kid:
                entry = None  # announced by an earlier run that stopped before the files moved
            else:
                entry = ledger_store.rotate_key(conn, old=old, new=new, time=clock.now())
        retired_dir.mkdir(mode=0o700, exist_ok=True)
        os.replace(key_path, retired_dir / f"{old.kid}.jwk")
        os.replace(next_path, key_path)
    except (SQLAlchemyError, LedgerError, OSError) as exc:
        print(f"dsgw keys rotate: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    where = f"entry {entry.seq}" if entry else "an earlier run"
    print(f"rotated: {old.kid} -> {new.kid} (announced by {where}, signed by the old key)")
    print(f"the retired key is kept in {retired_dir / (old.kid + '.jwk')}; restart the gateway")
    print(json.dumps(Signer.public_jwk(new)))
    return 0
