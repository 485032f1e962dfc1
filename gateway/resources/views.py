"""Resource routes: registration (登记) by holders, its review by the platform, and look-up."""

from datetime import timedelta
from typing import Literal

from fastapi import APIRouter, Body, Depends, Query
from sqlalchemy.orm import Session

from gateway.auth.views import current_participant, require_role
from gateway.context import Gateway, get_gateway, get_session
from gateway.core.errors import forbidden, not_found, problem_responses
from gateway.core.types import MAX_OFFSET, ObjectId
from gateway.participants.models import Participant
from gateway.resources import service
from gateway.resources.certificate import decode
from gateway.resources.models import (
    Certificate,
    Objection,
    Publicity,
    RegistrationCreate,
    RegistrationRead,
    Rejection,
    ResourceCreate,
    ResourceRead,
)

router = APIRouter(prefix="/resources", tags=["resources"])
registrations = APIRouter(prefix="/registrations", tags=["resources"])


@router.post(
    "",
    status_code=201,
    response_model=ResourceRead,
    responses=problem_responses(401, 403, 422, 502),
)
def register_resource(
    body: ResourceCreate,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> ResourceRead:
    """Apply to register a data resource (holders only): it is usable once coded. Its data is
    the rows posted or a data address, whose source is opened now (502 when it cannot be
    reached, 422 when its columns are not the declared fields)."""
    require_role(me, "holder")
    resource, registration, entry = service.apply(
        session, gateway.signer, body=body, holder_id=me.id, gateway=gateway
    )
    return service.to_read(resource, entry, registration=registration, show_salt=True)


@router.get("", response_model=list[ResourceRead], responses=problem_responses(401, 422))
def list_resources(
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(100, ge=1, le=500),
) -> list[ResourceRead]:
    """Return the caller's own resources with their open registration, oldest first (every
    resource to the admin and auditors; the dataset's salt to the holder and auditors)."""
    return [
        service.to_read(
            r,
            registration=service.open_registration(session, r.id),
            show_salt=me.id == r.holder_id or "auditor" in me.roles,
        )
        for r in service.list_resources(session, viewer=me, offset=offset, limit=limit)
    ]


def _visible_resource(session: Session, resource_id: str, me: Participant):
    """Return the resource if `me` may read it; 404 (as for an unknown id) before its
    registration is publicised, unless `me` is its holder, the admin or an auditor."""
    resource = service.get(session, resource_id)
    if not service.resource_visible(session, resource, me):
        raise not_found("resource", resource_id)
    if resource.holder_id != me.id and not {"operator", "merchant", "auditor", "admin"} & set(
        me.roles
    ):
        raise forbidden("only the holder, operators and auditors see resource records")
    return resource


@router.get(
    "/{resource_id}", response_model=ResourceRead, responses=problem_responses(401, 403, 404)
)
def get_resource(
    resource_id: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> ResourceRead:
    """Return a resource's registration record (its holder, operators and auditors; before
    publicity only its holder, the admin and auditors). The dataset's salt is shown to the
    holder and auditors only."""
    resource = _visible_resource(session, resource_id, me)
    pending = service.open_registration(session, resource.id)
    if pending is not None and not service.registration_visible(pending, me):
        pending = None
    show_salt = me.id == resource.holder_id or "auditor" in me.roles
    return service.to_read(resource, registration=pending, show_salt=show_salt)


@router.get(
    "/{resource_id}/registrations",
    response_model=list[RegistrationRead],
    responses=problem_responses(401, 403, 404),
)
def list_resource_registrations(
    resource_id: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> list[RegistrationRead]:
    """Return every registration of a resource `me` may see, oldest first."""
    resource = _visible_resource(session, resource_id, me)
    return [
        service.registration_read(r)
        for r in service.registrations_of(session, resource.id)
        if service.registration_visible(r, me)
    ]


@router.post(
    "/{resource_id}/registrations",
    status_code=201,
    response_model=RegistrationRead,
    responses=problem_responses(401, 403, 404, 409, 422, 502),
)
def apply_later_registration(
    resource_id: ObjectId,
    body: RegistrationCreate,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> RegistrationRead:
    """Apply for a change, correction or cancellation of a coded resource (its holder)."""
    require_role(me, "holder")
    registration, entry = service.apply_later(
        session,
        gateway.signer,
        resource_id=resource_id,
        body=body,
        holder_id=me.id,
        gateway=gateway,
    )
    return service.registration_read(registration, entry)


@registrations.get("", response_model=list[RegistrationRead], responses=problem_responses(401, 422))
def list_registrations(
    state: Literal["applied", "accepted", "reviewed", "publicised", "coded", "rejected"]
    | None = Query(None, description="only registrations in this state, e.g. publicised"),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(100, ge=1, le=500),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> list[RegistrationRead]:
    """Return registrations, newest first: `?state=publicised` lists those open to objection.

    Before publicity (applied, accepted, reviewed) a registration is listed only to its holder,
    the platform admin and auditors."""
    return [
        service.registration_read(r)
        for r in service.list_registrations(
            session, state=state, offset=offset, limit=limit, viewer=me
        )
    ]


@registrations.get(
    "/{registration_id}", response_model=RegistrationRead, responses=problem_responses(401, 404)
)
def get_registration(
    registration_id: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> RegistrationRead:
    """Return a registration: any participant once publicised (公示); before that its holder,
    the platform admin and auditors (404 for anyone else, as for an unknown id)."""
    return service.registration_read(service.get_registration(session, registration_id, viewer=me))


@registrations.get(
    "/{registration_id}/certificate",
    response_model=Certificate,
    responses=problem_responses(401, 404, 409),
)
def get_certificate(
    registration_id: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> Certificate:
    """Return the gateway-signed certificate of a coded registration (save it; verify offline)."""
    registration = service.get_registration(session, registration_id, viewer=me)
    if registration.certificate is None:
        raise service.LIFECYCLE.invalid(registration.id, registration.state, "certified")
    header, payload = decode(registration.certificate)
    return Certificate(certificate=registration.certificate, payload=payload, kid=header["kid"])


def _step(
    registration_id: ObjectId,
    action: str,
    me: Participant,
    session: Session,
    gateway: Gateway,
    **kwargs,
) -> RegistrationRead:
    registration, entry = service.advance(
        session,
        gateway.signer,
        registration_id=registration_id,
        action=action,
        actor=me,
        issuer=gateway.settings.issuer,
        **kwargs,
    )
    return service.registration_read(registration, entry)


_STEP = {
    "response_model": RegistrationRead,
    "responses": problem_responses(401, 403, 404, 409, 422),
}


@registrations.post("/{registration_id}/accept", **_STEP)
def accept_registration(
    registration_id: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> RegistrationRead:
    """Accept an application for examination (admin): applied → accepted."""
    return _step(registration_id, "accept", me, session, gateway)


@registrations.post("/{registration_id}/review", **_STEP)
def review_registration(
    registration_id: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> RegistrationRead:
    """Record the review as passed (admin): accepted → reviewed."""
    return _step(registration_id, "review", me, session, gateway)


@registrations.post("/{registration_id}/publicise", **_STEP)
def publicise_registration(
    registration_id: ObjectId,
    body: Publicity | None = Body(None),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> RegistrationRead:
    """Open the publicity (公示) window (admin): reviewed → publicised."""
    seconds = body.window_seconds if body and body.window_seconds is not None else None
    if seconds is None:
        seconds = gateway.settings.publicity_seconds
    return _step(
        registration_id, "publicise", me, session, gateway, window=timedelta(seconds=seconds)
    )


@registrations.post("/{registration_id}/object", **_STEP)
def object_to_registration(
    registration_id: ObjectId,
    body: Objection,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> RegistrationRead:
    """Object during publicity (any participant): publicised → accepted, to be reviewed again."""
    return _step(registration_id, "object", me, session, gateway, reason=body.reason)


@registrations.post("/{registration_id}/code", **_STEP)
def code_registration(
    registration_id: ObjectId,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> RegistrationRead:
    """Code the registration once its window has closed (admin): publicised → coded."""
    return _step(registration_id, "code", me, session, gateway)


@registrations.post("/{registration_id}/reject", **_STEP)
def reject_registration(
    registration_id: ObjectId,
    body: Rejection,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> RegistrationRead:
    """Reject an application before publicity (admin)."""
    return _step(registration_id, "reject", me, session, gateway, reason=body.reason)
