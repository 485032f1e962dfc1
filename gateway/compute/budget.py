"""The privacy budget: ε spent per contract and per consumer × resource, kept durably.

`spent` feeds the policy input (the policy denies PRIVACY_BUDGET_EXHAUSTED); `claim` spends at
the moment of release, inside the exchange's transaction, by a conditional UPDATE that only
succeeds while the spend stays within the budget. The UPDATE takes the row's lock, so two
concurrent releases cannot both pass on the same remaining ε (PostgreSQL re-checks the
condition after the lock; SQLite serialises writers at BEGIN IMMEDIATE).
"""

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.compute.models import MICRO, PrivacyBudget
from gateway.core import clock

CONTRACT = "contract"
SUBJECT_RESOURCE = "subject_resource"


class BudgetExhausted(Exception):
    """The release would spend more ε than a budget has left: nothing is released."""

    def __init__(self, scope: str, spent: float, budget: float, epsilon: float):
        super().__init__(
            f"the {scope.replace('_', ' × ')} privacy budget has {max(0.0, budget - spent):g} "
            f"of {budget:g} ε left; this query needs {epsilon:g}"
        )
        self.scope = scope


def micro(epsilon: float) -> int:
    """Return ε in millionths, rounded up (a spend is never under-counted)."""
    return int(-(-round(epsilon * MICRO * 1000) // 1000))


def subject_resource_key(subject_id: str, resource_id: str) -> str:
    return f"{subject_id}|{resource_id}"


def spent(session: Session, *, contract_id: str, subject_id: str, resource_id: str) -> dict:
    """Return {contract, subject_resource}: the ε spent so far under each scope."""
    keys = {CONTRACT: contract_id, SUBJECT_RESOURCE: subject_resource_key(subject_id, resource_id)}
    out = {}
    for scope, key in keys.items():
        value = session.execute(
            select(PrivacyBudget.spent_micro).where(
                PrivacyBudget.scope == scope, PrivacyBudget.key == key
            )
        ).scalar_one_or_none()
        out[scope] = (value or 0) / MICRO
    return out


def _ensure(session: Session, scope: str, key: str) -> None:
    exists = session.execute(
        select(PrivacyBudget.key).where(PrivacyBudget.scope == scope, PrivacyBudget.key == key)
    ).first()
    if exists:
        return
    try:
        with session.begin_nested():
            session.add(PrivacyBudget(scope=scope, key=key, spent_micro=0, updated_at=clock.now()))
    except IntegrityError:  # a concurrent release created it first: spend from that row
        pass


@dataclass(frozen=True)
class Account:
    """A budget after a spend."""

    spent: float
    budget: float

    @property
    def remaining(self) -> float:
        return round(max(0.0, self.budget - self.spent), 6)

    def as_dict(self) -> dict[str, float]:
        return {"spent": round(self.spent, 6), "budget": self.budget, "remaining": self.remaining}


def claim(
    session: Session,
    *,
    contract_id: str,
    subject_id: str,
    resource_id: str,
    epsilon: float,
    budget_contract: float,
    budget_subject_resource: float,
) -> dict[str, Account]:
    """Spend `epsilon` under both scopes or neither; raise BudgetExhausted when one is short."""
    need = micro(epsilon)
    accounts: dict[str, Account] = {}
    savepoint = session.begin_nested()  # a short second scope undoes the first scope's spend
    for scope, key, budget in (
        (CONTRACT, contract_id, budget_contract),
        (SUBJECT_RESOURCE, subject_resource_key(subject_id, resource_id), budget_subject_resource),
    ):
        _ensure(session, scope, key)
        limit = int(round(budget * MICRO))
        after = session.execute(
            update(PrivacyBudget)
            .where(
                PrivacyBudget.scope == scope,
                PrivacyBudget.key == key,
                PrivacyBudget.spent_micro + need <= limit,
            )
            .values(
                spent_micro=PrivacyBudget.spent_micro + need,
                releases=PrivacyBudget.releases + 1,
                updated_at=clock.now(),
            )
            .returning(PrivacyBudget.spent_micro)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if after is None:
            savepoint.rollback()
            now_spent = spent(
                session, contract_id=contract_id, subject_id=subject_id, resource_id=resource_id
            )[scope]
            raise BudgetExhausted(scope, now_spent, budget, epsilon)
        accounts[scope] = Account(after / MICRO, budget)
    savepoint.commit()
    return accounts
