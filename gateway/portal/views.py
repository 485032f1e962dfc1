"""The portal's routes: one page shell per language and its static assets (not in the OpenAPI).

The page is a shell: every figure on it comes from the public API, fetched by the browser with
the participant's token, which lives in the page's memory only (specs/portal.md). Navigation
inside the portal changes the URL's fragment, never reloads, so the token survives it.
"""

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from gateway.core.errors import not_found
from gateway.portal import i18n

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
# The assets are a fixed set, read once: a request names one of them or gets a 404 problem.
_ASSETS = {p.name: p for p in STATIC.iterdir() if p.is_file()}
_MEDIA = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# What the browser may do on a portal page: only this origin's scripts, styles and API.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)

templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(prefix="/portal", include_in_schema=False)


@router.get("", include_in_schema=False)
def portal_root() -> Response:
    """Redirect /portal to /portal/ (relative asset paths need the slash)."""
    return RedirectResponse("/portal/", status_code=308)


@router.get("/", response_class=HTMLResponse)
def portal_page(request: Request, lang: str | None = None) -> Response:
    """Return the portal's page in the language asked for (?lang=, cookie, else zh-CN)."""
    chosen = i18n.choose(lang, request.cookies.get(i18n.COOKIE))
    response = templates.TemplateResponse(
        request,
        "portal.html",
        {
            "lang": chosen,
            "t": i18n.STRINGS[chosen],
            "strings": i18n.STRINGS,
            "languages": i18n.LANGUAGES,
        },
    )
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    if lang is not None and lang in i18n.STRINGS:
        response.set_cookie(i18n.COOKIE, chosen, max_age=365 * 86400, samesite="strict")
    return response


@router.get("/static/{name}")
def portal_asset(name: str) -> Response:
    """Return one of the portal's static assets, else a 404 problem."""
    path = _ASSETS.get(name)
    if path is None:
        raise not_found("portal asset", name[:80])
    return FileResponse(path, media_type=_MEDIA.get(path.suffix, "application/octet-stream"))
