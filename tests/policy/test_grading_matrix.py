"""The grading matrix holds against the real OPA, and the spec and the Rego test say the same."""

import json
import re
import subprocess

import pytest

from gateway.policy.client import PolicyClient
from gateway.policy.opa_process import POLICIES_DIR, find_opa
from tests.policy import grading_matrix as matrix

ROWS = matrix.rows()


def test_matrix_covers_every_grade_delivery_region_and_contract_state():
    assert len(ROWS) == len(matrix.GRADES) * 3 * 2 * len(matrix.CONTRACTS) == 180
    assert {r["delivery"] for r in ROWS} == {"api", "file", "compute"}
    allowed = [r["name"] for r in ROWS if not r["codes"]]
    # Important data leaves only one way: compute, domestic, approved, under a live contract.
    important = [n for n in allowed if n.startswith("important")]
    assert important == ["important, holder approved / compute / domestic / FINALIZED"]
    assert not [n for n in allowed if n.startswith("core")]


def test_generated_rego_test_and_spec_table_are_up_to_date():
    assert matrix.REGO.read_text(encoding="utf-8") == matrix.rego(), (
        "run: .venv/bin/python -m tests.policy.grading_matrix --write"
    )
    spec = matrix.SPEC.read_text(encoding="utf-8")
    assert matrix.spec_text(spec) == spec, (
        "run: .venv/bin/python -m tests.policy.grading_matrix --write"
    )


@pytest.fixture(scope="module")
def policy(opa_server):
    client = PolicyClient(opa_server.url, timeout=5.0)
    yield client
    client.close()


@pytest.mark.parametrize("row", ROWS, ids=[r["name"] for r in ROWS])
def test_every_row_holds_against_the_real_opa_server(policy, row):
    decision = policy.decide(matrix.apply(row["changes"]))
    assert [r.code for r in decision.reasons] == row["codes"]
    assert decision.allow is (not row["codes"])
    if row["delivery"] == "compute":
        assert decision.obligations["min_group_size"] == 10
        assert decision.obligations["dp"]["epsilon_per_query"] > 0
    else:
        assert decision.obligations["min_group_size"] is None
        assert decision.obligations["dp"] is None


@pytest.mark.parametrize("module", ["exchange.rego", "compute.rego"])
def test_every_deny_rule_cites_an_annotation_with_a_code(module):
    """A deny rule without its own METADATA block would never fire (its reason is undefined)."""
    rego = (POLICIES_DIR / "dsgw" / module).read_text(encoding="utf-8")
    rules = len(re.findall(r"^deny contains ", rego, flags=re.M))
    report = subprocess.run(
        [find_opa(), "inspect", "-a", "--format", "json", str(POLICIES_DIR / "dsgw")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    annotated = [
        a
        for a in json.loads(report)["annotations"]
        if [p["value"] for p in a["path"]][-1] == "deny"
        and a["location"]["file"].endswith("/" + module)
    ]
    assert rules > 0 and len(annotated) == rules
    assert all(a["annotations"]["custom"]["code"] for a in annotated)
    assert all(a["annotations"]["title"] for a in annotated)
