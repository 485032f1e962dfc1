"""Reading OPA's policy listing (GET /v1/policies) for the module texts alone
(gateway.policy.client.listed_modules): the same answer as decoding it all, whatever the
module texts or the syntax trees hold."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.policy.client import listed_modules


def _listing(modules: list[tuple[str, str, object]]) -> bytes:
    """The reply as OPA writes it: compact, the keys of a module in its struct's order."""
    result = [{"id": i, "raw": raw, "ast": ast} for i, raw, ast in modules]
    return json.dumps({"result": result}, separators=(",", ":"), ensure_ascii=False).encode()


# Objects of OPA's syntax trees do begin with "id" (16 such in a listing of 11 modules); no
# object of a tree has a "raw" key (tests/e2e/test_policy_versions.py checks the real listing).
KEYS = ["id", "ast", "value", "text"]
DECOY = {"id": "x", "value": "not a module", "rules": [{"id": "y", "text": "z", "ast": {}}]}


@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=30),
            st.text(max_size=200),  # any text: quotes, braces, '{"id":' and control characters
            st.recursive(
                st.none() | st.integers() | st.text(max_size=20),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
                ),
                max_leaves=10,
            ),
        ),
        max_size=6,
        unique_by=lambda m: m[0],
    )
)
def test_the_scan_reads_what_a_full_decode_reads(modules):
    body = _listing(modules)
    assert listed_modules(body) == {m["id"]: m["raw"] for m in json.loads(body)["result"]}


def test_a_tree_object_that_begins_like_a_module_is_not_taken_for_one():
    body = _listing([("a.rego", 'package a\nx := "{\\"id\\":1}"', DECOY), ("b", "", [DECOY])])
    assert listed_modules(body) == {"a.rego": 'package a\nx := "{\\"id\\":1}"', "b": ""}


def test_a_reply_of_another_shape_is_decoded_in_full():
    pretty = json.dumps({"result": [{"raw": "package b", "id": "b.rego", "ast": {}}]}, indent=1)
    assert listed_modules(pretty.encode()) == {"b.rego": "package b"}
    assert listed_modules(b'{"result":[]}') == {}


@pytest.mark.parametrize("body", [b"", b"not json", b'{"result": 1}', b'{"other": []}'])
def test_a_reply_that_is_no_listing_raises(body):
    with pytest.raises((ValueError, KeyError, TypeError)):
        listed_modules(body)
