package dsgw.masking_test

import data.dsgw.exchange
import data.dsgw.exchange_test.base_input
import data.dsgw.exchange_test.codes
import data.dsgw.exchange_test.input_with

# Masking that hides (specs/policy-input.md, "Masking"): a resource-level flag applies to every
# field that does not state its own, and grouping on a masked field is refused.

# The review's case: a resource flagged sensitive whose fields carry no flag of their own.
unflagged_sensitive := {
	"/resource/personal_information": true,
	"/resource/sensitive_personal_information": true,
	"/resource/fields": [{"name": "patient"}, {"name": "diagnosis"}],
	"/requested_fields": ["patient", "diagnosis"],
	"/contract/lawful_basis_fields": [],
}

mask_cases := {
	"fields stating nothing inherit a sensitive resource: every field masked": {
		"set": unflagged_sensitive,
		"mask": ["diagnosis", "patient"],
	},
	"fields stating nothing inherit a personal resource: every field masked": {
		"set": object.union(unflagged_sensitive, {"/resource/sensitive_personal_information": false}),
		"mask": ["diagnosis", "patient"],
	},
	"null flags are not stated: inherited": {
		"set": object.union(unflagged_sensitive, {"/resource/fields": [
			{"name": "patient", "personal": null, "sensitive": null},
			{"name": "diagnosis", "personal": null, "sensitive": null},
		]}),
		"mask": ["diagnosis", "patient"],
	},
	"a field stating false opts out; the others inherit": {
		"set": object.union(unflagged_sensitive, {
			"/resource/fields": [
				{"name": "patient"},
				{"name": "diagnosis"},
				{"name": "ward", "personal": false, "sensitive": false},
			],
			"/requested_fields": ["patient", "diagnosis", "ward"],
		}),
		"mask": ["diagnosis", "patient"],
	},
	"opting out of personal only: still masked as sensitive": {
		"set": object.union(unflagged_sensitive, {"/resource/fields": [
			{"name": "patient"},
			{"name": "diagnosis", "personal": false},
		]}),
		"mask": ["diagnosis", "patient"],
	},
	"a lawful basis unmasks an inherited field": {
		"set": object.union(unflagged_sensitive, {"/contract/lawful_basis_fields": ["diagnosis"]}),
		"mask": ["patient"],
	},
	"no resource flag: fields stating nothing are not protected": {
		"set": object.union(unflagged_sensitive, {
			"/resource/personal_information": false,
			"/resource/sensitive_personal_information": false,
		}),
		"mask": [],
	},
	"kind is carried, not judged": {
		"set": object.union(unflagged_sensitive, {"/resource/fields": [
			{"name": "patient", "kind": "name"},
			{"name": "diagnosis", "kind": "text"},
		]}),
		"mask": ["diagnosis", "patient"],
	},
}

test_mask[note] if {
	some note, case in mask_cases
	decision := exchange.decision with input as input_with(case.set)
	decision.allow
	decision.obligations.mask == case.mask
}

test_inherited_flags_grade_the_exposure if {
	given := input_with(object.union(unflagged_sensitive, {"/contract/lawful_basis_fields": ["diagnosis", "patient"]}))
	decision := exchange.decision with input as given
	decision.exposure.personal_information == true
	decision.exposure.sensitive_personal_information == true
	masked := exchange.decision with input as input_with(unflagged_sensitive)
	masked.exposure.sensitive_personal_information == false
	masked.exposure.lowered == ["field(s) diagnosis, patient masked"]
}

test_inherited_flags_make_data_not_public if {
	given := input_with(object.union(
		object.remove(unflagged_sensitive, ["/contract/lawful_basis_fields"]),
		{"/resource/level": "L1", "/contract": null},
	))
	decision := exchange.decision with input as given
	codes(decision) == ["CONTRACT_REQUIRED"]
	contains(decision.reasons[0].detail, "its fields diagnosis, patient hold personal or sensitive personal information")
}

# Compute grouped on a field the policy masks: the key is requested (compute judges every field
# it reads), so it is masked like any other, and the engine releases the masked key.
grouping := {"/delivery": "compute", "/requested_fields": ["name", "city"]}

test_a_group_key_on_a_masked_field_is_masked if {
	decision := exchange.decision with input as input_with(grouping)
	"name" in decision.obligations.mask
}

test_a_group_key_on_an_inherited_flag_is_masked if {
	given := object.union(unflagged_sensitive, {"/delivery": "compute", "/requested_fields": ["diagnosis"]})
	decision := exchange.decision with input as input_with(given)
	"diagnosis" in decision.obligations.mask
}

test_a_group_key_with_a_lawful_basis_is_not_masked if {
	given := object.union(grouping, {"/contract/lawful_basis_fields": ["name"]})
	decision := exchange.decision with input as input_with(given)
	not "name" in decision.obligations.mask
}

# Open data: L1 public data without a contract, metered per subject and UTC day.
open_data := {
	"/resource/level": "L1",
	"/resource/personal_information": false,
	"/resource/sensitive_personal_information": false,
	"/resource/fields": [{"name": "station"}, {"name": "pm25", "personal": false}],
	"/requested_fields": ["station", "pm25"],
	"/contract": null,
}

open_cases := {
	"allowed: public data, no contract, nothing used today": {"set": open_data, "want": [], "row_cap": 1000},
	"allowed: the day's rows nearly used: the cap is what is left": {
		"set": object.union(open_data, {"/open_data_usage": {"rows": 9700, "calls": 10}}),
		"want": [],
		"row_cap": 300,
	},
	"QUOTA_EXHAUSTED: the day's open-data rows used": {
		"set": object.union(open_data, {"/open_data_usage": {"rows": 10000, "calls": 10}}),
		"want": ["QUOTA_EXHAUSTED"],
		"row_cap": 0,
	},
	"QUOTA_EXHAUSTED: the day's open-data calls used": {
		"set": object.union(open_data, {"/open_data_usage": {"rows": 0, "calls": 200}}),
		"want": ["QUOTA_EXHAUSTED"],
		"row_cap": 1000,
	},
	"PRODUCT_NOT_AVAILABLE: a draft is not open": {
		"set": object.union(open_data, {"/product/status": "draft"}),
		"want": ["PRODUCT_NOT_AVAILABLE"],
		"row_cap": 1000,
	},
	"PRODUCT_NOT_AVAILABLE: a delisted product is not open": {
		"set": object.union(open_data, {"/product/status": "delisted"}),
		"want": ["PRODUCT_NOT_AVAILABLE"],
		"row_cap": 1000,
	},
	"PRODUCT_NOT_AVAILABLE: a product of unknown status is not open": {
		"set": object.union(open_data, {"/product": {"id": "prd_1", "delivery_modes": ["api"], "public_interest": false}}),
		"want": ["PRODUCT_NOT_AVAILABLE"],
		"row_cap": 1000,
	},
	"INPUT_INVALID: no open-data usage without a contract": {
		"set": object.union(open_data, {"/open_data_usage": null}),
		"want": ["INPUT_INVALID"],
		"row_cap": null,
	},
	"CONTRACT_REQUIRED: a resource-level personal flag on L1 data": {
		"set": object.union(open_data, {"/resource/personal_information": true}),
		"want": ["CONTRACT_REQUIRED"],
		"row_cap": 1000,
	},
}

test_open_data[note] if {
	some note, case in open_cases
	decision := exchange.decision with input as input_with(case.set)
	codes(decision) == case.want
	allowed := count(case.want) == 0
	decision.allow == allowed
	decision.obligations.row_cap == case.row_cap
}

test_open_data_quota_detail_names_the_subject_and_the_limits if {
	given := input_with(object.union(open_data, {"/open_data_usage": {"rows": 10000, "calls": 200}}))
	decision := exchange.decision with input as given
	decision.reasons[0].detail == "subject prt_a has exhausted its open-data quota: 10000 of 10000 rows used today; 200 of 200 calls used today"
}

test_not_listed_detail_names_the_status if {
	decision := exchange.decision with input as input_with(object.union(open_data, {"/product/status": "review"}))
	decision.reasons[0].detail == "product prd_1 is review; without a contract only a listed product may be pulled"
}

test_open_data_usage_is_not_read_under_a_contract if {
	given := json.patch(base_input, [{"op": "remove", "path": "/open_data_usage"}])
	decision := exchange.decision with input as given
	decision.allow
}

test_exposure_says_whether_the_data_is_open if {
	public := exchange.decision with input as input_with(open_data)
	public.exposure.open == true
	personal := exchange.decision with input as base_input
	personal.exposure.open == false
}
