"""Transfer processes: their table-driven states, who may see them, and their API view."""

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.core import clock
from gateway.core.db import fetch
from gateway.core.errors import Problem, conflict, not_found
from gateway.core.states import StateMachine
from gateway.exchanges.models import Receipt
from gateway.participants.models import Participant
from gateway.transfers.models import DataToken, Transfer, TransferRead
from ledger import Entry
from ledger import store as ledger_store

# The Dataspace Protocol's transfer states; REQUESTED is left in the transaction that decides.
MACHINE = StateMachine(
    "transfer",
    {
        "REQUESTED": {"start": "STARTED", "terminate": "TERMINATED"},
        "STARTED": {
            "suspend": "SUSPENDED",
            "complete": "COMPLETED",
            "terminate": "TERMINATED",
            "interrupt": "TERMINATED",
        },
        "SUSPENDED": {"resume": "STARTED", "terminate": "TERMINATED"},
        "COMPLETED": {},
        "TERMINATED": {},
    },
)
# What a party may ask through the API (the others are the gateway's own moves).
PARTY_ACTIONS = ("start", "suspend", "resume", "complete", "terminate")


def advance(transfer: Transfer, action: str) -> str:
    """Move `transfer` by `action`; return the state it left, else raise 409
    `transfer-state-conflict` naming the state and what is allowed from it."""
    try:
        target = MACHINE.advance(transfer.id, transfer.state, action)
    except Problem as problem:
        raise state_conflict(transfer, action, problem) from None
    before, transfer.state, transfer.updated_at = transfer.state, target, clock.now()
    return before


def state_conflict(transfer: Transfer, action: str, problem: Problem | None = None) -> Problem:
    """Return the 409 problem for `action` on `transfer` in its current state."""
    problem = problem or MACHINE.invalid(transfer.id, transfer.state, action)
    return conflict(
        "transfer-state-conflict",
        "Transfer state conflict",
        problem.detail,
        **problem.extensions,
    )


def get(session: Session, transfer_id: str, *, for_update: bool = False) -> Transfer:
    """Return the transfer, else raise 404."""
    return fetch(session, Transfer, transfer_id, kind="transfer", for_update=for_update)


def visible_to(transfer: Transfer, participant: Participant) -> bool:
    """Return whether the participant may read the transfer: its parties and auditors."""
    return participant.id in (transfer.consumer_id, transfer.provider_id) or bool(
        {"auditor", "admin"} & set(participant.roles)
    )


def get_visible(
    session: Session, transfer_id: str, participant: Participant, *, for_update: bool = False
) -> Transfer:
    """Return the transfer if the participant may see it; for anyone else it does not exist."""
    transfer = session.get(Transfer, transfer_id)
    if transfer is None or not visible_to(transfer, participant):
        raise not_found("transfer", transfer_id)
    return get(session, transfer_id, for_update=for_update) if for_update else transfer


def require_party(transfer: Transfer, participant: Participant) -> None:
    """Raise 403 unless the participant is the transfer's consumer or provider."""
    if participant.id not in (transfer.consumer_id, transfer.provider_id):
        raise Problem(
            403,
            "forbidden",
            "Not allowed",
            f"only the consumer or the provider of transfer {transfer.id} may change it",
        )


def of_contract(
    session: Session, *, contract_id: str | None, participant: Participant, limit: int = 100
) -> list[Transfer]:
    """Return the transfers the participant may see, of one contract if given, newest first."""
    query = select(Transfer).order_by(Transfer.created_at.desc()).limit(limit)
    if contract_id is not None:
        query = query.where(Transfer.contract_id == contract_id)
    if not {"auditor", "admin"} & set(participant.roles):
        query = query.where(
            (Transfer.consumer_id == participant.id) | (Transfer.provider_id == participant.id)
        )
    return list(session.execute(query).scalars())


def receipt(session: Session, seq: int | None) -> Receipt | None:
    """Return the receipt of ledger entry `seq` (the transfer's completion), if any."""
    if seq is None:
        return None
    entry: Entry | None = ledger_store.get_entry(session.connection(), seq)
    if entry is None:
        return None
    return Receipt(
        seq=entry.seq,
        hash=entry.hash,
        sig=entry.sig,
        kid=entry.kid,
        body=entry.body,
        url=f"/ledger/receipts/{entry.seq}",
    )


def masked(transfer: Transfer) -> list[str]:
    """Return the delivered fields the decision masks."""
    return sorted(set(transfer.obligations.get("mask") or []) & set(transfer.fields))


def to_read(session: Session, transfer: Transfer, *, data: DataToken | None = None) -> TransferRead:
    """Return the API view of a transfer (with its receipt once completed)."""
    values: dict[str, Any] = {
        name: getattr(transfer, name)
        for name in (
            "id", "contract_id", "consumer_id", "provider_id", "product_id", "type", "format",
            "purpose", "fields", "limit", "state", "decision_id", "watermark", "reserved_rows",
            "rows", "bytes", "sha256", "sink", "location", "reason", "created_at", "updated_at",
        )
    }  # fmt: skip
    return TransferRead(
        **values,
        masked=masked(transfer),
        allowed_actions=[a for a in MACHINE.actions(transfer.state) if a in PARTY_ACTIONS],
        receipt=receipt(session, transfer.completed_seq),
        data=data,
    )
