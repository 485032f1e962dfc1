# METADATA
# title: Usage control for data exchange
# description: >-
#   Decides whether a consumer may pull data from a resource under a contract (allow), why not
#   (reasons, each citing the rule that fired) and what the gateway must do to the data it
#   delivers (obligations). Time comes from input.now only, so every decision replays exactly.
#   The input and decision documents are described in specs/policy-input.md.
# schemas:
#   - input: schema["exchange-input"]
package dsgw.exchange

# METADATA
# title: Exchange decision
# description: >-
#   The document the gateway acts on. It is defined for every input: malformed input is denied
#   with INPUT_INVALID, and the default below is a last line of defence should any part of the
#   decision be undefined.
# entrypoint: true
default decision := {
	"allow": false,
	"reasons": [{
		"code": "INPUT_INVALID",
		"title": "Input invalid",
		"detail": "the policy could not evaluate this input",
	}],
	"obligations": {"mask": [], "drop": [], "row_cap": null, "min_group_size": null, "watermark": false, "dp": null},
	"exposure": null,
}

decision := {"allow": allow, "reasons": reasons, "obligations": obligations, "exposure": exposure}

default allow := false

allow if count(reasons) == 0

# Malformed input is refused with INPUT_INVALID alone: nothing else is judged on data that
# failed validation. Otherwise every reason that fired, sorted by code.
reasons := [input_invalid] if {
	not input_valid
} else := [r | some code in sort({d.code | some d in deny}); some r in deny; r.code == code]

obligations := {
	"mask": sort(mask),
	"drop": [],
	"row_cap": row_cap,
	"min_group_size": min_group_size,
	"watermark": watermark,
	"dp": dp, # compute.rego
}

reason(annotation, detail) := {"code": annotation.custom.code, "title": annotation.title, "detail": detail}

# ---------------------------------------------------------------------------------------------
# Input validation

input_valid if count(input_problems) == 0

# METADATA
# title: Input invalid
# description: >-
#   A required input field is missing or has the wrong type or value. The policy fails closed:
#   it decides nothing else on input it cannot trust.
# custom:
#   code: INPUT_INVALID
input_invalid := reason(rego.metadata.rule(), detail) if {
	not input_valid
	detail := sprintf("the gateway sent a malformed policy input: %s", [concat("; ", sort(input_problems))])
}

input_problems := {"input must be a JSON object"} if {
	not input_object
} else := field_problems

input_object if is_object(input)

# What each check requires, by the name under which passed_checks records that it passed.
# Checks are positive rules, so a missing field fails its check instead of escaping it
# (in Rego, `not f(input.missing)` is undefined, not true).
input_checks := {
	"now": "now must be an RFC 3339 timestamp",
	"action": `action must be "exchange"`,
	"subject.id": "subject.id must be a non-empty string",
	"subject.roles": "subject.roles must be a list of strings",
	"subject.region": `subject.region must be "domestic" or "cross_border"`,
	"purpose": "purpose must be a non-empty string",
	"delivery": `delivery must be "api", "file" or "compute"`,
	"requested_fields": "requested_fields must be a list of strings, non-empty unless delivery is compute",
	"resource.id": "resource.id must be a non-empty string",
	"resource.grade": `resource.grade must be "core", "important" or "general"`,
	"resource.level": `resource.level must be "L1", "L2", "L3" or "L4" (null only for core and important data)`,
	"resource.personal_information": "resource.personal_information must be a boolean",
	"resource.sensitive_personal_information": "resource.sensitive_personal_information must be a boolean",
	"resource.fields": "resource.fields must be a list of {name: non-empty string, personal and sensitive: boolean or null (null or omitted: inherited from the resource), kind, grade and level optional (a general field needs a level)}",
	"product.id": "product.id must be a non-empty string",
	"product.delivery_modes": "product.delivery_modes must be a list of strings",
	"product.public_interest": "product.public_interest must be a boolean",
	"contract": "contract must be null or an object",
}

# The checks made only when there is no contract: the subject's open-data usage meters it.
open_data_checks := {"open_data_usage": "open_data_usage must be {rows: integer >= 0, calls: integer >= 0} when there is no contract"}

# The checks of a contract, made only when there is one.
contract_checks := {
	"contract.id": "contract.id must be a non-empty string",
	"contract.state": "contract.state must be a non-empty string",
	"contract.consumer": "contract.consumer must be a non-empty string",
	"contract.purposes": "contract.purposes must be a list of strings",
	"contract.not_before": "contract.not_before must be an RFC 3339 timestamp",
	"contract.not_after": "contract.not_after must be an RFC 3339 timestamp",
	"contract.quota": "contract.quota must be {rows: integer >= 0 or null, calls: integer >= 0 or null}",
	"contract.usage": "contract.usage must be {rows: integer >= 0, calls: integer >= 0}",
	"contract.fields": "contract.fields must be null or a list of strings",
	"contract.lawful_basis_fields": "contract.lawful_basis_fields must be a list of strings",
	"contract.holder_approved": "contract.holder_approved must be a boolean",
	"contract.region": `contract.region must be "domestic" or "any"`,
	"contract.price_fen": "contract.price_fen must be null or an integer >= 0 (fen)",
	"contract.price": "contract.price must be omitted or {rates_fen: list of integers >= 0, fee_cap_fen: integer >= 0 or null}",
}

field_problems contains message if {
	some check in (object.keys(input_checks) - passed_checks)
	message := input_checks[check]
}

field_problems contains message if {
	has_contract
	some check in (object.keys(contract_checks) - passed_checks)
	message := contract_checks[check]
}

field_problems contains message if {
	not has_contract
	some check in (object.keys(open_data_checks) - passed_checks)
	message := open_data_checks[check]
}

passed_checks contains "now" if timestamp(input.now)

passed_checks contains "action" if input.action == "exchange"

passed_checks contains "subject.id" if non_empty_string(input.subject.id)

passed_checks contains "subject.roles" if string_list(input.subject.roles)

passed_checks contains "subject.region" if input.subject.region in {"domestic", "cross_border"}

passed_checks contains "purpose" if non_empty_string(input.purpose)

passed_checks contains "delivery" if input.delivery in {"api", "file", "compute"}

passed_checks contains "requested_fields" if {
	string_list(input.requested_fields)
	requested_enough
}

# A compute query may read no column at all (a count of subjects).
requested_enough if count(input.requested_fields) > 0

requested_enough if compute_delivery

passed_checks contains "resource.id" if non_empty_string(input.resource.id)

passed_checks contains "resource.grade" if input.resource.grade in {"core", "important", "general"}

passed_checks contains "resource.level" if {
	input.resource.grade == "general"
	input.resource.level in levels
}

passed_checks contains "resource.level" if {
	input.resource.grade in {"core", "important"}
	optional_level(object.get(input.resource, "level", null))
}

passed_checks contains "resource.personal_information" if is_boolean(input.resource.personal_information)

passed_checks contains "resource.sensitive_personal_information" if {
	is_boolean(input.resource.sensitive_personal_information)
}

passed_checks contains "resource.fields" if {
	is_array(input.resource.fields)
	every field in input.resource.fields {
		non_empty_string(field.name)
		optional_boolean(object.get(field, "personal", null))
		optional_boolean(object.get(field, "sensitive", null))
		optional_string(object.get(field, "kind", null))
		optional_field_grade(field)
	}
}

# A field may carry its own grade and level; a general field needs a level (its own or the
# resource's), and only a general field has one.
optional_field_grade(field) if {
	not "grade" in object.keys(field)
	not "level" in object.keys(field)
}

optional_field_grade(field) if {
	field.grade in {"core", "important"}
	optional_level(object.get(field, "level", null))
}

optional_field_grade(field) if {
	field.grade == "general"
	object.get(field, "level", object.get(input.resource, "level", null)) in levels
}

passed_checks contains "product.id" if non_empty_string(input.product.id)

passed_checks contains "product.delivery_modes" if string_list(input.product.delivery_modes)

passed_checks contains "product.public_interest" if is_boolean(input.product.public_interest)

passed_checks contains "open_data_usage" if {
	natural(input.open_data_usage.rows)
	natural(input.open_data_usage.calls)
}

passed_checks contains "contract" if object.get(input, "contract", null) == null

passed_checks contains "contract" if has_contract

passed_checks contains sprintf("contract.%s", [name]) if {
	some name in ["id", "state", "consumer"]
	non_empty_string(contract[name])
}

passed_checks contains "contract.purposes" if string_list(contract.purposes)

passed_checks contains sprintf("contract.%s", [name]) if {
	some name in ["not_before", "not_after"]
	timestamp(contract[name])
}

passed_checks contains "contract.quota" if {
	is_object(contract.quota)
	optional_natural(object.get(contract.quota, "rows", null))
	optional_natural(object.get(contract.quota, "calls", null))
}

passed_checks contains "contract.usage" if {
	natural(contract.usage.rows)
	natural(contract.usage.calls)
}

passed_checks contains "contract.fields" if object.get(contract, "fields", null) == null

passed_checks contains "contract.fields" if string_list(contract.fields)

passed_checks contains "contract.lawful_basis_fields" if string_list(contract.lawful_basis_fields)

passed_checks contains "contract.holder_approved" if is_boolean(contract.holder_approved)

passed_checks contains "contract.region" if contract.region in {"domestic", "any"}

passed_checks contains "contract.price_fen" if optional_natural(object.get(contract, "price_fen", null))

passed_checks contains "contract.price" if not "price" in object.keys(contract)

passed_checks contains "contract.price" if {
	is_array(contract.price.rates_fen)
	every rate in contract.price.rates_fen {
		natural(rate)
	}
	optional_natural(object.get(contract.price, "fee_cap_fen", null))
}

levels := {"L1", "L2", "L3", "L4"}

optional_level(value) if value == null

optional_level(value) if value in levels

timestamp(value) if {
	is_string(value)
	time.parse_rfc3339_ns(value)
}

non_empty_string(value) if {
	is_string(value)
	value != ""
}

string_list(value) if {
	is_array(value)
	every item in value {
		is_string(item)
	}
}

natural(value) if {
	is_number(value)
	value >= 0
	round(value) == value
}

optional_natural(value) if value == null

optional_natural(value) if natural(value)

optional_boolean(value) if value == null

optional_boolean(value) if is_boolean(value)

optional_string(value) if value == null

optional_string(value) if is_string(value)

# ---------------------------------------------------------------------------------------------
# Facts about the request, named so that rules read as sentences and negation goes through them

# The contract the exchange runs under; undefined when the request names none (null or absent).
contract := input.contract if is_object(input.contract)

has_contract if is_object(input.contract)

now_ns := time.parse_rfc3339_ns(input.now)

domestic_subject if input.subject.region == "domestic"

compute_delivery if input.delivery == "compute"

resource_field_names := {field.name | some field in input.resource.fields}

requested := {name | some name in input.requested_fields}

# Resource fields holding personal or sensitive personal information: flagged on the field, or
# inherited from the resource (section "Masking" of specs/policy-input.md).
protected_field_names := {field.name | some field in input.resource.fields; protected_field(field)}

# Public data: general, level L1, no personal information at resource or field level.
public_resource if {
	input.resource.grade == "general"
	input.resource.level == "L1"
	input.resource.personal_information == false
	input.resource.sensitive_personal_information == false
	count(protected_field_names) == 0
}

not_public_because contains sprintf("it is graded %s", [input.resource.grade]) if {
	input.resource.grade != "general"
}

not_public_because contains sprintf("it is general data at level %s", [input.resource.level]) if {
	input.resource.grade == "general"
	input.resource.level != "L1"
}

not_public_because contains "it holds personal information" if input.resource.personal_information == true

not_public_because contains "it holds sensitive personal information" if {
	input.resource.sensitive_personal_information == true
}

not_public_because contains sprintf("its fields %s hold personal or sensitive personal information", [listing(protected_field_names)]) if {
	count(protected_field_names) > 0
}

contract_finalized if contract.state == "FINALIZED"

contract_is_subjects if contract.consumer == input.subject.id

contract_started if now_ns >= time.parse_rfc3339_ns(contract.not_before)

contract_unexpired if now_ns < time.parse_rfc3339_ns(contract.not_after)

purpose_permitted if input.purpose in contract.purposes

holder_approved if contract.holder_approved == true

delivery_offered if input.delivery in input.product.delivery_modes

quota_rows := object.get(contract.quota, "rows", null)

quota_calls := object.get(contract.quota, "calls", null)

rows_remaining if contract.usage.rows < quota_rows

calls_remaining if contract.usage.calls < quota_calls

lawful_basis := {name | some name in contract.lawful_basis_fields}

listing(names) := concat(", ", sort(names)) if count(names) > 0

listing(names) := "none" if count(names) == 0

# ---------------------------------------------------------------------------------------------
# Reasons to refuse. Each is a rule whose annotation gives the reason its code and title.

# METADATA
# title: Contract required
# description: >-
#   Only public data (general, level L1, no personal information at resource or field level) is
#   open to any authenticated participant; everything else is exchanged under a contract.
# custom:
#   code: CONTRACT_REQUIRED
deny contains reason(rego.metadata.rule(), detail) if {
	not has_contract
	not public_resource
	detail := sprintf(
		"no contract was given, and resource %s is not public data: %s",
		[input.resource.id, concat("; ", sort(not_public_because))],
	)
}

# METADATA
# title: Contract not active
# description: Data flows only under a FINALIZED contract (not one still in negotiation, suspended, revoked or terminated).
# custom:
#   code: CONTRACT_NOT_ACTIVE
deny contains reason(rego.metadata.rule(), detail) if {
	has_contract
	not contract_finalized
	detail := sprintf("contract %s is %s; only a FINALIZED contract permits exchange", [contract.id, contract.state])
}

# METADATA
# title: Contract not yours
# description: A contract permits exchange only to the consumer it was concluded with.
# custom:
#   code: CONTRACT_NOT_YOURS
deny contains reason(rego.metadata.rule(), detail) if {
	has_contract
	not contract_is_subjects
	detail := sprintf("contract %s belongs to %s, not to %s", [contract.id, contract.consumer, input.subject.id])
}

# METADATA
# title: Contract not yet valid
# description: The contract's term has not begun (now is before not_before).
# custom:
#   code: CONTRACT_NOT_YET_VALID
deny contains reason(rego.metadata.rule(), detail) if {
	has_contract
	not contract_started
	detail := sprintf("contract %s starts at %s; now is %s", [contract.id, contract.not_before, input.now])
}

# METADATA
# title: Contract expired
# description: The contract's term is over (now is at or after not_after).
# custom:
#   code: CONTRACT_EXPIRED
deny contains reason(rego.metadata.rule(), detail) if {
	has_contract
	not contract_unexpired
	detail := sprintf("contract %s ended at %s; now is %s", [contract.id, contract.not_after, input.now])
}

# METADATA
# title: Purpose not permitted
# description: The purpose the consumer states must be one the contract permits.
# custom:
#   code: PURPOSE_NOT_PERMITTED
deny contains reason(rego.metadata.rule(), detail) if {
	has_contract
	not purpose_permitted
	detail := sprintf(
		"purpose %q is not permitted by contract %s (permitted: %s)",
		[input.purpose, contract.id, listing(contract.purposes)],
	)
}

# METADATA
# title: Core data never leaves
# description: Core data (GB/T 43697-2024) never leaves the gateway, whatever the contract.
# custom:
#   code: CORE_DATA_NEVER_LEAVES
deny contains reason(rego.metadata.rule(), detail) if {
	input.resource.grade == "core"
	detail := sprintf("resource %s is graded core; core data never leaves the gateway", [input.resource.id])
}

# METADATA
# title: Core data never leaves
# description: >-
#   A field graded core never leaves the gateway either, whatever the grade of its resource
#   (the exposed grade is the highest of the exposed fields).
# custom:
#   code: CORE_DATA_NEVER_LEAVES
deny contains reason(rego.metadata.rule(), detail) if {
	input.resource.grade != "core"
	exposed_grade == "core"
	detail := sprintf(
		"resource %s exposes core data in field(s) %s; core data never leaves the gateway",
		[input.resource.id, listing({f.name | some f in exposed_fields; field_grade(f) == "core"})],
	)
}

important_shortfalls contains sprintf("delivery is %q, not \"compute\"", [input.delivery]) if not compute_delivery

important_shortfalls contains sprintf("the holder has not approved contract %s", [contract.id]) if {
	has_contract
	not holder_approved
}

important_shortfalls contains "there is no contract for the holder to approve" if not has_contract

important_shortfalls contains sprintf("subject %s is %s, not domestic", [input.subject.id, input.subject.region]) if {
	not domestic_subject
}

# METADATA
# title: Important data restricted
# description: >-
#   Important data leaves only through compute-to-data delivery, under a contract the holder
#   approved, to a domestic consumer. Judged on the exposed grade: the highest grade of the
#   fields the exchange exposes.
# custom:
#   code: IMPORTANT_DATA_RESTRICTED
deny contains reason(rego.metadata.rule(), detail) if {
	exposed_grade == "important"
	count(important_shortfalls) > 0
	detail := sprintf(
		"resource %s %s: %s",
		[input.resource.id, important_where, concat("; ", sort(important_shortfalls))],
	)
}

important_where := "is graded important" if {
	input.resource.grade == "important"
} else := sprintf(
	"exposes important data in field(s) %s",
	[listing({f.name | some f in exposed_fields; field_grade(f) == "important"})],
)

contract_free if {
	contract.price_fen == 0
	not priced_usage
}

# A usage rate above zero (per call, rows, MB, query, a tier), when the input states the price.
priced_usage if {
	some rate in object.get(contract, ["price", "rates_fen"], [])
	rate > 0
}

contract_price := "charges for its usage" if {
	priced_usage
} else := sprintf("charges %v fen", [contract.price_fen]) if {
	is_number(contract.price_fen)
} else := "does not state its price"

# METADATA
# title: Price above the fee cap
# description: >-
#   A contract is used only at prices within its authorisation's fee cap (价格上限) as it stands
#   at the moment of use: every rate the offer states (flat, per call, per 1,000 rows, per MB,
#   per query, each tier) is at most the cap. A priced contract whose cap is unknown is refused.
# custom:
#   code: PRICE_ABOVE_FEE_CAP
deny contains reason(rego.metadata.rule(), detail) if {
	has_contract
	some rate in object.get(contract, ["price", "rates_fen"], [])
	rate > 0
	not within_fee_cap(rate)
	detail := sprintf(
		"contract %s charges a rate of %v fen; the authorisation's fee cap is %v fen",
		[contract.id, rate, fee_cap_text],
	)
}

within_fee_cap(rate) if rate <= contract.price.fee_cap_fen

fee_cap_text := sprintf("%v", [contract.price.fee_cap_fen]) if {
	is_number(contract.price.fee_cap_fen)
} else := "unknown"

# METADATA
# title: Public-interest use is free
# description: >-
#   A public-interest (公益) product is used free of charge: it is exchanged only under a
#   contract whose price is 0.
# custom:
#   code: PUBLIC_INTEREST_NOT_FREE
deny contains reason(rego.metadata.rule(), detail) if {
	input.product.public_interest == true
	has_contract
	not contract_free
	detail := sprintf(
		"product %s is for public-interest use, which is free; contract %s %s",
		[input.product.id, contract.id, contract_price],
	)
}

# METADATA
# title: Product not available
# description: >-
#   A suspended product delivers nothing, even under a running contract: its authorisation
#   ended, its resource's registration was cancelled, or the platform suspended it.
# custom:
#   code: PRODUCT_NOT_AVAILABLE
deny contains reason(rego.metadata.rule(), detail) if {
	input.product.status == "suspended"
	detail := sprintf(
		"product %s is suspended: it delivers nothing until it is reinstated",
		[input.product.id],
	)
}

# METADATA
# title: Delivery mode not offered
# description: The delivery mode asked for must be one the product offers.
# custom:
#   code: DELIVERY_MODE_NOT_OFFERED
deny contains reason(rego.metadata.rule(), detail) if {
	not delivery_offered
	detail := sprintf(
		"delivery %q is not offered by product %s (offered: %s)",
		[input.delivery, input.product.id, listing(input.product.delivery_modes)],
	)
}

# METADATA
# title: Unknown field
# description: Every requested field must be a field of the resource.
# custom:
#   code: UNKNOWN_FIELD
deny contains reason(rego.metadata.rule(), detail) if {
	unknown := {name | some name in requested; not name in resource_field_names}
	count(unknown) > 0
	detail := sprintf("resource %s has no field(s) %s", [input.resource.id, listing(unknown)])
}

# METADATA
# title: Field not permitted
# description: When the contract restricts fields, every requested field must be among them.
# custom:
#   code: FIELD_NOT_PERMITTED
deny contains reason(rego.metadata.rule(), detail) if {
	is_array(contract.fields)
	unpermitted := {name | some name in requested; not name in contract.fields}
	count(unpermitted) > 0
	detail := sprintf(
		"contract %s does not permit field(s) %s (permitted: %s)",
		[contract.id, listing(unpermitted), listing(contract.fields)],
	)
}

# METADATA
# title: Region not permitted
# description: A contract restricted to domestic consumers serves only a domestic subject.
# custom:
#   code: REGION_NOT_PERMITTED
deny contains reason(rego.metadata.rule(), detail) if {
	contract.region == "domestic"
	not domestic_subject
	detail := sprintf(
		"contract %s is restricted to domestic consumers; subject %s is %s",
		[contract.id, input.subject.id, input.subject.region],
	)
}

quota_shortfalls contains sprintf("%v of %v rows used", [contract.usage.rows, quota_rows]) if {
	quota_rows != null
	not rows_remaining
}

quota_shortfalls contains sprintf("%v of %v calls used", [contract.usage.calls, quota_calls]) if {
	quota_calls != null
	not calls_remaining
}

# METADATA
# title: Quota exhausted
# description: The contract's row or call quota is used up (usage has reached the quota).
# custom:
#   code: QUOTA_EXHAUSTED
deny contains reason(rego.metadata.rule(), detail) if {
	count(quota_shortfalls) > 0
	detail := sprintf("contract %s has exhausted its quota: %s", [contract.id, concat("; ", sort(quota_shortfalls))])
}

# ---------------------------------------------------------------------------------------------
# Open data: public data pulled without a contract, within the limits below, per subject and
# UTC day (the gateway meters input.open_data_usage from its recorded decisions).

open_data_limits := {"rows_per_call": 1000, "rows_per_day": 10000, "calls_per_day": 200}

product_listed if input.product.status == "listed"

# METADATA
# title: Product not available
# description: >-
#   Without a contract, only a listed product is open: a draft, one in review, a delisted or a
#   suspended product serves no one without a contract.
# custom:
#   code: PRODUCT_NOT_AVAILABLE
deny contains reason(rego.metadata.rule(), detail) if {
	not has_contract
	not product_listed
	detail := sprintf(
		"product %s is %s; without a contract only a listed product may be pulled",
		[input.product.id, object.get(input.product, "status", "of unknown status")],
	)
}

open_data_shortfalls contains sprintf("%v of %v rows used today", [input.open_data_usage.rows, open_data_limits.rows_per_day]) if {
	input.open_data_usage.rows >= open_data_limits.rows_per_day
}

open_data_shortfalls contains sprintf("%v of %v calls used today", [input.open_data_usage.calls, open_data_limits.calls_per_day]) if {
	input.open_data_usage.calls >= open_data_limits.calls_per_day
}

# METADATA
# title: Quota exhausted
# description: >-
#   Without a contract, a subject may pull at most open_data_limits per UTC day (rows and
#   calls, over all open products), so that open data is not scraped without limit.
# custom:
#   code: QUOTA_EXHAUSTED
deny contains reason(rego.metadata.rule(), detail) if {
	not has_contract
	count(open_data_shortfalls) > 0
	detail := sprintf(
		"subject %s has exhausted its open-data quota: %s",
		[input.subject.id, concat("; ", sort(open_data_shortfalls))],
	)
}

# ---------------------------------------------------------------------------------------------
# Obligations: computed for every decision, meaningful only when the exchange is allowed.

# Requested personal or sensitive fields without a lawful basis recorded in the contract.
mask contains name if {
	some name in requested
	name in protected_field_names
	not name in lawful_basis
}

# Rows still within the quota; never negative. Without a contract: at most rows_per_call, and
# no more than the subject has left of its open-data rows today.
row_cap := max([0, quota_rows - contract.usage.rows]) if {
	quota_rows != null
} else := min([open_data_limits.rows_per_call, max([0, open_data_limits.rows_per_day - input.open_data_usage.rows])]) if {
	not has_contract
} else := null

# Aggregates computed in place must cover at least this many records.
min_group_size := 10 if {
	compute_delivery
} else := null

default watermark := false

watermark if input.resource.level in {"L3", "L4"}

watermark if input.resource.grade == "important"

# ---------------------------------------------------------------------------------------------
# Exposure: the grade of what this exchange actually exposes (就高从严: the highest wins),
# derived from the exposed fields after dropping, masking and aggregation. Never typed by hand.

grade_rank := {"general": 1, "important": 2, "core": 3}

grade_by_rank := {rank: grade | some grade, rank in grade_rank}

level_rank := {"L1": 1, "L2": 2, "L3": 3, "L4": 4}

level_by_rank := {rank: level | some level, rank in level_rank}

dropped := set()

# Requested fields of the resource that are delivered (not dropped).
exposed_fields contains field if {
	some field in input.resource.fields
	field.name in requested
	not field.name in dropped
}

field_grade(field) := object.get(field, "grade", input.resource.grade)

field_level(field) := object.get(field, "level", object.get(input.resource, "level", null)) if {
	field_grade(field) == "general"
}

# A field's flag: its own when it states one (true or false), else the resource's (inherited).
# A resource flagged personal or sensitive whose every field says false has no field left to
# hold what it declares: every field is then taken to hold it (从严).
stated(field, flag) if is_boolean(object.get(field, flag, null))

unflagged_personal if {
	input.resource.personal_information == true
	every field in input.resource.fields {
		object.get(field, "personal", null) == false
	}
}

unflagged_sensitive if {
	input.resource.sensitive_personal_information == true
	every field in input.resource.fields {
		object.get(field, "sensitive", null) == false
	}
}

field_personal(field) if field.personal == true

field_personal(field) if {
	not stated(field, "personal")
	input.resource.personal_information == true
}

field_personal(_) if unflagged_personal

field_sensitive(field) if field.sensitive == true

field_sensitive(field) if {
	not stated(field, "sensitive")
	input.resource.sensitive_personal_information == true
}

field_sensitive(_) if unflagged_sensitive

protected_field(field) if field_personal(field)

protected_field(field) if field_sensitive(field)

# A protected field is exposed as rows only when neither masked nor aggregated.
exposed_as_rows(field) if {
	not field.name in mask
	not compute_delivery
}

exposed_grade := grade_by_rank[max({grade_rank[field_grade(f)] | some f in exposed_fields})] if {
	count(exposed_fields) > 0
} else := input.resource.grade

exposed_level := level_by_rank[max(ranks)] if {
	exposed_grade == "general"
	ranks := {level_rank[field_level(f)] | some f in exposed_fields}
	count(ranks) > 0
} else := object.get(input.resource, "level", null) if {
	exposed_grade == "general"
} else := null

exposed_personal if {
	some field in exposed_fields
	field_personal(field)
	exposed_as_rows(field)
}

exposed_sensitive if {
	some field in exposed_fields
	field_sensitive(field)
	exposed_as_rows(field)
}

# How the exposure is lower than the resource: said, never silent.
lowered contains sprintf("field(s) %s masked", [listing(names)]) if {
	names := {f.name | some f in exposed_fields; protected_field(f); f.name in mask}
	count(names) > 0
}

lowered contains sprintf("field(s) %s aggregated (compute): no personal information leaves as rows", [listing(names)]) if {
	compute_delivery
	names := {f.name | some f in exposed_fields; protected_field(f); not f.name in mask}
	count(names) > 0
}

lowered contains sprintf("resource graded %s, exposed fields at most %s", [input.resource.grade, exposed_grade]) if {
	grade_rank[exposed_grade] < grade_rank[input.resource.grade]
}

lowered contains sprintf("resource at level %s, exposed fields at most %s", [input.resource.level, exposed_level]) if {
	exposed_grade == input.resource.grade
	level_rank[exposed_level] < level_rank[input.resource.level]
}

default exposure := null

exposure := {
	"grade": exposed_grade,
	"level": exposed_level,
	"personal_information": exposed_personal_value,
	"sensitive_personal_information": exposed_sensitive_value,
	"fields": sort([f.name | some f in exposed_fields]),
	"lowered": sort(lowered),
	"open": public_value,
} if input_valid

default public_value := false

public_value if public_resource

default exposed_personal_value := false

exposed_personal_value if exposed_personal

default exposed_sensitive_value := false

exposed_sensitive_value if exposed_sensitive
