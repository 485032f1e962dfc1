"""An adversary who asks many questions: each attack of specs/compute.md run over HTTP against
the real policy, on both engines. None recovers an individual's value within the stated error,
and repeating a question spends the budget until the policy refuses it.

The noise is random (OpenDP draws it), so each assertion on a released value is one that fails
only with a probability stated beside it (below 1e-4), never one that needs a lucky draw.
"""

import pytest

from ledger import store as ledger_store
from tests.e2e.world import OFFER, PURPOSE, build_world

# District A: 29 men and one woman, whose income the review recovered; district B: 100 people,
# all named 张伟 (a common name that the merchant declared as a group key).
WOMAN_INCOME = 23_456
ROWS = [
    {
        "person_id": f"A{i:03d}",
        "name": f"居民A{i}",
        "district": "A",
        "gender": "M",
        "income": 10_000 + 300 * i,
    }
    for i in range(29)
]
ROWS.append(
    {"person_id": "A999", "name": "李娜", "district": "A", "gender": "F", "income": WOMAN_INCOME}
)
ROWS += [
    {
        "person_id": f"B{i:03d}",
        "name": "张伟",
        "district": "B",
        "gender": "F" if i % 2 else "M",
        "income": 8_000 + 250 * i,
    }
    for i in range(100)
]
FIELDS = [
    {"name": "person_id", "personal": True},
    {"name": "name", "personal": True},
    # Stated as not personal: a field that states nothing inherits the resource's flags.
    {"name": "district", "personal": False, "sensitive": False},
    {"name": "gender", "personal": False, "sensitive": False},
    {"name": "income", "personal": True, "sensitive": True},
]
UPPER = 50_000
TERMS = {
    "subject": "person_id",
    "max_rows_per_subject": 1,
    "aggregates": ["count", "sum", "mean", "quantile", "histogram"],
    "columns": {
        "person_id": {"rule": "never"},
        "name": {"rule": "group_key", "values": ["张伟"]},
        "district": {"rule": "group_key", "values": ["A", "B"]},
        "gender": {"rule": "group_key", "values": ["F", "M"]},
        "income": {
            "rule": "aggregate",
            "lower": 0,
            "upper": UPPER,
            "bins": [5_000 * i for i in range(11)],
        },
    },
}
SUM = [{"op": "sum", "field": "income"}]
# A sensitive field is read: the policy's L4 tier, ε 0.25 a query, 2.5 per contract.
EPSILON, BUDGET = 0.25, 2.5

SITES = [{"site": f"S{i:02d}", "flow": 1_000 + 37 * i} for i in range(12)]
SITE_TERMS = {
    "aggregates": ["count", "sum"],
    "columns": {
        "site": {"rule": "group_key", "values": [s["site"] for s in SITES]},
        "flow": {"rule": "aggregate", "lower": 0, "upper": 10_000},
    },
}


@pytest.fixture
def world(client, settings):
    world = build_world(client, settings.state_dir)
    resource = world.add_resource(
        name="household incomes",
        domain="finance",
        grade="general",
        level="L3",
        personal_information=True,
        sensitive_personal_information=True,
        fields=FIELDS,
        rows=ROWS,
    )
    world.incomes = world.publish(
        resource=resource,
        offers=[{**OFFER, "compute": TERMS}, {**OFFER, "compute": TERMS, "price_fen": 1}],
        name="household incomes, compute only",
        authorisation_id=resource["authorisation_id"],
        delivery_modes=["compute"],
    )
    return world


def _entry(gateway, seq: int):
    with gateway.engine.connect() as conn:
        return ledger_store.get_entry(conn, seq)


def _compute(world, contract_id: str, **query):
    return world.pull(contract_id, delivery="compute", **query)


def _ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def _codes(response) -> list[str]:
    assert response.status_code == 403, response.text
    return [r["code"] for r in response.json()["reasons"]]


def _by(rows: list[dict], *keys: str) -> dict[tuple, dict]:
    return {tuple(r[k] for k in keys): r for r in rows}


def _sum_error(body: dict) -> float:
    return next(n for n in body["privacy"]["noise"] if n["measure"] == "sum:income")["error_95"]


def test_differencing_by_row_selection_is_not_offered(world, gateway):
    """The review's first attack: averages over limit 10, 11, … 25, one row apart."""
    contract = world.contract(world.incomes["offers"][0]["id"])
    for limit in range(10, 26):
        response = _compute(
            world, contract["id"], aggregates=[{"op": "mean", "field": "income"}], limit=limit
        )
        assert response.status_code == 422, response.text
        assert "limit does not apply to compute" in response.text
    assert _compute(world, contract["id"], aggregates=SUM, offset=1).status_code == 422
    # Selecting rows by an undeclared filter is refused by the policy before anything runs.
    by_income = [{"field": "income", "range": [23_000, 24_000]}]
    assert _codes(_compute(world, contract["id"], aggregates=SUM, filters=by_income)) == [
        "COLUMN_RULE_VIOLATED"
    ]
    by_person = [{"field": "person_id", "eq": "A999"}]
    assert _codes(_compute(world, contract["id"], aggregates=SUM, filters=by_person)) == [
        "COLUMN_RULE_VIOLATED"
    ]
    undeclared = [{"field": "district", "eq": "C"}]
    assert _codes(_compute(world, contract["id"], aggregates=SUM, filters=undeclared)) == [
        "COMPUTE_NOT_DECLARED"
    ]
    # Nothing refused spent any ε: the first release spends the first query's worth.
    body = _ok(_compute(world, contract["id"], aggregates=SUM))
    assert body["privacy"]["contract"]["spent"] == EPSILON


def test_complementary_groupings_do_not_recover_the_one_woman_of_a_district(world, gateway):
    """The review's second attack: group_by [district] minus group_by [district, gender]."""
    contract = world.contract(world.incomes["offers"][0]["id"])
    whole = _ok(_compute(world, contract["id"], aggregates=SUM, group_by=["district"]))
    split = _ok(_compute(world, contract["id"], aggregates=SUM, group_by=["district", "gender"]))
    assert "suppressed_groups" not in split
    # The stated 95 % error of each sum is wider than any income: a value "within the stated
    # error" of the answer could be anyone's.
    assert _sum_error(whole) >= UPPER and _sum_error(split) >= UPPER
    estimates = []
    a, a_men = _by(whole["rows"], "district").get(("A",)), _by(split["rows"], "district", "gender")
    if a is not None and ("A", "M") in a_men:
        estimates.append(a["income_sum"] - a_men[("A", "M")]["income_sum"])
    if ("A", "F") in a_men:  # her group of one is released only if its noisy count reaches 10
        estimates.append(a_men[("A", "F")]["income_sum"])
    for estimate in estimates:
        # Laplace of scale >= 400,000 lands within 100 of her income with probability < 5e-4.
        assert abs(estimate - WOMAN_INCOME) > 100, estimate
    assert split["privacy"]["contract"]["spent"] == 2 * EPSILON


def _approved_contract(world, offer_id: str) -> dict:
    requested = world.consumer.call(
        "POST", "/contracts", json={"offer_id": offer_id, "purpose": PURPOSE}
    )
    assert requested.status_code == 201, requested.text
    contract_id, doc = requested.json()["id"], requested.json()["document"]
    approved = world.holder.call("POST", f"/contracts/{contract_id}/approve", json=None)
    assert approved.status_code == 200, approved.text
    for party, step in ((world.merchant, "agree"), (world.consumer, "verify")):
        done = party.call(
            "POST", f"/contracts/{contract_id}/{step}", json={"signature": party.sign(doc)}
        )
        assert done.status_code == 200, done.text
    return done.json()


def test_an_important_sites_flow_is_not_recovered_under_an_approved_contract(world, gateway):
    """The review's third attack: a site's exact flow, from important data, via compute."""
    resource = world.add_resource(
        name="pipeline flows",
        domain="energy",
        grade="important",
        fields=[{"name": "site"}, {"name": "flow"}],
        rows=SITES,
    )
    product = world.publish(
        resource=resource,
        offers=[{**OFFER, "compute": SITE_TERMS}],
        authorisation_id=resource["authorisation_id"],
        delivery_modes=["compute"],
    )
    contract = _approved_contract(world, product["offers"][0]["id"])
    target = SITES[3]
    total = _ok(_compute(world, contract["id"], aggregates=[{"op": "sum", "field": "flow"}]))
    assert total["privacy"]["epsilon_spent"] == 0.1  # important data: the strictest tier
    others = [s for s in SITES if s is not target]
    estimates = []
    alone = _ok(
        _compute(
            world,
            contract["id"],
            aggregates=[{"op": "sum", "field": "flow"}],
            filters=[{"field": "site", "eq": target["site"]}],
        )
    )
    if alone["rows"]:  # one site: released only if its noisy count (scale 20) reaches 10
        estimates.append(alone["rows"][0]["flow_sum"])
    per_site = _ok(
        _compute(
            world, contract["id"], aggregates=[{"op": "sum", "field": "flow"}], group_by=["site"]
        )
    )
    estimates += [r["flow_sum"] for r in per_site["rows"] if r["site"] == target["site"]]
    if total["rows"]:
        estimates.append(total["rows"][0]["flow_sum"] - sum(s["flow"] for s in others))
    noise = next(n for n in total["privacy"]["noise"] if n["measure"] == "sum:flow")
    assert noise["scale"] >= 10_000 / 0.05 * 0.999  # Δ 10,000 at ε 0.05 a measure
    for estimate in estimates:
        # Laplace of scale 200,000 lands within 10 of the flow with probability < 5e-5.
        assert abs(estimate - target["flow"]) > 10, estimate
    data = _entry(gateway, per_site["receipt"]["seq"]).data
    assert data["privacy"]["contract"] == {"spent": 0.3, "budget": 1.0, "remaining": 0.7}


def test_repeating_a_query_spends_the_budget_and_then_is_refused(world, gateway):
    """Averaging away the noise: ten answers at most, then a denial, on every contract."""
    contract = world.contract(world.incomes["offers"][0]["id"])
    query = {"aggregates": [{"op": "mean", "field": "income"}], "group_by": ["district"]}
    answers, remaining = [], []
    for _ in range(round(BUDGET / EPSILON)):
        body = _ok(_compute(world, contract["id"], **query))
        answers += [r["income_mean"] for r in body["rows"] if r["district"] == "B"]
        data = _entry(gateway, body["receipt"]["seq"]).data
        assert data["privacy"]["epsilon_spent"] == EPSILON
        remaining.append(data["privacy"]["contract"]["remaining"])
    assert remaining == [round(BUDGET - EPSILON * (i + 1), 6) for i in range(10)]
    assert len(set(answers)) == len(answers)  # no cached answer: each one is a fresh draw
    refused = _compute(world, contract["id"], **query)
    assert _codes(refused) == ["PRIVACY_BUDGET_EXHAUSTED"]
    denial = _entry(gateway, refused.json()["ledger_seq"])
    assert denial.type == "exchange.denied"
    assert denial.data["reasons"] == ["PRIVACY_BUDGET_EXHAUSTED"]
    # A second contract for the same consumer on the same resource does not double it.
    second = world.contract(world.incomes["offers"][1]["id"])
    again = _compute(world, second["id"], **query)
    assert _codes(again) == ["PRIVACY_BUDGET_EXHAUSTED"]
    assert "on resource" in again.json()["detail"]
    # Another consumer has its own budget (and learns no more than the first could).
    other = world.register("second consumer", ["consumer"])
    theirs = world.contract(world.incomes["offers"][0]["id"], consumer=other)
    assert _compute(world, theirs["id"], consumer=other, **query).status_code == 200


def test_group_keys_on_unique_or_masked_fields_reveal_no_one(world, gateway):
    contract = world.contract(world.incomes["offers"][0]["id"])
    count = [{"op": "count"}]
    # A unique identifier is never a group key; a column the terms do not list is `never`.
    assert _codes(_compute(world, contract["id"], aggregates=count, group_by=["person_id"])) == [
        "COLUMN_RULE_VIOLATED"
    ]
    # A name that is no field of the resource is refused before any policy call.
    unknown = _compute(world, contract["id"], aggregates=count, group_by=["phone"])
    assert unknown.status_code == 422 and "'phone'" in unknown.json()["detail"]
    # A personal field the merchant declared as a key: grouped on, but released masked.
    response = _compute(world, contract["id"], aggregates=count, group_by=["name"])
    body = _ok(response)
    assert body["masked"] == ["name"]
    assert "张伟" not in response.text
    assert all(r["name"] == "张**" for r in body["rows"])  # the name kind's shape: surname only
    # The default terms of a product (world's resident data) never group on a personal field.
    residents = world.contract(_residents_compute_offer(world))
    assert _codes(_compute(world, residents["id"], aggregates=count, group_by=["id_card"])) == [
        "COLUMN_RULE_VIOLATED"
    ]


def _residents_compute_offer(world) -> str:
    product = world.publish(offers=[OFFER], delivery_modes=["compute"], name="residents, compute")
    assert product["offers"][0]["terms"]["compute"]["columns"]["id_card"]["rule"] == "never"
    return product["offers"][0]["id"]


def test_small_groups_leave_no_trace_of_their_suppression(world, gateway):
    contract = world.contract(world.incomes["offers"][0]["id"])
    body = _ok(
        _compute(
            world, contract["id"], aggregates=[{"op": "count"}], group_by=["district", "gender"]
        )
    )
    assert "suppressed_groups" not in body
    data = _entry(gateway, body["receipt"]["seq"]).data
    assert "suppressed_groups" not in data and data["groups"] == len(body["rows"])
    assert data["rows"] == 0  # no exact count of what the grouping covered
    # Released groups are declared keys whose noisy subject count reached the threshold; a
    # group's absence is itself a noisy outcome (ε-DP), never an exact "fewer than 10".
    assert {(r["district"], r["gender"]) for r in body["rows"]} <= {
        ("A", "F"),
        ("A", "M"),
        ("B", "F"),
        ("B", "M"),
    }
    assert all(r["_count"] >= body["privacy"]["min_group_size"] for r in body["rows"])
    assert {n["measure"] for n in body["privacy"]["noise"]} == {"subjects"}
    usage = world.consumer.call("GET", f"/contracts/{contract['id']}").json()["usage"]
    assert usage["rows"] == 0


def test_min_group_size_counts_distinct_subjects_not_rows(world, gateway):
    """One person with many rows is one subject: the contribution bound keeps one row."""
    rows = [{"person": "p0", "district": "X", "v": 1}] * 60
    rows += [{"person": f"q{i}", "district": "Y", "v": 1} for i in range(300)]
    resource = world.add_resource(
        name="visits",
        domain="health",
        grade="general",
        level="L1",
        fields=[{"name": "person"}, {"name": "district"}, {"name": "v"}],
        rows=rows,
    )
    terms = {
        "subject": "person",
        "aggregates": ["count"],
        "columns": {"district": {"rule": "group_key", "values": ["X", "Y"]}},
    }
    product = world.publish(
        resource=resource,
        offers=[{**OFFER, "compute": terms}],
        authorisation_id=resource["authorisation_id"],
        delivery_modes=["compute"],
    )
    contract = world.contract(product["offers"][0]["id"])
    body = _ok(_compute(world, contract["id"], aggregates=[{"op": "count"}], group_by=["district"]))
    groups = _by(body["rows"], "district")
    # ε 1 on one measure: count noise of scale 1. X (1 subject) reaches 10 with p < 1e-3;
    # Y (300) is released within 15 of its size with p > 1 - 1e-6.
    assert ("X",) not in groups
    assert abs(groups[("Y",)]["_count"] - 300) < 15


def test_a_failed_computation_is_recorded_and_spends_nothing(world, gateway, monkeypatch):
    """The engine's refusal (here a stand-in for a timeout) is a recorded 503, never a 500."""
    from gateway.compute import engine

    def over_time(*_args, **_kwargs):
        raise engine.ComputeFailed("the query ran over its 10 s limit")

    contract = world.contract(world.incomes["offers"][0]["id"])
    with monkeypatch.context() as patch:
        patch.setattr(engine, "run", over_time)
        failed = _compute(world, contract["id"], aggregates=SUM)
    assert failed.status_code == 503, failed.text
    assert failed.json()["type"] == "urn:dsgw:problem:compute-unavailable"
    assert [r["code"] for r in failed.json()["reasons"]] == ["COMPUTE_FAILED"]
    assert _entry(gateway, failed.json()["ledger_seq"]).type == "exchange.denied"
    body = _ok(_compute(world, contract["id"], aggregates=SUM))
    assert body["privacy"]["contract"]["spent"] == EPSILON  # the failure spent no ε
