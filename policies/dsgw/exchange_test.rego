package dsgw.exchange_test

import data.dsgw.exchange

# A request that is allowed: general L2 data with personal fields, under a finalized contract of
# the subject's, for a permitted purpose, through an offered delivery mode, within quota.
base_input := {
	"now": "2026-11-21T10:00:00.000000Z",
	"action": "exchange",
	"subject": {"id": "prt_a", "roles": ["consumer"], "region": "domestic"},
	"purpose": "credit-risk-assessment",
	"delivery": "api",
	"requested_fields": ["name", "phone", "city"],
	"resource": {
		"id": "res_1",
		"grade": "general",
		"level": "L2",
		"personal_information": true,
		"sensitive_personal_information": true,
		"fields": [
			{"name": "name", "personal": true, "sensitive": false},
			{"name": "phone", "personal": true, "sensitive": false},
			{"name": "id_number", "personal": true, "sensitive": true},
			{"name": "diagnosis", "personal": false, "sensitive": true},
			{"name": "city", "personal": false, "sensitive": false},
		],
	},
	"product": {"id": "prd_1", "delivery_modes": ["api", "compute"], "public_interest": false, "status": "listed"},
	"open_data_usage": {"rows": 0, "calls": 0},
	"contract": {
		"id": "ctr_1",
		"state": "FINALIZED",
		"consumer": "prt_a",
		"purposes": ["credit-risk-assessment"],
		"not_before": "2026-01-01T00:00:00Z",
		"not_after": "2027-01-01T00:00:00Z",
		"quota": {"rows": 1000, "calls": 100},
		"usage": {"rows": 10, "calls": 3},
		"fields": null,
		"lawful_basis_fields": ["phone"],
		"holder_approved": false,
		"region": "domestic",
	},
	# Read only with compute delivery (compute_test.rego): a count of subjects per city.
	"compute": {
		"terms": {
			"subject": null,
			"max_rows_per_subject": 1,
			"aggregates": ["count", "sum"],
			"columns": {"city": {"rule": "group_key", "values": ["北京", "上海"]}},
			"max_group_keys": 2,
			"max_filters": 2,
		},
		"query": {"aggregates": [{"op": "count", "field": null}], "group_by": ["city"], "filters": []},
		"spent": {"contract": 0, "subject_resource": 0},
	},
}

# L1 public data: no personal information anywhere, no contract.
public_changes := {
	"/resource/level": "L1",
	"/resource/personal_information": false,
	"/resource/sensitive_personal_information": false,
	"/resource/fields": [
		{"name": "station", "personal": false, "sensitive": false},
		{"name": "pm25", "personal": false, "sensitive": false},
	],
	"/requested_fields": ["station", "pm25"],
	"/contract": null,
}

# Important data the way it may leave: compute-to-data, holder approved, domestic subject.
important_changes := {
	"/resource/grade": "important",
	"/resource/level": null,
	"/delivery": "compute",
	"/contract/holder_approved": true,
}

# Important data without a contract (so without the holder's approval either).
important_without_contract := object.union(
	object.remove(important_changes, ["/contract/holder_approved"]),
	{"/contract": null},
)

# The input with each JSON pointer in changes set to its value (json.patch "add" replaces).
input_with(changes) := json.patch(base_input, [{"op": "add", "path": path, "value": value} |
	some path, value in changes
])

codes(decision) := [reason.code | some reason in decision.reasons]

# note -> the changes to base_input, and the reason codes wanted, in the order wanted.
reason_cases := {
	"allowed: base request": {"set": {}, "want": []},
	"allowed: a listed product": {"set": {"/product/status": "listed"}, "want": []},
	"allowed: a delisted product still serves its running contracts": {
		"set": {"/product/status": "delisted"},
		"want": [],
	},
	"allowed: L1 public data without a contract": {"set": public_changes, "want": []},
	"allowed: L1 public data under a valid contract": {
		"set": object.remove(public_changes, ["/contract"]),
		"want": [],
	},
	"allowed: not_before == now is valid": {"set": {"/contract/not_before": "2026-11-21T10:00:00Z"}, "want": []},
	"allowed: now one second before not_after": {"set": {"/contract/not_after": "2026-11-21T10:00:01Z"}, "want": []},
	"allowed: usage.rows == quota.rows - 1": {"set": {"/contract/usage/rows": 999}, "want": []},
	"allowed: usage.calls == quota.calls - 1": {"set": {"/contract/usage/calls": 99}, "want": []},
	"allowed: no quota at all": {"set": {"/contract/quota": {"rows": null, "calls": null}}, "want": []},
	"allowed: quota keys omitted": {"set": {"/contract/quota": {}}, "want": []},
	"allowed: contract.fields lists every requested field": {
		"set": {"/contract/fields": ["city", "name", "phone"]},
		"want": [],
	},
	"allowed: region any serves a cross_border subject": {
		"set": {"/contract/region": "any", "/subject/region": "cross_border"},
		"want": [],
	},
	"allowed: important data via compute, approved, domestic": {"set": important_changes, "want": []},
	"allowed: important data may carry a level": {
		"set": object.union(important_changes, {"/resource/level": "L3"}),
		"want": [],
	},
	"allowed: duplicate requested fields": {"set": {"/requested_fields": ["name", "name"]}, "want": []},
	"CONTRACT_REQUIRED: L2 data without a contract": {"set": {"/contract": null}, "want": ["CONTRACT_REQUIRED"]},
	"CONTRACT_REQUIRED: L1 data with a personal field": {
		"set": object.union(public_changes, {"/resource/fields": [
			{"name": "station", "personal": false, "sensitive": false},
			{"name": "pm25", "personal": true, "sensitive": false},
		]}),
		"want": ["CONTRACT_REQUIRED"],
	},
	"CONTRACT_REQUIRED: L1 data with a sensitive field": {
		"set": object.union(public_changes, {"/resource/fields": [
			{"name": "station", "personal": false, "sensitive": true},
			{"name": "pm25", "personal": false, "sensitive": false},
		]}),
		"want": ["CONTRACT_REQUIRED"],
	},
	"CONTRACT_REQUIRED: L1 data flagged personal information": {
		"set": object.union(public_changes, {"/resource/personal_information": true}),
		"want": ["CONTRACT_REQUIRED"],
	},
	"CONTRACT_REQUIRED: L1 data flagged sensitive personal information": {
		"set": object.union(public_changes, {"/resource/sensitive_personal_information": true}),
		"want": ["CONTRACT_REQUIRED"],
	},
	"CONTRACT_REQUIRED: L3 data without a contract": {
		"set": {"/contract": null, "/resource/level": "L3"},
		"want": ["CONTRACT_REQUIRED"],
	},
	"CONTRACT_NOT_ACTIVE: SUSPENDED": {"set": {"/contract/state": "SUSPENDED"}, "want": ["CONTRACT_NOT_ACTIVE"]},
	"CONTRACT_NOT_YOURS": {"set": {"/contract/consumer": "prt_b"}, "want": ["CONTRACT_NOT_YOURS"]},
	"CONTRACT_NOT_YET_VALID: now one second before not_before": {
		"set": {"/contract/not_before": "2026-11-21T10:00:01Z"},
		"want": ["CONTRACT_NOT_YET_VALID"],
	},
	"CONTRACT_EXPIRED: not_after == now": {
		"set": {"/contract/not_after": "2026-11-21T10:00:00Z"},
		"want": ["CONTRACT_EXPIRED"],
	},
	"CONTRACT_EXPIRED: not_after == now in another offset": {
		"set": {"/contract/not_after": "2026-11-21T18:00:00+08:00"},
		"want": ["CONTRACT_EXPIRED"],
	},
	"PURPOSE_NOT_PERMITTED": {"set": {"/purpose": "marketing"}, "want": ["PURPOSE_NOT_PERMITTED"]},
	"PURPOSE_NOT_PERMITTED: contract permits no purpose": {
		"set": {"/contract/purposes": []},
		"want": ["PURPOSE_NOT_PERMITTED"],
	},
	"CORE_DATA_NEVER_LEAVES: even via compute with holder approval": {
		"set": object.union(important_changes, {"/resource/grade": "core"}),
		"want": ["CORE_DATA_NEVER_LEAVES"],
	},
	"IMPORTANT_DATA_RESTRICTED: api delivery": {
		"set": object.union(important_changes, {"/delivery": "api"}),
		"want": ["IMPORTANT_DATA_RESTRICTED"],
	},
	"IMPORTANT_DATA_RESTRICTED: holder has not approved": {
		"set": object.union(important_changes, {"/contract/holder_approved": false}),
		"want": ["IMPORTANT_DATA_RESTRICTED"],
	},
	"IMPORTANT_DATA_RESTRICTED: cross_border subject": {
		"set": object.union(important_changes, {"/subject/region": "cross_border", "/contract/region": "any"}),
		"want": ["IMPORTANT_DATA_RESTRICTED"],
	},
	"IMPORTANT_DATA_RESTRICTED: no contract": {
		"set": important_without_contract,
		"want": ["CONTRACT_REQUIRED", "IMPORTANT_DATA_RESTRICTED"],
	},
	"PRODUCT_NOT_AVAILABLE: suspended product": {
		"set": {"/product/status": "suspended"},
		"want": ["PRODUCT_NOT_AVAILABLE"],
	},
	"DELIVERY_MODE_NOT_OFFERED": {"set": {"/delivery": "file"}, "want": ["DELIVERY_MODE_NOT_OFFERED"]},
	"DELIVERY_MODE_NOT_OFFERED: public data too": {
		"set": object.union(public_changes, {"/delivery": "file"}),
		"want": ["DELIVERY_MODE_NOT_OFFERED"],
	},
	"UNKNOWN_FIELD": {"set": {"/requested_fields": ["name", "salary"]}, "want": ["UNKNOWN_FIELD"]},
	"FIELD_NOT_PERMITTED": {"set": {"/contract/fields": ["name", "city"]}, "want": ["FIELD_NOT_PERMITTED"]},
	"FIELD_NOT_PERMITTED: empty field list permits nothing": {
		"set": {"/contract/fields": []},
		"want": ["FIELD_NOT_PERMITTED"],
	},
	"REGION_NOT_PERMITTED": {"set": {"/subject/region": "cross_border"}, "want": ["REGION_NOT_PERMITTED"]},
	"QUOTA_EXHAUSTED: usage.rows == quota.rows": {"set": {"/contract/usage/rows": 1000}, "want": ["QUOTA_EXHAUSTED"]},
	"QUOTA_EXHAUSTED: usage.rows > quota.rows": {"set": {"/contract/usage/rows": 1200}, "want": ["QUOTA_EXHAUSTED"]},
	"QUOTA_EXHAUSTED: usage.calls == quota.calls": {"set": {"/contract/usage/calls": 100}, "want": ["QUOTA_EXHAUSTED"]},
	"QUOTA_EXHAUSTED: zero row quota": {
		"set": {"/contract/quota": {"rows": 0, "calls": null}, "/contract/usage/rows": 0},
		"want": ["QUOTA_EXHAUSTED"],
	},
	"PUBLIC_INTEREST_NOT_FREE: priced contract": {
		"set": {"/product/public_interest": true, "/contract/price_fen": 1200},
		"want": ["PUBLIC_INTEREST_NOT_FREE"],
	},
	"PUBLIC_INTEREST_NOT_FREE: price not stated": {
		"set": {"/product/public_interest": true},
		"want": ["PUBLIC_INTEREST_NOT_FREE"],
	},
	"allowed: public-interest product under a free contract": {
		"set": {"/product/public_interest": true, "/contract/price_fen": 0},
		"want": [],
	},
	"allowed: public-interest public data without a contract": {
		"set": object.union(public_changes, {"/product/public_interest": true}),
		"want": [],
	},
	"PUBLIC_INTEREST_NOT_FREE: a usage rate": {
		"set": {"/product/public_interest": true, "/contract/price_fen": 0, "/contract/price": {"rates_fen": [0, 5], "fee_cap_fen": 100}},
		"want": ["PUBLIC_INTEREST_NOT_FREE"],
	},
	"allowed: public-interest product with every rate zero": {
		"set": {"/product/public_interest": true, "/contract/price_fen": 0, "/contract/price": {"rates_fen": [0, 0], "fee_cap_fen": 100}},
		"want": [],
	},
	"PRICE_ABOVE_FEE_CAP: a rate above the cap": {
		"set": {"/contract/price": {"rates_fen": [1200, 90000], "fee_cap_fen": 50000}},
		"want": ["PRICE_ABOVE_FEE_CAP"],
	},
	"PRICE_ABOVE_FEE_CAP: the cap unknown": {
		"set": {"/contract/price": {"rates_fen": [1200], "fee_cap_fen": null}},
		"want": ["PRICE_ABOVE_FEE_CAP"],
	},
	"allowed: free under an unknown cap": {
		"set": {"/contract/price_fen": 0, "/contract/price": {"rates_fen": [0], "fee_cap_fen": null}},
		"want": [],
	},
	"allowed: rates at the cap": {
		"set": {"/contract/price": {"rates_fen": [1200, 50000], "fee_cap_fen": 50000}},
		"want": [],
	},
	"allowed: a priced contract for a product not for public interest": {
		"set": {"/contract/price_fen": 1200},
		"want": [],
	},
	"several reasons, sorted by code": {
		"set": {
			"/contract/state": "REVOKED",
			"/contract/consumer": "prt_b",
			"/contract/not_after": "2026-01-02T00:00:00Z",
			"/purpose": "marketing",
			"/resource/grade": "core",
			"/resource/level": null,
			"/delivery": "file",
			"/requested_fields": ["name", "salary"],
			"/contract/fields": ["city"],
			"/subject/region": "cross_border",
			"/contract/usage": {"rows": 1000, "calls": 100},
		},
		"want": [
			"CONTRACT_EXPIRED",
			"CONTRACT_NOT_ACTIVE",
			"CONTRACT_NOT_YOURS",
			"CORE_DATA_NEVER_LEAVES",
			"DELIVERY_MODE_NOT_OFFERED",
			"FIELD_NOT_PERMITTED",
			"PURPOSE_NOT_PERMITTED",
			"QUOTA_EXHAUSTED",
			"REGION_NOT_PERMITTED",
			"UNKNOWN_FIELD",
		],
	},
}

test_reasons[note] if {
	some note, case in reason_cases
	given := input_with(case.set)
	decision := exchange.decision with input as given
	codes(decision) == case.want
	allowed := count(case.want) == 0
	decision.allow == allowed
}

test_every_state_but_finalized_is_not_active[state] if {
	some state in ["REQUESTED", "OFFERED", "ACCEPTED", "AGREED", "VERIFIED", "SUSPENDED", "REVOKED", "TERMINATED"]
	given := input_with({"/contract/state": state})
	decision := exchange.decision with input as given
	codes(decision) == ["CONTRACT_NOT_ACTIVE"]
	not decision.allow
}

test_allowed_decision_is_complete if {
	decision := exchange.decision with input as base_input
	decision == {
		"allow": true,
		"reasons": [],
		"obligations": {"mask": ["name"], "drop": [], "row_cap": 990, "min_group_size": null, "watermark": false, "dp": null},
		"exposure": {
			"grade": "general",
			"level": "L2",
			"personal_information": true,
			"sensitive_personal_information": false,
			"fields": ["city", "name", "phone"],
			"lowered": ["field(s) name masked"],
			"open": false,
		},
	}
}

# A nullable field may be omitted: omitted means null.
omitted_cases := {
	"contract omitted, public data: allowed": {
		"set": object.remove(public_changes, ["/contract"]),
		"remove": ["/contract"],
		"want": [],
	},
	"contract omitted, L2 data: CONTRACT_REQUIRED": {"set": {}, "remove": ["/contract"], "want": ["CONTRACT_REQUIRED"]},
	"contract.fields omitted: every field permitted": {"set": {}, "remove": ["/contract/fields"], "want": []},
	"resource.level omitted for important data": {"set": important_changes, "remove": ["/resource/level"], "want": []},
}

test_omitted_nullable_fields_count_as_null[note] if {
	some note, case in omitted_cases
	given := json.patch(input_with(case.set), [{"op": "remove", "path": path} | some path in case.remove])
	decision := exchange.decision with input as given
	codes(decision) == case.want
}

# The title of each reason code, as its rule's METADATA annotation gives it.
titles := {
	"INPUT_INVALID": "Input invalid",
	"CONTRACT_REQUIRED": "Contract required",
	"CONTRACT_NOT_ACTIVE": "Contract not active",
	"CONTRACT_NOT_YOURS": "Contract not yours",
	"CONTRACT_NOT_YET_VALID": "Contract not yet valid",
	"CONTRACT_EXPIRED": "Contract expired",
	"PURPOSE_NOT_PERMITTED": "Purpose not permitted",
	"CORE_DATA_NEVER_LEAVES": "Core data never leaves",
	"IMPORTANT_DATA_RESTRICTED": "Important data restricted",
	"DELIVERY_MODE_NOT_OFFERED": "Delivery mode not offered",
	"UNKNOWN_FIELD": "Unknown field",
	"FIELD_NOT_PERMITTED": "Field not permitted",
	"REGION_NOT_PERMITTED": "Region not permitted",
	"QUOTA_EXHAUSTED": "Quota exhausted",
	"PUBLIC_INTEREST_NOT_FREE": "Public-interest use is free",
	"PRICE_ABOVE_FEE_CAP": "Price above the fee cap",
}

# A denial cites its rule: code and title come from the rule's METADATA annotation.
test_input_invalid_cites_its_rule if {
	decision := exchange.decision with input as {}
	decision.reasons == [{"code": "INPUT_INVALID", "title": titles.INPUT_INVALID, "detail": decision.reasons[0].detail}]
}

# "CODE[: note]" -> the changes to base_input, and the detail sentence wanted for that code.
detail_cases := {
	"PUBLIC_INTEREST_NOT_FREE": {
		"set": {"/product/public_interest": true, "/contract/price_fen": 1200},
		"want": "product prd_1 is for public-interest use, which is free; contract ctr_1 charges 1200 fen",
	},
	"PRICE_ABOVE_FEE_CAP": {
		"set": {"/contract/price": {"rates_fen": [1200, 90000], "fee_cap_fen": 50000}},
		"want": "contract ctr_1 charges a rate of 90000 fen; the authorisation's fee cap is 50000 fen",
	},
	"PUBLIC_INTEREST_NOT_FREE: usage priced": {
		"set": {"/product/public_interest": true, "/contract/price_fen": 0, "/contract/price": {"rates_fen": [0, 5], "fee_cap_fen": 100}},
		"want": "product prd_1 is for public-interest use, which is free; contract ctr_1 charges for its usage",
	},
	"PUBLIC_INTEREST_NOT_FREE: price not stated": {
		"set": {"/product/public_interest": true, "/contract/price_fen": null},
		"want": "product prd_1 is for public-interest use, which is free; contract ctr_1 does not state its price",
	},
	"CONTRACT_EXPIRED": {
		"set": {"/now": "2026-11-22T00:00:00Z", "/contract/not_after": "2026-11-21T10:00:00Z"},
		"want": "contract ctr_1 ended at 2026-11-21T10:00:00Z; now is 2026-11-22T00:00:00Z",
	},
	"CONTRACT_NOT_YET_VALID": {
		"set": {"/contract/not_before": "2026-12-01T00:00:00Z"},
		"want": "contract ctr_1 starts at 2026-12-01T00:00:00Z; now is 2026-11-21T10:00:00.000000Z",
	},
	"CONTRACT_NOT_ACTIVE": {
		"set": {"/contract/state": "REVOKED"},
		"want": "contract ctr_1 is REVOKED; only a FINALIZED contract permits exchange",
	},
	"CONTRACT_NOT_YOURS": {
		"set": {"/contract/consumer": "prt_b"},
		"want": "contract ctr_1 belongs to prt_b, not to prt_a",
	},
	"CONTRACT_REQUIRED": {
		"set": {"/contract": null},
		"want": "no contract was given, and resource res_1 is not public data: it holds personal information; it holds sensitive personal information; it is general data at level L2; its fields diagnosis, id_number, name, phone hold personal or sensitive personal information",
	},
	"CONTRACT_REQUIRED: important data without personal information": {
		"set": object.union(important_without_contract, {
			"/resource/personal_information": false,
			"/resource/sensitive_personal_information": false,
			"/resource/fields": [{"name": "city", "personal": false, "sensitive": false}],
			"/requested_fields": ["city"],
		}),
		"want": "no contract was given, and resource res_1 is not public data: it is graded important",
	},
	"PURPOSE_NOT_PERMITTED": {
		"set": {"/purpose": "marketing"},
		"want": `purpose "marketing" is not permitted by contract ctr_1 (permitted: credit-risk-assessment)`,
	},
	"PURPOSE_NOT_PERMITTED: none": {
		"set": {"/purpose": "marketing", "/contract/purposes": []},
		"want": `purpose "marketing" is not permitted by contract ctr_1 (permitted: none)`,
	},
	"CORE_DATA_NEVER_LEAVES": {
		"set": {"/resource/grade": "core", "/resource/level": null},
		"want": "resource res_1 is graded core; core data never leaves the gateway",
	},
	"IMPORTANT_DATA_RESTRICTED": {
		"set": {"/resource/grade": "important", "/resource/level": null, "/subject/region": "cross_border", "/contract/region": "any"},
		"want": `resource res_1 is graded important: delivery is "api", not "compute"; subject prt_a is cross_border, not domestic; the holder has not approved contract ctr_1`,
	},
	"IMPORTANT_DATA_RESTRICTED: no contract": {
		"set": important_without_contract,
		"want": "resource res_1 is graded important: there is no contract for the holder to approve",
	},
	"DELIVERY_MODE_NOT_OFFERED": {
		"set": {"/delivery": "file"},
		"want": `delivery "file" is not offered by product prd_1 (offered: api, compute)`,
	},
	"UNKNOWN_FIELD": {
		"set": {"/requested_fields": ["name", "salary", "age"]},
		"want": "resource res_1 has no field(s) age, salary",
	},
	"FIELD_NOT_PERMITTED": {
		"set": {"/contract/fields": ["name"]},
		"want": "contract ctr_1 does not permit field(s) city, phone (permitted: name)",
	},
	"REGION_NOT_PERMITTED": {
		"set": {"/subject/region": "cross_border"},
		"want": "contract ctr_1 is restricted to domestic consumers; subject prt_a is cross_border",
	},
	"QUOTA_EXHAUSTED": {
		"set": {"/contract/usage": {"rows": 1000, "calls": 100}},
		"want": "contract ctr_1 has exhausted its quota: 100 of 100 calls used; 1000 of 1000 rows used",
	},
}

# Each reason cites its rule (code, title from the annotation) and names the values in its detail.
test_reason_cites_rule_and_names_values[note] if {
	some note, case in detail_cases
	given := input_with(case.set)
	decision := exchange.decision with input as given
	code := split(note, ":")[0]
	[reason | some reason in decision.reasons; reason.code == code] == [{
		"code": code,
		"title": titles[code],
		"detail": case.want,
	}]
}

# Every reason code but INPUT_INVALID (see test_input_invalid_cites_its_rule) has a case above.
test_every_reason_code_has_a_detail_case if {
	covered := {split(note, ":")[0] | some note, _ in detail_cases}
	covered == object.keys(titles) - {"INPUT_INVALID"}
}

# note -> the changes to base_input, and the obligations wanted (compared key by key).
obligation_cases := {
	"mask: personal field without lawful basis, not one with it": {
		"set": {},
		"want": {"mask": ["name"]},
	},
	"mask: sensitive and personal-and-sensitive fields without lawful basis": {
		"set": {"/requested_fields": ["diagnosis", "id_number", "city"]},
		"want": {"mask": ["diagnosis", "id_number"]},
	},
	"mask: lawful basis for every requested protected field": {
		"set": {
			"/requested_fields": ["diagnosis", "id_number", "name"],
			"/contract/lawful_basis_fields": ["diagnosis", "id_number", "name"],
		},
		"want": {"mask": []},
	},
	"mask: sorted, only requested fields": {
		"set": {"/requested_fields": ["phone", "name", "id_number"], "/contract/lawful_basis_fields": []},
		"want": {"mask": ["id_number", "name", "phone"]},
	},
	"mask: without a contract every protected field": {
		"set": {"/contract": null},
		"want": {"mask": ["name", "phone"]},
	},
	"drop: always empty for now": {"set": {}, "want": {"drop": []}},
	"row_cap: quota.rows - usage.rows": {"set": {}, "want": {"row_cap": 990}},
	"row_cap: 1 at usage == quota - 1": {"set": {"/contract/usage/rows": 999}, "want": {"row_cap": 1}},
	"row_cap: never negative": {"set": {"/contract/usage/rows": 1200}, "want": {"row_cap": 0}},
	"row_cap: null without a row quota": {"set": {"/contract/quota/rows": null}, "want": {"row_cap": null}},
	"row_cap: the open-data rows per call without a contract": {"set": {"/contract": null}, "want": {"row_cap": 1000}},
	"min_group_size: 10 for compute": {"set": {"/delivery": "compute"}, "want": {"min_group_size": 10}},
	"min_group_size: null for api": {"set": {}, "want": {"min_group_size": null}},
	"min_group_size: null for file": {"set": {"/delivery": "file"}, "want": {"min_group_size": null}},
	"watermark: false at L2": {"set": {}, "want": {"watermark": false}},
	"watermark: false at L1": {"set": {"/resource/level": "L1"}, "want": {"watermark": false}},
	"watermark: true at L3": {"set": {"/resource/level": "L3"}, "want": {"watermark": true}},
	"watermark: true at L4": {"set": {"/resource/level": "L4"}, "want": {"watermark": true}},
	"watermark: true for important data": {"set": important_changes, "want": {"watermark": true}},
	"computed even when denied": {
		"set": {"/contract/state": "REVOKED", "/delivery": "compute", "/resource/level": "L4"},
		"want": {"mask": ["name"], "drop": [], "row_cap": 990, "min_group_size": 10, "watermark": true, "dp": {"epsilon_per_query": 0.25, "budget_contract": 2.5, "budget_subject_resource": 2.5}},
	},
}

test_obligations[note] if {
	some note, case in obligation_cases
	given := input_with(case.set)
	obligations := exchange.decision.obligations with input as given
	object.keys(obligations) == {"mask", "drop", "row_cap", "min_group_size", "watermark", "dp"}
	every key, value in case.want {
		obligations[key] == value
	}
}

# note -> an input that is malformed; each must be denied with INPUT_INVALID alone, naming the problem.
invalid_cases := {
	"empty input": {"input": {}, "problem": "now must be an RFC 3339 timestamp"},
	"input not an object": {"input": [1, 2], "problem": "input must be a JSON object"},
	"input a string": {"input": "exchange", "problem": "input must be a JSON object"},
	"now missing": {"input": object.remove(base_input, ["now"]), "problem": "now must be an RFC 3339 timestamp"},
	"now not RFC 3339": {
		"input": input_with({"/now": "21/11/2026 10:00"}),
		"problem": "now must be an RFC 3339 timestamp",
	},
	"now a number": {"input": input_with({"/now": 1795255200}), "problem": "now must be an RFC 3339 timestamp"},
	"action other than exchange": {
		"input": input_with({"/action": "read"}),
		"problem": `action must be "exchange"`,
	},
	"subject missing": {
		"input": object.remove(base_input, ["subject"]),
		"problem": "subject.id must be a non-empty string",
	},
	"subject id empty": {"input": input_with({"/subject/id": ""}), "problem": "subject.id must be a non-empty string"},
	"subject roles not a list": {
		"input": input_with({"/subject/roles": "consumer"}),
		"problem": "subject.roles must be a list of strings",
	},
	"subject region unknown": {
		"input": input_with({"/subject/region": "abroad"}),
		"problem": `subject.region must be "domestic" or "cross_border"`,
	},
	"purpose empty": {"input": input_with({"/purpose": ""}), "problem": "purpose must be a non-empty string"},
	"delivery unknown": {
		"input": input_with({"/delivery": "email"}),
		"problem": `delivery must be "api", "file" or "compute"`,
	},
	"requested_fields empty": {
		"input": input_with({"/requested_fields": []}),
		"problem": "requested_fields must be a list of strings, non-empty unless delivery is compute",
	},
	"requested_fields with a number": {
		"input": input_with({"/requested_fields": ["name", 3]}),
		"problem": "requested_fields must be a list of strings, non-empty unless delivery is compute",
	},
	"resource id missing": {
		"input": input_with({"/resource": object.remove(base_input.resource, ["id"])}),
		"problem": "resource.id must be a non-empty string",
	},
	"resource grade missing": {
		"input": input_with({"/resource": object.remove(base_input.resource, ["grade"])}),
		"problem": `resource.grade must be "core", "important" or "general"`,
	},
	"resource grade unknown": {
		"input": input_with({"/resource/grade": "secret"}),
		"problem": `resource.grade must be "core", "important" or "general"`,
	},
	"general data without level": {
		"input": input_with({"/resource/level": null}),
		"problem": `resource.level must be "L1", "L2", "L3" or "L4" (null only for core and important data)`,
	},
	"level unknown": {
		"input": input_with({"/resource/grade": "important", "/resource/level": "L9"}),
		"problem": `resource.level must be "L1", "L2", "L3" or "L4" (null only for core and important data)`,
	},
	"personal_information not boolean": {
		"input": input_with({"/resource/personal_information": "yes"}),
		"problem": "resource.personal_information must be a boolean",
	},
	"sensitive_personal_information missing": {
		"input": input_with({"/resource": object.remove(base_input.resource, ["sensitive_personal_information"])}),
		"problem": "resource.sensitive_personal_information must be a boolean",
	},
	"resource field with a personal flag that is not a boolean": {
		"input": input_with({"/resource/fields": [{"name": "name", "personal": "yes", "sensitive": false}]}),
		"problem": "resource.fields must be a list of {name: non-empty string, personal and sensitive: boolean or null (null or omitted: inherited from the resource), kind, grade and level optional (a general field needs a level)}",
	},
	"resource field with a kind that is not a string": {
		"input": input_with({"/resource/fields": [{"name": "name", "kind": 3}]}),
		"problem": "resource.fields must be a list of {name: non-empty string, personal and sensitive: boolean or null (null or omitted: inherited from the resource), kind, grade and level optional (a general field needs a level)}",
	},
	"resource field with an unknown grade": {
		"input": input_with({"/resource/fields": [{"name": "name", "personal": false, "sensitive": false, "grade": "secret"}]}),
		"problem": "resource.fields must be a list of {name: non-empty string, personal and sensitive: boolean or null (null or omitted: inherited from the resource), kind, grade and level optional (a general field needs a level)}",
	},
	"resource field: general without any level": {
		"input": input_with({
			"/resource/grade": "important", "/resource/level": null,
			"/resource/fields": [{"name": "name", "personal": false, "sensitive": false, "grade": "general"}],
		}),
		"problem": "resource.fields must be a list of {name: non-empty string, personal and sensitive: boolean or null (null or omitted: inherited from the resource), kind, grade and level optional (a general field needs a level)}",
	},
	"resource field: level without grade": {
		"input": input_with({"/resource/fields": [{"name": "name", "personal": false, "sensitive": false, "level": "L1"}]}),
		"problem": "resource.fields must be a list of {name: non-empty string, personal and sensitive: boolean or null (null or omitted: inherited from the resource), kind, grade and level optional (a general field needs a level)}",
	},
	"resource fields not a list": {
		"input": input_with({"/resource/fields": {"name": "name"}}),
		"problem": "resource.fields must be a list of {name: non-empty string, personal and sensitive: boolean or null (null or omitted: inherited from the resource), kind, grade and level optional (a general field needs a level)}",
	},
	"product id missing": {
		"input": object.remove(base_input, ["product"]),
		"problem": "product.id must be a non-empty string",
	},
	"product delivery_modes not a list": {
		"input": input_with({"/product/delivery_modes": "api"}),
		"problem": "product.delivery_modes must be a list of strings",
	},
	"product public_interest missing": {
		"input": input_with({"/product": {"id": "prd_1", "delivery_modes": ["api"]}}),
		"problem": "product.public_interest must be a boolean",
	},
	"contract a string": {"input": input_with({"/contract": "ctr_1"}), "problem": "contract must be null or an object"},
	"contract empty object": {"input": input_with({"/contract": {}}), "problem": "contract.id must be a non-empty string"},
	"contract state missing": {
		"input": input_with({"/contract": object.remove(base_input.contract, ["state"])}),
		"problem": "contract.state must be a non-empty string",
	},
	"contract consumer a number": {
		"input": input_with({"/contract/consumer": 7}),
		"problem": "contract.consumer must be a non-empty string",
	},
	"contract purposes not a list": {
		"input": input_with({"/contract/purposes": "credit-risk-assessment"}),
		"problem": "contract.purposes must be a list of strings",
	},
	"contract not_before unparseable": {
		"input": input_with({"/contract/not_before": "soon"}),
		"problem": "contract.not_before must be an RFC 3339 timestamp",
	},
	"contract not_after missing": {
		"input": input_with({"/contract": object.remove(base_input.contract, ["not_after"])}),
		"problem": "contract.not_after must be an RFC 3339 timestamp",
	},
	"contract quota missing": {
		"input": input_with({"/contract": object.remove(base_input.contract, ["quota"])}),
		"problem": "contract.quota must be {rows: integer >= 0 or null, calls: integer >= 0 or null}",
	},
	"contract quota rows negative": {
		"input": input_with({"/contract/quota/rows": -1}),
		"problem": "contract.quota must be {rows: integer >= 0 or null, calls: integer >= 0 or null}",
	},
	"contract quota calls fractional": {
		"input": input_with({"/contract/quota/calls": 1.5}),
		"problem": "contract.quota must be {rows: integer >= 0 or null, calls: integer >= 0 or null}",
	},
	"contract usage rows a string": {
		"input": input_with({"/contract/usage/rows": "10"}),
		"problem": "contract.usage must be {rows: integer >= 0, calls: integer >= 0}",
	},
	"contract usage calls missing": {
		"input": input_with({"/contract/usage": {"rows": 1}}),
		"problem": "contract.usage must be {rows: integer >= 0, calls: integer >= 0}",
	},
	"contract fields a string": {
		"input": input_with({"/contract/fields": "name"}),
		"problem": "contract.fields must be null or a list of strings",
	},
	"contract lawful_basis_fields missing": {
		"input": input_with({"/contract": object.remove(base_input.contract, ["lawful_basis_fields"])}),
		"problem": "contract.lawful_basis_fields must be a list of strings",
	},
	"contract holder_approved a string": {
		"input": input_with({"/contract/holder_approved": "true"}),
		"problem": "contract.holder_approved must be a boolean",
	},
	"contract price negative": {
		"input": input_with({"/contract/price_fen": -1}),
		"problem": "contract.price_fen must be null or an integer >= 0 (fen)",
	},
	"contract price not a number": {
		"input": input_with({"/contract/price_fen": "free"}),
		"problem": "contract.price_fen must be null or an integer >= 0 (fen)",
	},
	"contract price rates not a list": {
		"input": input_with({"/contract/price": {"rates_fen": 5, "fee_cap_fen": 10}}),
		"problem": "contract.price must be omitted or {rates_fen: list of integers >= 0, fee_cap_fen: integer >= 0 or null}",
	},
	"contract price rate negative": {
		"input": input_with({"/contract/price": {"rates_fen": [-1], "fee_cap_fen": 10}}),
		"problem": "contract.price must be omitted or {rates_fen: list of integers >= 0, fee_cap_fen: integer >= 0 or null}",
	},
	"contract region unknown": {
		"input": input_with({"/contract/region": "eu"}),
		"problem": `contract.region must be "domestic" or "any"`,
	},
}

test_invalid_input_is_denied_with_input_invalid_alone[note] if {
	some note, case in invalid_cases
	decision := exchange.decision with input as case.input
	decision.allow == false
	codes(decision) == ["INPUT_INVALID"]
	contains(decision.reasons[0].detail, case.problem)
	object.keys(decision.obligations) == {"mask", "drop", "row_cap", "min_group_size", "watermark", "dp"}
}

# Malformed input that would also trip other rules still yields INPUT_INVALID alone.
test_invalid_input_hides_other_reasons if {
	given := input_with({"/resource/grade": "core", "/resource/level": null, "/now": "yesterday"})
	decision := exchange.decision with input as given
	codes(decision) == ["INPUT_INVALID"]
}

test_empty_input_lists_every_missing_field if {
	decision := exchange.decision with input as {}
	detail := decision.reasons[0].detail
	every field in ["now", "action", "subject.id", "purpose", "delivery", "requested_fields", "resource.grade", "product.id"] {
		contains(detail, concat("", [field, " must be"]))
	}
}

# No input at all (a POST without "input"): the decision is still defined and denies.
test_no_input_at_all_denies if {
	decision := exchange.decision
	decision.allow == false
	codes(decision) == ["INPUT_INVALID"]
}

# The fallback decision is what the gateway gets should the decision ever be undefined.
test_fallback_decision_denies if {
	decision := exchange.decision with input as base_input with sort as undefined_sort
	decision.allow == false
	codes(decision) == ["INPUT_INVALID"]
}

undefined_sort(values) := values if {
	count(values) < 0
}
