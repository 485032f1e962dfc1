"""Every input is bounded to what the domain needs and refused at the door when it is not.

Each case here was a 500 (or a stall) in an outside review: oversized field lists, numbers JSON
and RFC 8785 cannot hold, lone surrogates, money and paging beyond the databases, terms and
dates whose arithmetic leaves the calendar, and an OpenAPI that did not say 400 or Allow.
"""

import json

import pytest
from sqlalchemy import func, select

from gateway.exchanges.models import Decision
from tests.e2e.world import OFFER, PURPOSE


@pytest.fixture
def world(module_world):
    """One cast per engine for the file (tests/conftest.py): every test here is refused, or
    makes its own contract; those that say nothing is stored compare before with after."""
    return module_world


@pytest.fixture
def gateway(module_gateway):
    return module_gateway


@pytest.fixture
def client(module_client):
    return module_client


def _decisions(gateway) -> int:
    with gateway.sessions() as session:
        return session.scalar(select(func.count()).select_from(Decision))


def _ledger_size(world) -> int:
    return world.admin.call("GET", "/ledger/head").json()["size"]


def _raw(party, method: str, path: str, body: bytes):
    return party.client.request(
        method,
        path,
        content=body,
        headers={"Authorization": f"Bearer {party.token()}", "content-type": "application/json"},
    )


def _refused(response, status: int = 422, slug: str = "invalid-request") -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"urn:dsgw:problem:{slug}"
    return response.json()


def test_huge_field_names_are_refused_before_the_policy_and_store_nothing(world, gateway):
    contract = world.contract(world.product["offers"][0]["id"])
    before, size = _decisions(gateway), _ledger_size(world)
    fields = [f"f{n}" + "x" * 100_000 for n in range(200)]
    _refused(world.pull(contract["id"], fields=fields))
    assert (_decisions(gateway), _ledger_size(world)) == (before, size)


def test_unknown_field_names_are_refused_before_the_policy_and_store_nothing(world, gateway):
    contract = world.contract(world.product["offers"][0]["id"])
    before, size = _decisions(gateway), _ledger_size(world)
    problem = _refused(world.pull(contract["id"], fields=["name", "no_such_field"]))
    assert "no_such_field" in problem["detail"]
    grouped = world.pull(contract["id"], delivery="compute", group_by=["nowhere"])
    _refused(grouped)
    assert (_decisions(gateway), _ledger_size(world)) == (before, size)


def test_too_many_requested_fields_are_refused(world):
    contract = world.contract(world.product["offers"][0]["id"])
    _refused(world.pull(contract["id"], fields=["name"] * 201))


@pytest.mark.parametrize(
    "value",
    [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"9007199254740992", b"-9007199254740992"],
)
def test_numbers_json_cannot_hold_exactly_are_refused_in_rows(world, value):
    body = (
        b'{"name": "n", "domain": "d", "grade": "general", "level": "L1",'
        b' "fields": [{"name": "v"}], "rows": [{"v": ' + value + b"}]}"
    )
    problem = _refused(_raw(world.holder, "POST", "/resources", body))
    assert "row 0" in problem["detail"]


def test_the_largest_exact_integer_is_accepted_in_rows(world):
    body = {
        "name": "n",
        "domain": "d",
        "grade": "general",
        "level": "L1",
        "fields": [{"name": "v"}],
        "rows": [{"v": 2**53 - 1}, {"v": -(2**53 - 1)}, {"v": 0.5}],
    }
    assert world.holder.call("POST", "/resources", json=body).status_code == 201


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/resources",
            b'{"name": "n", "domain": "d", "grade": "general", "level": "L1",'
            b' "fields": [{"name": "v"}], "rows": [{"v": "a\\ud800b"}]}',
        ),
        ("/contracts", b'{"offer_id": "\\udc00", "purpose": "research"}'),
        ("/contracts", b'{"offer_id": "ofr_\\ud83d", "purpose": "research"}'),
        ("/exchanges", b'{"contract_id": "ctr_x", "purpose": "r", "fields": ["\\udfff"]}'),
        ("/participants/prt_platform/keys", b'{"kty": "OKP", "crv": "Ed25519", "kid": "\\ud800"}'),
        ("/resources", b'{"name": "\xed\xa0\x80"}'),  # the surrogate's raw bytes
    ],
)
def test_a_lone_surrogate_anywhere_in_a_body_is_refused_at_the_door(world, path, body):
    problem = _refused(_raw(world.admin, "POST", path, body))
    assert "surrogate" in problem["detail"]


def test_a_surrogate_pair_and_an_escaped_backslash_are_not_lone_surrogates(world):
    body = {
        "name": "emoji \U0001f600",
        "domain": "a\\ud800 is only text here",
        "grade": "general",
        "level": "L1",
        "fields": [{"name": "v"}],
    }
    raw = json.dumps(body).encode()  # ensure_ascii: the emoji as a \ud83d\ude00 pair
    assert b"\\ud83d\\ude00" in raw and b"\\\\ud800" in raw
    response = _raw(world.holder, "POST", "/resources", raw)
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "emoji \U0001f600"


def test_an_encoded_surrogate_in_a_query_is_refused(world):
    response = world.consumer.call("GET", "/catalogue?q=%ED%A0%80")
    assert "surrogate" in _refused(response)["detail"]


@pytest.mark.parametrize("fee", [2**53, 2**60, 2**64, -1])
def test_fee_caps_beyond_exact_integers_are_refused(world, fee):
    body = {
        "operator_id": world.merchant.id,
        "resource_ids": [world.resource["id"]],
        "not_after": "2099-01-01T00:00:00Z",
        "fee_cap_fen": fee,
    }
    _refused(world.holder.call("POST", "/authorisations", json=body))


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/products", {"offset": str(2**63)}),
        ("/products", {"offset": "1000001"}),
        ("/catalogue", {"offset": str(2**63)}),
        ("/products", {"limit": str(2**63)}),
        ("/ledger/entries", {"start": str(2**63)}),
        ("/registrations", {"limit": str(2**64)}),
        ("/registrations", {"offset": str(2**63)}),
        ("/ledger/checkpoints", {"offset": str(2**63)}),
        ("/ledger/checkpoints", {"limit": str(2**63)}),
        ("/settlement/statements", {"offset": str(2**63)}),
        ("/settlement/statements", {"limit": str(2**64)}),
    ],
)
def test_paging_beyond_any_table_is_refused(world, path, params):
    _refused(world.admin.call("GET", path, params=params))


@pytest.mark.parametrize("term", ["P2920000D", "P36526D", "PT99999999999999999999S", "P9999999W"])
def test_offer_terms_beyond_a_century_are_refused_at_drafting(world, term):
    body = {
        "name": "p",
        "resource_id": world.resource["id"],
        "authorisation_id": world.authorisation["id"],
        "delivery_modes": ["api"],
        "offers": [{**OFFER, "term": term}],
    }
    problem = _refused(world.merchant.call("POST", "/products", json=body))
    assert "term" in problem["detail"]


def test_a_century_long_term_drafts_and_is_contracted(world):
    product = world.publish(offers=[{**OFFER, "term": "P36525D"}])
    contract = world.contract(product["offers"][0]["id"])
    assert contract["not_after"][:4] >= "2126"


@pytest.mark.parametrize(
    "moment",
    [
        "9999-12-31T23:59:59-23:59",
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59Z",
        "3000-01-01T00:00:00Z",
        "1969-12-31T23:59:59Z",
        "2099-01-01T00:00:00",
    ],
)
def test_authorisation_dates_at_the_calendars_edges_are_refused(world, moment):
    for field in ("not_after", "not_before"):
        body = {
            "operator_id": world.merchant.id,
            "resource_ids": [world.resource["id"]],
            "not_after": "2099-01-01T00:00:00Z",
            "fee_cap_fen": 1,
            field: moment,
        }
        _refused(world.holder.call("POST", "/authorisations", json=body))


@pytest.mark.parametrize(
    "path",
    ["/resources", "/contracts", "/exchanges", "/authorisations", "/products", "/participants"],
)
@pytest.mark.parametrize("body", [b"{not json", b'{"a": 1', b"\xff\xfe", b'{"a": 1}}'])
def test_a_body_that_does_not_parse_is_400_malformed_body(world, path, body):
    _refused(_raw(world.admin, "POST", path, body), 400, "malformed-body")


def test_every_post_declares_400_and_every_route_429(client):
    document = client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if method == "post":
                assert "400" in operation["responses"], (method, path)
            if path != "/health":
                assert "429" in operation["responses"], (method, path)
                assert "Retry-After" in operation["responses"]["429"]["headers"]


def test_a_method_not_allowed_says_which_are(world):
    response = world.consumer.call("DELETE", "/products")
    _refused(response, 405, "method-not-allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    # a literal path beside a template (/authorisations/{id}) names its own methods only
    swept = world.admin.call("OPTIONS", "/authorisations/sweep")
    _refused(swept, 405, "method-not-allowed")
    assert swept.headers["allow"] == "POST"


def test_every_path_parameter_of_the_api_is_bounded(client):
    document = client.get("/openapi.json").json()
    unbounded = [
        (method, path, parameter["name"])
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path"
        and parameter["schema"].get("type") == "string"
        and "maxLength" not in parameter["schema"]
        and "enum" not in parameter["schema"]
    ]
    assert unbounded == []


@pytest.mark.parametrize(
    "path",
    [
        "/products/" + "p" * 65,
        "/contracts/a%20b",
        "/resources/" + "r" * 500,
        "/decisions/ü",
        "/participants/" + "p" * 65,
    ],
)
def test_path_identifiers_are_bounded(world, path):
    _refused(world.admin.call("GET", path))


def test_body_identifiers_and_lists_are_bounded(world):
    for body in (
        {"offer_id": "o" * 65, "purpose": PURPOSE},
        {"offer_id": "ofr x", "purpose": PURPOSE},
        {"offer_id": "ofr_x", "purpose": "p" * 101},
    ):
        _refused(world.consumer.call("POST", "/contracts", json=body))
    grant = {
        "operator_id": world.merchant.id,
        "not_after": "2099-01-01T00:00:00Z",
        "fee_cap_fen": 1,
    }
    for extra in (
        {"resource_ids": ["res_" + "x" * 100]},
        {"resource_ids": [world.resource["id"]] * 201},
        {"resource_ids": [world.resource["id"]], "revenue_share": {"x" * 1000: 100}},
        {"resource_ids": [world.resource["id"]], "security_obligations": ["o" * 201]},
    ):
        _refused(world.holder.call("POST", "/authorisations", json={**grant, **extra}))
