"""Refunds end to end (specs/settlement.md §11): the merchant refunds part of a closed invoice
(named, or through a delivery it settled), the policy refuses over-refunds, strangers and
unknown contracts (each refusal recorded), the next close credits the refund (the split
reversed, the voucher part back to its issuer first), and the auditor recomputes it; a
ceiling can be removed."""

import json

import pytest

from gateway.cli import main as dsgw
from gateway.products import cli as lifecycle_cli
from tests.e2e import test_settlement as base
from tests.e2e.test_settlement import _entries, _export, _refresh, _set_ceiling, _tamper_where

november = base.november  # the fixtures of the settlement tests: a priced November
vouchers = base.vouchers


def _refund(party, contract_id: str, amount_fen: int, **target):
    target = target or {"invoice_id": f"inv_2026-11_{contract_id}"}
    body = {"contract_id": contract_id, "amount_fen": amount_fen, "reason": "bad data", **target}
    return party.call("POST", "/settlement/refunds", json=body)


def _december(world, frozen) -> dict:
    frozen.move_to("2027-01-01T00:00:00Z")
    _refresh(world)
    closed = world.admin.call("POST", "/settlement/periods/2026-12/close")
    assert closed.status_code == 200, closed.text
    return closed.json()


def test_a_merchant_refunds_part_of_a_closed_invoice_and_the_next_close_credits_it(
    november, gateway
):
    world, contract, frozen = november
    world.admin.call("POST", "/settlement/periods/2026-11/close")
    made = _refund(world.merchant, contract["id"], 145)
    assert made.status_code == 201, made.text
    refund = made.json()
    assert refund["refundable_fen"] == 1145 - 145 and refund["credit_note_id"] is None
    [entry] = [e for e in _entries(gateway) if e["type"] == "settlement.refund"]
    assert entry["data"]["amount_fen"] == 145 and entry["data"]["by"] == world.merchant.id
    december = _december(world, frozen)
    note_id = f"crn_2026-12_{refund['id']}"
    assert december["credit_notes"] == [note_id] and december["refunded_fen"] == 145
    assert december["debits_fen"] == december["credits_fen"]
    note = world.consumer.call("GET", f"/settlement/credit-notes/{note_id}").json()
    assert note["consumer_fen"] == 145 and note["invoice"] == f"inv_2026-11_{contract['id']}"
    # The invoice's split 458/573/114 of 1145, reversed for 145 fen by the largest remainder.
    assert {r: s["amount_fen"] for r, s in note["shares"].items()} == {
        "holder": 58, "operator": 73, "platform": 14,
    }  # fmt: skip
    holder = world.holder.call("GET", f"/settlement/statements/stm_2026-12_{world.holder.id}")
    lines = holder.json()["statement"]["lines"]
    assert {"invoice": note_id, "contract": contract["id"], "role": "holder",
            "amount_fen": -58} in lines  # fmt: skip
    page = world.holder.call(
        "GET", f"/settlement/statements/stm_2026-12_{world.holder.id}",
        headers={"Accept": "text/html"},
    )  # fmt: skip
    assert "-¥0.58" in page.text  # a negative line reads as one
    consumer = world.consumer.call(
        "GET", f"/settlement/statements/stm_2026-12_{world.consumer.id}"
    ).json()["statement"]
    assert consumer["owes_fen"] == -145  # money back
    read = world.merchant.call("GET", f"/settlement/refunds/{refund['id']}").json()
    assert read["credit_note_id"] == note_id
    assert world.auditor.call("GET", f"/settlement/credit-notes/{note_id}").status_code == 200
    stranger = world.register("stranger", ["consumer"])
    assert stranger.call("GET", f"/settlement/credit-notes/{note_id}").status_code == 404
    assert stranger.call("GET", f"/settlement/refunds/{refund['id']}").status_code == 404


def test_a_delivery_is_refunded_through_the_invoice_that_settled_it(november, gateway):
    world, contract, _ = november
    world.admin.call("POST", "/settlement/periods/2026-11/close")
    delivered = next(e for e in _entries(gateway) if e["type"] == "exchange.delivered")
    made = _refund(world.admin, contract["id"], 50, delivery_id=delivered["data"]["decision"])
    assert made.status_code == 201, made.text
    assert made.json()["invoice_id"] == f"inv_2026-11_{contract['id']}"
    assert made.json()["delivery_id"] == delivered["data"]["decision"]
    # A delivery of December is not invoiced yet: nothing was charged for it.
    later = world.pull(contract["id"])
    assert later.status_code == 200
    refused = _refund(world.merchant, contract["id"], 1, delivery_id=later.json()["exchange_id"])
    assert refused.status_code == 409 and refused.json()["type"].endswith(":not-invoiced")
    unknown = _refund(world.merchant, contract["id"], 1, delivery_id="dec_nosuchthing")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


def test_refusals_are_problems_and_recorded_over_refund_not_the_merchant_unknown_contract(
    november, gateway
):
    world, contract, _ = november
    before = world.merchant.call(
        "POST", "/settlement/refunds",
        json={"contract_id": contract["id"], "invoice_id": f"inv_2026-11_{contract['id']}",
              "amount_fen": 1, "reason": "early"},
    )  # fmt: skip
    assert before.status_code == 409 and before.json()["type"].endswith(":not-invoiced")
    world.admin.call("POST", "/settlement/periods/2026-11/close")
    assert _refund(world.merchant, contract["id"], 1000).status_code == 201
    over = _refund(world.merchant, contract["id"], 146)  # 145 fen left of 1145
    assert over.status_code == 409 and over.json()["type"] == "urn:dsgw:problem:over-refund"
    assert over.headers["content-type"] == "application/problem+json"
    assert "at most 145 fen" in over.json()["detail"]
    consumer = _refund(world.consumer, contract["id"], 1)
    assert consumer.status_code == 403
    assert consumer.json()["type"] == "urn:dsgw:problem:not-the-merchant"
    unknown = _refund(world.merchant, "ctr_nosuchcontract", 1)
    assert unknown.status_code == 404
    assert unknown.json()["type"] == "urn:dsgw:problem:unknown-contract"
    for bad in ({"amount_fen": 0}, {"amount_fen": -1}, {"amount_fen": "1"},
                {"invoice_id": None}, {"delivery_id": "dec_x"}, {"extra": 1},
                {"invoice_id": "inv_" + "x" * 300}):  # fmt: skip
        body = {"contract_id": contract["id"], "invoice_id": f"inv_2026-11_{contract['id']}",
                "amount_fen": 1, "reason": "r", **bad}  # fmt: skip
        response = world.merchant.call("POST", "/settlement/refunds", json=body)
        assert response.status_code == 422, bad
    refused = [e["data"] for e in _entries(gateway) if e["type"] == "settlement.refund-refused"]
    assert [(r["problem"], r["status"], r["by"]) for r in refused] == [
        ("not-invoiced", 409, world.merchant.id),
        ("over-refund", 409, world.merchant.id),
        ("not-the-merchant", 403, world.consumer.id),
        ("unknown-contract", 404, world.merchant.id),
    ]
    assert refused[1]["reasons"] == ["OVER_REFUND"] and refused[1]["amount_fen"] == 146
    assert len([e for e in _entries(gateway) if e["type"] == "settlement.refund"]) == 1


def test_a_refund_gives_the_voucher_part_back_to_its_issuer_before_the_consumer(vouchers):
    world, issuer, contract, (usable, _, _), frozen = vouchers
    world.admin.call("POST", "/settlement/periods/2026-11/close")  # 500 voucher + 645 consumer
    assert _refund(world.merchant, contract["id"], 600).status_code == 201
    december = _december(world, frozen)
    [note_id] = december["credit_notes"]
    note = issuer.call("GET", f"/settlement/credit-notes/{note_id}").json()
    assert note["vouchers"] == [{"voucher": usable, "issuer": issuer.id, "amount_fen": 500}]
    assert note["voucher_fen"] == 500 and note["consumer_fen"] == 100
    refund_posting = next(p for p in note["journal"] if p["posting"].endswith("/refund"))
    credits = {x["account"]: x["credit_fen"] for x in refund_posting["lines"] if x["credit_fen"]}
    assert credits == {
        f"receivable:{world.consumer.id}": 100,
        f"voucher_receivable:{issuer.id}": 500,
    }
    bureau = issuer.call("GET", f"/settlement/statements/stm_2026-12_{issuer.id}").json()
    assert bureau["statement"]["owes_fen"] == -500


def test_the_auditor_recomputes_a_refund_and_a_tampered_one_is_a_named_mismatch(
    november, settings, tmp_path, capsys
):
    world, contract, frozen = november
    world.admin.call("POST", "/settlement/periods/2026-11/close")
    assert _refund(world.merchant, contract["id"], 145).status_code == 201
    _december(world, frozen)
    out = tmp_path / "export"
    _export(settings, out)
    capsys.readouterr()
    assert dsgw(["settlement", "verify", str(out), "--period", "2026-12"]) == 0
    _tamper_where(
        out, lambda b: b["type"] == "settlement.refund", lambda d: d.update(amount_fen=245)
    )
    capsys.readouterr()
    assert dsgw(["settlement", "verify", str(out), "--period", "2026-12"]) == 1
    printed = [x for x in capsys.readouterr().out.splitlines() if x.startswith("MISMATCH")]
    assert any("credit note" in x and "amount_fen" in x for x in printed), printed


def test_the_refund_command_refunds_as_the_merchant(
    november, settings, monkeypatch, client, capsys
):
    world, contract, _ = november
    world.admin.call("POST", "/settlement/periods/2026-11/close")
    monkeypatch.setattr(lifecycle_cli, "client_factory", lambda **_: client)
    key = settings.state_dir / "merchant.jwk"
    key.write_text(json.dumps(world.merchant.key.private_jwk()))
    common = ["--state", str(settings.state_dir), "settlement", "refund", "--contract",
              contract["id"], "--url", "http://localhost", "--as", world.merchant.id,
              "--key", str(key), "--reason", "outage on 12 November"]  # fmt: skip
    invoice = ["--invoice", f"inv_2026-11_{contract['id']}"]
    capsys.readouterr()
    assert dsgw([*common, *invoice, "--amount-fen", "45"]) == 0
    assert "1100 fen left to refund" in capsys.readouterr().out
    assert dsgw([*common, *invoice, "--amount-fen", "1101"]) == 1
    assert "HTTP 409 urn:dsgw:problem:over-refund" in capsys.readouterr().err


def test_a_ceiling_removed_rules_no_more(november):
    world, contract, _ = november
    assert _set_ceiling(world, world.holder, 500, from_period="2026-11").status_code == 200
    removed = _set_ceiling(world, world.holder, None, from_period="2026-11")
    assert removed.status_code == 200, removed.text
    assert removed.json()["ceiling_fen"] is None
    world.admin.call("POST", "/settlement/periods/2026-11/close")
    operator = world.merchant
    [record] = operator.call("GET", f"/settlement/statements/stm_2026-11_{operator.id}").json()[
        "statement"
    ]["ceilings"]
    assert record["ceiling_fen"] is None and record["income_fen"] == 573
    assert record["excess_fen"] == 0 and record["carried_out_fen"] == 0


@pytest.mark.parametrize("bad", [{}, {"ceiling_fen": -1}, {"ceiling_fen": None, "x": 1}])
def test_a_ceiling_must_be_named_or_null(november, bad):
    world, _, _ = november
    response = world.holder.call(
        "PUT", f"/settlement/authorisations/{world.authorisation['id']}/ceiling", json=bad
    )
    assert response.status_code == 422
