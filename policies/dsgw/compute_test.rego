package dsgw.compute_test

import data.dsgw.exchange

# An allowed compute request: general L3 data, count and mean of score per declared district.
compute_base := {
	"now": "2026-11-21T10:00:00.000000Z",
	"action": "exchange",
	"subject": {"id": "prt_a", "roles": ["consumer"], "region": "domestic"},
	"purpose": "credit-risk-assessment",
	"delivery": "compute",
	"requested_fields": ["district", "score"],
	"resource": {
		"id": "res_1",
		"grade": "general",
		"level": "L3",
		"personal_information": true,
		"sensitive_personal_information": false,
		"fields": [
			{"name": "name", "personal": true, "sensitive": false},
			{"name": "district", "personal": false, "sensitive": false},
			{"name": "gender", "personal": false, "sensitive": false},
			{"name": "score", "personal": false, "sensitive": false},
			{"name": "income", "personal": true, "sensitive": true},
		],
	},
	"product": {"id": "prd_1", "delivery_modes": ["compute"], "public_interest": false},
	"contract": {
		"id": "ctr_1",
		"state": "FINALIZED",
		"consumer": "prt_a",
		"purposes": ["credit-risk-assessment"],
		"not_before": "2026-01-01T00:00:00Z",
		"not_after": "2027-01-01T00:00:00Z",
		"quota": {"rows": null, "calls": 100},
		"usage": {"rows": 0, "calls": 3},
		"fields": null,
		"lawful_basis_fields": [],
		"holder_approved": false,
		"region": "domestic",
	},
	"compute": {
		"terms": {
			"subject": null,
			"max_rows_per_subject": 1,
			"aggregates": ["count", "sum", "mean", "histogram"],
			"columns": {
				"name": {"rule": "never"},
				"district": {"rule": "group_key", "values": ["海淀", "朝阳"]},
				"gender": {"rule": "group_key", "values": ["F", "M"], "ranges": null},
				"score": {"rule": "plaintext", "lower": 300, "upper": 900, "ranges": [[300, 600], [600, 900]]},
				"income": {"rule": "aggregate", "lower": 0, "upper": 100000, "bins": [0, 50000, 100000]},
			},
			"max_group_keys": 2,
			"max_filters": 1,
		},
		"query": {
			"aggregates": [{"op": "count", "field": null}, {"op": "mean", "field": "score"}],
			"group_by": ["district"],
			"filters": [],
		},
		"spent": {"contract": 0, "subject_resource": 0},
	},
}

with_changes(changes) := json.patch(compute_base, [{"op": "add", "path": path, "value": value} |
	some path, value in changes
])

codes(decision) := [reason.code | some reason in decision.reasons]

agg(op, field) := {"op": op, "field": field}

# note -> changes, the codes wanted, and a phrase the first reason's detail must contain.
compute_cases := {
	"allowed: declared count and mean per declared key": {"set": {}, "want": [], "says": ""},
	"allowed: declared equality filter": {
		"set": {"/compute/query/filters": [{"field": "gender", "eq": "F", "range": null}]},
		"want": [], "says": "",
	},
	"allowed: declared range filter on a plaintext column": {
		"set": {"/compute/query/filters": [{"field": "score", "range": [300, 600], "eq": null}]},
		"want": [], "says": "",
	},
	"allowed: a count alone reads no column": {
		"set": {
			"/requested_fields": [],
			"/compute/query": {"aggregates": [agg("count", null)], "group_by": [], "filters": []},
		},
		"want": [], "says": "",
	},
	"allowed: histogram of an aggregate-only column": {
		"set": {"/compute/query/aggregates": [agg("histogram", "income")], "/compute/query/group_by": []},
		"want": [], "says": "",
	},
	"COMPUTE_NOT_DECLARED: no terms": {
		"set": {"/compute/terms": null},
		"want": ["COMPUTE_NOT_DECLARED"], "says": "declares no compute terms",
	},
	"COMPUTE_NOT_DECLARED: aggregate not offered": {
		"set": {"/compute/query/aggregates": [agg("quantile", "score")]},
		"want": ["COMPUTE_NOT_DECLARED"], "says": "aggregate quantile is not offered",
	},
	"COMPUTE_NOT_DECLARED: sum without bounds": {
		"set": {"/compute/terms/columns/score": {"rule": "aggregate"}},
		"want": ["COMPUTE_NOT_DECLARED"], "says": "mean of score needs declared clamp bounds",
	},
	"COMPUTE_NOT_DECLARED: histogram without bins": {
		"set": {"/compute/query/aggregates": [agg("histogram", "score")]},
		"want": ["COMPUTE_NOT_DECLARED"], "says": "histogram of score needs declared bins",
	},
	"COMPUTE_NOT_DECLARED: group key without values": {
		"set": {"/compute/query/group_by": ["score"]},
		"want": ["COMPUTE_NOT_DECLARED"], "says": "group key score has no declared values",
	},
	"COMPUTE_NOT_DECLARED: filter value not declared": {
		"set": {"/compute/query/filters": [{"field": "district", "eq": "东城", "range": null}]},
		"want": ["COMPUTE_NOT_DECLARED"], "says": "filter district = \"东城\": not a declared value",
	},
	"COMPUTE_NOT_DECLARED: filter range not declared (differencing by row selection)": {
		"set": {"/compute/query/filters": [{"field": "score", "range": [300, 601], "eq": null}]},
		"want": ["COMPUTE_NOT_DECLARED"], "says": "not a declared range",
	},
	"COMPUTE_NOT_DECLARED: too many group keys": {
		"set": {"/compute/terms/max_group_keys": 1, "/compute/query/group_by": ["district", "gender"]},
		"want": ["COMPUTE_NOT_DECLARED"], "says": "2 group keys, more than the 1",
	},
	"COMPUTE_NOT_DECLARED: too many filters": {
		"set": {"/compute/query/filters": [
			{"field": "gender", "eq": "F", "range": null},
			{"field": "district", "eq": "海淀", "range": null},
		]},
		"want": ["COMPUTE_NOT_DECLARED"], "says": "2 filters, more than the 1",
	},
	"COMPUTE_NOT_DECLARED: grouping too wide": {
		"set": {
			"/compute/terms/columns/district/values": numbers.range(1, 101),
			"/compute/terms/columns/gender/values": numbers.range(1, 101),
			"/compute/query/group_by": ["district", "gender"],
		},
		"want": ["COMPUTE_NOT_DECLARED"], "says": "spans 10201 groups, more than 10000",
	},
	"COLUMN_RULE_VIOLATED: a never column aggregated": {
		"set": {"/compute/query/aggregates": [agg("sum", "name")]},
		"want": ["COLUMN_RULE_VIOLATED"], "says": "name is never: it is never aggregated",
	},
	"COLUMN_RULE_VIOLATED: an unlisted column is never": {
		"set": {"/compute/query/aggregates": [agg("sum", "phone")]},
		"want": ["COLUMN_RULE_VIOLATED"], "says": "phone is never",
	},
	"COLUMN_RULE_VIOLATED: a group_key column aggregated": {
		"set": {"/compute/query/aggregates": [agg("mean", "district")]},
		"want": ["COLUMN_RULE_VIOLATED"], "says": "district is group_key: it is never aggregated",
	},
	"COLUMN_RULE_VIOLATED: an aggregate-only column grouped on": {
		"set": {"/compute/query/group_by": ["income"]},
		"want": ["COLUMN_RULE_VIOLATED"], "says": "income is aggregate: it is never grouped on",
	},
	"COLUMN_RULE_VIOLATED: an aggregate-only column filtered on": {
		"set": {"/compute/query/filters": [{"field": "income", "range": [0, 50000], "eq": null}]},
		"want": ["COLUMN_RULE_VIOLATED"], "says": "income is aggregate: it is never filtered on",
	},
	"PRIVACY_BUDGET_EXHAUSTED: contract budget spent": {
		"set": {"/compute/spent/contract": 4.6},
		"want": ["PRIVACY_BUDGET_EXHAUSTED"], "says": "contract ctr_1 has",
	},
	"allowed: exactly one query's ε left": {"set": {"/compute/spent/contract": 4.5}, "want": [], "says": ""},
	"allowed: important, nine of ten queries spent (no float drift)": {
		"set": {
			"/resource/grade": "important", "/resource/level": null, "/contract/holder_approved": true,
			"/compute/spent/contract": 0.9, "/compute/spent/subject_resource": 0.9,
		},
		"want": [], "says": "",
	},
	"PRIVACY_BUDGET_EXHAUSTED: important, ten of ten spent": {
		"set": {
			"/resource/grade": "important", "/resource/level": null, "/contract/holder_approved": true,
			"/compute/spent/contract": 1, "/compute/spent/subject_resource": 0.95,
		},
		"want": ["PRIVACY_BUDGET_EXHAUSTED"], "says": "subject prt_a has 0.05 of 1 ε left",
	},
	"PRIVACY_BUDGET_EXHAUSTED: consumer × resource budget spent under other contracts": {
		"set": {"/compute/spent/subject_resource": 5},
		"want": ["PRIVACY_BUDGET_EXHAUSTED"], "says": "subject prt_a has 0 of 5 ε left on resource res_1",
	},
}

test_compute_reasons[note] if {
	some note, case in compute_cases
	decision := exchange.decision with input as with_changes(case.set)
	codes(decision) == case.want
	allowed := count(case.want) == 0
	decision.allow == allowed
	contains(concat(" ", [r.detail | some r in decision.reasons]), case.says)
}

# note -> changes, and the dp obligation wanted (by the grade of what the query reads).
dp_cases := {
	"L3": {"set": {}, "want": {"epsilon_per_query": 0.5, "budget_contract": 5, "budget_subject_resource": 5}},
	"L1": {
		"set": {"/resource/level": "L1"},
		"want": {"epsilon_per_query": 1, "budget_contract": 20, "budget_subject_resource": 20},
	},
	"L2": {
		"set": {"/resource/level": "L2"},
		"want": {"epsilon_per_query": 1, "budget_contract": 10, "budget_subject_resource": 10},
	},
	"L4": {
		"set": {"/resource/level": "L4"},
		"want": {"epsilon_per_query": 0.25, "budget_contract": 2.5, "budget_subject_resource": 2.5},
	},
	"a sensitive field read: as L4": {
		"set": {"/compute/query/aggregates": [agg("histogram", "income")], "/requested_fields": ["income"]},
		"want": {"epsilon_per_query": 0.25, "budget_contract": 2.5, "budget_subject_resource": 2.5},
	},
	"a resource flagged sensitive, flagging no field: as L4": {
		"set": {
			"/resource/fields": [{"name": "district", "personal": false, "sensitive": false}],
			"/resource/sensitive_personal_information": true,
			"/compute/query/aggregates": [agg("count", null)],
		},
		"want": {"epsilon_per_query": 0.25, "budget_contract": 2.5, "budget_subject_resource": 2.5},
	},
	"important": {
		"set": {"/resource/grade": "important", "/resource/level": null, "/contract/holder_approved": true},
		"want": {"epsilon_per_query": 0.1, "budget_contract": 1, "budget_subject_resource": 1},
	},
	"no level known: the strictest": {
		"set": {"/resource/fields": [], "/requested_fields": [], "/resource/level": "L9"},
		"want": {"epsilon_per_query": 0.1, "budget_contract": 1, "budget_subject_resource": 1},
	},
	"api: none": {"set": {"/delivery": "api", "/product/delivery_modes": ["api"]}, "want": null},
}

test_dp_obligation_by_grade[note] if {
	some note, case in dp_cases
	obligations := exchange.decision.obligations with input as with_changes(case.set)
	obligations.dp == case.want
	obligations.min_group_size == min_group(case.want)
}

min_group(want) := null if want == null

min_group(want) := 10 if want != null

# Compute delivery needs its compute member, well formed; other deliveries ignore it.
invalid_compute_cases := {
	"terms not an object": {"set": {"/compute/terms": "all"}, "problem": "compute.terms must be null or an object"},
	"query without aggregates": {"set": {"/compute/query/aggregates": []}, "problem": "compute.query must be"},
	"aggregate op not a string": {"set": {"/compute/query/aggregates": [{"op": 1}]}, "problem": "compute.query must be"},
	"aggregate field a number": {"set": {"/compute/query/aggregates": [{"op": "sum", "field": 2}]}, "problem": "compute.query must be"},
	"filter field missing": {"set": {"/compute/query/filters": [{"eq": "F"}]}, "problem": "compute.query must be"},
	"spent negative": {"set": {"/compute/spent/contract": -1}, "problem": "compute.spent must be"},
	"spent not a number": {"set": {"/compute/spent/subject_resource": "0"}, "problem": "compute.spent must be"},
}

test_malformed_compute_input_is_input_invalid[note] if {
	some note, case in invalid_compute_cases
	decision := exchange.decision with input as with_changes(case.set)
	codes(decision) == ["INPUT_INVALID"]
	contains(decision.reasons[0].detail, case.problem)
}

test_compute_without_its_member_is_not_declared_but_still_graded if {
	given := json.patch(compute_base, [{"op": "remove", "path": "/compute"}])
	decision := exchange.decision with input as given
	codes(decision) == ["COMPUTE_NOT_DECLARED"]
	contains(decision.reasons[0].detail, "the request names no compute query")
	decision.exposure.grade == "general"
}

test_compute_member_is_ignored_for_api if {
	given := json.patch(compute_base, [
		{"op": "replace", "path": "/delivery", "value": "api"},
		{"op": "replace", "path": "/product/delivery_modes", "value": ["api"]},
		{"op": "replace", "path": "/compute", "value": {"terms": 1}},
	])
	decision := exchange.decision with input as given
	decision.allow
}
