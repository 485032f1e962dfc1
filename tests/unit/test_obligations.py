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
