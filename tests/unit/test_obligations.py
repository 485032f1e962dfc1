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
