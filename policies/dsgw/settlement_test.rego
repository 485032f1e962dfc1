package dsgw.settlement_test

import data.dsgw.settlement

ok := {
	"now": "2026-12-02T00:00:00Z",
	"action": "refund",
	"actor": {"id": "prt_m", "status": "active", "roles": ["merchant"]},
	"contract": {"id": "ctr_1", "provider": "prt_m", "consumer": "prt_c"},
	"invoice": {"id": "inv_2026-11_ctr_1", "total_fen": 1145, "refunded_fen": 145},
	"amount_fen": 1000,
}

codes(d) := {r.code | some r in d.reasons}

test_the_merchant_refunds_up_to_what_is_left_of_the_charge if {
	d := settlement.decision with input as ok
	d.allow
	d.reasons == []
}

test_the_admin_may_refund if {
	d := settlement.decision with input as object.union(ok, {"actor": {"id": "prt_a", "status": "active", "roles": ["admin"]}})
	d.allow
}

test_a_fen_more_than_is_left_is_an_over_refund if {
	d := settlement.decision with input as object.union(ok, {"amount_fen": 1001})
	not d.allow
	codes(d) == {"OVER_REFUND"}
}

test_the_consumer_is_not_the_merchant if {
	d := settlement.decision with input as object.union(ok, {"actor": {"id": "prt_c", "status": "active", "roles": ["consumer"]}})
	codes(d) == {"NOT_THE_MERCHANT"}
}

test_an_unknown_contract_is_refused if {
	d := settlement.decision with input as object.union(ok, {"contract": null, "invoice": null})
	codes(d) == {"UNKNOWN_CONTRACT"}
}

test_a_contract_never_invoiced_has_nothing_to_refund if {
	d := settlement.decision with input as object.union(ok, {"invoice": null})
	codes(d) == {"NOT_INVOICED"}
}

test_a_suspended_merchant_and_a_zero_amount_are_refused if {
	d := settlement.decision with input as object.union(ok, {"actor": {"id": "prt_m", "status": "suspended", "roles": ["merchant"]}, "amount_fen": 0})
	codes(d) == {"AMOUNT_INVALID", "SUBJECT_INACTIVE"}
}

test_another_action_is_input_invalid if {
	d := settlement.decision with input as object.union(ok, {"action": "exchange"})
	not d.allow
	codes(d) == {"INPUT_INVALID"}
}
