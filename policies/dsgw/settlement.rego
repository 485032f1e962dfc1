# METADATA
# title: Settlement refunds
# description: >-
#   Decides whether a participant may refund a consumer part of a closed invoice (for a
#   delivery it settled, or for the invoice as a whole): the contract must exist and be
#   invoiced, the refunder must be the contract's merchant (its provider) or the platform
#   admin, and the amount never more than the invoice charged net of its earlier refunds.
#   specs/settlement.md §11.
# schemas:
#   - input:
#       type: object
#       required: [now, action, actor, contract, invoice, amount_fen]
#       properties:
#         now: {type: string}
#         action: {type: string}
#         actor:
#           type: object
#           required: [id, status, roles]
#           properties:
#             id: {type: string}
#             status: {type: string}
#             roles: {type: array, items: {type: string}}
#         contract:
#           type: [object, "null"]
#           required: [id, provider, consumer]
#           properties:
#             id: {type: string}
#             provider: {type: string}
#             consumer: {type: string}
#         invoice:
#           type: [object, "null"]
#           required: [id, total_fen, refunded_fen]
#           properties:
#             id: {type: string}
#             total_fen: {type: integer}
#             refunded_fen: {type: integer}
#         amount_fen: {type: integer}
package dsgw.settlement

# METADATA
# title: Refund decision
# entrypoint: true
default decision := {
	"allow": false, "reasons": [{
		"code": "INPUT_INVALID",
		"title": "Input invalid",
		"detail": "the policy could not evaluate this input",
	}],
	"obligations": {},
}

decision := {"allow": count(reasons) == 0, "reasons": reasons, "obligations": {}} if input.action == "refund"

reasons := [r | some code in sort({d.code | some d in deny}); some r in deny; r.code == code]

reason(annotation, detail) := {"code": annotation.custom.code, "title": annotation.title, "detail": detail}

# METADATA
# title: Participant not active
# custom:
#   code: SUBJECT_INACTIVE
deny contains reason(rego.metadata.rule(), sprintf("participant %s is %s", [input.actor.id, input.actor.status])) if {
	input.actor.status != "active"
}

# METADATA
# title: Unknown contract
# custom:
#   code: UNKNOWN_CONTRACT
deny contains reason(rego.metadata.rule(), "no such contract") if {
	not is_object(input.contract)
}

# METADATA
# title: Not the merchant
# custom:
#   code: NOT_THE_MERCHANT
deny contains reason(rego.metadata.rule(), sprintf("participant %s is neither the contract's merchant %s nor the platform admin", [input.actor.id, input.contract.provider])) if {
	is_object(input.contract)
	not may_refund
}

may_refund if input.actor.id == input.contract.provider

may_refund if "admin" in input.actor.roles

# METADATA
# title: Not invoiced
# custom:
#   code: NOT_INVOICED
deny contains reason(rego.metadata.rule(), "nothing was charged yet: a refund is of a closed invoice") if {
	is_object(input.contract)
	not is_object(input.invoice)
}

# METADATA
# title: Refund above the charge
# custom:
#   code: OVER_REFUND
deny contains reason(rego.metadata.rule(), sprintf("invoice %s charged %d fen, %d refunded already: at most %d fen can be refunded, not %d", [input.invoice.id, input.invoice.total_fen, input.invoice.refunded_fen, refundable, input.amount_fen])) if {
	is_object(input.invoice)
	input.amount_fen > refundable
}

refundable := input.invoice.total_fen - input.invoice.refunded_fen

# METADATA
# title: Refund amount invalid
# custom:
#   code: AMOUNT_INVALID
deny contains reason(rego.metadata.rule(), sprintf("a refund is of at least 1 fen, not %d", [input.amount_fen])) if {
	input.amount_fen < 1
}
