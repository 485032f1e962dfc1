"""Federation, consumer side: this gateway acts at a peer gateway, over DSP, for one of its own
participants (specs/dsp.md, *Consumer side*).

Each step is decided by OPA here first (`dsgw.federation`), recorded here before the message
leaves (`federation.sent`, with a checkpoint covering it: the evidence the message carries),
sent with a peer token this gateway signs, and recorded again when the peer answers
(`federation.answered`, naming the peer's own entry and checkpoint). The peer's callbacks
(agreement, transfer start, …) are `federation.received`. A step refused here, or one the peer
refuses or cannot be reached for, is `federation.refused`: fail closed, recorded.
"""

import hashlib
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from contracts.document import contract_hash
from contracts.signing import ContractSignatureError, verify_contract_signature
from gateway.context import Gateway
from gateway.core.errors import Problem, conflict
from gateway.core.hashing import content_hash
from gateway.dsp.models import DSGW_TERMS, PATH, message
from gateway.dsp.service import bad_message
from gateway.evidence.service import commit, record
from gateway.federation import service
from gateway.federation.models import FederatedProcess, NegotiationCreate
from gateway.participants.models import Participant
from gateway.peers import service as peers
from gateway.peers.models import Peer

EVIDENCE = service.EVIDENCE
# The most this gateway reads of one pull from a peer (it hands the bytes to its consumer).
MAX_PULL_BYTES = 64 * 1024 * 1024
# The most it reads of any other answer of a peer.
MAX_ANSWER_BYTES = 4 * 1024 * 1024


def _refused(
    session: Session,
    gateway: Gateway,
    step: str,
    subject: Participant,
    peer_id: str,
    problem: Problem,
    reasons: list[dict] | None = None,
) -> Problem:
    return service.refuse(
        session, gateway, step=step, subject=subject, peer_id=peer_id, problem=problem,
        reasons=reasons,
    )  # fmt: skip


def _admit(session: Session, gateway: Gateway, *, step: str, subject: Participant, peer_id: str):
    """Return the peer once the policy lets `subject` take `step` there; else record the
    refusal and raise (404 unknown peer, 403 refused by policy, 503 no decision)."""
    peer = session.get(Peer, peer_id[:500])
    if peer is None:
        problem = Problem(
            404, "peer-unknown", "Unknown peer", f"no peer gateway {peer_id[:500]!r} is registered"
        )
        raise _refused(session, gateway, step, subject, peer_id, problem)
    peer_status = peer.status
    try:
        reasons = service.decide(gateway, step=step, subject=subject, peer=peer, peer_id=peer.id)
    except Problem as problem:
        raise _refused(session, gateway, step, subject, peer_id, problem) from None
    if reasons:
        slug = "peer-suspended" if peer_status != "active" else "federation-denied"
        problem = Problem(
            403,
            slug,
            "Federated step refused",
            "; ".join(f"{r['code']}: {r['detail']}" for r in reasons),
            reasons=reasons,
        )
        raise _refused(session, gateway, step, subject, peer_id, problem, reasons)
    return peer


def _callback_address(gateway: Gateway) -> str:
    return f"{gateway.settings.issuer.rstrip('/')}{PATH}/callback"


def _process_callback_address(gateway: Gateway, peer: Peer, process: FederatedProcess) -> str:
    """Return the callback address the peer is given for `process`: ours for a dsgw peer (its
    callbacks carry its signed token); for a "dsp" peer, one with a fresh key of the process in
    it (`…/callback/k/{key}`: its callbacks are authenticated by that key, kept hashed)."""
    if peer.kind != "dsp":
        return _callback_address(gateway)
    key, process.callback_key_hash = peers.new_callback_key()
    return f"{_callback_address(gateway)}/k/{key}"


def _call(
    gateway: Gateway,
    peer: Peer,
    participant_id: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    empty_ok: bool = False,
) -> dict[str, Any]:
    """Send one DSP request to the peer with our peer token for `participant_id` (its id there);
    return the JSON answer (with `empty_ok`, {} for a 2xx without a JSON object: DSP answers an
    event, verification or termination with an empty 200), else raise 502 (unreachable,
    refused, or not DSP)."""
    token = peers.sign_token(
        gateway.signer,
        issuer=gateway.settings.issuer,
        audience=peer.id,
        participant_id=participant_id,
    )
    url = f"{peer.dsp_url}{path}"
    try:
        answer = httpx.request(
            method, url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=15
        )
    except httpx.HTTPError as exc:
        raise Problem(
            502, "peer-unreachable", "Peer unreachable", f"{url}: {type(exc).__name__}: {exc}"
        ) from None
    text = answer.content[:MAX_ANSWER_BYTES]
    try:
        found = answer.json() if len(answer.content) <= MAX_ANSWER_BYTES else None
    except ValueError:
        found = None
    if empty_ok and 200 <= answer.status_code < 300 and not isinstance(found, dict):
        return {}
    if answer.status_code >= 300 or not isinstance(found, dict):
        reason = found.get("detail") or found.get("reason") if isinstance(found, dict) else None
        raise Problem(
            502,
            "peer-refused-step",
            "The peer refused the step",
            f"{method} {url} answered {answer.status_code}: "
            f"{str(reason or text[:300].decode(errors='replace'))[:500]}",
            peer_status=answer.status_code,
            peer_type=found.get("type") if isinstance(found, dict) else None,
        )
    return found


def _state(answer: dict[str, Any], fallback: str) -> str:
    state = answer.get("state")
    return state.rsplit(":", 1)[-1][:20] if isinstance(state, str) and state else fallback


def catalogue(
    session: Session,
    gateway: Gateway,
    *,
    subject: Participant,
    peer_id: str,
    offset: int,
    limit: int,
):
    """Return (the peer, the peer's DSP catalogue page as `subject` may see it there, the entry
    `federation.catalogue`)."""
    peer = _admit(session, gateway, step="catalogue", subject=subject, peer_id=peer_id)
    account = peer.accounts[subject.id]
    session.commit()  # no transaction held while the peer answers
    try:
        found = _call(
            gateway,
            peer,
            account,
            "POST",
            f"/catalog/request?offset={offset}&limit={limit}",
            message("CatalogRequestMessage"),
        )
    except Problem as problem:
        raise _refused(session, gateway, "catalogue", subject, peer_id, problem) from None
    datasets = found.get("dataset") if isinstance(found.get("dataset"), list) else []
    entry = record(
        session,
        gateway.signer,
        type="federation.catalogue",
        data={
            "peer": peer.id,
            "participant": subject.id,
            "remote_participant": account,
            "datasets": [str(d.get("@id"))[:200] for d in datasets if isinstance(d, dict)][:200],
            "sha256": content_hash(found),
        },
    )
    commit(session)
    return peer, account, found, entry


def _send_step(
    session: Session,
    gateway: Gateway,
    process: FederatedProcess,
    peer: Peer,
    *,
    step: str,
    path: str,
    body: dict[str, Any],
    before: str | None = None,
    empty_ok: bool = False,
    **data: Any,
) -> tuple[FederatedProcess, Any]:
    """Record the step (`federation.sent` + a checkpoint), send it with that evidence, record
    the peer's answer (`federation.answered` with the peer's evidence); return the process."""
    sent = service.step_entry(session, gateway, "federation.sent", process, step=step, **data)
    body[EVIDENCE] = {"@value": service.evidence_of(session, gateway, sent), "@type": "@json"}
    account = process.remote_participant_id
    consumer_pid = process.consumer_pid
    # The state this step moves the process to (VERIFIED, ACCEPTED, TERMINATED) is set before
    # the message leaves: the peer's next callback may come before its answer does.
    if before is not None:
        previous, process.state = process.state, before
    commit(session)  # recorded before it leaves; no transaction held while the peer answers
    try:
        answer = _call(gateway, peer, account, "POST", path, body, empty_ok=empty_ok)
    except Problem as problem:
        process = session.get(FederatedProcess, consumer_pid)
        if process.provider_pid is None:
            process.state = "FAILED"
        elif before is not None and process.state == before:
            process.state = previous  # the peer refused the step: it did not happen
        service.step_entry(
            session, gateway, "federation.refused", process, step=step,
            problem=problem.slug, detail=problem.detail[:500],
        )  # fmt: skip
        commit(session)
        raise problem from None
    process = session.get(FederatedProcess, consumer_pid)
    provider_pid = answer.get("providerPid")
    if process.provider_pid is None and isinstance(provider_pid, str):
        process.provider_pid = provider_pid[:200]
    said = _state(answer, process.state)
    # A transfer is STARTED here once the peer's TransferStartMessage (the endpoint and token)
    # came, not when its answer says so; and a callback may have moved a process on already.
    if process.state in ("REQUESTED", "AGREED", "VERIFIED") and not (
        process.kind == "transfer" and said == "STARTED" and not process.endpoint
    ):
        process.state = said
    entry = service.step_entry(
        session,
        gateway,
        "federation.answered",
        process,
        step=step,
        state=process.state,
        peer_evidence=service.read_evidence(answer.get(EVIDENCE)),
    )
    commit(session)
    return process, entry


def negotiate(session: Session, gateway: Gateway, *, subject: Participant, body: NegotiationCreate):
    """Send the peer a ContractRequestMessage for `subject` (its callbacks come to us)."""
    peer = _admit(session, gateway, step="negotiate", subject=subject, peer_id=body.peer)
    process = service.new_process(
        session,
        kind="negotiation",
        peer=peer,
        subject=subject,
        state="REQUESTED",
        offer_id=body.offer_id,
        dataset_id=body.dataset_id,
        purpose=body.purpose,
    )
    offer: dict[str, Any] = {"@id": body.offer_id, "@type": "Offer"}
    if body.dataset_id is not None:
        offer["target"] = body.dataset_id
    if body.purpose is None and peer.kind == "dsp":
        # DSP's schema wants an offer with a rule; a dsgw provider reads the offer by its @id.
        offer["permission"] = [{"action": "use"}]
    if body.purpose is not None:
        offer["permission"] = [
            {
                "action": "use",
                "constraint": [
                    {"leftOperand": "odrl:purpose", "operator": "eq", "rightOperand": body.purpose}
                ],
            }
        ]
    request = message(
        "ContractRequestMessage",
        consumerPid=process.consumer_pid,
        offer=offer,
        callbackAddress=_process_callback_address(gateway, peer, process),
    )
    return _send_step(
        session, gateway, process, peer, step="negotiate", path="/negotiations/request",
        body=request, offer=body.offer_id, dataset=body.dataset_id, purpose=body.purpose,
    )  # fmt: skip


def _check_consumer_signature(subject: Participant, document: dict, jws: str) -> None:
    """Raise 422 unless `jws` is the subject's valid JWS (a key registered here) over `document`."""
    import jwt

    try:
        kid = jwt.get_unverified_header(jws).get("kid")
    except jwt.PyJWTError as exc:
        raise Problem(422, "invalid-signature", "Invalid contract signature", str(exc)) from None
    keys = {k.get("kid"): k for k in subject.jwks.get("keys", [])}
    if kid not in keys:
        raise Problem(
            422,
            "invalid-signature",
            "Invalid contract signature",
            f"the signature names key {kid!r}, not one registered here for {subject.id}",
        )
    try:
        verify_contract_signature(jws, document, keys[kid])
    except ContractSignatureError as exc:
        raise Problem(
            422, "invalid-signature", "Invalid contract signature", f"does not verify: {exc}"
        ) from None


def verify(
    session: Session, gateway: Gateway, *, subject: Participant, consumer_pid: str, jws: str | None
):
    """The consumer signs the agreement the peer sent: checked here with its keys, then sent as
    the ContractAgreementVerificationMessage (with the JWS, as a dsgw provider requires)."""
    process = service.get(session, consumer_pid, kind="negotiation", viewer=subject)
    if process.state != "AGREED" or process.document is None or process.provider_pid is None:
        raise conflict(
            "invalid-transition",
            "Nothing to verify",
            f"negotiation {process.consumer_pid} is {process.state}: only an AGREED negotiation "
            "(the peer's agreement received) is verified",
            current_state=process.state,
        )
    peer = _admit(session, gateway, step="verify", subject=subject, peer_id=process.peer_id)
    signed: dict[str, Any] = {}
    if peer.kind != "dsp":  # a dsgw agreement is a contract both parties sign
        try:
            if jws is None:
                raise Problem(
                    422, "invalid-signature", "Invalid contract signature",
                    "a dsgw peer's agreement is verified with the consumer's JWS over it",
                )  # fmt: skip
            _check_consumer_signature(subject, process.document, jws)
        except Problem as problem:
            raise _refused(session, gateway, "verify", subject, process.peer_id, problem) from None
        signed = {DSGW_TERMS + "signature": jws}
    body = message(
        "ContractAgreementVerificationMessage",
        providerPid=process.provider_pid,
        consumerPid=process.consumer_pid,
        **signed,
    )
    return _send_step(
        session, gateway, process, peer, step="verify",
        path=f"/negotiations/{process.provider_pid}/agreement/verification", body=body,
        before="VERIFIED", empty_ok=True, document_hash=process.document_hash,
        signature_hash=content_hash(jws) if jws else None,
    )  # fmt: skip


def accept(session: Session, gateway: Gateway, *, subject: Participant, consumer_pid: str):
    """The consumer accepts the peer's offer (an OFFERED negotiation): a
    ContractNegotiationEventMessage ACCEPTED to the peer (→ ACCEPTED; the agreement follows)."""
    process = service.get(session, consumer_pid, kind="negotiation", viewer=subject)
    if process.state != "OFFERED" or process.provider_pid is None:
        raise conflict(
            "invalid-transition",
            "No offer to accept",
            f"negotiation {process.consumer_pid} is {process.state}: only an OFFERED "
            "negotiation (the peer's offer received) is accepted",
            current_state=process.state,
        )
    peer = _admit(session, gateway, step="accept", subject=subject, peer_id=process.peer_id)
    body = message(
        "ContractNegotiationEventMessage",
        providerPid=process.provider_pid,
        consumerPid=process.consumer_pid,
        eventType="ACCEPTED",
    )
    return _send_step(
        session, gateway, process, peer, step="accept",
        path=f"/negotiations/{process.provider_pid}/events", body=body, before="ACCEPTED",
        empty_ok=True,
    )  # fmt: skip


def counter(
    session: Session,
    gateway: Gateway,
    *,
    subject: Participant,
    consumer_pid: str,
    offer_id: str | None = None,
):
    """The consumer answers the peer's offer (an OFFERED negotiation) with a request of its own:
    a ContractRequestMessage on the negotiation (→ REQUESTED; the peer offers again, agrees or
    terminates), for `offer_id` (by default the offer it first requested)."""
    process = service.get(session, consumer_pid, kind="negotiation", viewer=subject)
    if process.state != "OFFERED" or process.provider_pid is None:
        raise conflict(
            "invalid-transition",
            "No offer to counter",
            f"negotiation {process.consumer_pid} is {process.state}: only an OFFERED "
            "negotiation (the peer's offer received) is countered",
            current_state=process.state,
        )
    peer = _admit(session, gateway, step="counter", subject=subject, peer_id=process.peer_id)
    wanted = offer_id or process.offer_id
    offer: dict[str, Any] = {"@id": wanted, "@type": "Offer", "permission": [{"action": "use"}]}
    if process.dataset_id is not None:
        offer["target"] = process.dataset_id
    if process.purpose is not None:
        offer["permission"] = [
            {
                "action": "use",
                "constraint": [
                    {"leftOperand": "odrl:purpose", "operator": "eq",
                     "rightOperand": process.purpose}
                ],
            }
        ]  # fmt: skip
    body = message(
        "ContractRequestMessage",
        providerPid=process.provider_pid,
        consumerPid=process.consumer_pid,
        offer=offer,
    )
    process.offer_id = wanted
    return _send_step(
        session, gateway, process, peer, step="counter",
        path=f"/negotiations/{process.provider_pid}/request", body=body, before="REQUESTED",
        empty_ok=True, offer=wanted,
    )  # fmt: skip


_FINAL = ("FINALIZED", "TERMINATED", "FAILED", "COMPLETED")


def terminate(session: Session, gateway: Gateway, *, subject: Participant, consumer_pid: str):
    """The consumer ends a negotiation that is not over: a ContractNegotiationTerminationMessage
    to the peer (→ TERMINATED)."""
    process = service.get(session, consumer_pid, kind="negotiation", viewer=subject)
    if process.state in _FINAL or process.provider_pid is None:
        raise conflict(
            "invalid-transition",
            "Nothing to terminate",
            f"negotiation {process.consumer_pid} is {process.state}: only a negotiation the peer "
            "answered and that is not over is terminated",
            current_state=process.state,
        )
    peer = _admit(session, gateway, step="terminate", subject=subject, peer_id=process.peer_id)
    body = message(
        "ContractNegotiationTerminationMessage",
        providerPid=process.provider_pid,
        consumerPid=process.consumer_pid,
        code="consumer-terminated",
        reason=[{"@value": "the consumer ended the negotiation", "@language": "en"}],
    )
    return _send_step(
        session, gateway, process, peer, step="terminate",
        path=f"/negotiations/{process.provider_pid}/termination", body=body, before="TERMINATED",
        empty_ok=True,
    )  # fmt: skip


def _dsp_peer_at(session: Session, gateway: Gateway, subject: Participant, address: str) -> str:
    """Return the id of the registered peer whose DSP URL is `address` (an initiate trigger
    names the peer so); else record the refusal and raise 404."""
    wanted = address.rstrip("/")
    found = session.scalars(select(Peer.id).where(Peer.dsp_url == wanted)).first()
    if found is None:
        problem = Problem(
            404, "peer-unknown", "Unknown peer",
            f"no peer is registered with the DSP URL {wanted[:300]!r}",
        )  # fmt: skip
        raise _refused(session, gateway, "initiate", subject, wanted, problem)
    return found


def initiate_negotiation(
    session: Session, gateway: Gateway, *, subject: Participant, address: str, offer_id: str,
    dataset_id: str | None,
):  # fmt: skip
    """A consumer-side trigger (the DSP TCK's `negotiation.initiate.url`): negotiate `offer_id`
    with the peer at `address`, for the caller (as POST /federation/consumer/negotiations)."""
    peer_id = _dsp_peer_at(session, gateway, subject, address)
    body = NegotiationCreate(peer=peer_id, offer_id=offer_id, dataset_id=dataset_id)
    return negotiate(session, gateway, subject=subject, body=body)


def initiate_transfer(
    session: Session, gateway: Gateway, *, subject: Participant, address: str, agreement_id: str
):
    """A consumer-side trigger (the DSP TCK's `transfer.initiate.url`): a pull under the
    agreement `agreement_id` of the peer at `address`, which must be one of the caller's
    FINALIZED federated negotiations there (this gateway transfers only under an agreement it
    holds); else 409, recorded."""
    peer_id = _dsp_peer_at(session, gateway, subject, address)
    candidates = session.scalars(
        select(FederatedProcess).where(
            FederatedProcess.peer_id == peer_id,
            FederatedProcess.participant_id == subject.id,
            FederatedProcess.kind == "negotiation",
            FederatedProcess.state == "FINALIZED",
        )
    )
    for negotiation in candidates:
        agreed = (negotiation.document or {}).get("@id")
        if agreement_id in (negotiation.provider_pid, agreed):
            return transfer(
                session, gateway, subject=subject, negotiation_pid=negotiation.consumer_pid
            )
    problem = conflict(
        "no-agreement",
        "No such agreement",
        f"{agreement_id[:200]!r} is no agreement of a FINALIZED negotiation of yours with peer "
        f"{peer_id}: a transfer runs only under an agreement this gateway holds",
    )
    raise _refused(session, gateway, "initiate", subject, peer_id, problem)


def transfer(session: Session, gateway: Gateway, *, subject: Participant, negotiation_pid: str):
    """Ask the peer for a pull under a FINALIZED federated agreement (TransferRequestMessage);
    the endpoint and token follow in the peer's TransferStartMessage to our callback."""
    negotiation = service.get(session, negotiation_pid, kind="negotiation", viewer=subject)
    if negotiation.state != "FINALIZED" or negotiation.provider_pid is None:
        raise conflict(
            "invalid-transition",
            "No agreement yet",
            f"negotiation {negotiation.consumer_pid} is {negotiation.state}: a transfer runs "
            "under a FINALIZED agreement",
            current_state=negotiation.state,
        )
    peer = _admit(session, gateway, step="transfer", subject=subject, peer_id=negotiation.peer_id)
    process = service.new_process(
        session,
        kind="transfer",
        peer=peer,
        subject=subject,
        state="REQUESTED",
        negotiation_pid=negotiation.consumer_pid,
        offer_id=negotiation.offer_id,
        dataset_id=negotiation.dataset_id,
        purpose=negotiation.purpose,
    )
    body = message(
        "TransferRequestMessage",
        consumerPid=process.consumer_pid,
        # DSP names an agreement by its @id; a dsgw peer by the negotiation (its providerPid).
        agreementId=(
            (negotiation.document or {}).get("@id", negotiation.provider_pid)
            if peer.kind == "dsp"
            else negotiation.provider_pid
        ),
        format="HTTP-PULL",
        callbackAddress=_process_callback_address(gateway, peer, process),
    )
    return _send_step(
        session, gateway, process, peer, step="transfer", path="/transfers/request", body=body,
        agreement=negotiation.provider_pid,
    )  # fmt: skip


def _same_origin(url: str, base: str) -> bool:
    a, b = httpx.URL(url), httpx.URL(base)
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def pull(session: Session, gateway: Gateway, *, subject: Participant, consumer_pid: str):
    """Pull the data of a STARTED federated transfer from the peer's endpoint with the token its
    TransferStartMessage gave; return (bytes, media type, the entry `federation.pulled`)."""
    process = service.get(session, consumer_pid, kind="transfer", viewer=subject)
    if process.state != "STARTED" or not process.endpoint or not process.token:
        raise conflict(
            "transfer-state-conflict",
            "Transfer not started",
            f"transfer {process.consumer_pid} is {process.state}: the peer's TransferStartMessage "
            "(endpoint and token) has not come",
            current_state=process.state,
        )
    peer = _admit(session, gateway, step="pull", subject=subject, peer_id=process.peer_id)
    endpoint, token = process.endpoint, process.token
    if not (_same_origin(endpoint, peer.dsp_url) or _same_origin(endpoint, peer.id)):
        problem = Problem(
            502,
            "peer-endpoint-refused",
            "Data endpoint refused",
            f"the endpoint {endpoint[:300]} is not at the peer {peer.id}",
        )
        raise _refused(session, gateway, "pull", subject, process.peer_id, problem)
    session.commit()
    buffer = bytearray()
    try:
        with httpx.stream(
            "GET", endpoint, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as answer:
            status, media = answer.status_code, answer.headers.get("content-type", "")
            for chunk in answer.iter_bytes():
                buffer += chunk
                if len(buffer) > MAX_PULL_BYTES:
                    break
        content = bytes(buffer)
    except httpx.HTTPError as exc:
        problem = Problem(502, "peer-unreachable", "Peer unreachable", f"{endpoint}: {exc}")
        raise _refused(session, gateway, "pull", subject, process.peer_id, problem) from None
    if status != 200 or len(content) > MAX_PULL_BYTES:
        problem = Problem(
            502,
            "peer-refused-step",
            "The peer refused the step",
            f"GET {endpoint} answered {status} ({content[:300].decode(errors='replace')})",
            peer_status=status,
        )
        raise _refused(session, gateway, "pull", subject, process.peer_id, problem)
    process = session.get(FederatedProcess, consumer_pid)
    entry = service.step_entry(
        session,
        gateway,
        "federation.pulled",
        process,
        step="pull",
        bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        media_type=media[:100],
    )
    commit(session)
    return content, media or "application/octet-stream", entry


# -- the peer's callbacks on our processes ----------------------------------------------------

# A "dsp" peer's transfer messages, by the states of ours they may come in (DSP's transfer
# state machine, as the TCK checks it).
_DSP_TRANSFER_FROM = {
    "TransferStartMessage": ("REQUESTED", "SUSPENDED"),
    "TransferSuspensionMessage": ("STARTED",),
    "TransferCompletionMessage": ("STARTED",),
    "TransferTerminationMessage": ("REQUESTED", "STARTED", "SUSPENDED"),
}


def _has_token(body: dict) -> bool:
    address = body.get("dataAddress")
    props = address.get("endpointProperties") if isinstance(address, dict) else None
    return any(
        isinstance(p, dict) and p.get("name") == "authorization"
        for p in (props if isinstance(props, list) else [])
    )


_TRANSFER_MOVES = {  # the consumer's move: (DSP message, path at the peer, from, to)
    "suspend": ("TransferSuspensionMessage", "suspension", ("STARTED",), "SUSPENDED"),
    "complete": ("TransferCompletionMessage", "completion", ("STARTED",), "COMPLETED"),
    "terminate": (
        "TransferTerminationMessage", "termination", ("REQUESTED", "STARTED", "SUSPENDED"),
        "TERMINATED",
    ),
}  # fmt: skip


def transfer_move(
    session: Session, gateway: Gateway, *, subject: Participant, consumer_pid: str, move: str
):
    """The consumer suspends, completes or terminates one of its federated transfers: the DSP
    message to the peer (→ SUSPENDED, COMPLETED, TERMINATED)."""
    type_, path, sources, target = _TRANSFER_MOVES[move]
    process = service.get(session, consumer_pid, kind="transfer", viewer=subject)
    if process.state not in sources or process.provider_pid is None:
        raise conflict(
            "transfer-state-conflict",
            "Invalid transfer transition",
            f"transfer {process.consumer_pid} is {process.state}: only a transfer the peer "
            f"answered that is {' or '.join(sources)} can be told to {move}",
            current_state=process.state,
        )
    peer = _admit(session, gateway, step=move, subject=subject, peer_id=process.peer_id)
    members: dict[str, Any] = {}
    if move != "complete":
        members = {"code": f"consumer-{move}", "reason": [{"@value": f"the consumer's {move}"}]}
    body = message(
        type_, providerPid=process.provider_pid, consumerPid=process.consumer_pid, **members
    )
    return _send_step(
        session, gateway, process, peer, step=move,
        path=f"/transfers/{process.provider_pid}/{path}", body=body, before=target,
        empty_ok=True,
    )  # fmt: skip


_TRANSFER_STATES = {
    "TransferStartMessage": "STARTED",
    "TransferSuspensionMessage": "SUSPENDED",
    "TransferCompletionMessage": "COMPLETED",
    "TransferTerminationMessage": "TERMINATED",
}


def _provider_pid(process: FederatedProcess, body: dict[str, Any]) -> None:
    pid = body.get("providerPid")
    if isinstance(pid, str) and pid:
        if process.provider_pid is None:
            process.provider_pid = pid[:200]
        elif process.provider_pid != pid:
            raise bad_message(
                f"providerPid {pid[:200]!r} is not the peer's id of process {process.consumer_pid}"
            )


def _json_value(value: Any) -> Any:
    return value.get("@value") if isinstance(value, dict) and "@value" in value else value


def negotiation_callback(
    session: Session, gateway: Gateway, *, peer: Peer, consumer_pid: str, kind: str, body: dict
):
    """The peer's ContractAgreementMessage, ContractNegotiationEventMessage or
    ContractNegotiationTerminationMessage on one of our negotiations (`federation.received`)."""
    process = service.for_peer(session, consumer_pid, kind="negotiation", peer=peer)
    _provider_pid(process, body)
    data: dict[str, Any] = {}
    if kind == "ContractAgreementMessage" and peer.kind == "dsp":
        # A DSP connector's agreement: an ODRL Agreement (no dsgw contract to sign), after our
        # request or our acceptance of its offer, never over an offer not yet accepted.
        agreement = body.get("agreement")
        if not isinstance(agreement, dict) or not isinstance(agreement.get("@id"), str):
            raise bad_message(
                "a ContractAgreementMessage carries the agreement (an object with an @id)"
            )
        if process.state not in ("REQUESTED", "ACCEPTED"):
            raise conflict(
                "invalid-transition",
                "Agreement out of turn",
                f"negotiation {process.consumer_pid} is {process.state}: an agreement follows "
                "the consumer's request or its acceptance of an offer",
                current_state=process.state,
            )
        process.document, process.document_hash = agreement, content_hash(agreement)
        process.state = "AGREED"
        data = {"document_hash": process.document_hash, "agreement": agreement["@id"][:200]}
    elif kind == "ContractOfferMessage":
        if process.state != "REQUESTED":
            raise conflict(
                "invalid-transition",
                "Offer out of turn",
                f"negotiation {process.consumer_pid} is {process.state}: the peer offers after "
                "the consumer's request (REQUESTED)",
                current_state=process.state,
            )
        offer = body.get("offer")
        process.state = "OFFERED"
        data = {"offer": str(offer.get("@id"))[:200] if isinstance(offer, dict) else None}
    elif kind == "ContractAgreementMessage":
        agreement = body.get("agreement")
        document = (
            _json_value(agreement.get(DSGW_TERMS + "contract"))
            if isinstance(agreement, dict)
            else None
        )
        if not isinstance(document, dict):
            raise bad_message(f"the agreement carries no contract document ({DSGW_TERMS}contract)")
        if process.state not in ("REQUESTED", "AGREED"):
            raise conflict(
                "invalid-transition",
                "Agreement out of turn",
                f"negotiation {process.consumer_pid} is {process.state}",
            )
        ours, theirs = contract_hash(document), agreement.get(DSGW_TERMS + "documentHash")
        if theirs is not None and theirs != ours:
            raise bad_message(
                f"the agreement's documentHash {str(theirs)[:100]!r} is not the hash of its "
                f"contract document ({ours})"
            )
        process.document, process.document_hash = document, ours
        signature = agreement.get(DSGW_TERMS + "providerSignature")
        process.provider_signature = signature[:4000] if isinstance(signature, str) else None
        process.state = "AGREED"
        data = {"document_hash": ours}
    elif kind == "ContractNegotiationTerminationMessage":
        process.state = "TERMINATED"
    else:  # an event: FINALIZED (or ACCEPTED, AGREED) as the peer names it
        event = body.get("eventType")
        if isinstance(event, str) and event.rsplit(":", 1)[-1] == "FINALIZED":
            # FINALIZED follows the consumer's verification (VERIFIED), never comes before it.
            if process.state not in ("VERIFIED", "FINALIZED"):
                raise conflict(
                    "invalid-transition",
                    "Finalisation out of turn",
                    f"negotiation {process.consumer_pid} is {process.state}: the peer finalises "
                    "a verified agreement (VERIFIED)",
                    current_state=process.state,
                )
            process.state = "FINALIZED"
        elif peer.kind == "dsp":
            raise bad_message(f"a provider's event is FINALIZED, not {str(event)[:50]!r}")
    entry = service.step_entry(
        session, gateway, "federation.received", process, step=kind, state=process.state,
        peer_evidence=service.read_evidence(body.get(EVIDENCE)), **data,
    )  # fmt: skip
    commit(session)
    return process, entry


def transfer_callback(
    session: Session, gateway: Gateway, *, peer: Peer, consumer_pid: str, kind: str, body: dict
):
    """The peer's TransferStartMessage (the endpoint and token to pull with), suspension,
    completion or termination on one of our transfers (`federation.received`)."""
    process = service.for_peer(session, consumer_pid, kind="transfer", peer=peer)
    _provider_pid(process, body)
    data: dict[str, Any] = {}
    if peer.kind == "dsp":
        allowed = _DSP_TRANSFER_FROM[kind]
        if process.state not in allowed:
            raise conflict(
                "transfer-state-conflict",
                "Transfer message out of turn",
                f"transfer {process.consumer_pid} is {process.state}: a {kind} comes when it is "
                f"{' or '.join(allowed)}",
                current_state=process.state,
            )
    if kind == "TransferStartMessage" and peer.kind == "dsp" and not _has_token(body):
        # A DSP connector may start a transfer without a token for us (a push, or its own
        # scheme): recorded; a pull then has nothing to pull with and is refused.
        address = body.get("dataAddress")
        endpoint = address.get("endpoint") if isinstance(address, dict) else None
        process.endpoint = endpoint[:2000] if isinstance(endpoint, str) else None
        data = {"endpoint": process.endpoint, "token": False}
    elif kind == "TransferStartMessage":
        address = body.get("dataAddress")
        props = address.get("endpointProperties") if isinstance(address, dict) else None
        named = {
            p.get("name"): p.get("value")
            for p in (props if isinstance(props, list) else [])
            if isinstance(p, dict)
        }
        endpoint = address.get("endpoint") if isinstance(address, dict) else None
        token = named.get("authorization")
        if not (isinstance(endpoint, str) and endpoint.startswith(("http://", "https://"))):
            raise bad_message(
                "a TransferStartMessage for a pull carries a dataAddress with an http(s) endpoint"
            )
        if not isinstance(token, str) or not token or len(token) > 4000:
            raise bad_message(
                "the dataAddress carries the bearer token (endpointProperties authorization)"
            )
        process.endpoint, process.token = endpoint[:2000], token
        expires = named.get("expiresAt")
        process.expires_at = str(expires)[:40] if expires is not None else None
        data = {"endpoint": process.endpoint, "expires_at": process.expires_at}
    process.state = _TRANSFER_STATES[kind]
    entry = service.step_entry(
        session, gateway, "federation.received", process, step=kind, state=process.state,
        peer_evidence=service.read_evidence(body.get(EVIDENCE)), **data,
    )  # fmt: skip
    commit(session)
    return process, entry
