package dsgw.federation_test

import data.dsgw.federation

ok := {
	"now": "2026-01-01T00:00:00Z",
	"action": "federation",
	"step": "negotiate",
	"subject": {"id": "prt_a", "status": "active", "roles": ["consumer"]},
	"peer": {"id": "https://a.example", "status": "active", "account": "prt_x"},
}

codes(d) := {r.code | some r in d.reasons}

test_an_active_consumer_with_an_account_at_an_active_peer_is_allowed if {
	d := federation.decision with input as ok
	d.allow
	d.reasons == []
}

test_a_suspended_peer_is_refused if {
	d := federation.decision with input as object.union(ok, {"peer": {"id": "https://a.example", "status": "suspended", "account": "prt_x"}})
	not d.allow
	codes(d) == {"PEER_INACTIVE"}
}

test_no_account_at_the_peer_is_refused if {
	d := federation.decision with input as object.union(ok, {"peer": {"id": "https://a.example", "status": "active", "account": null}})
	codes(d) == {"PEER_ACCOUNT_MISSING"}
}

test_an_inactive_subject_without_the_consumer_role_is_refused_for_both if {
	d := federation.decision with input as object.union(ok, {"subject": {"id": "prt_a", "status": "suspended", "roles": ["merchant"]}})
	codes(d) == {"ROLE_MISSING", "SUBJECT_INACTIVE"}
}

test_another_action_is_input_invalid if {
	d := federation.decision with input as object.union(ok, {"action": "exchange"})
	not d.allow
	codes(d) == {"INPUT_INVALID"}
}

test_a_counter_offer_is_decided_as_every_step if {
	federation.decision.allow with input as object.union(ok, {"step": "counter"})
	d := federation.decision with input as object.union(ok, {"step": "counter", "peer": {"id": "https://a.example", "status": "suspended", "account": "prt_x"}})
	codes(d) == {"PEER_INACTIVE"}
}
