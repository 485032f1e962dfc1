"""ledger.canonical_json writes plain values with orjson: it must give rfc8785's bytes exactly,
and raise what rfc8785 raises, for any value (hypothesis), and take the fast path only where the
two agree by construction."""

from __future__ import annotations

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.canonical import _plain, canonical_json

# Every code point but the lone surrogates (which UTF-8 cannot carry), controls and astral
# characters included; keys drawn from the same alphabet, plus a few that sort differently
# in UTF-16 than in code points.
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
KEYS = st.one_of(TEXT, st.sampled_from(["\ue000", "\U0001f600", "a\uffff", "a\U00010000"]))
INTS = st.one_of(
    st.integers(-(2**53 - 1), 2**53 - 1),
    st.sampled_from([2**53, -(2**53), 2**64, -(2**70)]),
)
SCALARS = st.one_of(st.none(), st.booleans(), INTS, TEXT, st.floats(allow_nan=False))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(KEYS, inner, max_size=5)),
    max_leaves=30,
)


def _outcome(fn, value):
    try:
        return ("bytes", fn(value))
    except Exception as exc:  # noqa: BLE001 - the kind of failure is what is compared
        return ("raises", type(exc))


@settings(max_examples=600, deadline=None)
@given(VALUES)
def test_canonical_json_is_rfc8785_byte_for_byte_for_any_value(value):
    assert _outcome(canonical_json, value) == _outcome(rfc8785.dumps, value)


def test_ledger_entry_data_takes_the_fast_path():
    data = {
        "contract_id": "ctr_1",
        "rows": 3,
        "fields": ["name", "城市"],
        "decision": {"allow": True, "obligations": {"mask": {"name": "name"}}, "reason": None},
        "note": 'line\nbreak "quoted" \\ 😀',
    }
    assert _plain(data)
    assert canonical_json(data) == rfc8785.dumps(data)


def test_floats_astral_keys_and_other_types_take_rfc8785s_path():
    assert not _plain({"epsilon": 0.5})
    assert not _plain({"\U0001f600": 1})
    assert not _plain({"k": (1, 2)})
    assert not _plain({1: "non-string key"})
    # keys that sort differently by UTF-16 code unit than by code point, in JCS's order
    assert canonical_json({"\U0001f600": 1, "\ue000": 2}) == rfc8785.dumps(
        {"\U0001f600": 1, "\ue000": 2}
    )


def test_integers_beyond_the_safe_range_are_refused_as_before():
    for value in (2**53, {"n": -(2**53)}, [2**64]):
        assert _outcome(canonical_json, value) == ("raises", rfc8785.IntegerDomainError)
