"""Several processes append to one ledger, are killed with SIGKILL mid-flight, and restart:
no acknowledged entry is lost, no seq is skipped or reused, and the export verifies. Each
process appends either one transaction per entry or through a GroupCommitter (8 threads)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.core.db import make_engine
from ledger import load_or_create_signer
from ledger import store as ledger_store
from ledger.export import export
from ledger.verify import verify_export

REPO = Path(__file__).resolve().parents[2]
WORKERS = 4

WORKER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from gateway.core.db import make_engine
    from ledger import load_or_create_signer
    from ledger import store

    url, key, name, mode = sys.argv[1:5]
    engine = make_engine(url)
    signer = load_or_create_signer(key)
    if mode == "group":
        import threading
        from ledger.group import GroupCommitter

        committer = GroupCommitter(engine, signer)
        out = threading.Lock()

        def writer(t):
            i = 0
            while True:
                i += 1
                entry = committer.append(type="load.test", data={"worker": name, "t": t, "i": i},
                                         time=datetime.now(UTC))
                with out:  # one whole line per acknowledgement, threads never interleave
                    sys.stdout.write(f"{entry.seq} {entry.hash}\\n")
                    sys.stdout.flush()

        for t in range(8):
            threading.Thread(target=writer, args=(t,), daemon=True).start()
        threading.Event().wait()
    i = 0
    while True:
        i += 1
        with engine.begin() as conn:
            entry = store.append(conn, type="load.test", data={"worker": name, "i": i},
                                 time=datetime.now(UTC), signer=signer)
            if i % 7 == 0:
                store.cut_checkpoint(conn, signer=signer, origin="crash.dsgw/ledger",
                                     time=datetime.now(UTC))
        # Acknowledged only once committed, as the gateway replies only after its commit.
        print(entry.seq, entry.hash, flush=True)
    """
)


def _run_workers(url: str, key: Path, seconds: float, tag: str, mode: str) -> list[tuple[int, str]]:
    """Start WORKERS appenders, SIGKILL them after `seconds`; return what they acknowledged."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, str(key), f"{tag}{n}", mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for n in range(WORKERS)
    ]
    # Let them all get going (imports take a while on a busy machine), then load for `seconds`.
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            start = ledger_store.head(conn)[0]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if ledger_store.head(conn)[0] >= start + 20 * WORKERS:
                    break
            time.sleep(0.05)
    finally:
        engine.dispose()
    time.sleep(seconds)
    for proc in procs:
        os.kill(proc.pid, signal.SIGKILL)
    acked = []
    for proc in procs:
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err.decode()[-2000:]
        # Only whole lines were acknowledged; the kill may cut the last one short.
        for line in out.decode().split("\n")[:-1]:
            seq, digest = line.split()
            acked.append((int(seq), digest))
    return acked


def _check(url: str, key: Path, acked: list[tuple[int, str]], out: Path) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            size, _ = ledger_store.head(conn)
            assert ledger_store.count(conn) == size  # no gap, no orphan beyond the head
            stored = {e.seq: e.hash for e in ledger_store.iter_entries(conn)}
            assert sorted(stored) == list(range(1, size + 1))
            for seq, digest in acked:
                assert stored.get(seq) == digest, f"acknowledged entry {seq} was lost or changed"
            signer = load_or_create_signer(key)
            export(
                conn,
                out,
                public_jwks=[],
                signer=signer,
                origin="crash.dsgw/ledger",
                now=datetime.now(UTC),
            )
    finally:
        engine.dispose()
    report = verify_export(out)
    assert report.size == size
    return size


@pytest.mark.parametrize("mode", ["transaction", "group"])
def test_killed_appenders_lose_no_acknowledged_entry_and_leave_no_gap(database_url, tmp_path, mode):
    engine = make_engine(database_url)
    ledger_store.create_schema(engine)
    engine.dispose()
    key = tmp_path / "keys" / "gateway.jwk"
    load_or_create_signer(key)

    acked = _run_workers(database_url, key, 1.0, "a", mode)
    assert len(acked) > 10, "the workers appended too little to test anything"
    assert len({seq for seq, _ in acked}) == len(acked)  # no seq handed out twice
    first = _check(database_url, key, acked, tmp_path / "first")

    # Restart on the same database: appends continue after the last committed entry.
    acked += _run_workers(database_url, key, 0.5, "b", mode)
    second = _check(database_url, key, acked, tmp_path / "second")
    assert second > first
