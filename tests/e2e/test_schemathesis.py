"""Schemathesis against the real app (real OPA, both engines): no generated request earns a 500.

A bounded run for the main suite — a few hundred requests over every operation, as the platform
admin and as a consumer, positive and negative data — beside the longer manual run of the review
(see the report of issue 14). It asserts only the one check the house rule makes absolute.
"""

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gateway.app import create_app
from tests.conftest import BASE_URL
from tests.e2e.world import build_world

EXAMPLES = 200


@pytest.fixture
def app(gateway):
    return create_app(gateway=gateway)


def test_generated_requests_never_earn_a_server_error(app, gateway):
    from fastapi.testclient import TestClient

    client = TestClient(app, base_url=BASE_URL)
    world = build_world(client, gateway.settings.state_dir)
    callers = {
        "admin": {"Authorization": f"Bearer {world.admin.token()}"},
        "consumer": {"Authorization": f"Bearer {world.consumer.token()}"},
    }
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = sorted((op.ok() for op in schema.get_all_operations()), key=lambda op: op.label)
    strategies = [op.as_strategy() for op in operations]
    failures: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],  # no shrinking: the failure list names every request
        suppress_health_check=list(HealthCheck),
    )
    @given(
        data=st.data(),
        index=st.integers(0, len(strategies) - 1),
        who=st.sampled_from(list(callers)),
    )
    def run(data, index, who):
        case = data.draw(strategies[index])
        try:
            response = case.call(base_url=BASE_URL, headers=callers[who])
        except Exception as exc:  # the app raised: a 500 in production
            failures.append(f"{who} {case.method} {case.path}: {type(exc).__name__}: {exc}")
            return
        if response.status_code >= 500 and response.status_code != 503:
            failures.append(f"{who} {case.method} {case.path}: {response.status_code}")

    run()
    assert failures == []
