"""The published OpenAPI document (specs/openapi.json is this, exported)."""

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request

from gateway.core.ratelimit import EXEMPT_PATHS

SPEC_PATH = "specs/openapi.json"
# Swagger UI and ReDoc as the fastapi-offline package ships them: /docs works offline.
DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
DOCS_STATIC = "/docs/static"
_PROBLEM_REF = {"$ref": "#/components/schemas/ProblemModel"}
_DESCRIBED = {
    "400": "Malformed request: the body is not well-formed JSON (or form)",
    "429": "Too many requests from this client: wait for the seconds in Retry-After",
}
_RETRY_AFTER = {
    "description": "seconds to wait before the next request (RFC 9110 §10.2.3)",
    "schema": {"type": "integer", "minimum": 1},
}


def _problems_everywhere(document: dict[str, Any]) -> dict[str, Any]:
    """Make every 4xx/5xx response say what the gateway sends: application/problem+json."""
    schemas = document.get("components", {}).get("schemas", {})
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            if method == "post":  # a body that does not parse (core/errors.py: malformed_body)
                responses.setdefault("400", {"description": _DESCRIBED["400"]})
            if path not in EXEMPT_PATHS:  # core/ratelimit.py
                responses.setdefault("429", {"description": _DESCRIBED["429"]})
                responses["429"]["headers"] = {"Retry-After": _RETRY_AFTER}
            for status, response in operation.get("responses", {}).items():
                if status[0] in "45":
                    response["content"] = {"application/problem+json": {"schema": _PROBLEM_REF}}
                    if status == "422":
                        response["description"] = "The request body or parameters are invalid"
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def install(app: FastAPI) -> None:
    """Give the app an OpenAPI document whose error responses are problem details."""

    def _openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = _problems_everywhere(document)
        return app.openapi_schema

    app.openapi = _openapi


def install_docs(app: FastAPI) -> None:
    """Serve /docs (Swagger UI) and /redoc from assets in the package, never from a CDN.

    The app must be built with docs_url=None and redoc_url=None; Swagger UI's online validator
    is switched off, so the pages load nothing from outside the gateway.
    """
    app.mount(DOCS_STATIC, StaticFiles(directory=DOCS_ASSETS), name="docs-static")
    redirect = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{redirect}",
            swagger_js_url=f"{root}{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_STATIC}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get(redirect, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{DOCS_STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_STATIC}/favicon.png",
            with_google_fonts=False,
        )


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document of the gateway's routes."""
    from gateway.app import api

    return api().openapi()
