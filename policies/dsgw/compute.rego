# Compute-to-data usage control: the part of the exchange decision that judges compute
# delivery. The query must fit the offer's declared compute terms and their column rules, the
# privacy budget must have room for the query's ε, and the obligations say which ε, which
# budgets and which minimum group size apply (by exposed grade). specs/compute.md states the
# guarantee; specs/policy-input.md the input and the reasons. The package's METADATA (its
# input schema) is in exchange.rego.
package dsgw.exchange

# ---------------------------------------------------------------------------------------------
# Input: `compute` is checked with compute delivery and ignored otherwise. Without it (as when
# the catalogue grades an offer) compute is refused, COMPUTE_NOT_DECLARED, but the exposure is
# still judged.

compute_checks := {
	"compute.terms": "compute.terms must be null or an object with aggregates (list of strings) and columns (an object)",
	"compute.query": "compute.query must be {aggregates: non-empty list of {op: string, field: string or null}, group_by: list of strings, filters: list of {field: string, eq, range}}",
	"compute.spent": "compute.spent must be {contract: number >= 0, subject_resource: number >= 0}",
}

field_problems contains message if {
	compute_delivery
	"compute" in object.keys(input)
	some check in (object.keys(compute_checks) - passed_checks)
	message := compute_checks[check]
}

passed_checks contains "compute.terms" if object.get(input.compute, "terms", null) == null

passed_checks contains "compute.terms" if {
	string_list(input.compute.terms.aggregates)
	is_object(input.compute.terms.columns)
}

passed_checks contains "compute.query" if {
	count(input.compute.query.aggregates) > 0
	every a in input.compute.query.aggregates {
		is_string(a.op)
		optional_string(object.get(a, "field", null))
	}
	string_list(input.compute.query.group_by)
	every f in input.compute.query.filters {
		is_string(f.field)
	}
}

passed_checks contains "compute.spent" if {
	non_negative(input.compute.spent.contract)
	non_negative(input.compute.spent.subject_resource)
}

optional_string(value) if value == null

optional_string(value) if is_string(value)

non_negative(value) if {
	is_number(value)
	value >= 0
}

# ---------------------------------------------------------------------------------------------
# Facts about the query

compute_terms := input.compute.terms if is_object(input.compute.terms)

query_aggregates := input.compute.query.aggregates

query_group_by := input.compute.query.group_by

query_filters := input.compute.query.filters

# A column the terms do not list is `never` (not offered for compute at all).
column_rule(name) := object.get(compute_terms.columns, [name, "rule"], "never")

column_terms(name) := object.get(compute_terms.columns, name, {})

aggregatable_rules := {"plaintext", "aggregate"}

groupable_rules := {"plaintext", "group_key"}

value_aggregates := [a | some a in query_aggregates; a.op != "count"]

declared(value) if value != null

# The declared key combinations the grouping spans.
group_combinations := product([count(object.get(column_terms(g), "values", [])) | some g in query_group_by])

max_groups := 10000

# ---------------------------------------------------------------------------------------------
# Reasons

undeclared contains "the offer declares no compute terms" if {
	compute_delivery
	not compute_terms
}

undeclared contains "the request names no compute query" if {
	compute_delivery
	not "compute" in object.keys(input)
}

undeclared contains sprintf("aggregate %s is not offered (offered: %s)", [a.op, listing({o | some o in compute_terms.aggregates})]) if {
	some a in query_aggregates
	not a.op in compute_terms.aggregates
}

undeclared contains sprintf("%s of %s needs declared clamp bounds (lower, upper)", [a.op, a.field]) if {
	some a in value_aggregates
	a.op in {"sum", "mean"}
	column_rule(a.field) in aggregatable_rules
	not declared(object.get(column_terms(a.field), "lower", null))
}

undeclared contains sprintf("%s of %s needs declared bins", [a.op, a.field]) if {
	some a in value_aggregates
	a.op in {"quantile", "histogram"}
	column_rule(a.field) in aggregatable_rules
	not declared(object.get(column_terms(a.field), "bins", null))
}

undeclared contains sprintf("group key %s has no declared values", [name]) if {
	some name in query_group_by
	column_rule(name) in groupable_rules
	not declared(object.get(column_terms(name), "values", null))
}

undeclared contains sprintf("filter %s = %q: not a declared value", [f.field, f.eq]) if {
	some f in query_filters
	column_rule(f.field) in groupable_rules
	declared(object.get(f, "eq", null))
	not f.eq in object.get(column_terms(f.field), "values", [])
}

undeclared contains sprintf("filter %s in %v: not a declared range", [f.field, f.range]) if {
	some f in query_filters
	column_rule(f.field) in groupable_rules
	declared(object.get(f, "range", null))
	not f.range in object.get(column_terms(f.field), "ranges", [])
}

undeclared contains sprintf("%d group keys, more than the %d the terms allow", [count(query_group_by), limit]) if {
	limit := object.get(compute_terms, "max_group_keys", 2)
	count(query_group_by) > limit
}

undeclared contains sprintf("%d filters, more than the %d the terms allow", [count(query_filters), limit]) if {
	limit := object.get(compute_terms, "max_filters", 2)
	count(query_filters) > limit
}

undeclared contains sprintf("the grouping spans %d groups, more than %d", [group_combinations, max_groups]) if {
	compute_terms
	group_combinations > max_groups
}

# METADATA
# title: Compute not declared
# description: >-
#   A compute query asks only what the offer's compute terms declare: an offered aggregate,
#   over a field with declared clamp bounds (sum, mean) or bins (quantile, histogram), grouped
#   on declared values, filtered on a declared value or range. Everything else is refused
#   before it runs. (A product that offers no compute is refused DELIVERY_MODE_NOT_OFFERED
#   alone.)
# custom:
#   code: COMPUTE_NOT_DECLARED
deny contains reason(rego.metadata.rule(), detail) if {
	compute_delivery
	delivery_offered
	count(undeclared) > 0
	detail := sprintf("the query is outside the offer's compute terms: %s", [concat("; ", sort(undeclared))])
}

violations contains sprintf("%s is %s: it is never aggregated (%s of %s)", [a.field, column_rule(a.field), a.op, a.field]) if {
	some a in value_aggregates
	not column_rule(a.field) in aggregatable_rules
}

violations contains sprintf("%s is %s: it is never grouped on", [name, column_rule(name)]) if {
	some name in query_group_by
	not column_rule(name) in groupable_rules
}

violations contains sprintf("%s is %s: it is never filtered on", [f.field, column_rule(f.field)]) if {
	some f in query_filters
	not column_rule(f.field) in groupable_rules
}

# METADATA
# title: Column rule violated
# description: >-
#   Each column's disclosure rule (after SecretFlow SCQL's column control lists) says how a
#   query may use it: plaintext (grouped, filtered, aggregated), group_key (grouped or filtered
#   on), aggregate (only inside an aggregate), never (not at all; also every column the terms
#   do not list).
# custom:
#   code: COLUMN_RULE_VIOLATED
deny contains reason(rego.metadata.rule(), detail) if {
	compute_delivery
	compute_terms
	count(violations) > 0
	detail := sprintf("the query uses columns against their rules: %s", [concat("; ", sort(violations))])
}

# ε compared in millionths, as the gateway keeps it: 1 - 0.9 is not less than 0.1.
micro(epsilon) := round(epsilon * 1000000)

budget_shortfalls contains sprintf("contract %s has %v of %v ε left", [contract.id, remaining, dp.budget_contract]) if {
	remaining := micro(dp.budget_contract - input.compute.spent.contract) / 1000000
	micro(remaining) < micro(dp.epsilon_per_query)
}

budget_shortfalls contains sprintf("subject %s has %v of %v ε left on resource %s", [input.subject.id, remaining, dp.budget_subject_resource, input.resource.id]) if {
	remaining := micro(dp.budget_subject_resource - input.compute.spent.subject_resource) / 1000000
	micro(remaining) < micro(dp.epsilon_per_query)
}

# METADATA
# title: Privacy budget exhausted
# description: >-
#   Each compute release spends the query's ε from the contract's budget and from the
#   consumer's budget on the resource (across all its contracts). When either has less left
#   than one query needs, compute is refused: repeating a query never averages the noise away.
# custom:
#   code: PRIVACY_BUDGET_EXHAUSTED
deny contains reason(rego.metadata.rule(), detail) if {
	compute_delivery
	count(budget_shortfalls) > 0
	detail := sprintf("the privacy budget is spent: %s; this query needs %v ε", [concat("; ", sort(budget_shortfalls)), dp.epsilon_per_query])
}

# ---------------------------------------------------------------------------------------------
# Obligations: ε per query and the budgets, by the grade of what the query reads (就高从严).

# The privacy tier of a compute exchange: the exposed grade, raised to L4 when a field read
# holds sensitive personal information (flagged, or every field of a resource flagged
# sensitive that flags none: field_sensitive).
touches_sensitive if {
	some f in exposed_fields
	field_sensitive(f)
}

dp_tier := "important" if {
	exposed_grade in {"important", "core"}
} else := "L4" if {
	touches_sensitive
} else := exposed_level

dp_by_tier := {
	"important": {"epsilon_per_query": 0.1, "budget_contract": 1, "budget_subject_resource": 1},
	"L4": {"epsilon_per_query": 0.25, "budget_contract": 2.5, "budget_subject_resource": 2.5},
	"L3": {"epsilon_per_query": 0.5, "budget_contract": 5, "budget_subject_resource": 5},
	"L2": {"epsilon_per_query": 1, "budget_contract": 10, "budget_subject_resource": 10},
	"L1": {"epsilon_per_query": 1, "budget_contract": 20, "budget_subject_resource": 20},
}

# null for api and file; the strictest tier when the level is unknown.
dp := dp_by_tier[dp_tier] if {
	compute_delivery
} else := dp_by_tier.important if {
	compute_delivery
} else := null
