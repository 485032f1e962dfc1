"""Ledger routes for auditors: the head, and entries by sequence number."""

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from gateway.auth.views import current_participant, require_role
from gateway.context import Gateway, get_gateway, get_session
from gateway.core import clock
from gateway.core.errors import not_found, problem_responses
from gateway.participants.models import Participant
from ledger import store as ledger_store
from ledger.export import sign_manifest

router = APIRouter(prefix="/ledger", tags=["ledger"])
MAX_SEQ = 2**63 - 1  # sequence numbers are BIGINT


class LedgerEntry(BaseModel):
    body: dict
    hash: str
    sig: str


class LedgerHead(BaseModel):
    size: int
    head: str


@router.get("/head", response_model=LedgerHead, responses=problem_responses(401, 403))
def head(
    me: Participant = Depends(current_participant), session: Session = Depends(get_session)
) -> LedgerHead:
    """Return the number of entries and the hash of the last one (auditors, admins)."""
    require_role(me, "auditor", "admin")
    size, last = ledger_store.head(session.connection())
    return LedgerHead(size=size, head=last)


class LedgerManifest(BaseModel):
    format: str
    origin: str
    size: int
    head: str
    exported_at: str
    kid: str
    sig: str


@router.get("/manifest", response_model=LedgerManifest, responses=problem_responses(401, 403))
def manifest(
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> LedgerManifest:
    """Return the gateway-signed manifest of the ledger as it is now (auditors, admins).

    With the entries up to its size (GET /ledger/entries) and the gateway's keys
    (/.well-known/jwks.json), it makes an export that `dsgw ledger verify` checks offline.
    """
    require_role(me, "auditor", "admin")
    size, last = ledger_store.head(session.connection())
    signed = sign_manifest(
        size=size,
        head=last,
        signer=gateway.signer,
        origin=gateway.settings.origin,
        now=clock.now(),
    )
    return LedgerManifest(**signed)


@router.get(
    "/entries", response_model=list[LedgerEntry], responses=problem_responses(401, 403, 422)
)
def entries(
    start: int = Query(1, ge=1, le=MAX_SEQ, description="first sequence number"),
    limit: int = Query(100, ge=1, le=1000),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> list[LedgerEntry]:
    """Return entries from `start`, in order (auditors, admins)."""
    require_role(me, "auditor", "admin")
    found = ledger_store.iter_entries(session.connection(), start=start, stop=start + limit)
    return [LedgerEntry(**e.to_json()) for e in found]


@router.get(
    "/entries/{seq}", response_model=LedgerEntry, responses=problem_responses(401, 403, 404)
)
def entry(
    seq: int = Path(ge=1, le=MAX_SEQ, description="sequence number"),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> LedgerEntry:
    """Return one entry: auditors see all; a participant sees the entries that name it."""
    found = ledger_store.get_entry(session.connection(), seq)
    if found is None:
        raise not_found("ledger entry", str(seq))
    if not {"auditor", "admin"} & set(me.roles) and me.id not in _named(found.data):
        raise not_found("ledger entry", str(seq))
    return LedgerEntry(**found.to_json())


def _named(data: dict) -> set[str]:
    """Return the participant ids an entry names as a party."""
    keys = ("participant", "holder", "operator", "merchant", "provider", "consumer", "by")
    return {data[k] for k in keys if isinstance(data.get(k), str)}
