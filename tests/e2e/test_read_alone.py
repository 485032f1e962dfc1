"""An exchange's first read waits for no writer, and a read-alone transaction cannot write.

On SQLite every transaction takes the process's writer turn at BEGIN IMMEDIATE; the request's
preload (participant, contract, product, ... in one statement) is a read, so it runs outside
that turn, on a WAL snapshot of its own, and never queues behind the sequencer's batch. On
PostgreSQL it runs in autocommit (no BEGIN/COMMIT round trips).
"""

import threading

import pytest
from sqlalchemy import select, text, update

from gateway.core.db import read_alone
from gateway.exchanges import flows
from gateway.participants.models import Participant
from tests.e2e.world import PURPOSE, build_world


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def _writer_holding_the_turn(gateway, started: threading.Event, release: threading.Event):
    """Open a write transaction (on SQLite: the writer turn and BEGIN IMMEDIATE) and hold it."""

    def hold() -> None:
        with gateway.sessions() as session:
            session.execute(update(Participant).where(Participant.id == "nobody").values(name="x"))
            started.set()
            release.wait(30)
            session.rollback()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    return thread


def test_the_preload_reads_while_another_transaction_holds_the_writer(world, gateway):
    contract = world.contract(world.product["offers"][0]["id"])
    started, release, done = threading.Event(), threading.Event(), threading.Event()
    holder = _writer_holding_the_turn(gateway, started, release)
    assert started.wait(10)
    found: list = []

    def read() -> None:
        with gateway.sessions() as session:
            found.append(
                flows.preload(session, subject_id=world.consumer.id, contract_id=contract["id"])
            )
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    # The writer releases only once the read is done (or after 20 s): a preload that waited
    # for the writer would still be waiting when the writer gives up.
    finished_first = done.wait(20)
    release.set()
    holder.join(10)
    reader.join(40)
    assert finished_first, "the preload waited for the open write transaction"
    preloaded = found[0]
    assert preloaded.participant.id == world.consumer.id
    assert preloaded.contract.id == contract["id"]
    assert preloaded.rows is not None


def test_a_read_alone_transaction_refuses_a_write_and_writes_nothing(world, gateway):
    with gateway.sessions() as session:
        assert read_alone(session)
        with pytest.raises(RuntimeError, match="read-alone"):
            session.execute(
                update(Participant)
                .where(Participant.id == world.consumer.id)
                .values(name="written in a read")
            )
        session.rollback()
    with gateway.sessions() as session:
        name = session.scalar(select(Participant.name).where(Participant.id == world.consumer.id))
    assert name != "written in a read"


def test_after_the_read_the_same_session_writes_in_an_ordinary_transaction(world, gateway):
    with gateway.sessions() as session:
        assert read_alone(session)
        session.execute(text("SELECT 1"))
        session.commit()
        session.execute(
            update(Participant).where(Participant.id == world.consumer.id).values(name="renamed")
        )
        session.commit()
    with gateway.sessions() as session:
        name = session.scalar(select(Participant.name).where(Participant.id == world.consumer.id))
    assert name == "renamed"


def test_read_alone_leaves_an_open_transaction_as_it_is(world, gateway):
    with gateway.sessions() as session:
        session.execute(select(Participant.id).limit(1))
        assert session.in_transaction()
        assert not read_alone(session)
        session.execute(
            update(Participant).where(Participant.id == world.consumer.id).values(name="same txn")
        )
        session.commit()


def test_exchanges_still_deliver_and_meter_after_a_read_alone_preload(world, gateway):
    contract = world.contract(world.product["offers"][0]["id"])
    body = {"contract_id": contract["id"], "purpose": PURPOSE, "limit": 2}
    for _ in range(3):
        reply = world.consumer.call("POST", "/exchanges", json=body)
        assert reply.status_code == 200, reply.text
    usage = world.consumer.call("GET", f"/contracts/{contract['id']}").json()
    assert usage["usage"]["calls"] == 3
    assert usage["usage"]["rows"] == 6
