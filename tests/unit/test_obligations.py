"""Obligations applied to rows: unknown ones refused, aggregates that never leak a small group."""

import pytest

from gateway.exchanges import obligations as obl

ROWS = [
    {"city": c, "age": a, "name": n} for c, a, n in [("a", 30, "x"), ("a", 40, "y"), ("b", 50, "z")]
]
NONE = {"mask": [], "drop": [], "row_cap": None, "min_group_size": None, "watermark": False}


def test_unknown_obligation_is_refused():
    with pytest.raises(obl.UnsupportedObligation, match="encrypt"):
        obl.check_known({**NONE, "encrypt": True}, delivery="api")


def test_min_group_size_on_a_row_delivery_is_refused():
    with pytest.raises(obl.UnsupportedObligation, match="aggregates only"):
        obl.check_known({**NONE, "min_group_size": 10}, delivery="file")
    obl.check_known({**NONE, "min_group_size": 10}, delivery="compute")


def test_aggregate_groups_counts_and_averages_numbers_only():
    columns, rows, suppressed = obl.aggregate(
        ROWS, fields=["age", "name"], group_by=["city"], obligations=NONE, watermark=None
    )
    assert columns == ["city", "_count", "age_avg"]  # name is not a number: not aggregated
    assert rows == [
        {"city": "a", "_count": 2, "age_avg": 35.0},
        {"city": "b", "_count": 1, "age_avg": 50.0},
    ]
    assert suppressed == 0


def test_aggregate_suppresses_small_groups_and_honours_drop():
    obligations = {**NONE, "min_group_size": 2, "drop": ["age"]}
    columns, rows, suppressed = obl.aggregate(
        ROWS, fields=["age"], group_by=["city"], obligations=obligations, watermark="wm"
    )
    assert columns == ["city", "_count"]
    assert rows == [{"city": "a", "_count": 2, "_watermark": "wm"}]
    assert suppressed == 1


def test_file_delivery_hashes_the_exact_bytes():
    out = obl.deliver(
        ROWS,
        delivery="file",
        fields=["city"],
        group_by=None,
        obligations={**NONE, "row_cap": 2},
        limit=None,
        watermark=None,
        name="dec_1",
    )
    assert out.rows == [] and out.source_rows == 2
    assert out.file["content"] == '{"city":"a"}\n{"city":"a"}\n'
    assert out.file["name"] == "dec_1.jsonl" and out.content_hash == out.file["sha256"]


@pytest.mark.parametrize(
    ("kind", "value", "shape"),
    [
        ("phone", "13812345678", "138****5678"),  # 11 digits: first 3 and last 4
        ("phone", "+8613812345678", "+86*******5678"),
        ("phone", "62345678", "********"),  # shorter than 11: nothing kept
        ("id_card", "110101199003074512", "1****************2"),  # first and last only
        ("id_card", "11010119900307X", "1*************X"),  # 15-character card
        ("id_card", "1101011990", "**********"),
        ("name", "王小明", "王**"),  # the surname only, length hidden
        ("name", "欧阳娜娜", "欧**"),
        ("name", "王", "*"),
        ("email", "zhang.wei@example.cn", "z***@example.cn"),
        ("email", "not an address", "***"),
        ("text", "HIV positive", "***"),  # free text: fully replaced, length hidden
        ("text", 812, "***"),
        ("unknown kind", "13812345678", "***"),  # unknown kinds hide everything
        ("phone", None, None),
    ],
)
def test_masked_value_keeps_no_more_than_its_kinds_shape(kind, value, shape):
    assert obl.mask_value(value, kind) == shape


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("id_card", "id_card"),
        ("idCard", "id_card"),
        ("IDNumber", "id_card"),
        ("citizen_id", "id_card"),
        ("sfzh", "id_card"),
        ("phone", "phone"),
        ("mobilePhone", "phone"),
        ("tel", "phone"),
        ("hotel", "text"),  # a word, not a substring
        ("contact_email", "email"),
        ("name", "name"),
        ("holder_name", "name"),
        ("patient", "text"),
        ("diagnosis", "text"),
    ],
)
def test_undeclared_kind_is_inferred_from_the_field_name(name, kind):
    assert obl.infer_kind(name) == kind


def test_declared_kind_wins_over_the_name():
    assert obl.field_kind({"name": "contact", "kind": "phone"}) == "phone"
    assert obl.field_kind({"name": "phone", "kind": "text"}) == "text"
    assert obl.field_kind({"name": "phone"}) == "phone"


def test_rows_are_masked_by_the_kind_of_each_field():
    rows = [{"who": "王小明", "phone": "13812345678", "note": "HIV positive"}]
    _, out = obl.apply(
        rows,
        fields=["who", "phone", "note"],
        obligations={**NONE, "mask": ["who", "phone", "note"]},
        limit=None,
        watermark=None,
        kinds={"who": "name"},  # phone and note: from their names
    )
    assert out == [{"who": "王**", "phone": "138****5678", "note": "***"}]
