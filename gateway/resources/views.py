"""Resource routes: registration by holders, and look-up."""

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from gateway.auth.views import current_participant, require_role
from gateway.context import Gateway, get_gateway, get_session
from gateway.core.errors import forbidden, problem_responses
from gateway.participants.models import Participant
from gateway.resources import service
from gateway.resources.models import ResourceCreate, ResourceRead

router = APIRouter(prefix="/resources", tags=["resources"])


@router.post(
    "", status_code=201, response_model=ResourceRead, responses=problem_responses(401, 403, 422)
)
def register_resource(
    body: ResourceCreate,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ResourceRead:
    """Register a data resource with its grade, fields and dataset (holders only)."""
    require_role(me, "holder")
    resource, entry = service.register(session, gateway.signer, body=body, holder_id=me.id)
    return service.to_read(resource, entry)


@router.get(
    "/{resource_id}", response_model=ResourceRead, responses=problem_responses(401, 403, 404)
)
def get_resource(
    resource_id: str,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> ResourceRead:
    """Return a resource's registration record (its holder, operators and auditors)."""
    resource = service.get(session, resource_id)
    if resource.holder_id != me.id and not {"operator", "merchant", "auditor", "admin"} & set(
        me.roles
    ):
        raise forbidden("only the holder, operators and auditors see resource records")
    return service.to_read(resource)
