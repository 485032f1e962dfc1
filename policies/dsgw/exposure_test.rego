package dsgw.exposure_test

import data.dsgw.exchange
import data.dsgw.exchange_test.base_input
import data.dsgw.exchange_test.codes
import data.dsgw.exchange_test.input_with

# The exposed grade of an exchange (就高从严): derived from the fields it exposes, after masking
# and aggregation. Cases: note -> changes to base_input, and the exposure (key by key) and
# reason codes wanted.
mixed_fields := [
	{"name": "district", "personal": false, "sensitive": false, "grade": "general", "level": "L1"},
	{"name": "score", "personal": false, "sensitive": false, "grade": "general", "level": "L2"},
	{"name": "holder_name", "personal": true, "sensitive": false, "grade": "general", "level": "L3"},
	{"name": "reserve", "personal": false, "sensitive": false, "grade": "important"},
	{"name": "grid", "personal": false, "sensitive": false, "grade": "core", "level": null},
]

mixed := {
	"/resource/grade": "important",
	"/resource/level": null,
	"/resource/personal_information": true,
	"/resource/sensitive_personal_information": false,
	"/resource/fields": mixed_fields,
	"/contract/lawful_basis_fields": [],
}

exposure_cases := {
	"no field grades: the resource's grade and level": {
		"set": {},
		"exposure": {"grade": "general", "level": "L2", "personal_information": true, "fields": ["city", "name", "phone"]},
		"codes": [],
	},
	"masking every personal field lowers personal information, and says so": {
		"set": {"/requested_fields": ["name", "city"]},
		"exposure": {"personal_information": false, "lowered": ["field(s) name masked"]},
		"codes": [],
	},
	"sensitive field with a lawful basis is exposed as sensitive": {
		"set": {"/requested_fields": ["id_number"], "/contract/lawful_basis_fields": ["id_number"]},
		"exposure": {"personal_information": true, "sensitive_personal_information": true, "lowered": []},
		"codes": [],
	},
	"compute aggregates: no personal information leaves as rows": {
		"set": {"/delivery": "compute", "/contract/lawful_basis_fields": ["name", "phone"]},
		"exposure": {
			"personal_information": false,
			"lowered": ["field(s) name, phone aggregated (compute): no personal information leaves as rows"],
		},
		"codes": [],
	},
	"resource flagged sensitive, every field says false: every field counts as sensitive, masked": {
		"set": {
			"/resource/fields": [
				{"name": "city", "personal": false, "sensitive": false},
				{"name": "age", "personal": false, "sensitive": false},
			],
			"/resource/sensitive_personal_information": true,
			"/requested_fields": ["city"],
		},
		"exposure": {"personal_information": false, "sensitive_personal_information": false, "lowered": ["field(s) city masked"]},
		"codes": [],
	},
	"resource flagged sensitive, every field says false, lawful basis: exposed as sensitive": {
		"set": {
			"/resource/fields": [
				{"name": "city", "personal": false, "sensitive": false},
				{"name": "age", "personal": false, "sensitive": false},
			],
			"/resource/sensitive_personal_information": true,
			"/requested_fields": ["city"],
			"/contract/lawful_basis_fields": ["city"],
		},
		"exposure": {"personal_information": true, "sensitive_personal_information": true, "lowered": []},
		"codes": [],
	},
	"fields stating nothing inherit the resource's flags: exposed as sensitive under a lawful basis": {
		"set": {
			"/resource/fields": [{"name": "patient"}, {"name": "diagnosis"}],
			"/resource/sensitive_personal_information": true,
			"/requested_fields": ["patient", "diagnosis"],
			"/contract/lawful_basis_fields": ["diagnosis", "patient"],
		},
		"exposure": {"personal_information": true, "sensitive_personal_information": true, "lowered": []},
		"codes": [],
	},
	"important resource, only general fields exposed: general, lowered, api allowed": {
		"set": object.union(mixed, {"/requested_fields": ["district", "score"]}),
		"exposure": {
			"grade": "general", "level": "L2", "personal_information": false,
			"lowered": ["resource graded important, exposed fields at most general"],
		},
		"codes": [],
	},
	"the highest exposed field wins: one important field makes the exchange important": {
		"set": object.union(mixed, {"/requested_fields": ["district", "reserve"]}),
		"exposure": {"grade": "important", "level": null, "fields": ["district", "reserve"]},
		"codes": ["IMPORTANT_DATA_RESTRICTED"],
	},
	"a core field in an important resource never leaves": {
		"set": object.union(mixed, {"/requested_fields": ["grid"]}),
		"exposure": {"grade": "core", "level": null},
		"codes": ["CORE_DATA_NEVER_LEAVES"],
	},
	"an important field in a general resource is restricted": {
		"set": {
			"/resource/fields": [
				{"name": "city", "personal": false, "sensitive": false},
				{"name": "reserve", "personal": false, "sensitive": false, "grade": "important"},
			],
			"/requested_fields": ["reserve"],
		},
		"exposure": {"grade": "important", "level": null},
		"codes": ["IMPORTANT_DATA_RESTRICTED"],
	},
	"general fields: the highest level wins": {
		"set": object.union(mixed, {"/requested_fields": ["district", "score", "holder_name"]}),
		"exposure": {
			"grade": "general", "level": "L3", "personal_information": false,
			"lowered": ["field(s) holder_name masked", "resource graded important, exposed fields at most general"],
		},
		"codes": [],
	},
	"general resource, lower field levels: lowered level said": {
		"set": {
			"/resource/level": "L4",
			"/resource/sensitive_personal_information": false,
			"/resource/fields": [
				{"name": "city", "personal": false, "sensitive": false, "grade": "general", "level": "L1"},
				{"name": "name", "personal": true, "sensitive": false},
			],
			"/requested_fields": ["city"],
		},
		"exposure": {"grade": "general", "level": "L1", "lowered": ["resource at level L4, exposed fields at most L1"]},
		"codes": [],
	},
	"no known field requested: the resource's grade": {
		"set": {"/requested_fields": ["nothing"]},
		"exposure": {"grade": "general", "level": "L2", "fields": []},
		"codes": ["UNKNOWN_FIELD"],
	},
	"important resource, no known field requested: important": {
		"set": object.union(mixed, {"/requested_fields": ["nothing"]}),
		"exposure": {"grade": "important", "level": null, "fields": []},
		"codes": ["IMPORTANT_DATA_RESTRICTED", "UNKNOWN_FIELD"],
	},
}

test_exposure[note] if {
	some note, case in exposure_cases
	decision := exchange.decision with input as input_with(case.set)
	every key, value in case.exposure {
		decision.exposure[key] == value
	}
	codes(decision) == case.codes
}

test_exposure_is_complete_and_null_on_invalid_input if {
	decision := exchange.decision with input as base_input
	object.keys(decision.exposure) == {
		"grade", "level", "personal_information", "sensitive_personal_information",
		"fields", "lowered", "open",
	}
	invalid := exchange.decision with input as {}
	invalid.exposure == null
}

test_important_field_detail_names_the_field if {
	decision := exchange.decision with input as input_with(exposure_cases["an important field in a general resource is restricted"].set)
	decision.reasons[0].detail == `resource res_1 exposes important data in field(s) reserve: delivery is "api", not "compute"; the holder has not approved contract ctr_1`
}

test_core_field_detail_names_the_field if {
	decision := exchange.decision with input as input_with(exposure_cases["a core field in an important resource never leaves"].set)
	decision.reasons[0].detail == "resource res_1 exposes core data in field(s) grid; core data never leaves the gateway"
}
