"""Obligations applied to rows: unknown ones refused, fields masked and capped, files hashed."""

import pytest

from gateway.exchanges import obligations as obl

ROWS = [
    {"city": c, "age": a, "name": n} for c, a, n in [("a", 30, "x"), ("a", 40, "y"), ("b", 50, "z")]
]
NONE = {"mask": [], "drop": [], "row_cap": None, "min_group_size": None, "watermark": False}
DP = {"epsilon_per_query": 0.5, "budget_contract": 5, "budget_subject_resource": 5}


def test_unknown_obligation_is_refused():
    with pytest.raises(obl.UnsupportedObligation, match="encrypt"):
        obl.check_known({**NONE, "encrypt": True}, delivery="api")


def test_min_group_size_on_a_row_delivery_is_refused():
    with pytest.raises(obl.UnsupportedObligation, match="aggregates only"):
        obl.check_known({**NONE, "min_group_size": 10}, delivery="file")
    obl.check_known({**NONE, "min_group_size": 10, "dp": DP}, delivery="compute")


def test_compute_without_the_policys_dp_obligation_is_refused():
    with pytest.raises(obl.UnsupportedObligation, match="dp obligation"):
        obl.check_known({**NONE, "min_group_size": 10}, delivery="compute")
    with pytest.raises(obl.UnsupportedObligation, match="positive"):
        obl.check_known(
            {**NONE, "min_group_size": 10, "dp": {**DP, "epsilon_per_query": 0}},
            delivery="compute",
        )
    with pytest.raises(obl.UnsupportedObligation, match="aggregates only"):
        obl.check_known({**NONE, "dp": DP}, delivery="api")


def test_file_delivery_hashes_the_exact_bytes():
    out = obl.deliver(
        ROWS,
        delivery="file",
        fields=["city"],
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
