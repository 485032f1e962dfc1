"""Schema migrations: a database made by release ac7d7e6 upgrades in place, on both engines.

The old database is made by the old code itself: ac7d7e6's tree (git archive) runs in a
subprocess with its own build_gateway, its own OPA policies and its tests' world, which
registers participants, resources, an authorisation, products, a contract and an exchange.
"""

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from gateway.app import build_gateway, create_app
from gateway.cli import main as dsgw
from gateway.core.config import Settings
from gateway.core.db import make_engine
from gateway.core.hashing import content_hash
from gateway.demo import Party
from gateway.exchanges import obligations as obl
from gateway.migrations import SchemaOutdated, head, include_object, target_metadata
from ledger import Signer

REPO = Path(__file__).resolve().parents[2]
OLD_RELEASE = "ac7d7e6"
BASE_URL = "http://localhost"

SEED = r"""
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from gateway.app import build_gateway, create_app
from gateway.core.config import Settings
from gateway.policy.opa_process import OpaServer
from tests.e2e.world import build_world

state, url = Path(sys.argv[1]), sys.argv[2]
with OpaServer() as opa:
    gw = build_gateway(Settings(state_dir=state, database_url=url, opa_url=opa.url,
                                issuer="http://localhost"))
    with TestClient(create_app(gateway=gw), base_url="http://localhost") as client:
        world = build_world(client, state)
        contract = world.contract(world.product["offers"][0]["id"])
        pulled = world.pull(contract["id"])
        assert pulled.status_code == 200, pulled.text
        party = lambda p: {"id": p.id, "jwk": p.key.private_jwk()}
        print(json.dumps({
            "holder": party(world.holder), "consumer": party(world.consumer),
            "resource": world.resource, "product_id": world.product["id"],
            "contract_id": contract["id"], "exchange_id": pulled.json()["exchange_id"],
            "rows": len(pulled.json()["rows"]),
            "delivered": pulled.json()["rows"],
            "content_hash": pulled.json()["content_hash"],
            "watermark": pulled.json()["watermark"],
            "masked": pulled.json()["masked"],
            "source_rows": __import__("gateway.demo", fromlist=["RESIDENTS"]).RESIDENTS,
        }))
    gw.policy.close()
    gw.engine.dispose()
"""


@pytest.fixture(scope="session")
def old_tree(tmp_path_factory) -> Path:
    """Release ac7d7e6's files, extracted from this repository's history."""
    archived = subprocess.run(
        ["git", "-C", str(REPO), "archive", OLD_RELEASE], capture_output=True, check=False
    )
    if archived.returncode != 0:  # a shallow clone without the release
        pytest.skip(f"release {OLD_RELEASE} is not in this clone's history")
    tree = tmp_path_factory.mktemp("ac7d7e6")
    with tarfile.open(fileobj=io.BytesIO(archived.stdout)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def seed_with_old_release(old_tree: Path, state: Path, url: str) -> dict:
    """Make and fill a database with release ac7d7e6's code; return what it made."""
    env = {**os.environ, "PYTHONPATH": str(old_tree)}
    done = subprocess.run(
        [sys.executable, "-c", SEED, str(state), url],
        cwd=old_tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def settings_for(state: Path, url: str, opa_url: str, **extra) -> Settings:
    return Settings(state_dir=state, database_url=url, opa_url=opa_url, issuer=BASE_URL, **extra)


def schema_differences(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": include_object}
            )
            return compare_metadata(context, target_metadata())
    finally:
        engine.dispose()


def revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def test_release_database_upgrades_in_place_keeping_rows_ledger_and_exchanges(
    old_tree, database_url, opa_server, tmp_path, capsys
):
    state = tmp_path / "state"
    old = seed_with_old_release(old_tree, state, database_url)
    assert old["rows"] > 0
    assert revision(database_url) is None  # create_all: no alembic_version

    # Without --upgrade the new gateway refuses the old schema, and says what to run.
    with pytest.raises(SchemaOutdated, match="dsgw db upgrade"):
        build_gateway(settings_for(state, database_url, opa_server.url))

    capsys.readouterr()
    assert dsgw(["db", "upgrade", "--database-url", database_url]) == 0
    said = capsys.readouterr().out
    assert "pre-Alembic schema" in said and f"now at head {head()}" in said
    assert dsgw(["db", "current", "--database-url", database_url]) == 0
    assert f"current  {head()} (head)" in capsys.readouterr().out
    assert schema_differences(database_url) == []

    gw = build_gateway(settings_for(state, database_url, opa_server.url))
    try:
        with TestClient(create_app(gateway=gw), base_url=BASE_URL) as client:
            holder = Party(
                client, "holder", Signer.from_jwk(old["holder"]["jwk"]), old["holder"]["id"]
            )
            consumer = Party(
                client, "consumer", Signer.from_jwk(old["consumer"]["jwk"]), old["consumer"]["id"]
            )
            resource = holder.call("GET", f"/resources/{old['resource']['id']}")
            assert resource.status_code == 200, resource.text
            kept = resource.json()
            assert kept["code"] == old["resource"]["code"]
            assert kept["name"] == old["resource"]["name"]
            assert len(kept["dataset_salt"]) == 64  # backfilled: 256 random bits, hex
            contract = consumer.call("GET", f"/contracts/{old['contract_id']}")
            assert contract.status_code == 200, contract.text
            assert contract.json()["state"] == "FINALIZED"
            # A new exchange under the contract the old release negotiated.
            pulled = consumer.call(
                "POST",
                "/exchanges",
                json={"contract_id": old["contract_id"], "purpose": "credit-risk-assessment"},
            )
            assert pulled.status_code == 200, pulled.text
            assert pulled.json()["exchange_id"] != old["exchange_id"]
            assert len(pulled.json()["rows"]) == old["rows"]
            # The rows moved to the embedded store are delivered exactly as before: the JSON
            # rows the old release held, put through the row-by-row obligations under this
            # exchange's decision, hash to what the gateway now delivers from the store.
            new = pulled.json()
            assert old["content_hash"] == content_hash(old["delivered"])
            kinds = {f["name"]: obl.field_kind(f) for f in kept["fields"]}
            before = obl.deliver(
                old["source_rows"],
                delivery="api",
                fields=new["fields"],
                obligations={"mask": new["masked"]},
                limit=None,
                watermark=new["watermark"],
                name="x",
                kinds=kinds,
            )
            assert new["rows"] == before.rows
            assert new["content_hash"] == before.content_hash
            unmasked = [n for n in new["fields"] if n not in new["masked"]]
            assert [{n: r[n] for n in unmasked} for r in new["rows"]] == [
                {n: r[n] for n in unmasked} for r in old["delivered"]
            ]
            assert kept["data_address"]["type"] == "embedded"
            assert kept["row_count"] == kept["data_address"]["rows"] > 0
        with gw.engine.connect() as conn:
            columns = {c["name"] for c in inspect(conn).get_columns("resources")}
            stored = conn.execute(text("SELECT resource_id, rows FROM embedded_datasets")).all()
        assert "rows" not in columns  # no JSON column holds rows any more
        assert old["resource"]["id"] in {r for r, _ in stored} and len(stored) >= 2
        with gw.engine.connect() as conn:
            salts = conn.execute(text("SELECT dataset_salt FROM resources")).scalars().all()
        assert len(salts) >= 2 and len(set(salts)) == len(salts)  # one salt each
        # The ledger's append-only triggers are still there.
        with pytest.raises(Exception, match="(?i)append-only|not allowed|refuse|ledger"):
            with gw.engine.begin() as conn:
                conn.execute(text("UPDATE ledger_entries SET type = 'x' WHERE seq = 1"))
    finally:
        gw.policy.close()
        gw.engine.dispose()

    out = tmp_path / "export"
    args = [
        "--state",
        str(state),
        "ledger",
        "export",
        "--out",
        str(out),
        "--database-url",
        database_url,
    ]
    assert dsgw(args) == 0
    assert dsgw(["ledger", "verify", str(out)]) == 0


def test_fresh_database_is_created_at_head_and_matches_the_models(gateway, database_url):
    assert revision(database_url) == head()
    assert schema_differences(database_url) == []


def test_older_revision_refuses_to_start_unless_upgrade_is_asked(
    database_url, opa_server, tmp_path, capsys
):
    from alembic import command

    from gateway.migrations import config

    engine = make_engine(database_url)
    cfg = config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    engine.dispose()
    state = tmp_path / "state"
    with pytest.raises(SchemaOutdated, match="revision 0001.*dsgw db upgrade"):
        build_gateway(settings_for(state, database_url, opa_server.url))
    assert revision(database_url) == "0001"  # refused without changing anything

    gw = build_gateway(settings_for(state, database_url, opa_server.url, db_upgrade=True))
    gw.policy.close()
    gw.engine.dispose()
    assert revision(database_url) == head()
    assert schema_differences(database_url) == []


def test_serve_upgrade_flag_and_environment_ask_for_the_upgrade(monkeypatch):
    from gateway.cli import parser

    assert parser().parse_args(["serve", "--upgrade"]).upgrade is True
    assert Settings.from_env().db_upgrade is False
    monkeypatch.setenv("DSGW_DB_UPGRADE", "1")
    assert Settings.from_env().db_upgrade is True


def test_gateways_starting_at_once_on_an_empty_database_migrate_it_once(database_url):
    from concurrent.futures import ThreadPoolExecutor

    from gateway.migrations import migrate

    engines = [make_engine(database_url) for _ in range(3)]
    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            outcomes = list(pool.map(lambda e: migrate(e, upgrade=False), engines))
    finally:
        for engine in engines:
            engine.dispose()
    assert sorted(bool(o.applied) for o in outcomes) == [False, False, True]
    assert revision(database_url) == head()


def test_database_made_by_a_newer_release_refuses_to_start(database_url, opa_server, tmp_path):
    engine = make_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
        conn.execute(text("INSERT INTO alembic_version VALUES ('9999')"))
    engine.dispose()
    settings = settings_for(tmp_path / "state", database_url, opa_server.url, db_upgrade=True)
    with pytest.raises(SchemaOutdated, match="9999, which this gateway does not know"):
        build_gateway(settings)


def test_create_all_schema_of_a_later_main_is_stamped_and_upgraded_without_duplicates(
    database_url,
):
    """A database made by create_all after ac7d7e6 (salt and budgets there already)."""
    from gateway.migrations import migrate

    engine = make_engine(database_url)
    try:
        target_metadata().create_all(engine)
        outcome = migrate(engine, upgrade=True)
    finally:
        engine.dispose()
    assert outcome.before == "legacy" and outcome.after == head()
    assert revision(database_url) == head()
    assert schema_differences(database_url) == []


def test_db_cli_takes_the_state_folder_before_or_after_the_command(tmp_path, capsys):
    state = tmp_path / "state"
    assert dsgw(["db", "upgrade", "--state", str(state)]) == 0
    assert "empty database: applied 0001 -> " in capsys.readouterr().out
    assert dsgw(["--state", str(state), "db", "current"]) == 0
    said = capsys.readouterr().out
    assert str(state / "gateway.db") in said and f"current  {head()} (head)" in said
    assert dsgw(["--state", str(state), "db", "upgrade"]) == 0
    assert "nothing to do" in capsys.readouterr().out
