"""The compute room alone: the sandbox's lock-down, the plan's refusals, noise calibrated by
OpenDP, default terms that reveal no rare value, and thresholds on distinct subjects."""

import math

import pyarrow as pa
import pytest

from contracts.compute import ComputeColumn, ComputeTerms
from gateway.compute import engine, privacy, rules, service
from gateway.compute.rules import Measure
from gateway.exchanges.models import ExchangeRequest
from gateway.exchanges.obligations import infer_kind, mask_value

TERMS = ComputeTerms(
    aggregates=["count", "sum", "mean", "quantile", "histogram"],
    columns={
        "district": ComputeColumn(rule="group_key", values=["A", "B"]),
        "income": ComputeColumn(rule="aggregate", lower=0, upper=1000, bins=[0, 500, 1000]),
        "name": ComputeColumn(rule="never"),
    },
)


def _query(**compute) -> ExchangeRequest:
    return ExchangeRequest(contract_id="c", purpose="p", delivery="compute", **compute)


def test_the_sandbox_reaches_no_file_and_its_configuration_is_locked():
    conn = engine.connect()
    try:
        with pytest.raises(Exception, match="disabled by configuration"):
            conn.execute("SELECT * FROM read_csv('/etc/passwd')")
        with pytest.raises(Exception, match="locked"):
            conn.execute("SET enable_external_access = true")
        with pytest.raises(Exception, match="locked"):
            conn.execute("SET memory_limit = '8GB'")
        assert conn.execute("SELECT current_setting('threads')").fetchone()[0] == 1
    finally:
        conn.close()


def test_a_query_over_its_time_is_interrupted_and_releases_nothing():
    n = 2_000_000  # bounding contributions sorts every subject's rows: seconds, not 50 ms
    table = pa.table(
        {
            "name": pa.array([str(i) for i in range(n)]),
            "income": pa.array([1.0] * n, type=pa.float64()),
        }
    )
    terms = TERMS.model_copy(update={"subject": "name"})
    plan = rules.plan(terms, _query(aggregates=[{"op": "sum", "field": "income"}]))
    with pytest.raises(engine.ComputeFailed, match="limit"):
        engine.run(table, plan, timeout=0.05)


def test_identifiers_are_quoted_and_values_bound():
    assert engine.quote('x" FROM data; --') == '"x"" FROM data; --"'
    hostile = ComputeTerms(
        aggregates=["count"],
        columns={"d": ComputeColumn(rule="group_key", values=["'; DROP TABLE data; --"])},
    )
    table = engine.table_from_rows([{"d": "'; DROP TABLE data; --"}] * 3, ["d"])
    exact = engine.run(
        table, rules.plan(hostile, _query(aggregates=[{"op": "count"}], group_by=["d"]))
    )
    assert exact.groups == {("'; DROP TABLE data; --",): {"subjects": 3, "rows": 3}}


def test_exact_aggregates_clamp_impute_and_bound_contributions():
    terms = TERMS.model_copy(update={"subject": "name", "max_rows_per_subject": 1})
    rows = [{"name": "x", "district": "A", "income": 5000}] * 30  # one subject, 30 rows
    rows += [{"name": f"p{i}", "district": "A", "income": None} for i in range(3)]
    table = engine.table_from_rows(rows, ["name", "district", "income"])
    plan = rules.plan(
        terms, _query(aggregates=[{"op": "sum", "field": "income"}], group_by=["district"])
    )
    exact = engine.run(table, plan).groups[("A",)]
    # x counts once and is clamped to 1000; the nulls are imputed with the lower bound 0.
    assert exact == {"subjects": 4, "rows": 4, "sum:income": 1000.0}


@pytest.mark.parametrize(
    "compute, why",
    [
        ({"aggregates": [{"op": "sum", "field": "name"}]}, "may not be aggregated"),
        ({"aggregates": [{"op": "count"}], "group_by": ["income"]}, "not a declared group key"),
        (
            {"aggregates": [{"op": "count"}], "filters": [{"field": "district", "eq": "C"}]},
            "not a declared filter",
        ),
        (
            {"aggregates": [{"op": "count"}], "filters": [{"field": "income", "range": [0, 1]}]},
            "may not be filtered on",
        ),
        ({"aggregates": [{"op": "count"}], "group_by": ["district", "district"]}, "twice"),
    ],
)
def test_the_plan_refuses_what_the_terms_do_not_declare(compute, why):
    with pytest.raises(rules.NotDeclared, match=why):
        rules.plan(TERMS, _query(**compute))


def test_the_plan_refuses_when_no_terms_are_declared():
    with pytest.raises(rules.NotDeclared, match="no compute terms"):
        rules.plan(None, _query(aggregates=[{"op": "count"}]))


def test_sensitivities_follow_the_contribution_bound_and_the_clamp():
    terms = TERMS.model_copy(update={"subject": "name", "max_rows_per_subject": 3})
    plan = rules.plan(
        terms,
        _query(
            aggregates=[{"op": "mean", "field": "income"}, {"op": "histogram", "field": "income"}]
        ),
    )
    assert {m.name: m.sensitivity for m in plan.measures()} == {
        "subjects": 3,
        "rows": 3,
        "sum:income": 3000,
        "hist:income": 3,
    }


def test_laplace_noise_is_calibrated_by_opendp_to_sensitivity_over_epsilon():
    released = privacy.release(Measure("sum:x", False, 1000.0), [0.0] * 5, 0.25)
    assert released.scale == pytest.approx(4000.0)
    assert released.error_95 == pytest.approx(4000.0 * math.log(20))
    assert released.mechanism == "laplace" and len(released.values) == 5
    counts = privacy.release(Measure("subjects", True, 1.0), [10.0, 20.0], 0.5)
    assert counts.mechanism == "discrete_laplace" and counts.scale == pytest.approx(2.0)
    assert all(float(v).is_integer() for v in counts.values)
    with pytest.raises(privacy.PrivacyError):
        privacy.release(Measure("subjects", True, 1.0), [1.0], 0.0)


def test_noise_does_not_average_away_within_one_answer():
    """A release is never the exact value: noise of scale 4000 lands within 1 of it rarely."""
    values = privacy.release(Measure("sum:x", False, 1000.0), [123.0] * 200, 0.25).values
    assert sum(abs(v - 123.0) < 1 for v in values) < 5


def test_default_terms_declare_no_rare_value_and_no_personal_column():
    fields = [
        {"name": "name", "personal": True, "sensitive": False},
        {"name": "district", "personal": False, "sensitive": False},
        {"name": "record", "personal": False, "sensitive": False},
        {"name": "income", "personal": True, "sensitive": True},
    ]
    rows = [
        {"name": f"n{i}", "district": "A" if i < 12 else "B", "record": f"r{i}", "income": 4321}
        for i in range(14)
    ]
    terms = rules.default_terms(fields, rows)
    assert terms.columns["name"].rule == "never"
    assert terms.columns["record"].rule == "never"  # unique: no value held by 10 rows
    assert terms.columns["district"].values == ["A"]  # B (2 rows) is not revealed
    income = terms.columns["income"]
    assert (income.rule, income.lower, income.upper) == ("aggregate", 0.0, 10000.0)
    assert income.bins[0] == 0 and income.bins[-1] == 10000 and len(income.bins) == 11
    assert terms.subject is None and "sum" in terms.aggregates


def test_a_resource_flagged_personal_without_field_flags_keeps_text_columns_out():
    fields = [{"name": "patient"}, {"name": "diagnosis"}]
    rows = [{"patient": "王小明", "diagnosis": "HIV positive"}] * 20
    terms = rules.default_terms(fields, rows, sensitive_personal_information=True)
    assert {c.rule for c in terms.columns.values()} == {"never"}
    assert terms.aggregates == ["count"]


def _release(rows, terms, request, *, epsilon=50.0, mask=frozenset()):
    return service.release(
        rows,
        terms=terms,
        request=request,
        epsilon=epsilon,
        min_group_size=10,
        mask=set(mask),
        mask_value=lambda name, value: mask_value(value, infer_kind(name)),
        watermark=None,
    )


def test_groups_below_the_minimum_distinct_subjects_are_withheld_without_a_count():
    terms = TERMS.model_copy(update={"subject": "name"})
    rows = [{"name": f"a{i}", "district": "A", "income": 100} for i in range(200)]
    rows += [{"name": "b", "district": "B", "income": 900}] * 50  # 50 rows, one subject
    out = _release(rows, terms, _query(aggregates=[{"op": "count"}], group_by=["district"]))
    assert [r["district"] for r in out.rows] == ["A"]
    assert abs(out.rows[0]["_count"] - 200) < 5  # ε = 50: nearly exact, for the test's sake
    assert not hasattr(out, "suppressed_groups")


def test_masked_group_keys_are_released_masked():
    terms = ComputeTerms(
        aggregates=["count"],
        columns={"phone": ComputeColumn(rule="group_key", values=["13812345678"])},
    )
    rows = [{"phone": "13812345678"}] * 40
    out = _release(
        rows, terms, _query(aggregates=[{"op": "count"}], group_by=["phone"]), mask={"phone"}
    )
    assert out.rows and out.rows[0]["phone"] == "138****5678"


def test_quantiles_and_histograms_are_read_off_noisy_bins():
    rows = [{"district": "A", "income": 100 + i} for i in range(100)]
    rows += [{"district": "A", "income": 900}] * 100
    out = _release(
        rows,
        TERMS,
        _query(
            aggregates=[
                {"op": "histogram", "field": "income"},
                {"op": "quantile", "field": "income", "quantiles": [0.25, 0.75]},
            ]
        ),
        epsilon=100.0,
    )
    row = out.rows[0]
    assert row["income_histogram"]["edges"] == [0, 500, 1000]
    assert [abs(c - 100) < 5 for c in row["income_histogram"]["counts"]] == [True, True]
    assert 0 <= row["income_p25"] <= 500 <= row["income_p75"] <= 1000


def test_numeric_group_keys_and_declared_ranges_match_their_declared_form():
    terms = ComputeTerms(
        aggregates=["count"],
        columns={
            "year": ComputeColumn(rule="group_key", values=["2024", "2025"]),
            "age": ComputeColumn(rule="plaintext", ranges=[(18, 65)]),
        },
    )
    rows = [{"year": 2024, "age": 30}] * 50 + [{"year": 2025, "age": 70}] * 50
    out = _release(
        rows,
        terms,
        _query(
            aggregates=[{"op": "count"}],
            group_by=["year"],
            filters=[{"field": "age", "range": [18, 65]}],
        ),
    )
    assert [r["year"] for r in out.rows] == ["2024"]  # 2025's rows are all 70: filtered out
