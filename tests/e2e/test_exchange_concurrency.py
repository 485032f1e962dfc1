"""The exchange path under concurrency: no lock across OPA, quotas exact, every answer evidenced.

An exchange of rows decides first and claims its quota afterwards, in the sequencer's batch
(gateway/evidence/sequencer.py). These tests run many exchanges at once on one contract, on
both databases, against the real OPA, and check that the quota is never exceeded, that every
delivery acknowledged is on the ledger with the receipt it was given, and that a decision held
up in OPA holds no lock: the contract can change meanwhile, and the exchange is then decided
again on what stands.
"""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from gateway.exchanges.models import Decision
from gateway.negotiation.models import Contract
from ledger import store as ledger_store
from tests.e2e.world import OFFER, build_world


def _usage(gateway, contract_id: str) -> tuple[int, int]:
    with gateway.sessions() as session:
        contract = session.get(Contract, contract_id)
        return contract.rows_used, contract.calls_used


def _deliveries(gateway, contract_id: str) -> list:
    with gateway.engine.connect() as conn:
        return [
            e
            for e in ledger_store.iter_entries(conn)
            if e.type == "exchange.delivered" and e.data["contract"] == contract_id
        ]


def _run(n: int, call, workers: int = 8) -> list:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda _: call(), range(n)))


def test_concurrent_exchanges_never_exceed_a_call_quota(client, settings, gateway):
    world = build_world(client, settings.state_dir)
    product = world.publish(offers=[{**OFFER, "quota_rows": None, "quota_calls": 5}])
    contract = world.contract(product["offers"][0]["id"])
    replies = _run(16, lambda: world.pull(contract["id"], limit=1))
    statuses = Counter(r.status_code for r in replies)
    assert statuses == {200: 5, 403: 11}, [r.text for r in replies if r.status_code != 200]
    for refused in (r for r in replies if r.status_code == 403):
        assert [x["code"] for x in refused.json()["reasons"]] == ["QUOTA_EXHAUSTED"]
    assert _usage(gateway, contract["id"]) == (5, 5)
    # Every acknowledged delivery is on the ledger exactly as its receipt says, once.
    recorded = {e.seq: e for e in _deliveries(gateway, contract["id"])}
    receipts = [r.json()["receipt"] for r in replies if r.status_code == 200]
    assert sorted(recorded) == sorted(r["seq"] for r in receipts)
    for receipt in receipts:
        assert recorded[receipt["seq"]].hash == receipt["hash"]
    with gateway.sessions() as session:
        kept = session.execute(
            select(func.count()).where(
                Decision.contract_id == contract["id"], Decision.allow.is_(True)
            )
        ).scalar_one()
        seqs = session.execute(
            select(Decision.ledger_seq).where(
                Decision.contract_id == contract["id"], Decision.allow.is_(True)
            )
        ).scalars()
        assert kept == 5 and sorted(seqs) == sorted(recorded)


def test_concurrent_exchanges_share_a_row_quota_to_the_row(client, settings, gateway):
    world = build_world(client, settings.state_dir)
    product = world.publish(offers=[{**OFFER, "quota_rows": 7}])
    contract = world.contract(product["offers"][0]["id"])
    replies = _run(10, lambda: world.pull(contract["id"], limit=2))
    delivered = [r.json()["row_count"] for r in replies if r.status_code == 200]
    assert sum(delivered) == 7 and max(delivered) == 2, [r.text for r in replies]
    assert sorted(delivered)[0] in (1, 2)  # the last page is capped at what was left
    assert all(r.status_code in (200, 403) for r in replies), [r.text for r in replies]
    assert _usage(gateway, contract["id"]) == (7, len(delivered))
    assert sum(e.data["rows"] for e in _deliveries(gateway, contract["id"])) == 7


def test_a_decision_held_up_in_opa_holds_no_lock_and_is_decided_again(client, settings, gateway):
    world = build_world(client, settings.state_dir)
    contract = world.contract(world.product["offers"][0]["id"])
    assert world.pull(contract["id"]).status_code == 200
    decide = gateway.policy.decide
    entered, release = threading.Event(), threading.Event()
    held = []

    def slow_decide(policy_input):
        if not held:  # only the first decision waits: the real OPA still answers it
            held.append(policy_input)
            entered.set()
            assert release.wait(30)
        return decide(policy_input)

    gateway.policy.decide = slow_decide
    try:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(world.pull, contract["id"])
            assert entered.wait(30)
            # While OPA holds the decision, the provider suspends the contract: no lock is
            # held by the exchange, so this goes through at once.
            suspended = world.merchant.call(
                "POST", f"/contracts/{contract['id']}/suspend", json={"reason": "audit"}
            )
            assert suspended.status_code == 200, suspended.text
            release.set()
            reply = pending.result(60)
    finally:
        gateway.policy.decide = decide
    # The decision allowed a FINALIZED contract; the claim saw it SUSPENDED, so nothing was
    # delivered under it, and the exchange was decided again: a recorded denial.
    assert held[0]["contract"]["state"] == "FINALIZED"
    assert reply.status_code == 403, reply.text
    assert "rows" not in reply.json()
    with gateway.engine.connect() as conn:
        denial = ledger_store.get_entry(conn, reply.json()["ledger_seq"])
    assert denial.type == "exchange.denied" and denial.data["contract"] == contract["id"]
    assert _usage(gateway, contract["id"])[1] == 1  # only the first exchange was metered
    assert len(_deliveries(gateway, contract["id"])) == 1


def test_more_exchanges_at_once_than_worker_threads_all_complete(client, settings, gateway):
    """64 exchanges at once, more than the 40 threads routes run on: no request may hold a
    transaction (on SQLite, the write lock) while it waits for a thread, or every thread ends up
    waiting for the one lock whose holder cannot be given a thread to go on."""
    world = build_world(client, settings.state_dir)
    product = world.publish(offers=[{**OFFER, "quota_rows": None}])
    contract = world.contract(product["offers"][0]["id"])
    world.consumer.token()  # one token for all, fetched before the burst
    replies = _run(64, lambda: world.pull(contract["id"], limit=1), workers=64)
    assert Counter(r.status_code for r in replies) == {200: 64}, [
        r.text for r in replies if r.status_code != 200
    ][:3]
    assert _usage(gateway, contract["id"]) == (64, 64)
    assert len(_deliveries(gateway, contract["id"])) == 64
