"""RFC 9457 problem details: one error shape for every failure, each with a stable `type`."""

import re
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.core.metrics import route_template

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = structlog.get_logger("gateway.errors")


def problem_type(slug: str) -> str:
    """Return the stable type URI of a problem slug."""
    return f"urn:dsgw:problem:{slug}"


class ProblemModel(BaseModel):
    """The body of every error response (RFC 9457); extension members may follow."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None


class Problem(Exception):
    """An error the API reports as problem+json."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions

    def body(self, instance: str | None = None) -> dict[str, Any]:
        """Return the JSON body of this problem."""
        body: dict[str, Any] = {
            "type": problem_type(self.slug),
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


def not_found(kind: str, ident: str) -> Problem:
    """Return the 404 problem for an unknown object."""
    return Problem(404, "not-found", f"Unknown {kind}", f"no {kind} with id {ident!r}")


def forbidden(detail: str, **extensions: Any) -> Problem:
    """Return the 403 problem for a caller without the right role or relation."""
    return Problem(403, "forbidden", "Not allowed", detail, **extensions)


def conflict(slug: str, title: str, detail: str, **extensions: Any) -> Problem:
    """Return a 409 problem."""
    return Problem(409, slug, title, detail, **extensions)


def unprocessable(detail: str, **extensions: Any) -> Problem:
    """Return a 422 problem for a body that is well-formed but not acceptable."""
    return Problem(422, "invalid-request", "Invalid request", detail, **extensions)


def malformed_body(detail: str) -> Problem:
    """Return the 400 problem for a body that does not parse (not JSON, not UTF-8)."""
    return Problem(
        400,
        "malformed-body",
        "Malformed request body",
        f"the body is not well-formed JSON: {detail}",
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Return the `responses=` declaration of the given error statuses for the OpenAPI."""
    described = {
        400: "Malformed request: the body is not well-formed JSON (or form)",
        401: "Missing, invalid or expired credentials",
        403: "Denied by role or by policy; the body carries the reasons",
        404: "Unknown object",
        409: "Conflicts with the object's current state",
        422: "The request body or parameters are invalid",
        429: "Too many requests: wait for the seconds in Retry-After",
        502: "A data source or sink could not be reached or read (data-source-unavailable)",
        503: "A component (policy engine, database) could not answer; the request was refused",
    }
    return {
        status: {
            "model": ProblemModel,
            "description": described.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in statuses
    }


def _response(problem: Problem, request: Request) -> JSONResponse:
    return JSONResponse(
        problem.body(instance=request.url.path),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


def _json_safe(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return pydantic's error list with only JSON-safe members (no exceptions, no bytes)."""
    safe = []
    for err in errors:
        safe.append(
            {
                "loc": [str(part) for part in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
        )
    return safe


def _allowed_methods(request: Request) -> list[str]:
    """Return the methods served at the request's path (RFC 9110 Allow), as the OpenAPI has them.

    Starlette names only the first route that matches the path. When both a literal path and a
    template match (`/authorisations/sweep` and `/authorisations/{id}`), the literal one is the
    resource the client meant: the methods of the paths with the fewest parameters.
    """
    templates = getattr(request.app.state, "allow_templates", None)
    if templates is None:
        templates = [
            (re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(path)) + "$"),
             path.count("{"), sorted(m.upper() for m in operations))
            for path, operations in request.app.openapi().get("paths", {}).items()
        ]  # fmt: skip
        request.app.state.allow_templates = templates
    matching = [
        (params, methods) for rx, params, methods in templates if rx.match(request.url.path)
    ]
    fewest = min((params for params, _ in matching), default=0)
    return sorted({m for params, methods in matching if params == fewest for m in methods})


def _reason(problem: Problem) -> str:
    """Return what made a problem: its cause's class and first line, else its detail."""
    cause = problem.__cause__
    if cause is None:
        return problem.detail
    first = str(cause).strip().splitlines()[0][:500] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__


def install_handlers(app: FastAPI) -> None:
    """Make every error the app can raise come out as problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        if exc.status >= 500:  # a component (database, OPA, a source) failed this request
            log.error(
                "request failed",
                route=route_template(request.scope),
                method=request.method,
                status=exc.status,
                problem=exc.slug,
                reason=_reason(exc),
            )
        return _response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _json_safe(list(exc.errors()))
        unparsed = [e for e in errors if e["type"] == "json_invalid"]
        if unparsed:
            return _response(malformed_body(unparsed[0]["msg"]), request)
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(p for p in first["loc"] if p not in ("body",)) or "body"
        problem = Problem(
            422,
            "invalid-request",
            "Invalid request",
            f"{where}: {first['msg']}",
            errors=errors,
        )
        return _response(problem, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI: a body it could not decode at all
            return _response(malformed_body(str(exc.detail)), request)
        slugs = {404: "not-found", 405: "method-not-allowed", 401: "unauthorized"}
        slug = slugs.get(exc.status_code, "http-error")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette names only the first route of the path
            headers["Allow"] = ", ".join(_allowed_methods(request))
        problem = Problem(
            exc.status_code,
            slug,
            str(exc.detail) if exc.status_code != 404 else "Not found",
            str(exc.detail) if exc.status_code != 404 else f"no route for {request.url.path}",
            headers=headers,
        )
        return _response(problem, request)

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        log.warning("database refused a value", path=request.url.path, error=str(exc.orig))
        problem = Problem(
            422,
            "invalid-request",
            "Invalid request",
            "the database cannot store a value of this request (too long, out of range or a "
            "character it does not accept); nothing was changed",
        )
        return _response(problem, request)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        problem = Problem(
            500,
            "internal-error",
            "Internal error",
            "the gateway failed unexpectedly; nothing was delivered; the error is logged",
        )
        return _response(problem, request)
