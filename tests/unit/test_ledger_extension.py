"""`verify OLD NEW`: a later export extends an earlier one, proven by a consistency proof."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from ledger.cli import main
from ledger.errors import LedgerVerificationError
from ledger.export import export
from ledger.keys import Signer
from ledger.store import append, create_schema, cut_checkpoint
from ledger.verify import verify_extension

SIGNER = Signer.generate()
T0 = datetime(2026, 11, 21, 20, 10, tzinfo=UTC)


def _log(tmp_path: Path, name: str, sizes: list[int], rewrite: int | None = None) -> list[Path]:
    """Append entries to a fresh ledger, exporting after each size in `sizes`."""
    engine = create_engine(f"sqlite:///{tmp_path / (name + '.db')}")
    create_schema(engine)
    out = []
    with engine.begin() as conn:
        n = 0
        for size in sizes:
            while n < size:
                n += 1
                data = {"i": n, "rewritten": n == rewrite}
                append(conn, type="exchange.decided", data=data, time=T0, signer=SIGNER)
                if n % 3 == 0:
                    cut_checkpoint(conn, signer=SIGNER, origin="o.dsgw/ledger", time=T0)
            folder = tmp_path / f"{name}-{size}"
            export(
                conn,
                folder,
                public_jwks=[],
                signer=SIGNER,
                origin="o.dsgw/ledger",
                now=T0 + timedelta(hours=1),
            )
            out.append(folder)
    engine.dispose()
    return out


@pytest.mark.parametrize(("old_size", "new_size"), [(0, 5), (4, 4), (4, 11), (8, 16), (1, 2)])
def test_a_later_export_extends_an_earlier_one(tmp_path, old_size, new_size):
    old, new = _log(tmp_path, "log", [old_size, new_size])
    report = verify_extension(old, new)
    assert (report.old.size, report.new.size) == (old_size, new_size)


def test_a_rewritten_history_fails_naming_the_first_rewritten_entry(tmp_path, capsys):
    (old,) = _log(tmp_path, "log", [6])
    (new,) = _log(tmp_path, "forged", [12], rewrite=3)
    assert main(["verify", str(new)]) == 0  # on its own, the rewritten log is flawless
    with pytest.raises(LedgerVerificationError) as info:
        verify_extension(old, new)
    assert (info.value.seq, info.value.check) == (3, "consistency")
    capsys.readouterr()
    assert main(["verify", str(old), str(new)]) == 1
    assert "entry 3 of NEW: check 'consistency' failed" in capsys.readouterr().out


def test_a_shorter_new_export_is_no_extension(tmp_path):
    short, long = _log(tmp_path, "log", [3, 7])
    with pytest.raises(LedgerVerificationError, match="NEW is shorter than OLD"):
        verify_extension(long, short)


def test_a_log_of_another_origin_is_no_extension(tmp_path):
    (old,) = _log(tmp_path, "log", [3])
    engine = create_engine(f"sqlite:///{tmp_path / 'log.db'}")
    with engine.begin() as conn:
        export(
            conn, tmp_path / "other", public_jwks=[], signer=SIGNER, origin="x.dsgw/ledger", now=T0
        )
    engine.dispose()
    with pytest.raises(LedgerVerificationError, match="origin"):
        verify_extension(old, tmp_path / "other")
