"""Data delivered and its evidence go together: if the entry cannot be written, nothing leaves."""

import pytest
from sqlalchemy import text

from tests.e2e.world import build_world


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def _break_ledger_appends(gateway) -> None:
    """Make every new ledger entry fail inside the database, as a full disk or a fault would."""
    with gateway.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_entries BEFORE INSERT ON ledger_entries "
                    "BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_entries() RETURNS trigger AS $$ BEGIN "
                    "RAISE EXCEPTION 'disk full (simulated)'; END $$ LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_entries BEFORE INSERT ON ledger_entries "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_entries()"
                )
            )


def test_no_rows_are_released_when_the_evidence_cannot_be_written(world, gateway):
    contract = world.contract(world.product["offers"][0]["id"])
    _break_ledger_appends(gateway)
    response = world.pull(contract["id"])
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert "rows" not in body and "13812345678" not in response.text
    assert body["type"] == "urn:dsgw:problem:evidence-unavailable"
    with gateway.engine.connect() as conn:
        used = conn.execute(
            text("SELECT rows_used, calls_used FROM contracts WHERE id = :id"),
            {"id": contract["id"]},
        ).one()
        decisions = conn.execute(text("SELECT count(*) FROM decisions")).scalar_one()
    assert tuple(used) == (0, 0)
    assert decisions == 0
