"""Peer registry routes: the platform admin registers, lists, suspends and reactivates peers."""

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Path
from sqlalchemy.orm import Session

from gateway.auth.views import current_participant, require_role
from gateway.context import Gateway, get_gateway, get_session
from gateway.core.errors import problem_responses
from gateway.participants.models import Participant
from gateway.peers import service
from gateway.peers.models import PEER_ID_MAX, PeerCreate, PeerList, PeerRead, PeerStatusChange

router = APIRouter(prefix="/peers", tags=["peers"])


@router.post(
    "", status_code=201, response_model=PeerRead, responses=problem_responses(401, 403, 409, 422)
)
def register_peer(
    body: PeerCreate,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> PeerRead:
    """Register a peer gateway: its id (issuer), DSP URL, Ed25519 keys and the participants
    whose home it is (admin only; ledger entry peer.registered)."""
    require_role(me, "admin")
    peer, entry = service.register(
        session, gateway.signer, gateway.settings, body=body, actor=me.id
    )
    return service.to_read(peer, entry)


@router.get("", response_model=PeerList, responses=problem_responses(401, 403))
def list_peers(
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> PeerList:
    """The registered peer gateways (admin only)."""
    require_role(me, "admin")
    return PeerList(items=[service.to_read(p) for p in service.list_peers(session)])


@router.post(
    "/{peer_id:path}/{action}",
    response_model=PeerRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def change_peer_status(
    peer_id: Annotated[str, Path(min_length=1, max_length=PEER_ID_MAX)],
    action: Literal["suspend", "reactivate"],
    body: PeerStatusChange | None = Body(None),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> PeerRead:
    """Suspend a peer (its tokens are refused at once) or reactivate it (admin only; ledger
    entry peer.suspended or peer.reactivated). The peer id is its issuer URL, as registered."""
    require_role(me, "admin")
    peer, entry = service.change_status(
        session,
        gateway.signer,
        peer_id=peer_id,
        action=action,
        reason=body.reason if body else "",
        actor=me.id,
    )
    return service.to_read(peer, entry)
