"""Vectorised obligations: masks equal the reference shapes, fields, row caps, watermarks."""

import random
import re
from datetime import date, datetime
from decimal import Decimal

import pyarrow as pa
import pytest

from gateway.dataplane import WATERMARK_COLUMN, BatchStream, Obligations, apply, mask_array
from gateway.dataplane.obligations import SMALL, native_masks
from gateway.exchanges.obligations import mask_value

# The reference the vectorised masks are held to: the row-by-row shapes of
# specs/policy-input.md ("Masking"), as the api and file deliveries apply them.
KINDS = ["name", "phone", "id_card", "email", "text", "unknown-kind"]
ALPHABET = "abcxyz@.王欧阳娜1234567890 *-é\u2028\n"


def _strings(n: int, seed: int) -> list:
    rnd = random.Random(seed)
    fixed = [None, "", "@", "a@", "@b", "a@b@c", "王", "王小明", "欧阳娜娜", "13812345678",
             "110101199003074512", "zhang.wei@example.cn", "x" * 200]  # fmt: skip
    return fixed + [
        "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, 24))) for _ in range(n)
    ]


@pytest.fixture(autouse=True, params=["native", "arrow"])
def masks_path(request, monkeypatch):
    """Every test here runs on both paths of a large column: the native kernel
    (gateway/dataplane/_masks.c) and Arrow's kernels (`DSGW_MASKS_NATIVE=0`)."""
    if request.param == "native" and not native_masks():
        pytest.skip("the native masks were not built")
    monkeypatch.setenv("DSGW_MASKS_NATIVE", "1" if request.param == "native" else "0")
    return request.param


@pytest.mark.parametrize("kind", KINDS)
def test_both_paths_mask_sliced_columns_with_nulls_and_wide_characters_as_the_reference(kind):
    rnd = random.Random(7)
    alphabet = ALPHABET + "𝄞😀ß"  # 4-byte and 2-byte UTF-8 too
    words = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 20))) for _ in range(3000)]
    values = [None if rnd.random() < 0.1 else w for w in words]
    column = pa.array(values, pa.string())
    for start, stop in [(0, 3000), (5, 2995), (333, 1400)]:  # offsets inside the buffers
        part = column.slice(start, stop - start)
        got = mask_array(part, kind)
        assert got.to_pylist() == [mask_value(v, kind) for v in values[start:stop]]
        assert got.null_count == part.null_count
        got.validate(full=True)


def test_the_native_kernel_refuses_offsets_outside_its_data(masks_path):
    from gateway.dataplane.obligations import _masks

    if _masks is None or masks_path != "native":
        pytest.skip("the native kernel's own test (it was built)")

    offsets = pa.array([0, 3, 99], pa.int32()).buffers()[1]
    with pytest.raises(ValueError, match="outside the data"):
        _masks.mask(_masks.PHONE, 2, 0, offsets, b"abcdef")
    with pytest.raises(ValueError, match="offsets buffer"):
        _masks.mask(_masks.PHONE, 5, 0, offsets, b"abcdef")
    backwards = pa.array([0, 4, 2], pa.int32()).buffers()[1]
    with pytest.raises(ValueError, match="backwards"):
        _masks.mask(_masks.NAME, 2, 0, backwards, b"abcdef")


@pytest.mark.parametrize("kind", KINDS)
def test_vectorised_mask_equals_the_reference_on_many_strings(kind):
    values = _strings(5000, seed=hash(kind) % 1000)
    assert mask_array(pa.array(values, pa.string()), kind).to_pylist() == [
        mask_value(v, kind) for v in values
    ]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "values",
    [
        [None, 0, -7, 12345678901, 110101199003074512, 2**62],
        [True, False, None],
        [1.5, -0.0, 1e20, 123456789.0, 2.5e-7, float("nan"), float("-inf"), None],
    ],
    ids=["ints", "bools", "floats"],
)
def test_vectorised_mask_of_non_text_equals_the_reference_on_its_text(kind, values):
    assert mask_array(pa.array(values), kind).to_pylist() == [mask_value(v, kind) for v in values]


def test_masked_dictionary_and_large_string_columns_match_the_reference():
    values = ["13812345678", None, "13812345678", "abc"]
    expected = [mask_value(v, "phone") for v in values]
    assert mask_array(pa.array(values).dictionary_encode(), "phone").to_pylist() == expected
    assert mask_array(pa.array(values, pa.large_string()), "phone").to_pylist() == expected


def _stream(n: int, batch: int) -> BatchStream:
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "phone": [f"138{i:08d}" for i in range(n)],
            "secret_note": [f"note {i}" for i in range(n)],
            "city": ["Hangzhou"] * n,
        }
    )
    return BatchStream(table.schema, table.to_batches(max_chunksize=batch))


def test_fields_drop_mask_and_watermark_shape_every_row():
    ob = Obligations(
        fields=["phone", "id", "secret_note"],
        drop=frozenset({"secret_note"}),
        mask={"phone": "phone"},
        watermark="wm-1",
    )
    out = apply(_stream(10, 3), ob).read_all()
    assert out.schema.names == ["phone", "id", WATERMARK_COLUMN]
    assert out.column("phone").to_pylist() == [
        mask_value(f"138{i:08d}", "phone") for i in range(10)
    ]
    assert out.column("id").to_pylist() == list(range(10))
    assert set(out.column(WATERMARK_COLUMN).to_pylist()) == {"wm-1"}


@pytest.mark.parametrize("cap", [0, 1, 3, 4, 7, 10, 11, 1000])
def test_row_cap_holds_across_batches(cap):
    out = apply(_stream(10, 3), Obligations(row_cap=cap)).read_all()
    assert out.column("id").to_pylist() == list(range(min(cap, 10)))


def test_a_row_cap_closes_the_source_without_reading_it_all():
    read = []
    closed = []
    table = pa.table({"id": list(range(100))})

    def batches():
        for b in table.to_batches(max_chunksize=10):
            read.append(b.num_rows)
            yield b

    stream = BatchStream(table.schema, batches(), on_close=lambda: closed.append(True))
    assert apply(stream, Obligations(row_cap=15)).read_all().num_rows == 15
    assert len(read) == 2 and closed == [True]


def test_an_obligation_on_a_column_the_source_lacks_is_a_problem():
    from gateway.dataplane import DataPlaneError

    with pytest.raises(DataPlaneError) as err:
        apply(_stream(3, 3), Obligations(fields=["id", "nope"]))
    assert err.value.slug == "data-source-unavailable" and re.search("nope", err.value.detail)


def test_a_source_column_named_like_the_watermark_gives_way_to_the_mark():
    table = pa.table({"id": [1, 2], WATERMARK_COLUMN: ["forged", "forged"]})
    out = apply(BatchStream(table.schema, table.to_batches()), Obligations(watermark="real"))
    got = out.read_all()
    assert got.schema.names == ["id", WATERMARK_COLUMN]
    assert got.column(WATERMARK_COLUMN).to_pylist() == ["real", "real"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "values",
    [
        [f"138{i:08d}" for i in range(50)],  # one length, long enough: the constant-stars path
        [f"138{i:08d}" for i in range(50)] + [None, "1381234567"],  # one too short, a null
        ["王小明欧阳娜娜12345678"] * 3 + ["110101199003074512"],  # not ASCII: by characters
        ["王小明欧阳娜娜12345678"] * 3,  # not ASCII, one length: one replacement by characters
        ["王a@例子.cn", "b@x", "é@é"],  # not ASCII emails, each with a local part and a domain
        ["x" * 20] * 5,
        ["", "a"],  # too short for every shape
        [None, None, None],  # all null: no work, still nulls
    ],
    ids=[
        "uniform",
        "one-short",
        "non-ascii",
        "non-ascii-uniform",
        "non-ascii-emails",
        "long-uniform",
        "short",
        "all-null",
    ],
)
def test_vectorised_mask_shortcuts_equal_the_reference(kind, values):
    out = mask_array(pa.array(values, pa.string()), kind)
    assert out.type == pa.string()
    assert out.to_pylist() == [mask_value(v, kind) for v in values]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "values",
    [
        ["王小明", None, "13812345678", "", "a@b.cn", "@", "110101199003074512", "é\u2028\n"],
        [None, 0, -7, 12345678901, 2**62],
        [True, False, None],
        [1.5, -0.0, 1e20, 2.5e-7, float("nan"), float("-inf"), None],
        pa.array([datetime(2026, 1, 2, 3, 4, 5), None], pa.timestamp("us", "UTC")),
        pa.array([date(2026, 1, 2), None]),
        pa.array([Decimal("12.50"), None], pa.decimal128(10, 2)),
        pa.array(["13812345678", None, "abc"]).dictionary_encode(),
        pa.array(["13812345678", None, "abc"], pa.large_string()),
    ],
    ids=["strings", "ints", "bools", "floats", "timestamps", "dates", "decimals", "dict", "large"],
)
def test_a_small_column_is_masked_as_a_large_one(kind, values):
    small = values if isinstance(values, pa.Array) else pa.array(values)
    assert len(small) <= SMALL
    plain = small.dictionary_decode() if pa.types.is_dictionary(small.type) else small
    large = pa.concat_arrays([plain] * (SMALL // len(small) + 1))
    assert len(large) > SMALL  # the vectorised shapes
    expected = mask_array(large, kind).to_pylist()[: len(small)]
    assert mask_array(small, kind).to_pylist() == expected
    assert mask_array(small, kind).type == pa.string()
