"""The native JSON Lines writer (gateway/dataplane/_jsonl.c): for any record batch it writes the
bytes of the pure Arrow-compute path and of `to_jsonl` of the same rows; a bad buffer raises,
it never reads out of bounds; DSGW_JSONL_NATIVE=0 forces the pure path."""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import os
from unittest import mock

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.dataplane import BatchStream, encode, encoders
from gateway.dataplane.encoders import SPLIT_ROWS, JsonLinesEncoder
from gateway.exchanges.obligations import to_jsonl

J = encoders._jsonl
NOT_BUILT = (
    "gateway.dataplane._jsonl was not built (setup.py builds it optionally: no C compiler or "
    "Python.h when `pip install -e .` ran?); the encoder uses its pure path"
)


@pytest.fixture(autouse=True)
def _built() -> None:
    if J is None:
        if os.environ.get("CI") == "true":  # CI has gcc: the extension must have been built
            pytest.fail(NOT_BUILT, pytrace=False)
        pytest.skip(NOT_BUILT)


def _jsonl(table: pa.Table, *, native: bool, batch: int | None = None) -> bytes:
    """Return the JSON Lines the encoder writes for `table`, natively or by the pure path."""
    with mock.patch.dict(os.environ, {"DSGW_JSONL_NATIVE": "1" if native else "0"}):
        enc = JsonLinesEncoder(table.schema)
    assert enc._native is native
    batches = table.to_batches(max_chunksize=batch) if batch else table.to_batches()
    return b"".join(encode(BatchStream(table.schema, batches), enc))


# -- what to_jsonl of the rows is, for the values JSON has no type for ------------------------


def _timestamp_text(v: dt.datetime, unit: str, tz: str | None) -> str:
    """Return a timestamp as Arrow's cast to string writes it (the pure path's text)."""
    text = f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}"
    if unit == "ms":
        text += f".{v.microsecond // 1000:03d}"
    elif unit == "us":
        text += f".{v.microsecond:06d}"
    return text + ("Z" if tz else "")


def _expected(table: pa.Table) -> bytes:
    """Return to_jsonl of the table's rows, dates and timestamps as their ISO text and decimals
    as JSON numbers of their exact text (as the encoder documents)."""
    kinds = {f.name: f.type for f in table.schema}
    rows, numbers = [], {}
    for row in table.to_pylist():
        out = {}
        for name, value in row.items():
            t = kinds[name]
            if pa.types.is_dictionary(t):
                t = t.value_type
            if value is None:
                out[name] = None
            elif pa.types.is_timestamp(t):
                out[name] = _timestamp_text(value, t.unit, t.tz)
            elif pa.types.is_date(t):
                out[name] = f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
            elif pa.types.is_decimal(t):
                marker = f"\x00decimal{len(numbers)}"
                numbers[json.dumps(marker)] = str(value)
                out[name] = marker
            else:
                out[name] = value
        rows.append(out)
    text = to_jsonl(rows).decode()
    for marker, number in numbers.items():
        text = text.replace(marker, number, 1)
    return text.encode()


# -- random batches -----------------------------------------------------------------------------

CONTROLS = [chr(c) for c in range(0x20)]
TRICKY = CONTROLS + ['"', "\\", "/", "\x7f", "é", "王", "\u2028", "\u2029", "😀", "\ufeff", " "]
TEXT = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.sampled_from(TRICKY + ["a", "0"]), max_size=12),
    st.just(""),
)
INTS = {
    pa.int8(): (-(2**7), 2**7 - 1),
    pa.int16(): (-(2**15), 2**15 - 1),
    pa.int32(): (-(2**31), 2**31 - 1),
    pa.int64(): (-(2**63), 2**63 - 1),
    pa.uint8(): (0, 2**8 - 1),
    pa.uint16(): (0, 2**16 - 1),
    pa.uint32(): (0, 2**32 - 1),
    pa.uint64(): (0, 2**64 - 1),
}
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [math.nan, math.inf, -math.inf, -0.0, 0.0, 1e16, 1e-5, 1e-4, 9.999e15, 1e22, 5e-324, 0.1]
    ),
)
TIMES = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1))
DATES = st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9999, 12, 31))
DECIMALS = st.decimals(
    min_value=-(10**7), max_value=10**7, places=3, allow_nan=False, allow_infinity=False
)
NAMES = ["id", "王", 'q"k', "back\\slash", "tab\tkey", "a", "z", "Z", "é", "\x01"]


def _values(draw, n: int, values: st.SearchStrategy) -> list:
    return draw(st.lists(st.one_of(st.none(), values), min_size=n, max_size=n))


@st.composite
def tables(draw) -> pa.Table:
    """A table of random columns of every kind, nulls anywhere, optionally sliced (offset)."""
    start = draw(st.integers(0, 5))
    n = start + draw(st.integers(0, 25))
    kinds = draw(
        st.lists(
            st.sampled_from(
                "string large_string dictionary string_view int bool float timestamp date "
                "decimal binary list null".split()
            ),
            min_size=1,
            max_size=len(NAMES),
        )
    )
    names = draw(st.permutations(NAMES))
    columns = {}
    for name, kind in zip(names, kinds, strict=False):
        if kind in ("string", "large_string", "dictionary", "string_view"):
            text = _values(draw, n, TEXT)
            array = pa.array(text, pa.large_string() if kind == "large_string" else pa.string())
            if kind == "dictionary":
                array = array.dictionary_encode()
            elif kind == "string_view":
                array = array.cast(pa.string_view())
        elif kind == "int":
            t = draw(st.sampled_from(list(INTS)))
            low, high = INTS[t]
            ints = st.one_of(
                st.integers(low, high), st.sampled_from([low, high, 0, -1 if low else 1])
            )
            array = pa.array(_values(draw, n, ints), t)
        elif kind == "bool":
            array = pa.array(_values(draw, n, st.booleans()), pa.bool_())
        elif kind == "float":
            t = draw(st.sampled_from([pa.float64(), pa.float32()]))
            floats = (
                FLOATS
                if t == pa.float64()
                else FLOATS.map(lambda v, t=t: float(pa.scalar(v, t).as_py()))
            )
            array = pa.array(_values(draw, n, floats), t)
        elif kind == "timestamp":
            unit = draw(st.sampled_from(["s", "ms", "us"]))
            tz = draw(st.sampled_from([None, "UTC"]))
            keep = {"s": 0, "ms": 1000, "us": 1}[unit]
            times = TIMES.map(
                lambda v, keep=keep: v.replace(
                    microsecond=v.microsecond // keep * keep if keep else 0
                )
            )
            if tz:
                times = times.map(lambda v: v.replace(tzinfo=dt.UTC))
            array = pa.array(_values(draw, n, times), pa.timestamp(unit, tz=tz))
        elif kind == "date":
            array = pa.array(_values(draw, n, DATES), pa.date32())
        elif kind == "decimal":
            array = pa.array(_values(draw, n, DECIMALS), pa.decimal128(12, 3))
        elif kind == "binary":
            array = pa.array(_values(draw, n, st.binary(max_size=6)), pa.binary())
        elif kind == "list":
            array = pa.array(_values(draw, n, st.lists(st.integers(-5, 5), max_size=3)))
        else:
            array = pa.nulls(n)
        columns[name] = array
    return pa.table(columns).slice(start)


def _to_jsonl_text(table: pa.Table) -> pa.Table:
    """Return the table with binary columns as the base64 text the encoder writes for them."""
    out = table
    for i, field in enumerate(table.schema):
        if pa.types.is_binary(field.type):
            text = [
                None if v is None else base64.b64encode(v).decode()
                for v in table.column(i).to_pylist()
            ]
            out = out.set_column(i, field.name, pa.array(text, pa.string()))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.sampled_from([None, 1, 3, 7]))
def test_native_bytes_equal_the_pure_paths_and_to_jsonl_of_the_rows(table, batch):
    native = _jsonl(table, native=True, batch=batch)
    assert native == _jsonl(table, native=False, batch=batch)
    assert native == _expected(_to_jsonl_text(table))


def test_every_control_character_is_escaped_as_json_dumps_does():
    text = "".join(CONTROLS) + '"\\\x7f/é王\u2028'
    table = pa.table({"s": [text, "", None, text[::-1]]})
    native = _jsonl(table, native=True)
    assert native == to_jsonl(table.to_pylist())
    assert native.count(b"\\u00") == 2 * (0x20 - 5)  # \b \f \n \r \t have short escapes


def test_integers_of_every_width_at_their_limits_are_written_exactly():
    table = pa.table({str(t): pa.array([low, high, None, 0], t) for t, (low, high) in INTS.items()})
    assert _jsonl(table, native=True) == to_jsonl(table.to_pylist())


def test_a_batch_written_in_two_halves_at_once_is_the_bytes_of_one():
    n = 2 * SPLIT_ROWS + 5  # large enough for the two halves, each a slice with an offset
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "s": [f'v{i} "q"\n' if i % 3 else None for i in range(n)],
            "f": [i / 7 for i in range(n)],
            "ok": [i % 2 == 0 for i in range(n)],
        }
    ).slice(3)
    native = _jsonl(table, native=True)
    assert native == _jsonl(table, native=False) == to_jsonl(table.to_pylist())


def test_dsgw_jsonl_native_0_forces_the_pure_path(monkeypatch):
    schema = pa.schema([("a", pa.int64())])
    assert JsonLinesEncoder(schema)._native is True
    monkeypatch.setenv("DSGW_JSONL_NATIVE", "0")
    assert JsonLinesEncoder(schema)._native is False
    assert encoders.native_jsonl() is False


# -- bad buffers raise ----------------------------------------------------------------------


def _string_column(values: list, *, offset: int = 0) -> tuple:
    array = pa.array(values, pa.string())
    validity, offsets, data = array.buffers()
    return (b'{"k":', J.STRING, offset, validity, offsets, data)


def _offsets(*ends: int) -> bytes:
    return pa.array(ends, pa.int32()).buffers()[1].to_pybytes()


@pytest.mark.parametrize(
    "columns,length,error",
    [
        ([(b'{"k":', J.STRING, 0, None, _offsets(0, 3), b"ab")], 1, ValueError),  # past the data
        ([(b'{"k":', J.STRING, 0, None, _offsets(2, 1), b"ab")], 1, ValueError),  # backwards
        ([(b'{"k":', J.STRING, 0, None, _offsets(-1, 1), b"ab")], 1, ValueError),  # negative
        ([(b'{"k":', J.RAW, 0, None, _offsets(0, 9), None)], 1, ValueError),  # no data at all
        ([(b'{"k":', J.STRING, 0, None, _offsets(0, 1), b"a")], 2, ValueError),  # offsets short
        ([(b'{"k":', J.STRING, 0, None, None, b"a")], 1, ValueError),  # no offsets
        ([(b'{"k":', J.INT64, 0, None, b"\0" * 15, None)], 2, ValueError),  # values short
        ([(b'{"k":', J.INT32, 3, None, b"\0" * 12, None)], 1, ValueError),  # offset past them
        ([(b'{"k":', J.BOOL, 0, None, b"\0", None)], 9, ValueError),  # bitmap short
        ([(b'{"k":', J.INT8, 0, b"\xff", b"\0" * 16, None)], 9, ValueError),  # validity short
        ([(b'{"k":', J.INT8, -1, None, b"\0" * 16, None)], 1, ValueError),  # negative offset
        ([(b'{"k":', J.INT8, 2**62, None, b"\0" * 16, None)], 1, ValueError),  # huge offset
        ([(b'{"k":', 99, 0, None, b"\0" * 16, None)], 1, ValueError),  # no such kind
        ([(None, J.INT8, 0, None, b"\0" * 16, None)], 1, TypeError),  # no key
        ([(b'{"k":', J.INT8, 0, None, 5, None)], 1, TypeError),  # not a buffer
        ([(b'{"k":', J.INT8, 0)], 1, TypeError),  # a short tuple
        (["column"], 1, TypeError),
        (None, 1, TypeError),
        ([], -1, ValueError),
    ],
)
def test_a_bad_buffer_raises_and_never_reads_out_of_bounds(columns, length, error):
    with pytest.raises(error):
        J.lines(length, columns, b"}\n")


def test_offsets_and_validity_of_a_sliced_array_are_honoured():
    # rows 1.. of ["a", None, "b\n"]: the offset is the array's, the buffers the whole array's
    column = _string_column(["a", None, "b\n"], offset=1)
    assert J.lines(2, [column], b"}\n") == b'{"k":null}\n{"k":"b\\n"}\n'


def test_a_string_column_without_a_data_buffer_writes_its_empty_values():
    column = (b'{"k":', J.STRING, 0, None, _offsets(0, 0, 0), None)
    assert J.lines(2, [column], b"}\n") == b'{"k":""}\n{"k":""}\n'


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.floats(), min_size=1, max_size=64), st.sampled_from([pa.float64(), pa.float32()])
)
def test_floats_of_any_magnitude_are_written_as_repr_writes_them(values, t):
    # the native writer places Arrow's shortest digits as repr() does, at every magnitude
    table = pa.table({"f": pa.array(values, pa.float64()).cast(t, safe=False)})
    assert _jsonl(table, native=True) == to_jsonl(table.to_pylist())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="0123456789.-+eE nafiNx", max_size=8), min_size=1, max_size=8))
def test_a_float_column_of_text_no_double_has_raises_or_writes_a_number(texts):
    # the FLOAT kind reads text that Arrow's cast wrote; any other text must not crash it
    array = pa.array(texts, pa.string())
    validity, offsets, data = array.buffers()
    columns = [(b'{"f":', J.FLOAT, 0, validity, offsets, data)]
    try:
        out = J.lines(len(texts), columns, b"}\n")
    except ValueError:
        return
    for line in out.splitlines():
        value = json.loads(line)["f"]
        assert isinstance(value, float)


def test_dates_of_every_year_are_written_as_arrows_text_and_outside_1_to_9999_by_its_cast():
    days = [-719162, -1, 0, 59, 60, 11016, 2932896, None]  # 0001-01-01 .. 9999-12-31, leap days
    inside = pa.table({"d": pa.array(days, pa.int32()).view(pa.date32())}).slice(1)
    beyond = pa.table({"d": pa.array([-719163, 2932897, 0], pa.int32()).view(pa.date32())})
    for table in (inside, beyond):
        text = table.column("d").cast(pa.string()).to_pylist()
        assert (
            _jsonl(table, native=True)
            == _jsonl(table, native=False)
            == to_jsonl([{"d": v} for v in text])
        )
    bad = pa.array([2932897], pa.int32()).buffers()[1]
    with pytest.raises(ValueError):
        J.lines(1, [(b'{"d":', J.DATE32, 0, None, bad, None)], b"}\n")
