"""The privacy budget on the real databases: concurrent releases never overspend it, and a
short second scope undoes the first scope's spend (both budgets or neither)."""

import threading

import pytest

from gateway.compute import budget


def _claim(gateway, results: list, *, contract: str, subject: str, budget_c: float) -> None:
    with gateway.sessions() as session:
        try:
            budget.claim(
                session,
                contract_id=contract,
                subject_id=subject,
                resource_id="res_1",
                epsilon=0.5,
                budget_contract=budget_c,
                budget_subject_resource=100.0,
            )
            session.commit()
            results.append("spent")
        except budget.BudgetExhausted:
            session.rollback()
            results.append("exhausted")


def test_concurrent_releases_never_overspend_the_budget(gateway):
    results: list[str] = []
    threads = [
        threading.Thread(
            target=_claim,
            args=(gateway, results),
            kwargs={"contract": "ctr_1", "subject": "prt_a", "budget_c": 2.0},
        )
        for _ in range(12)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["exhausted"] * 8 + ["spent"] * 4
    with gateway.sessions() as session:
        spent = budget.spent(session, contract_id="ctr_1", subject_id="prt_a", resource_id="res_1")
    assert spent == {"contract": 2.0, "subject_resource": 2.0}


def test_a_short_second_budget_leaves_the_first_unspent(gateway):
    with gateway.sessions() as session:
        budget.claim(
            session,
            contract_id="ctr_1",
            subject_id="prt_a",
            resource_id="res_1",
            epsilon=1.0,
            budget_contract=5.0,
            budget_subject_resource=1.0,
        )
        session.commit()
    with gateway.sessions() as session:
        with pytest.raises(budget.BudgetExhausted, match="subject × resource"):
            budget.claim(
                session,
                contract_id="ctr_2",  # a second contract of the same consumer on the resource
                subject_id="prt_a",
                resource_id="res_1",
                epsilon=1.0,
                budget_contract=5.0,
                budget_subject_resource=1.0,
            )
        session.commit()  # what a denial does: commit the rest of the transaction
    with gateway.sessions() as session:
        spent = budget.spent(session, contract_id="ctr_2", subject_id="prt_a", resource_id="res_1")
    assert spent == {"contract": 0.0, "subject_resource": 1.0}
