"""Federation records: the processes this gateway runs at peers, the policy that lets it, and
the cross-referenced evidence both gateways keep of each federated step.

Evidence shared with a peer (`Evidence`, specs/ledger.md §18) names one of this gateway's
ledger entries by seq and hash, and a signed checkpoint that covers it, cut in the same
transaction: the peer records it in its own entry, so an auditor holding both exports proves
the step on both sides (`dsgw ledger verify-federated`).
"""

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from gateway.context import Gateway
from gateway.core import clock
from gateway.core.errors import Problem, not_found
from gateway.core.ids import new_id
from gateway.evidence.service import commit, evidence_unavailable, record
from gateway.federation.models import FederatedProcess, ProcessRead
from gateway.participants.models import Participant
from gateway.peers.models import Peer
from gateway.policy.client import PolicyError
from ledger import Entry, LedgerError
from ledger import store as ledger_store

POLICY_PACKAGE = "dsgw.federation"
# Where our own terms go in DSP messages (the DSP context is protected: absolute IRIs).
EVIDENCE = "https://dsgw.dev/ns/dcat#evidence"
HASH_CHARS = set("0123456789abcdef")


def evidence_of(session: Session, gateway: Gateway, entry: Entry) -> dict[str, Any]:
    """Cut (in the session's transaction) a checkpoint covering `entry` and return the evidence
    the peer records: {entry, seq, checkpoint: {size, root}}."""
    try:
        conn = session.connection()
        cp = ledger_store.cut_checkpoint(
            conn, signer=gateway.signer, origin=gateway.settings.origin, time=clock.now()
        ) or ledger_store.latest_checkpoint(conn)
        if cp is None or cp["size"] < entry.seq:  # the head is locked: cannot happen
            raise LedgerError(f"no checkpoint covers entry {entry.seq}")
    except (SQLAlchemyError, LedgerError) as exc:
        session.rollback()
        raise evidence_unavailable(exc) from exc
    return {
        "entry": entry.hash,
        "seq": entry.seq,
        "checkpoint": {"size": cp["size"], "root": cp["root"]},
    }


def read_evidence(value: Any) -> dict[str, Any] | None:
    """Return a peer's evidence as recorded (the same members, checked in shape), else None."""
    if isinstance(value, dict) and "@value" in value:
        value = value["@value"]
    if not isinstance(value, dict):
        return None
    entry, seq, cp = value.get("entry"), value.get("seq"), value.get("checkpoint")
    if not (isinstance(entry, str) and len(entry) == 64 and set(entry) <= HASH_CHARS):
        return None
    if not (isinstance(seq, int) and not isinstance(seq, bool) and 0 < seq < 2**62):
        return None
    if not isinstance(cp, dict):
        return None
    size, root = cp.get("size"), cp.get("root")
    if not (isinstance(size, int) and not isinstance(size, bool) and seq <= size < 2**62):
        return None
    if not (isinstance(root, str) and len(root) == 64 and set(root) <= HASH_CHARS):
        return None
    return {"entry": entry, "seq": seq, "checkpoint": {"size": size, "root": root}}


def decide(
    gateway: Gateway, *, step: str, subject: Participant, peer: Peer | None, peer_id: str
) -> list[dict[str, Any]]:
    """Return the reasons OPA gives against this federated step (empty: allowed); raise 503
    when OPA cannot answer (fail closed)."""
    policy_input = {
        "now": clock.rfc3339(clock.now()),
        "action": "federation",
        "step": step,
        "subject": {"id": subject.id, "status": subject.status, "roles": list(subject.roles)},
        "peer": {
            "id": peer_id,
            "status": peer.status if peer is not None else "unknown",
            "account": (peer.accounts or {}).get(subject.id) if peer is not None else None,
        },
    }
    try:
        decision = gateway.policy.decide(policy_input, package=POLICY_PACKAGE)
    except PolicyError as exc:
        raise Problem(
            503, "policy-unavailable", "Policy decision unavailable", str(exc)[:500]
        ) from None
    return [] if decision.allow else [r.model_dump() for r in decision.reasons]


def refuse(
    session: Session,
    gateway: Gateway,
    *,
    step: str,
    subject: Participant,
    peer_id: str,
    problem: Problem,
    reasons: list[dict[str, Any]] | None = None,
) -> Problem:
    """Record a refused or failed federated step (`federation.refused`, committed) and return
    the problem to raise."""
    session.rollback()
    record(
        session,
        gateway.signer,
        type="federation.refused",
        data={
            "step": step,
            "participant": subject.id,
            "peer": peer_id[:500],
            "problem": problem.slug,
            "status": problem.status,
            "detail": (problem.detail or "")[:500],
            "reasons": [r.get("code") for r in reasons or []],
        },
    )
    commit(session)
    return problem


def new_process(
    session: Session,
    *,
    kind: str,
    peer: Peer,
    subject: Participant,
    state: str,
    **fields: Any,
) -> FederatedProcess:
    """Add a federated process (not committed)."""
    now = clock.now()
    process = FederatedProcess(
        consumer_pid=new_id("fng" if kind == "negotiation" else "ftr"),
        kind=kind,
        peer_id=peer.id,
        participant_id=subject.id,
        remote_participant_id=peer.accounts[subject.id],
        state=state,
        created_at=now,
        updated_at=now,
        **fields,
    )
    session.add(process)
    session.flush()
    return process


def get(session: Session, consumer_pid: str, *, kind: str, viewer: Participant) -> FederatedProcess:
    """Return a federated process to the participant it runs for; else 404."""
    found = session.get(FederatedProcess, consumer_pid[:64])
    if found is None or found.kind != kind or found.participant_id != viewer.id:
        raise not_found(kind, consumer_pid[:64])
    return found


def for_peer(session: Session, consumer_pid: str, *, kind: str, peer: Peer) -> FederatedProcess:
    """Return the process a peer's callback names, if it is one this gateway runs at that peer;
    else 404 (a peer learns nothing of another's processes)."""
    found = session.get(FederatedProcess, consumer_pid[:64])
    if found is None or found.kind != kind or found.peer_id != peer.id:
        raise not_found(kind, consumer_pid[:64])
    return found


def list_processes(session: Session, viewer: Participant) -> list[FederatedProcess]:
    """Return the caller's federated processes, newest first (at most 200)."""
    query = (
        select(FederatedProcess)
        .where(FederatedProcess.participant_id == viewer.id)
        .order_by(FederatedProcess.created_at.desc())
        .limit(200)
    )
    return list(session.scalars(query))


def step_entry(
    session: Session, gateway: Gateway, type_: str, process: FederatedProcess, **data: Any
) -> Entry:
    """Record one federated step of `process` (in the session's transaction)."""
    return record(
        session,
        gateway.signer,
        type=type_,
        data={
            "process": process.consumer_pid,
            "kind": process.kind,
            "peer": process.peer_id,
            "participant": process.participant_id,
            "remote_participant": process.remote_participant_id,
            "provider_pid": process.provider_pid,
            **data,
        },
    )


def to_read(process: FederatedProcess, entry: Entry | None = None) -> ProcessRead:
    """Return a process as its consumer sees it (never the data token)."""
    return ProcessRead(
        consumer_pid=process.consumer_pid,
        kind=process.kind,
        peer=process.peer_id,
        participant_id=process.participant_id,
        remote_participant_id=process.remote_participant_id,
        provider_pid=process.provider_pid,
        state=process.state,
        offer_id=process.offer_id,
        dataset_id=process.dataset_id,
        purpose=process.purpose,
        negotiation_pid=process.negotiation_pid,
        document=process.document,
        document_hash=process.document_hash,
        endpoint=process.endpoint,
        ledger_seq=entry.seq if entry is not None else None,
    )


# -- the provider side: what this gateway records when a peer acts at it ---------------------


def record_peer_step(
    session: Session,
    gateway: Gateway,
    *,
    peer_id: str,
    participant_id: str,
    step: str,
    provider_pid: str,
    consumer_pid: str,
    state: str,
    peer_evidence: dict[str, Any] | None,
) -> dict[str, Any]:
    """Record a peer's federated step at this (provider) gateway (`dsp.peer-step`: the peer's
    evidence it carried, if any) with a checkpoint covering it; commit; return our evidence."""
    entry = record(
        session,
        gateway.signer,
        type="dsp.peer-step",
        data={
            "peer": peer_id,
            "participant": participant_id,
            "step": step,
            "provider_pid": provider_pid,
            "consumer_pid": consumer_pid,
            "state": state,
            "peer_evidence": peer_evidence,
        },
    )
    ours = evidence_of(session, gateway, entry)
    commit(session)
    return ours
