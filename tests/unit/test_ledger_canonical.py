"""ledger.canonical: RFC 8785 JSON, the RFC 3339 profile and strict base64url."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ledger.canonical import b64url, b64url_decode, canonical_json, parse_rfc3339, rfc3339


def test_canonical_json_matches_the_rfc8785_number_and_string_example():
    # RFC 8785 §3.2.2: ECMAScript number forms, minimal string escapes, UTF-8 output.
    parsed = json.loads(
        r"""{
          "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
          "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
          "literals": [null, true, false]
        }"""
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    ).encode()
    assert canonical_json(parsed) == expected


def test_canonical_json_orders_keys_by_utf16_code_units_as_in_rfc8785():
    # RFC 8785 §3.2.3: the emoji (UTF-16 D83D DE00) sorts before U+FB33, unlike code points.
    parsed = json.loads(
        r"""{"\u20ac": "Euro Sign", "\r": "Carriage Return",
             "\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One",
             "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control",
             "\u00f6": "Latin Small Letter O With Diaeresis"}"""
    )
    keys = list(json.loads(canonical_json(parsed)))
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_canonical_json_rejects_integers_beyond_ieee754_precision():
    with pytest.raises(ValueError):
        canonical_json({"n": 2**53})


def test_rfc3339_rejects_naive_datetimes():
    with pytest.raises(ValueError, match="naive"):
        rfc3339(datetime(2026, 11, 21, 20, 10))


def test_rfc3339_converts_to_utc_with_microseconds_and_z():
    east8 = timezone(timedelta(hours=8))
    assert rfc3339(datetime(2026, 11, 22, 4, 10, 0, 123456, tzinfo=east8)) == (
        "2026-11-21T20:10:00.123456Z"
    )
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"


def test_rfc3339_pads_years_before_1000():
    assert rfc3339(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00.000000Z"


def test_parse_rfc3339_reads_back_what_rfc3339_writes():
    dt = datetime(2026, 11, 21, 20, 10, 0, 123456, tzinfo=UTC)
    assert parse_rfc3339(rfc3339(dt)) == dt


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-21T20:10:00Z",  # no fraction
        "2026-11-21T20:10:00.123Z",  # three digits
        "2026-11-21T20:10:00.123456+00:00",  # offset instead of Z
        "2026-11-21t20:10:00.123456z",  # lower case
        "2026-02-30T20:10:00.000000Z",  # no such day
        " 2026-11-21T20:10:00.123456Z",
    ],
)
def test_parse_rfc3339_refuses_other_spellings(text):
    with pytest.raises(ValueError):
        parse_rfc3339(text)


def test_b64url_round_trips_without_padding():
    for n in range(0, 70):
        data = bytes(range(n))
        text = b64url(data)
        assert "=" not in text
        assert b64url_decode(text) == data


@pytest.mark.parametrize(
    "text",
    ["AQ==", "AQ=", "A+8", "A/8", "AQ\n", "A", "AR"],  # padding, std alphabet, space, length
)
def test_b64url_decode_refuses_non_canonical_text(text):
    # "AR" decodes to the same byte as "AQ" (0x01) with a non-zero trailing bit.
    with pytest.raises(ValueError):
        b64url_decode(text)
