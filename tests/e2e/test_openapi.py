"""specs/openapi.json is the exported OpenAPI of the app: a test fails when they drift."""

import json
from pathlib import Path

from gateway.openapi import openapi_document

SPEC = Path(__file__).resolve().parents[2] / "specs" / "openapi.json"


def test_published_openapi_matches_the_app():
    published = json.loads(SPEC.read_text(encoding="utf-8"))
    current = json.loads(json.dumps(openapi_document()))
    assert published == current, (
        "specs/openapi.json is stale: run `dsgw openapi --out specs/openapi.json`"
    )


def test_every_operation_declares_its_problem_responses():
    document = openapi_document()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path in (
                "/health",
                "/.well-known/jwks.json",
                "/.well-known/oauth-authorization-server",
            ):
                continue
            errors = [s for s in operation["responses"] if s.startswith(("4", "5"))]
            assert errors, f"{method.upper()} {path} declares no error responses"
            for status in errors:
                content = operation["responses"][status].get("content", {})
                assert "application/problem+json" in content, f"{method.upper()} {path} {status}"
