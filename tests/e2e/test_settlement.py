"""Settlement end to end: each price model rated from the ledger, the split, idempotent close,
usage after a close in the next period, signed statements, and the auditor's recomputation
from an export catching a tampered one."""

import json

import pytest
from freezegun import freeze_time

from gateway.cli import main as dsgw
from gateway.products import cli as lifecycle_cli
from ledger import b64url_decode, canonical_json, public_key_from_jwk
from ledger.keys import verify_signature
from tests.e2e.world import PURPOSE, build_world

PRICED = {
    "purposes": [PURPOSE],
    "term": "P90D",
    "price_fen": 1000,
    "price": {
        "per_call_fen": 7,
        "per_1000_rows_fen": 333,
        "tiers": {
            "metric": "calls",
            "bands": [{"up_to": 1, "unit_fen": 100}, {"up_to": None, "unit_fen": 10}],
        },
    },
}


def _refresh(world) -> None:
    for party in (world.admin, world.holder, world.merchant, world.consumer, world.auditor):
        party._token = None


def _export(settings, out) -> None:
    args = ["--state", str(settings.state_dir), "ledger", "export", "--out", str(out),
            "--database-url", settings.resolved_database_url]  # fmt: skip
    assert dsgw(args) == 0


def _entries(gateway) -> list[dict]:
    from ledger import store

    with gateway.engine.connect() as conn:
        return [e.body for e in store.iter_entries(conn)]


@pytest.fixture
def november(client, settings, gateway):
    """A contract finalised in November 2026 under every price model of PRICED, used 3 times
    (5 rows each), and the clock just after November's end."""
    with freeze_time("2026-11-10T09:00:00Z") as frozen:
        world = build_world(client, settings.state_dir)
        product = world.publish(offers=[PRICED])
        contract = world.contract(product["offers"][0]["id"])
        for _ in range(3):
            assert world.pull(contract["id"]).status_code == 200
        frozen.move_to("2026-12-01T00:00:01Z")
        _refresh(world)
        yield world, contract, frozen


def test_each_price_model_is_rated_from_the_ledger_and_the_split_adds_up(november, gateway):
    world, contract, _ = november
    closed = world.admin.call("POST", "/settlement/periods/2026-11/close")
    assert closed.status_code == 200, closed.text
    period = closed.json()
    assert period["already_closed"] is False
    invoice_id = f"inv_2026-11_{contract['id']}"
    assert period["invoices"] == [invoice_id]
    invoice = world.consumer.call("GET", f"/settlement/invoices/{invoice_id}").json()
    assert {line["item"]: line["amount_fen"] for line in invoice["lines"]} == {
        "flat": 1000,  # once: the contract was finalised in November
        "per_call": 21,  # 3 calls × 7
        "per_1000_rows": 4,  # 15 rows × 333 ÷ 1000, rounded down
        "tiers": 120,  # 1 call × 100 + 2 calls × 10
    }
    assert invoice["usage"]["calls"] == 3 and invoice["usage"]["rows"] == 15
    assert invoice["total_fen"] == 1145 == period["invoiced_fen"]
    # 40/50/10 of 1145 fen: 458, 572.5, 114.5; the leftover fen goes to the operator (tie).
    assert {role: s["amount_fen"] for role, s in invoice["shares"].items()} == {
        "holder": 458,
        "operator": 573,
        "platform": 114,
    }
    assert period["debits_fen"] == period["credits_fen"] == 2 * 1145


def test_statements_are_signed_with_the_ledger_key_and_their_hash_is_on_the_ledger(
    november, gateway
):
    world, contract, _ = november
    world.admin.call("POST", "/settlement/periods/2026-11/close")
    statement_id = f"stm_2026-11_{world.holder.id}"
    read = world.holder.call("GET", f"/settlement/statements/{statement_id}")
    assert read.status_code == 200, read.text
    body = read.json()
    assert body["statement"]["earns_fen"] == 458 and body["statement"]["owes_fen"] == 0
    key = public_key_from_jwk(gateway.signer.public_jwk())
    assert body["kid"] == gateway.signer.kid
    assert verify_signature(key, b64url_decode(body["sig"]), canonical_json(body["statement"]))
    [closed] = [e for e in _entries(gateway) if e["type"] == "settlement.closed"]
    assert {"statement": statement_id, "party": world.holder.id, "hash": body["hash"]} in (
        closed["data"]["statements"]
    )
    page = world.holder.call(
        "GET", f"/settlement/statements/{statement_id}", headers={"Accept": "text/html"}
    )
    assert page.headers["content-type"].startswith("text/html") and "¥4.58" in page.text
    # Strangers learn nothing of it; the consumer reads its own statement only.
    assert world.consumer.call("GET", f"/settlement/statements/{statement_id}").status_code == 404
    assert world.auditor.call("GET", f"/settlement/statements/{statement_id}").status_code == 200


def test_closing_a_period_twice_changes_nothing(november, gateway):
    world, _, _ = november
    first = world.admin.call("POST", "/settlement/periods/2026-11/close").json()
    size = len(_entries(gateway))
    again = world.admin.call("POST", "/settlement/periods/2026-11/close")
    assert again.status_code == 200
    assert again.json() == {**first, "already_closed": True}
    assert len(_entries(gateway)) == size


def test_usage_after_a_close_falls_in_the_next_period(november, gateway):
    world, contract, frozen = november
    world.admin.call("POST", "/settlement/periods/2026-11/close")
    assert world.pull(contract["id"]).status_code == 200  # 1 December
    early = world.admin.call("POST", "/settlement/periods/2026-12/close")
    assert early.status_code == 409 and early.json()["type"] == "urn:dsgw:problem:period-open"
    frozen.move_to("2027-01-01T00:00:00Z")
    _refresh(world)
    december = world.admin.call("POST", "/settlement/periods/2026-12/close").json()
    invoice = world.consumer.call("GET", f"/settlement/invoices/{december['invoices'][0]}").json()
    assert invoice["usage"]["calls"] == 1 and invoice["usage"]["finalised"] == 0
    # 1 call: 7 + 5 rows × 333 ÷ 1000 = 1 + tiers 1 call × 100 (its own period's first band).
    assert invoice["total_fen"] == 7 + 1 + 100
    out_of_order = world.admin.call("POST", "/settlement/periods/2026-10/close")
    assert out_of_order.status_code == 409
    assert out_of_order.json()["type"] == "urn:dsgw:problem:period-out-of-order"


def test_only_the_admin_closes_and_a_bad_period_is_a_problem(november):
    world, _, _ = november
    refused = world.merchant.call("POST", "/settlement/periods/2026-11/close")
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    for bad in ("2026-13", "2026-1", "x" * 300, "2026-11x"):
        response = world.admin.call("POST", f"/settlement/periods/{bad}/close")
        assert response.status_code == 422, bad
        assert response.headers["content-type"] == "application/problem+json"
    assert world.admin.call("GET", "/settlement/periods/2026-11").status_code == 404


def test_the_auditor_recomputes_a_period_from_the_export_alone(
    november, gateway, settings, tmp_path, capsys
):
    world, _, frozen = november
    world.admin.call("POST", "/settlement/periods/2026-11/close")
    out = tmp_path / "export"
    _export(settings, out)
    capsys.readouterr()
    assert dsgw(["settlement", "verify", str(out), "--period", "2026-11"]) == 0
    assert "MATCHES" in capsys.readouterr().out
    assert dsgw(["settlement", "verify", str(out), "--period", "2026-10"]) == 1  # never closed
    assert dsgw(["settlement", "verify", str(out), "--period", "2026-13"]) == 2  # no such month
    assert dsgw(["settlement", "verify", str(tmp_path / "nowhere"), "--period", "2026-11"]) == 2


def _tamper(folder, entry_type: str, change) -> None:
    path = folder / "entries.jsonl"
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        entry = json.loads(line)
        if entry["body"]["type"] == entry_type:
            change(entry["body"]["data"])
            lines[i] = canonical_json(entry).decode()
            break
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("entry_type", "change", "named"),
    [
        ("settlement.invoice", lambda d: d.update(total_fen=d["total_fen"] + 100), "total_fen"),
        ("settlement.statement", lambda d: d["statement"].update(earns_fen=1), "earns_fen"),
        ("exchange.delivered", lambda d: d.update(rows=d["rows"] + 1000), "per_1000_rows"),
    ],
)
def test_a_tampered_statement_or_usage_fails_the_recomputation_line_by_line(
    november, settings, tmp_path, capsys, entry_type, change, named
):
    world, _, _ = november
    world.admin.call("POST", "/settlement/periods/2026-11/close")
    out = tmp_path / "export"
    _export(settings, out)
    _tamper(out, entry_type, change)
    capsys.readouterr()
    assert dsgw(["settlement", "verify", str(out), "--period", "2026-11"]) == 1
    printed = capsys.readouterr().out
    assert "MISMATCH ledger export verifies" in printed  # the chain breaks at the change
    assert any(named in line for line in printed.splitlines() if line.startswith("MISMATCH"))
    assert "DOES NOT MATCH" in printed


def test_offers_are_priced_within_the_fee_cap_and_public_interest_is_free(client, settings):
    world = build_world(client, settings.state_dir)
    over = {**PRICED, "price": {"per_call_fen": 500_001}}
    response = world.merchant.call(
        "POST",
        "/products",
        json={"name": "p", "resource_id": world.resource["id"],
              "authorisation_id": world.authorisation["id"], "delivery_modes": ["api"],
              "offers": [over]},
    )  # fmt: skip
    assert response.status_code == 422 and "fee cap" in response.json()["detail"]
    public = world.merchant.call(
        "POST",
        "/products",
        json={"name": "p", "resource_id": world.resource["id"], "public_interest": True,
              "authorisation_id": world.authorisation["id"], "delivery_modes": ["api"],
              "offers": [{**PRICED, "price_fen": 0}]},
    )  # fmt: skip
    assert public.status_code == 422 and "public-interest" in public.json()["detail"]
    bad_tiers = {**PRICED, "price": {"tiers": {"metric": "calls", "bands": [
        {"up_to": 5, "unit_fen": 1}]}}}  # fmt: skip
    refused = world.merchant.call(
        "POST",
        "/products",
        json={"name": "p", "resource_id": world.resource["id"],
              "authorisation_id": world.authorisation["id"], "delivery_modes": ["api"],
              "offers": [bad_tiers]},
    )  # fmt: skip
    assert refused.status_code == 422


# --- data vouchers (数据券) -------------------------------------------------------------------


def _issue(issuer, enterprise_id: str, **terms):
    body = {"enterprise_id": enterprise_id, "amount_fen": 500, "not_after": "2026-12-31T00:00:00Z",
            **terms}  # fmt: skip
    return issuer.call("POST", "/settlement/vouchers", json=body)


@pytest.fixture
def vouchers(client, settings):
    """November's contract (as `november`) with three vouchers of a government body for the
    consumer: one usable (500 fen, up to half an invoice), one for important data only, one
    that expired in October."""
    with freeze_time("2026-11-10T09:00:00Z") as frozen:
        world = build_world(client, settings.state_dir)
        issuer = world.register("bureau", ["voucher_issuer"])
        usable = _issue(issuer, world.consumer.id, max_share_percent=50)
        assert usable.status_code == 201, usable.text
        important = _issue(issuer, world.consumer.id, grades=["important"], amount_fen=9999)
        expired = _issue(issuer, world.consumer.id, not_before="2026-10-01T00:00:00Z",
                         not_after="2026-10-31T00:00:00Z")  # fmt: skip
        product = world.publish(offers=[PRICED])
        contract = world.contract(product["offers"][0]["id"])
        for _ in range(3):
            assert world.pull(contract["id"]).status_code == 200
        frozen.move_to("2026-12-01T00:00:01Z")
        _refresh(world)
        issuer._token = None
        ids = [r.json()["id"] for r in (usable, important, expired)]
        yield world, issuer, contract, ids, frozen


def test_a_voucher_covers_its_share_of_an_invoice_and_its_issuer_owes_it(vouchers, gateway):
    world, issuer, contract, (usable, important, expired), _ = vouchers
    closed = world.admin.call("POST", "/settlement/periods/2026-11/close").json()
    assert closed["vouchers_fen"] == 500
    invoice = world.consumer.call("GET", f"/settlement/invoices/{closed['invoices'][0]}").json()
    assert invoice["total_fen"] == 1145
    assert invoice["vouchers"] == [{"voucher": usable, "issuer": issuer.id, "amount_fen": 500}]
    assert invoice["consumer_due_fen"] == 645
    assert {r["voucher"]: r["reason"] for r in invoice["voucher_refusals"]} == {
        expired: "expired",
        important: "ineligible-product",
    }
    consumer = world.consumer.call("GET", f"/settlement/statements/stm_2026-11_{world.consumer.id}")
    assert consumer.json()["statement"]["owes_fen"] == 645
    bureau = issuer.call("GET", f"/settlement/statements/stm_2026-11_{issuer.id}").json()
    assert bureau["statement"]["owes_fen"] == 500
    assert issuer.call("GET", f"/settlement/vouchers/{usable}").json()["balance_fen"] == 0
    assert issuer.call("GET", f"/settlement/vouchers/{expired}").json()["status"] == "expired"
    types = [e["type"] for e in _entries(gateway)]
    assert types.count("voucher.issued") == 3 and types.count("voucher.redeemed") == 1
    assert types.count("voucher.expired") == 1  # October's; the others run to 31 December
    charge = next(p for p in invoice["journal"] if p["posting"].endswith("/charge"))
    debits = {x["account"]: x["debit_fen"] for x in charge["lines"] if x["debit_fen"]}
    assert debits == {
        f"receivable:{world.consumer.id}": 645,
        f"voucher_receivable:{issuer.id}": 500,
    }


def test_a_spent_voucher_is_refused_as_exhausted_and_the_books_recompute(
    vouchers, settings, tmp_path, capsys
):
    world, _, contract, (usable, _, _), frozen = vouchers
    world.admin.call("POST", "/settlement/periods/2026-11/close")
    assert world.pull(contract["id"]).status_code == 200
    frozen.move_to("2027-01-01T00:00:00Z")
    _refresh(world)
    december = world.admin.call("POST", "/settlement/periods/2026-12/close").json()
    invoice = world.consumer.call("GET", f"/settlement/invoices/{december['invoices'][0]}").json()
    assert invoice["vouchers"] == [] and invoice["consumer_due_fen"] == invoice["total_fen"]
    assert {"voucher": usable, "reason": "exhausted"} in invoice["voucher_refusals"]
    out = tmp_path / "export"
    _export(settings, out)
    capsys.readouterr()
    for period in ("2026-11", "2026-12"):
        assert dsgw(["settlement", "verify", str(out), "--period", period]) == 0, period


def test_only_a_voucher_issuer_issues_and_only_to_a_consumer(vouchers):
    world, issuer, _, _, _ = vouchers
    refused = _issue(world.holder, world.consumer.id)
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert _issue(issuer, world.holder.id).status_code == 422  # not a consumer
    assert _issue(issuer, world.consumer.id, amount_fen=0).status_code == 422
    assert _issue(issuer, world.consumer.id, not_after="2026-11-01T00:00:00Z").status_code == 422
    assert world.merchant.call("GET", "/settlement/vouchers/vch_unknown").status_code == 404


def test_settlement_commands_close_show_and_print_a_statement(
    november, settings, monkeypatch, client, capsys
):
    world, _, _ = november
    monkeypatch.setattr(lifecycle_cli, "client_factory", lambda **_: client)
    state = ["--state", str(settings.state_dir)]
    url = ["--url", "http://localhost"]
    assert dsgw([*state, "settlement", "close", "--period", "2026-11", *url]) == 0
    assert "period 2026-11 closed" in capsys.readouterr().out
    assert dsgw([*state, "settlement", "close", "--period", "2026-11", *url]) == 0
    assert "was closed already" in capsys.readouterr().out
    assert dsgw([*state, "settlement", "show", "--period", "2026-11", *url]) == 0
    assert json.loads(capsys.readouterr().out)["invoiced_fen"] == 1145
    statement = f"stm_2026-11_{world.holder.id}"
    assert dsgw([*state, "settlement", "statement", statement, *url]) == 0
    assert json.loads(capsys.readouterr().out)["statement"]["earns_fen"] == 458
    assert dsgw([*state, "settlement", "close", "--period", "2026-12", *url]) == 1
    assert "HTTP 409 urn:dsgw:problem:period-open" in capsys.readouterr().err


# --- the holder's ceiling on the operator's income (specs/settlement.md §10) -----------------


def _set_ceiling(world, party, ceiling_fen: int, **extra):
    return party.call(
        "PUT",
        f"/settlement/authorisations/{world.authorisation['id']}/ceiling",
        json={"ceiling_fen": ceiling_fen, **extra},
    )


@pytest.fixture
def carried(november):
    """November (operator's share 573 fen) under a ceiling of 500 fen, closed; one pull on
    1 December (108 fen, operator's share 54) and December closed."""
    world, contract, frozen = november
    set_ = _set_ceiling(world, world.holder, 500, from_period="2026-11")
    assert set_.status_code == 200, set_.text
    assert world.admin.call("POST", "/settlement/periods/2026-11/close").status_code == 200
    assert world.pull(contract["id"]).status_code == 200
    frozen.move_to("2027-01-01T00:00:00Z")
    _refresh(world)
    assert world.admin.call("POST", "/settlement/periods/2026-12/close").status_code == 200
    return world, contract


def test_income_above_the_ceiling_is_deducted_from_the_next_periods_invoice_off_the_operator(
    carried,
):
    world, contract = carried
    operator = world.merchant
    november = world.consumer.call("GET", f"/settlement/invoices/inv_2026-11_{contract['id']}")
    assert november.json()["total_fen"] == 1145 and november.json()["ceiling_deduction_fen"] == 0
    [excess] = operator.call("GET", f"/settlement/statements/stm_2026-11_{operator.id}").json()[
        "statement"
    ]["ceilings"]
    assert excess["income_fen"] == 573 and excess["ceiling_fen"] == 500
    assert excess["excess_fen"] == 73 and excess["carried_out_fen"] == 73
    page = operator.call(
        "GET", f"/settlement/statements/stm_2026-11_{operator.id}", headers={"Accept": "text/html"}
    )
    assert "above the ceiling ¥0.73" in page.text  # the excess, readable by the operator
    december = world.consumer.call(
        "GET", f"/settlement/invoices/inv_2026-12_{contract['id']}"
    ).json()
    # 108 fen split 43/54/11; the carry of 73 takes the operator's whole 54, 19 is carried again.
    assert december["subtotal_fen"] == 108 and december["ceiling_deduction_fen"] == 54
    assert december["total_fen"] == 54 == december["consumer_due_fen"]
    assert {r: s["amount_fen"] for r, s in december["shares"].items()} == {
        "holder": 43, "operator": 0, "platform": 11,
    }  # fmt: skip
    [deduction] = operator.call("GET", f"/settlement/statements/stm_2026-12_{operator.id}").json()[
        "statement"
    ]["ceilings"]
    assert deduction["carried_in_fen"] == 73 and deduction["deducted_fen"] == 54
    assert deduction["excess_fen"] == 0 and deduction["carried_out_fen"] == 19
    period = world.admin.call("GET", "/settlement/periods/2026-12").json()
    assert period["ceiling_deducted_fen"] == 54 and period["ceiling_carried_fen"] == 19
    assert period["debits_fen"] == period["credits_fen"] == 2 * 54  # the journal balances


def test_only_the_authorisations_holder_sets_the_ceiling(november, gateway):
    world, _, _ = november
    refused = _set_ceiling(world, world.merchant, 1)  # the operator itself
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    for stranger in (world.consumer, world.admin):
        assert _set_ceiling(world, stranger, 1).status_code == 404
    for bad in ({"ceiling_fen": -1}, {"ceiling_fen": "1"}, {"ceiling_fen": 1, "from_period": "26"},
                {"ceiling_fen": 1, "extra": True}):  # fmt: skip
        response = world.holder.call(
            "PUT", f"/settlement/authorisations/{world.authorisation['id']}/ceiling", json=bad
        )
        assert response.status_code == 422, bad
    long = world.holder.call("PUT", f"/settlement/authorisations/auz_{'x' * 300}/ceiling",
                             json={"ceiling_fen": 1})  # fmt: skip
    assert long.status_code == 422
    assert not [e for e in _entries(gateway) if e["type"] == "settlement.ceiling-set"]
    ok = _set_ceiling(world, world.holder, 700)
    assert ok.status_code == 200 and ok.json()["from_period"] == "2026-12"  # the current month
    world.admin.call("POST", "/settlement/periods/2026-11/close")
    closed = _set_ceiling(world, world.holder, 1, from_period="2026-11")
    assert closed.status_code == 409
    assert closed.json()["type"] == "urn:dsgw:problem:period-closed"


def _tamper_where(folder, pick, change) -> None:
    path = folder / "entries.jsonl"
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        entry = json.loads(line)
        if pick(entry["body"]):
            change(entry["body"]["data"])
            lines[i] = canonical_json(entry).decode()
            break
    path.write_text("\n".join(lines) + "\n")


def _december_invoice(body: dict) -> bool:
    return body["type"] == "settlement.invoice" and body["data"]["period"] == "2026-12"


def _carry_back(data: dict) -> None:
    data["ceiling_deduction_fen"] = 0
    data["total_fen"] += 54


@pytest.mark.parametrize(
    ("pick", "change", "named"),
    [
        (_december_invoice, _carry_back, "ceiling_deduction_fen"),
        (
            lambda b: b["type"] == "settlement.ceiling-set",
            lambda d: d.update(ceiling_fen=600),
            "ceilings",
        ),
    ],
)
def test_the_auditor_recomputes_the_carry_and_a_tampered_one_is_a_named_mismatch(
    carried, settings, tmp_path, capsys, pick, change, named
):
    out = tmp_path / "export"
    _export(settings, out)
    capsys.readouterr()
    assert dsgw(["settlement", "verify", str(out), "--period", "2026-12"]) == 0
    _tamper_where(out, pick, change)
    capsys.readouterr()
    assert dsgw(["settlement", "verify", str(out), "--period", "2026-12"]) == 1
    printed = capsys.readouterr().out
    assert any(named in line for line in printed.splitlines() if line.startswith("MISMATCH"))
