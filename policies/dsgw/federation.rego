# METADATA
# title: Federation, consumer side
# description: >-
#   Decides whether this gateway may act at a peer gateway (over DSP) for one of its own
#   participants: read the peer's catalogue, negotiate, accept or counter an offer, verify, terminate,
#   transfer, suspend or complete a transfer, or pull. The subject must be active and a consumer, the peer active, and the
#   subject must have an account there (the participant id the peer knows it by). specs/dsp.md, Consumer side.
# schemas:
#   - input:
#       type: object
#       required: [now, action, step, subject, peer]
#       properties:
#         now: {type: string}
#         action: {type: string}
#         step: {type: string, enum: [catalogue, negotiate, accept, counter, verify, terminate, transfer, suspend, complete, pull]}
#         subject:
#           type: object
#           required: [id, status, roles]
#           properties:
#             id: {type: string}
#             status: {type: string}
#             roles: {type: array, items: {type: string}}
#         peer:
#           type: object
#           required: [id, status, account]
#           properties:
#             id: {type: string}
#             status: {type: string}
#             account: {type: [string, "null"]}
package dsgw.federation

# METADATA
# title: Federation decision
# entrypoint: true
default decision := {
	"allow": false, "reasons": [{
		"code": "INPUT_INVALID",
		"title": "Input invalid",
		"detail": "the policy could not evaluate this input",
	}],
	"obligations": {},
}

decision := {"allow": count(reasons) == 0, "reasons": reasons, "obligations": {}} if input.action == "federation"

reasons := [r | some code in sort({d.code | some d in deny}); some r in deny; r.code == code]

reason(annotation, detail) := {"code": annotation.custom.code, "title": annotation.title, "detail": detail}

# METADATA
# title: Participant not active
# custom:
#   code: SUBJECT_INACTIVE
deny contains reason(rego.metadata.rule(), sprintf("participant %s is %s", [input.subject.id, input.subject.status])) if {
	input.subject.status != "active"
}

# METADATA
# title: Not a consumer
# custom:
#   code: ROLE_MISSING
deny contains reason(rego.metadata.rule(), sprintf("participant %s has no consumer role", [input.subject.id])) if {
	not consumer
}

consumer if "consumer" in input.subject.roles

# METADATA
# title: Peer not active
# custom:
#   code: PEER_INACTIVE
deny contains reason(rego.metadata.rule(), sprintf("peer %s is %s", [input.peer.id, input.peer.status])) if {
	input.peer.status != "active"
}

# METADATA
# title: No account at the peer
# custom:
#   code: PEER_ACCOUNT_MISSING
deny contains reason(rego.metadata.rule(), sprintf("participant %s has no account at peer %s", [input.subject.id, input.peer.id])) if {
	not has_account
}

has_account if {
	is_string(input.peer.account)
	input.peer.account != ""
}
