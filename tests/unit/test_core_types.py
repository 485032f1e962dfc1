"""The shared constrained types and the door's surrogate check, without a gateway."""

from datetime import datetime, timedelta

import pytest
from pydantic import TypeAdapter, ValidationError

from contracts._duration import MAX_DURATION, parse_duration
from gateway.core.guard import _has_lone_surrogate
from gateway.core.types import Moment, check_json_value

MOMENT = TypeAdapter(Moment)


@pytest.mark.parametrize(
    "raw",
    [
        b'"\\ud800"',
        b'"\\udc00"',
        b'"\\ud800\\u0041"',
        b'"\\ud83d',
        b'"a\\\\\\ud800"',
        b'"\xed\xa0\x80"',
    ],
)
def test_lone_surrogates_are_found(raw):
    assert _has_lone_surrogate(raw)


@pytest.mark.parametrize(
    "raw", [b'"\\ud83d\\ude00"', b'"\\\\ud800"', b'"\\u00e9"', b'"\xf0\x9f\x98\x80"']
)
def test_pairs_and_escaped_backslashes_are_not_lone_surrogates(raw):
    assert not _has_lone_surrogate(raw)


@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), 2**53, -(2**53), 1e300, "\ud800", {"k": [{"v": "\x00"}]}]
)
def test_values_json_cannot_hold_exactly_are_refused(value):
    with pytest.raises(ValueError):
        check_json_value(value)


def test_exact_values_are_accepted():
    check_json_value({"a": [2**53 - 1, -(2**53 - 1), 0.1, "é", None, True, {"b": "\U0001f600"}]})


@pytest.mark.parametrize(
    "text", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "3000-01-01T00:00:00Z",
             "2099-01-01T00:00:00"],
)  # fmt: skip
def test_moments_off_the_calendar_or_without_offset_are_refused(text):
    with pytest.raises(ValidationError):
        MOMENT.validate_python(text)


def test_moments_are_converted_to_utc():
    assert MOMENT.validate_python("2099-01-01T08:00:00+08:00") == datetime.fromisoformat(
        "2099-01-01T00:00:00+00:00"
    )


@pytest.mark.parametrize("text", ["P36526D", "P2920000D", "PT3155760001S", "P" + "9" * 20 + "D"])
def test_durations_beyond_a_century_are_refused(text):
    with pytest.raises(ValueError, match="at most"):
        parse_duration(text)


def test_a_century_is_the_longest_duration():
    assert parse_duration("P36525D") == MAX_DURATION == timedelta(days=36525)
