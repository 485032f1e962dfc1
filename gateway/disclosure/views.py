"""Disclosure routes: the yearly publication, public (no token), as JSON or as an HTML page."""

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from gateway.context import Gateway, get_gateway, get_session
from gateway.core.errors import problem_responses
from gateway.disclosure import service
from gateway.disclosure.models import Disclosure

router = APIRouter(prefix="/disclosure", tags=["disclosure"])
YEAR = Path(ge=2000, le=3000, description="calendar year (UTC)")


@router.get("/{year}.html", response_class=HTMLResponse, responses=problem_responses(422))
def disclosure_page(
    year: int = YEAR,
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
) -> HTMLResponse:
    """Return the yearly disclosure as a page a person can read (public)."""
    disclosure = service.build(session, year=year, publisher=gateway.settings.issuer)
    return HTMLResponse(service.render_html(disclosure))


@router.get(
    "/{year}",
    response_model=Disclosure,
    responses={
        200: {"content": {"text/html": {}}, "description": "JSON, or HTML if Accept asks"},
        **problem_responses(422),
    },
)
def disclosure(
    request: Request,
    year: int = YEAR,
    session: Session = Depends(get_session),
    gateway: Gateway = Depends(get_gateway),
):
    """Return the yearly disclosure of authorisations, products and fees (public, no token)."""
    built = service.build(session, year=year, publisher=gateway.settings.issuer)
    accept = request.headers.get("accept", "")
    if "text/html" in accept and "application/json" not in accept:
        return HTMLResponse(service.render_html(built))
    return built
