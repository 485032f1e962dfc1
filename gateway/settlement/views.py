"""Settlement routes: close a period (admin), read periods, invoices and signed statements."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from gateway.auth.views import current_participant
from gateway.context import Gateway, get_gateway, get_session
from gateway.core.errors import problem_responses
from gateway.core.types import ID_MAX, ID_PATTERN, MAX_OFFSET
from gateway.participants.models import Participant
from gateway.settlement import service
from gateway.settlement.models import (
    PERIOD_PATTERN,
    AuthorisationIdParam,
    CeilingRead,
    CeilingSet,
    CreditNoteIdParam,
    CreditNoteRead,
    DocumentIdParam,
    InvoiceRead,
    PeriodParam,
    PeriodRead,
    RefundIdParam,
    RefundRead,
    RefundRequest,
    StatementRead,
    StatementSummary,
    VoucherIdParam,
    VoucherIssue,
    VoucherRead,
)

router = APIRouter(prefix="/settlement", tags=["settlement"])


@router.post(
    "/periods/{period}/close",
    response_model=PeriodRead,
    responses=problem_responses(401, 403, 409, 422),
)
def close_period(
    period: PeriodParam,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> PeriodRead:
    """Close a month (admin): invoices, split, journal and signed statements on the ledger.
    Closing a closed period changes nothing and returns it (`already_closed`)."""
    return service.close(session, gateway, period=period, by=me)


@router.get(
    "/periods/{period}", response_model=PeriodRead, responses=problem_responses(401, 403, 404, 422)
)
def get_period(
    period: PeriodParam,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> PeriodRead:
    """Return a closed period (admin, auditors)."""
    return service.get_period(session, period=period, viewer=me)


@router.get(
    "/invoices/{invoice_id}",
    response_model=InvoiceRead,
    responses=problem_responses(401, 404, 422),
)
def get_invoice(
    invoice_id: DocumentIdParam,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> InvoiceRead:
    """Return an invoice (its contract's parties, the split's parties, admin, auditors)."""
    return service.get_invoice(session, invoice_id=invoice_id, viewer=me)


@router.get(
    "/statements",
    response_model=list[StatementSummary],
    responses=problem_responses(401, 422),
)
def list_statements(
    period: Annotated[
        str | None, Query(pattern=PERIOD_PATTERN, description="only this month, YYYY-MM")
    ] = None,
    party: Annotated[
        str | None,
        Query(max_length=ID_MAX, pattern=ID_PATTERN, description="only this party's"),
    ] = None,
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    limit: int = Query(50, ge=1, le=200),
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> list[StatementSummary]:
    """Return the signed statements of closed periods, newest period first: a party its own,
    the admin and auditors every one (`?period=`, `?party=` narrow it)."""
    return service.list_statements(
        session, viewer=me, period=period, party=party, offset=offset, limit=limit
    )


@router.get(
    "/statements/{statement_id}",
    response_model=StatementRead,
    responses={
        200: {"content": {"text/html": {}}, "description": "JSON, or HTML if Accept asks"},
        **problem_responses(401, 404, 422),
    },
)
def get_statement(
    statement_id: DocumentIdParam,
    request: Request,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
):
    """Return a signed statement (its party, admin, auditors), as a page if Accept asks."""
    statement = service.get_statement(session, statement_id=statement_id, viewer=me)
    accept = request.headers.get("accept", "")
    if "text/html" in accept and "application/json" not in accept:
        return HTMLResponse(service.render_html(statement))
    return statement


@router.put(
    "/authorisations/{authorisation_id}/ceiling",
    response_model=CeilingRead,
    responses=problem_responses(401, 403, 404, 409, 422),
)
def set_ceiling(
    authorisation_id: AuthorisationIdParam,
    body: CeilingSet,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> CeilingRead:
    """Set or change the ceiling on the operator's income per period (the authorisation's
    holder only); income above it is deducted in the next period (specs/settlement.md §10)."""
    return service.set_ceiling(
        session, gateway, authorisation_id=authorisation_id, body=body, holder=me
    )


@router.post(
    "/vouchers",
    status_code=201,
    response_model=VoucherRead,
    responses=problem_responses(401, 403, 422),
)
def issue_voucher(
    body: VoucherIssue,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> VoucherRead:
    """Issue a data voucher (数据券) to an enterprise (voucher issuers only); it is redeemed at
    invoice time (specs/settlement.md)."""
    return service.issue_voucher(session, gateway, body=body, issuer=me)


@router.get(
    "/vouchers/{voucher_id}", response_model=VoucherRead, responses=problem_responses(401, 404, 422)
)
def get_voucher(
    voucher_id: VoucherIdParam,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> VoucherRead:
    """Return a voucher with its balance (its issuer, its enterprise, admin, auditors)."""
    return service.get_voucher(session, voucher_id=voucher_id, viewer=me)


@router.post(
    "/refunds",
    status_code=201,
    response_model=RefundRead,
    responses=problem_responses(401, 403, 404, 409, 422, 503),
)
def refund(
    body: RefundRequest,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> RefundRead:
    """Refund a consumer part of a closed invoice, or of the invoice a delivery was settled in
    (the contract's merchant or the admin, as the policy decides; never more than was charged
    net of earlier refunds). The next close records its credit note (specs/settlement.md §11)."""
    return service.refund(session, gateway, body=body, by=me)


@router.get(
    "/refunds/{refund_id}", response_model=RefundRead, responses=problem_responses(401, 404, 422)
)
def get_refund(
    refund_id: RefundIdParam,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> RefundRead:
    """Return a refund (its contract's parties, admin, auditors) and its credit note's id."""
    return service.get_refund(session, refund_id=refund_id, viewer=me)


@router.get(
    "/credit-notes/{credit_note_id}",
    response_model=CreditNoteRead,
    responses=problem_responses(401, 404, 422),
)
def get_credit_note(
    credit_note_id: CreditNoteIdParam,
    me: Participant = Depends(current_participant),
    session: Session = Depends(get_session),
) -> CreditNoteRead:
    """Return a credit note (the parties it names, admin, auditors)."""
    return service.get_credit_note(session, credit_note_id=credit_note_id, viewer=me)
