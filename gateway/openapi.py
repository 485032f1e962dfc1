"""The published OpenAPI document (specs/openapi.json is this, exported)."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

SPEC_PATH = "specs/openapi.json"
_PROBLEM_REF = {"$ref": "#/components/schemas/ProblemModel"}


def _problems_everywhere(document: dict[str, Any]) -> dict[str, Any]:
    """Make every 4xx/5xx response say what the gateway sends: application/problem+json."""
    schemas = document.get("components", {}).get("schemas", {})
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
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


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document of the gateway's routes."""
    from gateway.app import api

    return api().openapi()
