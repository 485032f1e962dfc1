"""Ledger routes: head, entries, checkpoints, inclusion and consistency proofs, receipts, keys."""

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from gateway.auth.views import current_participant, require_role
from gateway.context import Gateway, get_gateway, get_session
from gateway.core import clock
from gateway.core.errors import Problem, not_found, problem_responses
from gateway.core.types import MAX_OFFSET
from gateway.evidence.service import cut_checkpoint_now
from gateway.participants.models import Participant
from ledger import parse_rfc3339
from ledger import store as ledger_store
from ledger.export import sign_manifest
from ledger.keys import public_jwk_of, public_key_from_jwk

router = APIRouter(prefix="/ledger", tags=["ledger"])
MAX_SEQ = 2**63 - 1  # sequence numbers are BIGINT

# Sequence numbers and tree sizes are JSON-safe integers (RFC 8785): anything larger is a 422,
# never a database overflow.
MAX_SEQ = 2**53 - 1


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

    With the entries up to its size (GET /ledger/entries) and the ledger's key chain
    (GET /ledger/keys: every key that ever signed it; after a key rotation
    /.well-known/jwks.json holds only the active one), it makes an export that
    `dsgw ledger verify` checks offline.
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
    "/entries/{seq}", response_model=LedgerEntry, responses=problem_responses(401, 403, 404, 422)
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


# -- checkpoints, proofs, receipts, keys (specs/ledger.md §10-§13) --------------------------------


class LedgerCheckpoint(BaseModel):
    size: int
    root: str = Field(description="the RFC 9162 tree head, hex")
    time: str
    kid: str
    note: str = Field(description="the C2SP tlog-checkpoint signed note")


class InclusionProof(BaseModel):
    checkpoint: str = Field(description="the C2SP signed note the proof leads to")
    index: int = Field(description="the leaf index: seq - 1")
    size: int
    hashes: list[str] = Field(description="the RFC 9162 inclusion path, hex, leaf end first")


class ConsistencyProof(BaseModel):
    old_size: int
    new_size: int
    old_root: str
    new_root: str
    hashes: list[str] = Field(description="the RFC 9162 consistency proof, hex")
    old_checkpoint: str = Field(description="the older C2SP signed note")
    new_checkpoint: str = Field(description="the newer C2SP signed note")


class LedgerReceipt(BaseModel):
    format: str = "dsgw-receipt/1"
    entry: LedgerEntry
    inclusion: InclusionProof | None = Field(
        description="null until a checkpoint covers the entry; fetch the receipt again later"
    )


class LedgerKeys(BaseModel):
    keys: list[dict] = Field(description="the ledger's key chain as public JWKs, first key first")
    active: str | None = Field(description="the kid that signs the next entry")


def _not_checkpointed(seq: int) -> Problem:
    return Problem(
        409,
        "not-checkpointed",
        "No checkpoint covers this entry yet",
        f"entry {seq} is newer than the latest signed checkpoint; retry after the next one",
    )


@router.get("/checkpoint", response_model=LedgerCheckpoint, responses=problem_responses(404))
def latest_checkpoint(session: Session = Depends(get_session)) -> LedgerCheckpoint:
    """Return the latest signed checkpoint (public, for witnesses and monitors)."""
    found = ledger_store.latest_checkpoint(session.connection())
    if found is None:
        raise not_found("checkpoint", "latest")
    return LedgerCheckpoint(**found)


class CheckpointSchedule(BaseModel):
    every: int = Field(description="a checkpoint is cut once this many entries follow the latest")
    seconds: float = Field(
        description="…or at the first append once the latest is this many seconds old; asking "
        "for a receipt or an inclusion proof of an entry this old cuts one too"
    )
    latest_size: int = Field(description="the size of the latest checkpoint; 0 if none")
    latest_time: str | None = Field(description="when the latest checkpoint was signed")


@router.get("/checkpoints/schedule", response_model=CheckpointSchedule)
def checkpoint_schedule(
    session: Session = Depends(get_session), gateway: Gateway = Depends(get_gateway)
) -> CheckpointSchedule:
    """Return when the gateway cuts checkpoints, and the latest one's size and time (public).

    An entry newer than the latest checkpoint has its inclusion proof at the latest `seconds`
    after its own time: the receipt asked for then carries it.
    """
    found = ledger_store.latest_checkpoint(session.connection())
    return CheckpointSchedule(
        every=gateway.settings.checkpoint_every,
        seconds=gateway.settings.checkpoint_seconds,
        latest_size=found["size"] if found else 0,
        latest_time=found["time"] if found else None,
    )


@router.get(
    "/checkpoints",
    response_model=list[LedgerCheckpoint],
    responses=problem_responses(401, 403, 422),
)
def list_checkpoints(
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(100, ge=1, le=1000),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> list[LedgerCheckpoint]:
    """Return the signed checkpoints, oldest first, `limit` from `offset` (auditors, admins)."""
    require_role(me, "auditor", "admin")
    found = ledger_store.iter_checkpoints(session.connection(), offset=offset, limit=limit)
    return [LedgerCheckpoint(**cp) for cp in found]


@router.post(
    "/checkpoints",
    response_model=LedgerCheckpoint,
    status_code=201,
    responses={
        200: {"model": LedgerCheckpoint, "description": "The ledger was already checkpointed"},
        **problem_responses(401, 403, 404, 503),
    },
)
def cut_checkpoint(
    response: Response,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> LedgerCheckpoint:
    """Sign a checkpoint of the ledger now (auditors, admins); 200 with the latest if current."""
    require_role(me, "auditor", "admin")
    cp = cut_checkpoint_now(session, gateway.signer, origin=gateway.settings.origin)
    if cp is None:
        response.status_code = 200
        cp = ledger_store.latest_checkpoint(session.connection())
        if cp is None:
            raise not_found("checkpoint", "latest (the ledger is empty)")
    return LedgerCheckpoint(**cp)


def _inclusion(session: Session, seq: int, size: int | None) -> InclusionProof | None:
    conn = session.connection()
    cp = (
        ledger_store.covering_checkpoint(conn, seq)
        if size is None
        else ledger_store.get_checkpoint(conn, size)
    )
    if cp is None:
        if size is not None:
            raise not_found("checkpoint", str(size))
        return None
    if seq > cp["size"]:
        raise Problem(
            422,
            "invalid-proof-request",
            "The checkpoint does not cover the entry",
            f"entry {seq} is outside the checkpoint of size {cp['size']}",
        )
    hashes = ledger_store.inclusion_proof(conn, seq, cp["size"])
    return InclusionProof(
        checkpoint=cp["note"], index=seq - 1, size=cp["size"], hashes=[h.hex() for h in hashes]
    )


def _visible_entry(session: Session, me: Participant, seq: int):
    found = ledger_store.get_entry(session.connection(), seq)
    if found is None:
        raise not_found("ledger entry", str(seq))
    if not {"auditor", "admin"} & set(me.roles) and me.id not in _named(found.data):
        raise not_found("ledger entry", str(seq))
    return found


def _cut_if_overdue(session: Session, gateway: Gateway, seq: int) -> None:
    """The T-seconds rule, applied when someone asks: a checkpoint if the entry waited long."""
    found = ledger_store.get_entry(session.connection(), seq)
    age = (clock.now() - parse_rfc3339(found.time)).total_seconds()
    if age >= gateway.settings.checkpoint_seconds:
        cut_checkpoint_now(session, gateway.signer, origin=gateway.settings.origin)


@router.get(
    "/proofs/inclusion",
    response_model=InclusionProof,
    responses=problem_responses(401, 404, 409, 422),
)
def inclusion_proof(
    seq: int = Query(ge=1, le=MAX_SEQ, description="the entry"),
    size: int | None = Query(
        None,
        ge=1,
        le=MAX_SEQ,
        description="a checkpoint size; default: the first checkpoint that covers the entry",
    ),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> InclusionProof:
    """Return the RFC 9162 inclusion proof of an entry in a signed checkpoint.

    Auditors see all entries; a participant the entries that name it.
    """
    _visible_entry(session, me, seq)
    proof = _inclusion(session, seq, size)
    if proof is None:
        _cut_if_overdue(session, gateway, seq)
        proof = _inclusion(session, seq, size)
    if proof is None:
        raise _not_checkpointed(seq)
    return proof


@router.get(
    "/proofs/consistency",
    response_model=ConsistencyProof,
    responses=problem_responses(401, 403, 404, 422),
)
def consistency_proof(
    old: int = Query(ge=1, le=MAX_SEQ, description="the older checkpoint size"),
    new: int = Query(ge=1, le=MAX_SEQ, description="the newer checkpoint size"),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> ConsistencyProof:
    """Return the RFC 9162 consistency proof between two checkpoints (auditors, admins).

    Save it as a file: `dsgw ledger verify-consistency FILE --keys JWKS` checks it offline.
    """
    require_role(me, "auditor", "admin")
    if old > new:
        raise Problem(
            422,
            "invalid-proof-request",
            "Sizes out of order",
            f"old ({old}) must not exceed new ({new})",
        )
    conn = session.connection()
    old_cp, new_cp = ledger_store.get_checkpoint(conn, old), ledger_store.get_checkpoint(conn, new)
    if old_cp is None or new_cp is None:
        raise not_found("checkpoint", str(old if old_cp is None else new))
    hashes = ledger_store.consistency_proof(conn, old, new)
    return ConsistencyProof(
        old_size=old,
        new_size=new,
        old_root=old_cp["root"],
        new_root=new_cp["root"],
        hashes=[h.hex() for h in hashes],
        old_checkpoint=old_cp["note"],
        new_checkpoint=new_cp["note"],
    )


@router.get(
    "/receipts/{seq}",
    response_model=LedgerReceipt,
    responses=problem_responses(401, 404, 422),
)
def receipt(
    seq: int = Path(ge=1, le=MAX_SEQ),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> LedgerReceipt:
    """Return the receipt of an entry: the entry and, once a checkpoint covers it, its proof.

    Save it as a file: `dsgw ledger verify-receipt FILE --keys JWKS` checks it offline.
    """
    found = _visible_entry(session, me, seq)
    proof = _inclusion(session, seq, None)
    if proof is None:
        _cut_if_overdue(session, gateway, seq)
        proof = _inclusion(session, seq, None)
    return LedgerReceipt(entry=LedgerEntry(**found.to_json()), inclusion=proof)


@router.get("/keys", response_model=LedgerKeys, responses=problem_responses(503))
def keys(session: Session = Depends(get_session)) -> LedgerKeys:
    """Return the ledger's key chain (public): every key that ever signed it, oldest first."""
    conn = session.connection()
    return LedgerKeys(
        keys=[public_jwk_of(public_key_from_jwk(k)) for k in ledger_store.key_chain(conn)],
        active=ledger_store.active_kid(conn),
    )
