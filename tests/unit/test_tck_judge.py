"""The DSP TCK harness's verdict (tests/tck/run.py): only listed failures pass the build."""

from tests.tck.run import judge

LISTED = {"CN:01-01": "needs a provider offer"}


def test_a_listed_failure_passes_the_build():
    results = [("PASSED", "CAT:01-01: catalog", ""), ("FAILED", "CN:01-01: offer", "timeout")]
    assert judge(results, LISTED) == 0


def test_a_failure_not_listed_fails_the_build():
    results = [("FAILED", "CAT:01-01: catalog", "404"), ("FAILED", "CN:01-01: offer", "t")]
    assert judge(results, LISTED) == 1


def test_a_listed_test_that_passes_fails_the_build_so_the_list_shrinks():
    assert judge([("PASSED", "CN:01-01: offer", "")], LISTED) == 1


def test_a_run_without_results_fails_the_build():
    assert judge([], LISTED) == 1


def test_consumer_test_ids_are_told_apart_from_provider_ones():
    assert judge([("FAILED", "CN_C:01-01: offer", "404")], LISTED) == 1
