"""No input, however malformed, earns a 500: every operation of the published API is fed junk."""

import itertools

import pytest

from gateway.openapi import openapi_document

JUNK_IDS = [
    "x",
    "0",
    "-1",
    "9" * 40,
    "prt_" + "a" * 500,
    "ünï©ødé",
    "a b",
    "%00",
    "null",
    "..%2F..",
]
JUNK_BODIES = [
    b"",
    b"{",
    b"[]",
    b"null",
    b'"text"',
    b"1e999",
    b"{}",
    b'{"a": ' * 200 + b"1" + b"}" * 200,
    b'{"name": null, "offer_id": [], "contract_id": {}, "purpose": 12, "fields": "all"}',
    b'{"contract_id": "\\u0000", "purpose": "\\ud800", "limit": 1e308}',
    '{"name": "\U0001f600", "uscc": "９１", "roles": ["admin", "admin"]}'.encode(),
    # Numbers JSON and RFC 8785 cannot hold exactly, and money beyond what the databases hold.
    b'{"rows": [{"v": NaN}, {"v": Infinity}, {"v": -Infinity}], "fields": [{"name": "v"}],'
    b' "name": "n", "domain": "d", "grade": "general", "level": "L1"}',
    b'{"rows": [{"v": 9007199254740993}], "fields": [{"name": "v"}],'
    b' "fee_cap_fen": 1152921504606846976, "price_fen": 1e300,'
    b' "limit": 18446744073709551616, "window_seconds": -9223372036854775809}',
    # Lone surrogates, escaped and raw, where ids, field names and kids go.
    b'{"offer_id": "\\udc00", "fields": ["\\ud800"], "kid": "\\udfff", "rows": [{"v": "\\ud83d"}]}',
    b'{"offer_id": "\xed\xa0\x80", "purpose": "research"}',
    # Terms and moments whose arithmetic leaves the calendar.
    b'{"offers": [{"purposes": ["research"], "term": "P2920000D"}], "term": "P9999999999W",'
    b' "not_before": "0001-01-01T00:00:00+23:59", "not_after": "9999-12-31T23:59:59-23:59"}',
    # Long lists of long names (the review's 200 x 100 KB field names, smaller here).
    b'{"contract_id": "ctr_x", "purpose": "research", "fields": ['
    + b",".join([b'"' + b"f" * 500 + b'"'] * 200)
    + b"]}",
]
JUNK_QUERIES = [
    {},
    {"start": "-5", "limit": "abc", "offset": "1e9"},
    {"start": "9" * 30, "offset": "9" * 30, "limit": "99999999999999999999"},
    {"offset": str(2**63), "start": str(2**63), "limit": str(2**63), "seq": str(2**64)},
    {"offset": "-9223372036854775809", "size": "NaN", "old": "Infinity", "new": "1e400"},
    {"q": "\ufffd" * 300, "domain": "é" * 101, "status": "x" * 10_000},
]


def _operations():
    for path, operations in openapi_document()["paths"].items():
        for method in operations:
            yield path, method.upper()


@pytest.fixture
def world(module_world):
    """One cast per engine for the whole file (tests/conftest.py): junk changes nothing a later
    operation needs (its requests are refused, or make what any gateway may hold)."""
    return module_world


def _check(response, what: str) -> None:
    assert response.status_code < 500 or response.status_code == 503, (what, response.text)
    assert response.status_code != 500, (what, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json", what


@pytest.mark.parametrize(("path", "method"), list(_operations()))
def test_junk_never_earns_a_500(world, path, method):
    parties = [world.admin, world.consumer]
    for party, junk_id in itertools.product(parties, JUNK_IDS[:5] if "{" in path else [None]):
        target = path
        if junk_id is not None:
            target = path.split("{")[0] + junk_id + path.split("}")[-1]
        headers = {"Authorization": f"Bearer {party.token()}", "content-type": "application/json"}
        for body, query in itertools.zip_longest(JUNK_BODIES, JUNK_QUERIES, fillvalue=None):
            response = world.client.request(
                method,
                target,
                content=body if method in ("POST", "PUT", "PATCH") else None,
                params=query or {},
                headers=headers,
            )
            _check(response, f"{method} {target} {body!r:.60} {query}")
    for junk_id in JUNK_IDS[5:] if "{" in path else []:
        target = path.split("{")[0] + junk_id + path.split("}")[-1]
        response = world.client.request(
            method, target, headers={"Authorization": f"Bearer {world.admin.token()}"}
        )
        _check(response, f"{method} {target}")
