"""The fast path of POST /exchanges (gateway/exchanges/fast.py) answers as the route does.

Each request is sent twice: through the app as served (the fast path in front of the route)
and through the same app without the fast path (the FastAPI route alone), on one gateway. The
replies must agree on everything that does not name the exchange itself (its id, its ledger
entry): status, media type, problem type and detail, rows, fields, masks. The fast path must
answer the well-formed JSON exchanges itself and leave everything else to the route.
"""

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.exchanges import fast
from tests.conftest import BASE_URL
from tests.e2e.world import PURPOSE, build_world


@pytest.fixture
def world(client, settings):
    return build_world(client, settings.state_dir)


@pytest.fixture
def route_only(gateway):
    """The same gateway served without the fast path: every exchange goes through FastAPI."""
    app = create_app(gateway=gateway)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not fast.ExchangeFastPath]
    with TestClient(app, base_url=BASE_URL) as test_client:
        yield test_client


@pytest.fixture
def answered(monkeypatch):
    """Count the exchanges the fast path ran itself."""
    calls = []
    real = fast.json_pull

    def counted(*args, **kwargs):
        calls.append(kwargs["body"].contract_id)
        return real(*args, **kwargs)

    monkeypatch.setattr(fast, "json_pull", counted)
    return calls


# What names the exchange itself, and so differs between two replies to the same request.
OWN = {"exchange_id", "receipt", "content_hash", "watermark", "decision_id", "ledger_seq",
       "next_cursor", "file"}  # fmt: skip


def _same(a, b) -> None:
    assert (a.status_code, a.headers["content-type"]) == (b.status_code, b.headers["content-type"])
    if "json" not in a.headers["content-type"]:
        return
    one, other = _general(a.json()), _general(b.json())
    assert one.keys() == other.keys()
    assert {k: v for k, v in one.items() if k not in OWN} == {
        k: v for k, v in other.items() if k not in OWN
    }


def _general(reply: dict) -> dict:
    """Return the reply with each row's watermark (the exchange's own) taken out."""
    rows = reply.get("rows")
    if isinstance(rows, list):
        reply["rows"] = [{k: v for k, v in r.items() if k != "_watermark"} for r in rows]
    return reply


def _both(world, route_only, party, body=None, headers=None, content=None):
    """Send one request through the app as served, then through the route alone."""
    sent = {"Authorization": f"Bearer {party.token()}", **(headers or {})}
    kwargs = {"json": body} if content is None else {"content": content}
    served = world.client.post("/exchanges", headers=sent, **kwargs)
    alone = route_only.post("/exchanges", headers=sent, **kwargs)
    _same(served, alone)
    return served


def test_the_fast_path_answers_exchanges_and_refusals_as_the_route_does(
    world, route_only, answered, gateway
):
    contract = world.contract(world.product["offers"][0]["id"])
    other = world.register("other consumer", ["consumer"])
    asked = [
        (world.consumer, {"contract_id": contract["id"], "purpose": PURPOSE, "limit": 2}, 200),
        (
            world.consumer,
            {"contract_id": contract["id"], "purpose": PURPOSE, "delivery": "file", "limit": 3},
            403,
        ),  # not a mode it offers
        (world.consumer, {"contract_id": contract["id"], "purpose": "marketing"}, 403),
        (world.consumer, {"contract_id": "ctr_nosuchcontractxxxxxxxxxx", "purpose": PURPOSE}, 404),
        (other, {"contract_id": contract["id"], "purpose": PURPOSE}, 404),
        (
            world.consumer,
            {"contract_id": contract["id"], "purpose": PURPOSE, "fields": ["no_such_field"]},
            422,
        ),  # fmt: skip
        (
            world.consumer,
            {"contract_id": contract["id"], "purpose": PURPOSE, "cursor": "forged"},
            400,
        ),  # fmt: skip
    ]
    for party, body, status in asked:
        served = _both(world, route_only, party, body)
        assert served.status_code == status, (body, served.text)
    # Every one of these was the fast path's (each once: the route alone ran the second).
    assert len(answered) == len(asked)
    allowed = _both(world, route_only, world.consumer,
                    {"contract_id": contract["id"], "purpose": PURPOSE, "limit": 2})  # fmt: skip
    assert allowed.json()["row_count"] == 2 and allowed.json()["masked"]
    denied = _both(world, route_only, world.consumer,
                   {"contract_id": contract["id"], "purpose": "marketing"})  # fmt: skip
    assert denied.json()["type"] == "urn:dsgw:problem:policy-denied"
    assert denied.headers["content-type"] == "application/problem+json"


def test_a_retry_with_its_key_replays_through_either_path(world, route_only, answered):
    contract = world.contract(world.product["offers"][0]["id"])
    body = {"contract_id": contract["id"], "purpose": PURPOSE, "limit": 1}
    key = {"Idempotency-Key": "fast-path-retry-1"}
    sent = {"Authorization": f"Bearer {world.consumer.token()}", **key}
    first = world.client.post("/exchanges", headers=sent, json=body)
    again = route_only.post("/exchanges", headers=sent, json=body)
    once_more = world.client.post("/exchanges", headers=sent, json=body)
    assert first.status_code == again.status_code == once_more.status_code == 200
    assert first.json() == again.json() == once_more.json()  # the same exchange, replayed
    assert len(answered) == 2
    usage = world.consumer.call("GET", f"/contracts/{contract['id']}").json()
    assert usage["usage"]["calls"] == 1  # metered once


def test_what_the_fast_path_is_not_sure_of_goes_to_the_route(world, route_only, answered):
    contract = world.contract(world.product["offers"][0]["id"])
    good = {"contract_id": contract["id"], "purpose": PURPOSE, "limit": 1}
    token = world.consumer.token()
    cases = [
        ({"Authorization": f"Bearer {token}"}, {**good, "unknown": 1}, None, 422),
        ({"Authorization": f"Bearer {token}"}, None, b"{not json", 422),
        ({"Authorization": f"Bearer {token}"}, None, b"[]", 422),
        ({"Authorization": f"Bearer {token}", "Content-Type": "text/plain"}, None, b"{}", 422),
        ({"Authorization": f"Bearer {token}x"}, good, None, 401),
        ({"Authorization": f"Basic {token}"}, good, None, 401),
        ({}, good, None, 401),
        ({"Authorization": f"Bearer {token}", "Idempotency-Key": "k" * 201}, good, None, 422),
    ]
    for headers, body, content, status in cases:
        kwargs = {"json": body} if content is None else {"content": content}
        served = world.client.post("/exchanges", headers=headers, **kwargs)
        alone = route_only.post("/exchanges", headers=headers, **kwargs)
        _same(served, alone)
        assert served.status_code == status, (headers, body, content, served.text)
        assert served.headers["content-type"] == "application/problem+json"
    assert answered == []
    streamed = world.client.post(
        "/exchanges",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/jsonl"},
        json=good,
    )
    assert streamed.status_code == 200 and streamed.headers["content-type"].startswith(
        "application/jsonl"
    )
    assert answered == []  # a streamed pull is the route's
