"""Resources point at their data: a holder registers a resource at each source kind, against the
real servers (a holder database on the PostgreSQL test cluster, versitygw for S3, the HTTP
merchant, local files) or with posted rows (the embedded store), and a consumer pulls it through
a contract with masking and the policy's row cap, on either gateway database.

The source's credentials stay secret: in no reply, no ledger entry, no log line, and sealed in
the database; a source that is gone at exchange time is a recorded refusal, never a 500.
"""

import io
import uuid

import psycopg
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from sqlalchemy import inspect, text

from gateway.exchanges.obligations import mask_value
from gateway.resources.commitment import ADDRESS_SCHEME, address_commitment
from ledger import store as ledger_store
from tests.e2e.world import OFFER, build_world, register_resource
from tests.support import http_source, s3
from tests.support.http_source import row

N = 30
CAP = 7  # the offer's row quota: the policy's row_cap on a first pull
FIELDS = [
    {"name": "id", "description": "trip number"},
    {"name": "name", "description": "rider", "personal": True, "kind": "name"},
    {"name": "phone", "description": "rider's phone", "personal": True, "kind": "phone"},
    {"name": "score", "description": "rating"},
]
PASSWORD = "pg-pw-" + uuid.uuid4().hex  # the holder database's password, never to be seen


def rows(n: int = N) -> list[dict]:
    return [row(i) for i in range(n)]


def delivered(n: int = CAP) -> list[dict]:
    """What the consumer must get: the first `n` rows, name and phone masked by their kind."""
    return [
        {**r, "name": mask_value(r["name"], "name"), "phone": mask_value(r["phone"], "phone")}
        for r in rows(n)
    ]


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


@pytest.fixture
def holder_db(pg_cluster):
    """The holder's own PostgreSQL database (not the gateway's), with a reader role."""
    name = f"holder_{uuid.uuid4().hex[:10]}"
    url = pg_cluster.create_database(name)
    with psycopg.connect(
        host=pg_cluster.host, port=pg_cluster.port, user="postgres", dbname=name, autocommit=True
    ) as conn:
        conn.execute(
            "CREATE TABLE trips (id bigint, name text, phone text, score double precision)"
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO trips VALUES (%s, %s, %s, %s)",
                [(r["id"], r["name"], r["phone"], r["score"]) for r in rows()],
            )
        role = f"reader_{uuid.uuid4().hex[:8]}"
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
        conn.execute(f"GRANT SELECT ON trips TO {role}")
    host, port = pg_cluster.host, pg_cluster.port
    yield {"url": f"postgresql://{role}@{host}:{port}/{name}", "cluster_url": url}
    pg_cluster.drop_database(name)


@pytest.fixture(scope="module")
def bucket():
    server = s3.shared()
    name = f"holder-{uuid.uuid4().hex[:8]}"
    server.create_bucket(name)
    fs = server.filesystem()
    table = pa.Table.from_pylist(rows())
    with fs.open_output_stream(f"{name}/trips.parquet") as f:
        pq.write_table(table, f)
    with fs.open_output_stream(f"{name}/trips.csv") as f:
        pa_csv.write_csv(table, f)
    return server, name


def address_for(kind: str, *, settings, holder_db=None, bucket=None) -> dict:
    """Return the registration's data source of `kind`: an address, or the rows themselves."""
    if kind == "sql":
        return {
            "data_address": {
                "type": "sql",
                "url": holder_db["url"],
                "table": "public.trips",
                "secret": {"password": PASSWORD},
            }
        }
    if kind == "http":
        server = http_source.shared()
        return {
            "data_address": {
                "type": "http",
                "url": f"{server.url}/bearer/rows.jsonl?n={N}",
                "auth": {"kind": "bearer"},
                "secret": {"token": server.token},
            }
        }
    if kind in ("object-parquet", "object-csv"):
        server, name = bucket
        return {
            "data_address": {
                "type": "object",
                "endpoint": server.endpoint,
                "bucket": name,
                "key": "trips.parquet" if kind == "object-parquet" else "trips.csv",
                "secret": server.secret(),
            }
        }
    if kind == "files":
        folder = settings.state_dir / "data"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows()), folder / "trips.parquet")
        return {"data_address": {"type": "files", "path": "trips.parquet"}}
    assert kind == "embedded"
    return {"rows": rows()}


def register(world, source: dict, *, fields=FIELDS):
    return world.holder.call(
        "POST",
        "/resources",
        json={
            "name": "trips",
            "domain": "transport",
            "grade": "general",
            "level": "L2",
            "fields": fields,
            **source,
        },
    )


def coded_product(world, source: dict) -> tuple[dict, dict]:
    """Register, code and authorise a resource at `source`, publish it; return both."""
    applied = register(world, source)
    assert applied.status_code == 201, applied.text
    resource = register_resource(world.admin, world.holder, applied).json()
    granted = world.holder.call(
        "POST",
        "/authorisations",
        json={
            "operator_id": world.merchant.id,
            "resource_ids": [resource["id"]],
            "not_after": "2099-01-01T00:00:00Z",
            "fee_cap_fen": 500_000,
        },
    )
    assert granted.status_code == 201, granted.text
    product = world.publish(
        resource={**resource, "authorisation_id": granted.json()["id"]},
        offers=[{**OFFER, "quota_rows": CAP}],
        name="trips",
        delivery_modes=["api", "file"],
    )
    return resource, product


def without_watermark(rows_: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "_watermark"} for r in rows_]


KINDS = ["sql", "http", "object-parquet", "object-csv", "files", "embedded"]


@pytest.mark.parametrize("kind", KINDS)
def test_resource_at_each_source_is_delivered_masked_and_capped(
    world, settings, holder_db, bucket, kind
):
    source = address_for(kind, settings=settings, holder_db=holder_db, bucket=bucket)
    resource, product = coded_product(world, source)
    if kind == "embedded":
        assert resource["data_address"]["type"] == "embedded"
        assert resource["row_count"] == N == resource["data_address"]["rows"]
    else:
        assert resource["data_address"]["type"] == kind.split("-")[0]
        assert "secret" not in resource["data_address"]
        assert resource["row_count"] is None  # live at the holder's: not counted
    contract = world.contract(product["offers"][0]["id"])
    pulled = world.pull(contract["id"])
    assert pulled.status_code == 200, pulled.text
    body = pulled.json()
    assert body["masked"] == ["name", "phone"]
    assert body["row_count"] == CAP  # the policy's row cap: the offer's quota of rows
    assert without_watermark(body["rows"]) == delivered()
    # The product's quality report was computed on the source's rows.
    completeness = {d["dimension"]: d for d in product["quality"]["dimensions"]}["completeness"]
    assert completeness["score"] == 1.0


def test_file_delivery_from_an_external_source_streams_the_masked_rows(
    world, settings, holder_db, bucket
):
    _, product = coded_product(world, address_for("sql", settings=settings, holder_db=holder_db))
    contract = world.contract(product["offers"][0]["id"])
    pulled = world.pull(contract["id"], delivery="file")
    assert pulled.status_code == 200, pulled.text
    file = pulled.json()["file"]
    import json

    got = [json.loads(line) for line in io.StringIO(file["content"])]
    assert without_watermark(got) == delivered()


def test_external_resource_commits_to_its_public_address_and_fields(world, settings):
    applied = register(world, address_for("files", settings=settings))
    assert applied.status_code == 201, applied.text
    body = applied.json()
    assert body["commitment_scheme"] == ADDRESS_SCHEME
    fields = [{k: v for k, v in f.items() if v is not None} for f in body["fields"]]
    assert body["dataset_commitment"] == address_commitment(
        body["data_address"], fields, body["dataset_salt"]
    )


def _database_text(gateway) -> str:
    """Return every value of every table of the gateway's database, as text."""
    out = []
    with gateway.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for found in conn.execute(text(f'SELECT * FROM "{table}"')):
                out.append(repr(tuple(found)))
    return "\n".join(out)


def test_source_password_is_in_no_reply_no_ledger_entry_no_log_and_sealed_at_rest(
    world, settings, gateway, holder_db, bucket, capsys
):
    sql = address_for("sql", settings=settings, holder_db=holder_db)
    obj = address_for("object-parquet", settings=settings, bucket=bucket)
    s3_secret = obj["data_address"]["secret"]["secret_access_key"]
    replies = []
    resource, product = coded_product(world, sql)
    other, _ = coded_product(world, obj)
    for party, path in [
        (world.holder, f"/resources/{resource['id']}"),
        (world.holder, f"/resources/{resource['id']}/registrations"),
        (world.auditor, f"/resources/{other['id']}"),
        (world.merchant, f"/products/{product['id']}"),
    ]:
        reply = party.call("GET", path)
        assert reply.status_code == 200, reply.text
        replies.append(reply.text)
    # A change that moves the resource to another password-protected address.
    change = world.holder.call(
        "POST",
        f"/resources/{resource['id']}/registrations",
        json={
            "kind": "change",
            "reason": "new reader role",
            "changes": {
                "data_address": {  # a password written in the URL is a secret too
                    "type": "sql",
                    "url": sql["data_address"]["url"].replace("@", f":{PASSWORD}x@", 1),
                    "table": "public.trips",
                }
            },
        },
    )
    assert change.status_code == 201, change.text
    replies.append(change.text)
    contract = world.contract(product["offers"][0]["id"])
    pulled = world.pull(contract["id"])
    assert pulled.status_code == 200, pulled.text
    replies.append(pulled.text)
    everything = "\n".join(replies)
    assert resource["data_address"]["url"] == holder_db["url"]
    with gateway.engine.connect() as conn:
        ledger = "\n".join(repr(e) for e in ledger_store.iter_entries(conn))
    stored = _database_text(gateway)
    logged = capsys.readouterr()
    for secret in (PASSWORD, s3_secret):
        assert secret not in everything
        assert secret not in ledger
        assert secret not in stored
        assert secret not in logged.out + logged.err
    with gateway.engine.connect() as conn:
        sealed = conn.execute(
            text("SELECT data_secret FROM resources WHERE id = :id"), {"id": resource["id"]}
        ).scalar_one()
    assert sealed.startswith("v1.")
    key = settings.keys_dir / "data-secrets.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_source_columns_that_differ_from_the_fields_are_refused_naming_them(
    world, settings, holder_db
):
    fields = [*FIELDS[:3], {"name": "rating"}]
    refused = register(
        world, address_for("sql", settings=settings, holder_db=holder_db), fields=fields
    )
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["type"] == "urn:dsgw:problem:data-source-mismatch"
    assert "['rating']" in problem["detail"] and "['score']" in problem["detail"]
    assert PASSWORD not in refused.text


def test_unreachable_source_at_registration_is_a_502_problem(world, settings, pg_cluster):
    address = {
        "type": "sql",
        "url": f"postgresql://nobody@{pg_cluster.host}:{pg_cluster.port}/no_such_db",
        "table": "trips",
        "secret": {"password": PASSWORD},
    }
    refused = register(world, {"data_address": address})
    assert refused.status_code == 502, refused.text
    assert refused.json()["type"] == "urn:dsgw:problem:data-source-unavailable"
    assert PASSWORD not in refused.text


def test_rows_and_an_address_together_are_refused(world, settings):
    both = {**address_for("files", settings=settings), "rows": rows(2)}
    refused = register(world, both)
    assert refused.status_code == 422, refused.text
    assert "not both" in refused.text


def test_source_gone_at_exchange_time_is_a_recorded_refusal_not_a_delivery(
    world, settings, gateway
):
    _, product = coded_product(world, address_for("files", settings=settings))
    contract = world.contract(product["offers"][0]["id"])
    (settings.state_dir / "data" / "trips.parquet").unlink()
    pulled = world.pull(contract["id"])
    assert pulled.status_code == 502, pulled.text
    problem = pulled.json()
    assert problem["type"] == "urn:dsgw:problem:data-source-unavailable"
    assert [r["code"] for r in problem["reasons"]] == ["SOURCE_UNAVAILABLE"]
    with gateway.engine.connect() as conn:
        entry = ledger_store.get_entry(conn, problem["ledger_seq"])
    assert entry.type == "exchange.denied"
    assert entry.body["data"]["reasons"] == ["SOURCE_UNAVAILABLE"]
    assert entry.body["data"]["decision"] == problem["decision_id"]
    after = world.consumer.call("GET", f"/contracts/{contract['id']}")
    assert after.json()["usage"]["rows"] == 0  # nothing delivered, nothing metered


def test_change_registration_moves_the_resource_to_a_new_address(world, settings):
    resource, product = coded_product(world, {"rows": rows(3)})
    change = world.holder.call(
        "POST",
        f"/resources/{resource['id']}/registrations",
        json={
            "kind": "change",
            "reason": "the data moved to the data folder",
            "changes": {"data_address": address_for("files", settings=settings)["data_address"]},
        },
    )
    assert change.status_code == 201, change.text
    assert change.json()["changes"]["data_address"] == {
        "type": "files",
        "path": "trips.parquet",
        "format": None,
    }
    for step, payload in [
        ("accept", None),
        ("review", None),
        ("publicise", {"window_seconds": 0}),
        ("code", None),
    ]:
        done = world.admin.call(
            "POST", f"/registrations/{change.json()['id']}/{step}", json=payload
        )
        assert done.status_code == 200, done.text
    moved = world.holder.call("GET", f"/resources/{resource['id']}").json()
    assert moved["data_address"]["type"] == "files" and moved["row_count"] is None
    assert moved["commitment_scheme"] == ADDRESS_SCHEME
    contract = world.contract(product["offers"][0]["id"])
    pulled = world.pull(contract["id"])
    assert pulled.status_code == 200, pulled.text
    assert without_watermark(pulled.json()["rows"]) == delivered()


def test_change_to_an_address_whose_columns_differ_is_refused(world, settings, tmp_path):
    resource, _ = coded_product(world, {"rows": rows(3)})
    folder = settings.state_dir / "data"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"id": [1], "other": ["x"]}), folder / "other.parquet")
    change = world.holder.call(
        "POST",
        f"/resources/{resource['id']}/registrations",
        json={
            "kind": "change",
            "reason": "wrong file",
            "changes": {"data_address": {"type": "files", "path": "other.parquet"}},
        },
    )
    assert change.status_code == 422, change.text
    assert change.json()["type"] == "urn:dsgw:problem:data-source-mismatch"


def test_a_sql_source_is_never_the_gateways_own_database_nor_a_file_outside_the_data_folder(
    world, settings, tmp_path
):
    import sqlalchemy as sa

    own = sa.make_url(settings.resolved_database_url).render_as_string(hide_password=False)
    refused = register(world, {"data_address": {"type": "sql", "url": own, "table": "resources"}})
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"] == "urn:dsgw:problem:data-address-invalid"
    outside = tmp_path / "elsewhere.db"
    inside = settings.state_dir / "data" / "trips.db"
    inside.parent.mkdir(parents=True, exist_ok=True)
    for path in (outside, inside):
        engine = sa.create_engine(f"sqlite:///{path}")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "CREATE TABLE trips (id INTEGER, name TEXT, phone TEXT, score REAL)"
            )
            conn.exec_driver_sql(
                "INSERT INTO trips VALUES (?, ?, ?, ?)",
                [(r["id"], r["name"], r["phone"], r["score"]) for r in rows()],
            )
        engine.dispose()
    address = {"type": "sql", "url": f"sqlite:///{outside}", "table": "trips"}
    refused = register(world, {"data_address": address})
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"] == "urn:dsgw:problem:data-address-invalid"
    _, product = coded_product(world, {"data_address": {**address, "url": f"sqlite:///{inside}"}})
    pulled = world.pull(world.contract(product["offers"][0]["id"])["id"])
    assert pulled.status_code == 200, pulled.text
    assert without_watermark(pulled.json()["rows"]) == delivered()
