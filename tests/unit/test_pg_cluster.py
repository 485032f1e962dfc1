"""The throw-away PostgreSQL cluster that the PostgreSQL-backed tests run against."""

import os

import pytest
from sqlalchemy import create_engine, text

from tests.support.pg import PostgresCluster

_DATABASES = os.environ.get("DSGW_TEST_DATABASES")

pytestmark = pytest.mark.skipif(
    _DATABASES is not None
    and "postgresql" not in {d.strip().lower() for d in _DATABASES.split(",")},
    reason=f"DSGW_TEST_DATABASES={_DATABASES!r} does not include postgresql",
)


def test_cluster_starts_serves_a_database_and_is_removed():
    with PostgresCluster() as pg:
        top = pg.dir
        assert top is not None and top.name.startswith("dsgw-pg-")
        assert (
            pg.url("dsgw_probe") == f"postgresql+psycopg://postgres@127.0.0.1:{pg.port}/dsgw_probe"
        )
        pg.create_database("dsgw_probe")
        engine = create_engine(pg.url("dsgw_probe"))
        try:
            with engine.connect() as conn:
                assert conn.execute(text("select 1")).scalar_one() == 1
                assert conn.execute(text("select current_database()")).scalar_one() == "dsgw_probe"
        finally:
            engine.dispose()
        pg.drop_database("dsgw_probe")
    assert not top.exists()
