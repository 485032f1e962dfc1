"""The GB/T 36344 dimensions the gateway computes from a dataset."""

from gateway.products.models import StatedQuality
from gateway.products.quality import computed, report


def _by_key(dimensions):
    return {d["dimension"]: d for d in dimensions}


def test_completeness_is_the_share_of_non_null_values():
    fields = [{"name": "a", "description": "x"}, {"name": "b", "description": ""}]
    rows = [{"a": 1, "b": None}, {"a": 2}, {"a": None, "b": "y"}]
    dims = _by_key(computed(fields, rows))
    assert dims["completeness"]["score"] == round(3 / 6, 4)
    assert "3 of 3 rows × 2 fields" in dims["completeness"]["basis"]
    assert dims["conformity"]["score"] == 0.5  # one of two fields described


def test_consistency_is_the_share_of_values_of_their_fields_prevailing_type():
    fields = [{"name": "n"}]
    rows = [{"n": 1}, {"n": 2}, {"n": "three"}, {"n": True}]
    assert _by_key(computed(fields, rows))["consistency"]["score"] == 0.5


def test_an_empty_dataset_has_no_computed_completeness_and_unstated_scores_are_none():
    full = report([{"name": "a"}], [], StatedQuality())
    dims = _by_key(full["dimensions"])
    assert dims["completeness"]["score"] is None
    assert dims["accuracy"]["method"] == "not-stated"
    assert len(full["dimensions"]) == 6
