"""Several gateway processes on one PostgreSQL database: starting together is safe, a start waits
for its database, and a frozen process cannot stall the others (the session limits)."""

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

from gateway.app import build_gateway, create_app
from gateway.core.config import Settings
from gateway.core.db import DatabaseUnreachable, make_engine, pg_options
from gateway.participants.service import PLATFORM_ADMIN_ID
from gateway.policy.opa_process import free_port
from ledger import Signer, export, load_or_create_signer, verify_export
from ledger import store as ledger_store
from tests.conftest import BASE_URL
from tests.e2e.world import Party, random_uscc

REPO = Path(__file__).resolve().parents[2]

START = """
import sys
from pathlib import Path
from gateway.app import build_gateway
from gateway.core.config import Settings
gw = build_gateway(Settings(state_dir=Path(sys.argv[1]), database_url=sys.argv[2],
                            opa_url=sys.argv[3], issuer="http://localhost"))
gw.policy.close()
gw.engine.dispose()
print("started")
"""


def build_gateway_like(gateway, **changes):
    """Return the same gateway (database, keys) with other settings, e.g. another OPA."""
    from gateway.policy.client import PolicyClient

    settings = dataclasses.replace(gateway.settings, **changes)
    return dataclasses.replace(
        gateway,
        settings=settings,
        policy=PolicyClient(settings.opa_url, timeout=0.5, version_ttl=1.0),
    )


@pytest.fixture
def pg_url(pg_cluster):
    name = f"p_{uuid.uuid4().hex[:12]}"
    pg_cluster.create_database(name)
    yield pg_cluster.url(name)
    pg_cluster.drop_database(name)


def _types(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [e.type for e in ledger_store.iter_entries(conn)]
    finally:
        engine.dispose()


def test_ten_processes_started_at_once_on_an_empty_database_make_one_ledger(
    pg_url, opa_server, tmp_path
):
    state = tmp_path / "state"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", START, str(state), pg_url, opa_server.url],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(10)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-3000:]
        assert out.decode().strip() == "started"
    types = _types(pg_url)
    assert types.count("ledger.genesis") == 1 and types[0] == "ledger.genesis"
    assert types.count("participant.registered") == 1  # the platform admin, once
    engine = make_engine(pg_url)
    try:
        with engine.connect() as conn:
            export(
                conn,
                tmp_path / "export",
                public_jwks=[],
                signer=load_or_create_signer(state / "keys" / "gateway-ed25519.jwk"),
                origin="dsgw.local/ledger",
                now=datetime.now(UTC),
            )
    finally:
        engine.dispose()
    assert verify_export(tmp_path / "export").size == len(types)


def test_a_start_waits_for_a_database_that_comes_up(pg_cluster, opa_server, tmp_path):
    name = f"late_{uuid.uuid4().hex[:10]}"
    settings = Settings(
        state_dir=tmp_path / "state",
        database_url=pg_cluster.url(name),  # does not exist yet: every connection is refused
        opa_url=opa_server.url,
        issuer=BASE_URL,
        db_wait_seconds=120,
    )
    result: dict = {}

    def start() -> None:
        try:
            result["gateway"] = build_gateway(settings)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            result["error"] = exc

    starter = threading.Thread(target=start)
    starter.start()
    time.sleep(1.5)
    assert starter.is_alive() and not result  # still waiting, not crashed
    pg_cluster.create_database(name)
    starter.join(timeout=120)
    try:
        assert "error" not in result, result.get("error")
        assert _types(pg_cluster.url(name))[0] == "ledger.genesis"
    finally:
        if "gateway" in result:
            result["gateway"].policy.close()
            result["gateway"].engine.dispose()
        pg_cluster.drop_database(name)


def test_a_start_gives_up_with_a_clear_error_when_the_database_never_answers(
    pg_cluster, opa_server, tmp_path
):
    settings = Settings(
        state_dir=tmp_path / "state",
        database_url=pg_cluster.url(f"never_{uuid.uuid4().hex[:10]}"),
        opa_url=opa_server.url,
        issuer=BASE_URL,
        db_wait_seconds=1,
    )
    with pytest.raises(DatabaseUnreachable, match="did not answer within 1 s"):
        build_gateway(settings)


def test_a_frozen_process_holding_the_ledger_cannot_stall_the_others(pg_url, opa_server, tmp_path):
    settings = Settings(
        state_dir=tmp_path / "state",
        database_url=pg_url,
        opa_url=opa_server.url,
        issuer=BASE_URL,
        db_lock_timeout=1,
        db_idle_in_transaction_timeout=4,
    )
    gw = build_gateway(settings)
    client = TestClient(create_app(gateway=gw), base_url=BASE_URL).__enter__()
    admin = Party(
        client, "admin", load_or_create_signer(settings.admin_key_path), PLATFORM_ADMIN_ID
    )
    admin.call("GET", "/participants/" + PLATFORM_ADMIN_ID)  # token in hand before the freeze
    frozen = psycopg.connect(
        pg_url.replace("postgresql+psycopg://", "postgresql://"),
        options=pg_options(settings.db_timeouts),
    )
    try:
        # A "frozen" process: it took the ledger's head row, then stopped answering.
        frozen.execute("SELECT * FROM ledger_head WHERE id = 1 FOR UPDATE")
        answered: dict = {}

        def call() -> None:
            answered["response"] = admin.call(
                "POST",
                "/participants",
                json={
                    "name": "late bank",
                    "uscc": random_uscc(random.Random(7)),
                    "roles": ["consumer"],
                    "region": "domestic",
                    "jwks": {"keys": [Signer.generate().public_jwk()]},
                },
            )
            answered["ready"] = client.get("/ready")

        caller = threading.Thread(target=call)
        caller.start()
        caller.join(timeout=120)
        assert not caller.is_alive(), "a request waited on the frozen lock without limit"
        # The writer gave up at its lock limit: 503, nothing registered; readiness takes no lock.
        response = answered["response"]
        assert response.status_code == 503, response.text
        assert response.json()["type"].endswith("evidence-unavailable")  # nothing written
        assert answered["ready"].status_code == 200, answered["ready"].text
        # The database ends the frozen session after its idle-in-transaction limit, and the
        # others write again.
        time.sleep(5)
        with pytest.raises(psycopg.Error, match="idle-in-transaction"):
            frozen.execute("SELECT 1")
        again = admin.call(
            "POST",
            "/participants",
            json={
                "name": "late bank",
                "uscc": random_uscc(random.Random(7)),
                "roles": ["consumer"],
                "region": "domestic",
                "jwks": {"keys": [Signer.generate().public_jwk()]},
            },
        )
        assert again.status_code == 201, again.text
    finally:
        frozen.close()
        client.__exit__(None, None, None)
        gw.policy.close()
        gw.engine.dispose()


def test_ready_names_the_dependency_that_fails(client, gateway):
    assert client.get("/ready").json()["checks"] == {
        "database": "ok",
        "ledger": "ok",
        "policy_engine": "ok",
    }
    broken = build_gateway_like(gateway, opa_url="http://127.0.0.1:9")  # nothing listens
    try:
        with TestClient(create_app(gateway=broken), base_url=BASE_URL) as other:
            response = other.get("/ready")
        assert response.status_code == 503, response.text
        problem = response.json()
        assert problem["type"].endswith("not-ready")
        assert problem["checks"]["policy_engine"] == "unavailable"
        assert problem["checks"]["database"] == "ok"
    finally:
        broken.policy.close()


def _admin_over_http(url: str, state: Path) -> Party:
    import httpx

    key = load_or_create_signer(state / "keys" / "admin-ed25519.jwk")
    return Party(httpx.Client(base_url=url, timeout=30), "admin", key, PLATFORM_ADMIN_ID)


def test_a_token_from_one_process_is_accepted_by_another_of_the_same_state_folder(
    pg_url, opa_server, tmp_path
):
    # Two processes of one state folder and database on their own ports, no --issuer given:
    # the issuer is the one recorded at the folder's first start, not each process's port.
    from tests.support.serving import Served

    state = tmp_path / "state"
    common = ("--database-url", pg_url, "--opa-url", opa_server.url)
    first = Served(state, free_port(), *common)
    try:
        first.wait_ready()
        second = Served(state, free_port(), *common).wait_ready()
    except BaseException:
        first.stop()
        raise
    try:
        on_first = _admin_over_http(first.url, state)
        on_second = _admin_over_http(second.url, state)
        on_second._token = on_first.token()  # issued by the first process
        response = on_second.call("GET", f"/participants/{PLATFORM_ADMIN_ID}")
        assert response.status_code == 200, response.text
        issuers = {
            httpx_get_json(s.url + "/.well-known/oauth-authorization-server")["issuer"]
            for s in (first, second)
        }
        assert issuers == {first.url}
        assert json.loads((state / "issuer.json").read_text())["issuer"] == first.url
    finally:
        second.stop()
        first.stop()


def httpx_get_json(url: str) -> dict:
    import httpx

    response = httpx.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_serve_with_several_workers_on_sqlite_is_refused_with_a_clear_message(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--state", str(tmp_path / "s"), "serve"]
        + ["--workers", "2", "--port", str(free_port())],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "DSGW_DATABASE_URL"},
    )
    assert done.returncode == 2
    assert "--workers 2 needs PostgreSQL" in done.stderr
    assert "SQLite allows one writer" in done.stderr


def test_serve_with_workers_runs_n_processes_on_one_port_with_one_opa_and_replaces_a_dead_one(
    pg_url, tmp_path
):
    from tests.support.serving import Served, children

    state = tmp_path / "state"
    served = Served(state, free_port(), "--workers", "2", "--database-url", pg_url).wait_ready()
    try:
        kids = children(served.pid)
        workers = [pid for pid, cmd in kids if "--listen-fd" in cmd]
        opas = [pid for pid, cmd in kids if " run --server " in cmd]
        assert len(workers) == 2 and len(opas) == 1, kids
        # Every worker serves the one port (each answers on it: a token, then a call).
        admin = _admin_over_http(served.url, state)
        for _ in range(10):
            assert admin.call("GET", "/ledger/head").status_code == 200
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            now = [pid for pid, cmd in children(served.pid) if "--listen-fd" in cmd]
            if len(now) == 2 and workers[0] not in now:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no worker replaced the dead one: {children(served.pid)}")
        served.wait_ready()
        for _ in range(10):
            assert admin.call("GET", "/ledger/head").status_code == 200
        assert "started worker" in served.output()
        served.process.terminate()
        assert served.process.wait(timeout=30) == 0
        for pid in now + opas:  # the workers and the one OPA are gone with it
            assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    finally:
        served.stop()
