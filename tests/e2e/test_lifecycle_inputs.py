"""No input to the life-cycle routes earns a 500: every refusal is a problem document."""

import pytest

from tests.e2e.world import build_world

BODIES = [
    None,
    {},
    [],
    "x",
    {"reason": 5},
    {"reason": ""},
    {"reason": "x" * 5000},
    {"window_seconds": -1},
    {"window_seconds": 10**30},
    {"window_seconds": "soon"},
    {"kind": "change", "reason": "r", "changes": {"fields": []}},
    {"kind": "change", "reason": "r", "changes": {"grade": "core", "level": "L1"}},
    {"kind": "change", "reason": "r", "changes": {"fields": [{"name": "only"}]}},
    {"kind": "cancellation", "reason": "r", "changes": {"name": "x"}},
    {"kty": "OKP", "crv": "Ed25519", "x": "A" * 43, "kid": "k" * 500},
    {"kty": "RSA", "n": "x", "e": "AQAB"},
]


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


def test_garbage_bodies_get_problems_never_500(world):
    pid, rid = world.consumer.id, world.resource["id"]
    applied = world.holder.call(
        "POST",
        "/resources",
        json={"name": "n", "domain": "d", "grade": "core", "fields": [{"name": "a"}]},
    ).json()
    reg = applied["registration"]["id"]
    routes = [
        (world.consumer, f"/participants/{pid}/keys"),
        (world.consumer, f"/participants/{pid}/keys/{world.consumer.key.kid}/retire"),
        (world.admin, f"/participants/{pid}/suspend"),
        (world.admin, f"/participants/{pid}/reinstate"),
        (world.holder, f"/resources/{rid}/registrations"),
        *[
            (world.admin, f"/registrations/{reg}/{step}")
            for step in ("accept", "review", "publicise", "object", "code", "reject")
        ],
        (world.holder, f"/authorisations/{world.authorisation['id']}/revoke"),
        (world.admin, "/authorisations/sweep"),
    ]
    for party, path in routes:
        for body in BODIES:
            response = party.call("POST", path, json=body)
            assert response.status_code < 500, (path, body, response.text)
            if response.status_code >= 400:
                assert response.headers["content-type"] == "application/problem+json", path
    for path in (
        f"/registrations/{reg}/certificate",
        "/registrations?state=nope",
        "/registrations?limit=0",
        f"/participants/{pid}/jwks",
    ):
        response = world.consumer.call("GET", path)
        assert response.status_code < 500, (path, response.text)
