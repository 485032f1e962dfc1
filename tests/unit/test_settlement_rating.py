"""ledger.settlement: the split adds up, each price model rates as specs/settlement.md says,
and the books balance for any sequence of usage and closes (hypothesis)."""

import json

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ledger import Signer
from ledger.settlement import (
    OWING,
    Books,
    SettlementError,
    balances,
    content_hash,
    period_bounds,
    rate,
    recompute,
    sign_statement,
    split,
    unbalanced,
)

USAGE = {"calls": 3, "rows": 2500, "bytes": 3_500_000, "queries": 4}


def test_split_gives_leftover_fen_to_the_largest_remainders_ties_in_party_order():
    assert split(1145, {"holder": 40, "operator": 50, "platform": 10}) == {
        "holder": 458,
        "operator": 573,
        "platform": 114,
    }
    assert split(1, {"holder": 34, "operator": 33, "platform": 33}) == {
        "holder": 1,
        "operator": 0,
        "platform": 0,
    }
    assert split(2, {"holder": 33, "operator": 34, "platform": 33}) == {
        "holder": 1,
        "operator": 1,
        "platform": 0,
    }


@given(
    amount=st.integers(min_value=0, max_value=2**53 - 1),
    cuts=st.lists(st.integers(min_value=0, max_value=100), min_size=2, max_size=2),
)
def test_split_always_adds_up_and_no_part_is_a_fen_off_its_exact_share(amount, cuts):
    low, high = sorted(cuts)
    shares = {"holder": low, "operator": high - low, "platform": 100 - high}
    parts = split(amount, shares)
    assert sum(parts.values()) == amount
    for party, pct in shares.items():
        assert amount * pct // 100 <= parts[party] <= amount * pct // 100 + 1


@pytest.mark.parametrize(
    "shares",
    [{"holder": 50, "operator": 49}, {"holder": 101, "operator": -1}, {"owner": 100}],
)
def test_split_refuses_shares_that_do_not_add_up_to_100_of_known_parties(shares):
    with pytest.raises(SettlementError):
        split(100, shares)


@pytest.mark.parametrize(
    ("price", "item", "amount"),
    [
        ({"per_call_fen": 7}, "per_call", 21),
        ({"per_1000_rows_fen": 333}, "per_1000_rows", 832),  # 2500 × 333 ÷ 1000, rounded down
        ({"per_mb_fen": 100}, "per_mb", 350),
        ({"per_query_fen": 9}, "per_query", 36),
        (
            {
                "tiers": {
                    "metric": "calls",
                    "bands": [{"up_to": 1, "unit_fen": 100}, {"up_to": None, "unit_fen": 10}],
                }
            },
            "tiers",
            120,
        ),
        (
            {
                "tiers": {
                    "metric": "rows",
                    "bands": [
                        {"up_to": 1000, "unit_fen": 500},
                        {"up_to": 2000, "unit_fen": 300},
                        {"up_to": None, "unit_fen": 100},
                    ],
                }
            },
            "tiers",
            850,  # 1000 × 500 + 1000 × 300 + 500 × 100 = 850000 per 1,000 rows
        ),
    ],
)
def test_each_price_model_rates_its_metric(price, item, amount):
    [line] = rate({"price_fen": 0, "price": price}, USAGE, flat=0)
    assert (line["item"], line["amount_fen"]) == (item, amount)


def test_flat_price_is_charged_once_per_finalisation_and_only_then():
    assert rate({"price_fen": 1000}, USAGE, flat=0) == []
    [line] = rate({"price_fen": 1000}, USAGE, flat=1)
    assert line["item"] == "flat" and line["amount_fen"] == 1000


@pytest.mark.parametrize("period", ["2026-13", "2026-00", "26-11", "2026-1", "1999-12", None])
def test_a_period_is_a_month_yyyy_mm(period):
    with pytest.raises(SettlementError):
        period_bounds(period)


def test_december_ends_at_the_next_new_year():
    assert period_bounds("2026-12") == (
        "2026-12-01T00:00:00.000000Z",
        "2027-01-01T00:00:00.000000Z",
    )


# --- the books, for any sequence ------------------------------------------------------------

TERMS = {
    "price_fen": 500,
    "price": {
        "per_call_fen": 3,
        "per_1000_rows_fen": 70,
        "per_mb_fen": 11,
        "per_query_fen": 5,
        "tiers": {"metric": "rows", "bands": [
            {"up_to": 10, "unit_fen": 900}, {"up_to": None, "unit_fen": 40}]},
    },
}  # fmt: skip


def _time(day: int) -> str:
    month, day = divmod(day, 28)
    return f"2026-{month + 1:02d}-{day + 1:02d}T12:00:00.000000Z"


def _context(cap: int, shares: dict) -> list[dict]:
    bodies = [
        {"seq": 1, "time": _time(0), "type": "authorisation.granted", "data": {
            "authorisation": "auz_1", "holder": "prt_h", "operator": "prt_o",
            "fee_cap_fen": cap, "revenue_share": shares}},
        {"seq": 2, "time": _time(0), "type": "product.drafted", "data": {
            "product": "prd_1", "authorisation": "auz_1", "public_interest": False,
            "grade": "general", "domain": "finance",
            "offers": [{"offer": "off_1", "terms_hash": content_hash(TERMS)}]}},
    ]  # fmt: skip
    return bodies


events = st.lists(
    st.one_of(
        st.tuples(st.just("contract"), st.integers(0, 4)),
        st.tuples(
            st.just("use"),
            st.integers(0, 4),
            st.sampled_from(["api", "file", "compute", "transfer"]),
            st.integers(0, 5000),
            st.integers(0, 5_000_000),
        ),
        st.tuples(st.just("day"), st.integers(1, 40)),
        st.tuples(
            st.just("voucher"),
            st.integers(0, 1),
            st.integers(1, 3000),
            st.integers(1, 100),
            st.integers(-30, 60),
            st.sampled_from([None, ["general"], ["important"]]),
        ),
        st.tuples(st.just("close")),
        st.tuples(st.just("ceiling"), st.integers(0, 3000), st.booleans()),
        st.tuples(st.just("refund"), st.integers(0, 30), st.integers(1, 3000)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    steps=events,
    cap=st.integers(0, 20_000),
    cuts=st.lists(st.integers(0, 100), min_size=2, max_size=2),
)
def test_the_books_balance_and_every_usage_is_settled_once_for_any_sequence(steps, cap, cuts):
    """Any sequence of finalisations, deliveries, vouchers, ceilings (set by the holder, or by
    someone else: ignored), refunds of closed invoices (within or above what is left of them),
    days passing and closes. What the operator keeps, less the carry it still owes, is exactly
    the sum over the periods of its income capped by their ceilings; a refund never takes back
    more than an invoice charged, from the consumer, a voucher's issuer or a party."""
    low, high = sorted(cuts)
    shares = {"holder": low, "operator": high - low, "platform": 100 - high}
    books, seq, day, month = Books(), 2, 0, 0
    for body in _context(cap, shares):
        books.add(body)
    finalised: set[int] = set()
    usage_seqs: set[int] = set()
    settled: list[int] = []
    postings: list[dict] = []
    charged: dict[str, int] = {}
    issued: dict[str, int] = {}
    redeemed: dict[str, int] = {}
    operator_kept, capped_income, operator_returned = 0, 0, 0
    ruling: int | None = None  # the ceiling of the next period closed
    invoices: dict[str, dict] = {}  # closed invoices with a total above 0
    asked: dict[str, int] = {}  # per invoice, the refunds recorded (valid ones)
    back: dict[str, dict[str, int]] = {}  # per invoice and party or voucher, what went back
    refunds_left: set[str] = set()  # refunds recorded, credit note still to come
    rejected = 0
    for step in [*steps, ("close",)]:  # a last close credits the refunds after the others
        seq += 1
        if step[0] == "refund":
            _, which, amount = step
            if not invoices:
                continue
            invoice = invoices[sorted(invoices)[which % len(invoices)]]
            books.add({"seq": seq, "time": _time(day), "type": "settlement.refund", "data": {
                "refund": f"rfd_{seq}", "invoice": invoice["invoice"],
                "contract": invoice["contract"], "amount_fen": amount}})  # fmt: skip
            if asked.get(invoice["invoice"], 0) + amount <= invoice["total_fen"]:
                asked[invoice["invoice"]] = asked.get(invoice["invoice"], 0) + amount
                refunds_left.add(f"rfd_{seq}")
            else:
                rejected += 1  # an over-refund never gets a credit note
                assert books.rejected[-1] == seq
        elif step[0] == "ceiling":
            _, ceiling, by_holder = step
            following = f"{2026 + month // 12}-{month % 12 + 1:02d}"
            data = {
                "authorisation": "auz_1",
                "holder": "prt_h" if by_holder else "prt_o",
                "operator": "prt_o",
                "ceiling_fen": ceiling,
                "from_period": following,
            }
            books.add({"seq": seq, "time": _time(day), "type": "settlement.ceiling-set",
                       "data": data})  # fmt: skip
            ruling = ceiling if by_holder else ruling
        elif step[0] == "contract":
            if step[1] in finalised:
                continue
            finalised.add(step[1])
            books.add({"seq": seq, "time": _time(day), "type": "contract.finalized", "data": {
                "contract": f"ctr_{step[1]}", "offer": "off_1", "product": "prd_1",
                "consumer": f"prt_c{step[1] % 2}", "provider": "prt_o"}})  # fmt: skip
            usage_seqs.add(seq)
        elif step[0] == "use":
            _, which, delivery, rows, size = step
            if which not in finalised:
                continue
            data = {"contract": f"ctr_{which}", "rows": rows}
            if delivery == "transfer":
                books.add({"seq": seq, "time": _time(day), "type": "transfer.completed",
                           "data": {**data, "bytes": size}})  # fmt: skip
            else:
                file = {"file": {"bytes": size}} if delivery == "file" else {}
                books.add({"seq": seq, "time": _time(day), "type": "exchange.delivered",
                           "data": {**data, "delivery": delivery, **file}})  # fmt: skip
            usage_seqs.add(seq)
        elif step[0] == "day":
            day += step[1]
        elif step[0] == "voucher":
            _, who, amount, share, days, grades = step
            lo, hi = sorted((day, day + days))
            books.add({"seq": seq, "time": _time(day), "type": "voucher.issued", "data": {
                "voucher": f"vch_{seq}", "issuer": f"prt_gov{who}", "enterprise": f"prt_c{who}",
                "amount_fen": amount, "not_before": _time(lo), "not_after": _time(hi + 1),
                "grades": grades, "domains": None, "max_share_percent": share}})  # fmt: skip
            issued[f"vch_{seq}"] = amount
        else:
            period = f"{2026 + month // 12}-{month % 12 + 1:02d}"
            month += 1
            carried_in = books.carry.get("auz_1", 0)
            close = books.close(period, through_seq=seq - 1, terms_of=lambda c, o: TERMS)
            settled.extend(close.settled)
            income = sum(
                i["shares"]["operator"]["amount_fen"] + i["ceiling_deduction_fen"]
                for i in close.invoices
            )
            assert sum(i["ceiling_deduction_fen"] for i in close.invoices) <= carried_in
            operator_kept += income - sum(i["ceiling_deduction_fen"] for i in close.invoices)
            capped_income += income if ruling is None else min(income, ruling)
            for item in close.ceilings:
                assert item["ceiling_fen"] == ruling and item["income_fen"] == income
                assert item["carried_in_fen"] == carried_in
                assert item["carried_out_fen"] == (
                    carried_in - item["deducted_fen"] + item["excess_fen"]
                )
                [statement] = [s for s in close.statements if s["party"] == "prt_o"]
                assert item in statement["ceilings"]
            for r in close.redemptions:
                redeemed[r["voucher"]] = redeemed.get(r["voucher"], 0) + r["amount_fen"]
                assert r["balance_fen"] == issued[r["voucher"]] - redeemed[r["voucher"]] >= 0
            for invoice in close.invoices:
                parts = [s["amount_fen"] for s in invoice["shares"].values()]
                assert sum(parts) == invoice["total_fen"]
                assert invoice["total_fen"] == (
                    invoice["subtotal_fen"]
                    - invoice["fee_cap_deduction_fen"]
                    - invoice["ceiling_deduction_fen"]
                )
                charged[invoice["contract"]] = (
                    charged.get(invoice["contract"], 0) + invoice["total_fen"]
                )
                postings.extend(invoice["journal"])
                assert invoice["voucher_fen"] <= invoice["total_fen"]
                assert invoice["consumer_due_fen"] == invoice["total_fen"] - invoice["voucher_fen"]
                if invoice["total_fen"] > 0:
                    invoices[invoice["invoice"]] = invoice
            for note in close.credit_notes:
                refunds_left.remove(note["refund"])
                invoice = invoices[note["invoice"]]
                amount = note["amount_fen"]
                assert sum(s["amount_fen"] for s in note["shares"].values()) == amount
                assert note["voucher_fen"] + note["consumer_fen"] == amount
                assert note["consumer_fen"] >= 0
                gone = back.setdefault(note["invoice"], {})
                for v in note["vouchers"]:
                    gone[v["voucher"]] = gone.get(v["voucher"], 0) + v["amount_fen"]
                for role, share in note["shares"].items():
                    gone[role] = gone.get(role, 0) + share["amount_fen"]
                for v in invoice["vouchers"]:  # a voucher part goes back at most once
                    assert 0 <= gone.get(v["voucher"], 0) <= v["amount_fen"]
                for role, share in invoice["shares"].items():  # no party gives back more
                    assert 0 <= gone[role] <= share["amount_fen"]
                if sum(gone[r] for r in invoice["shares"]) == invoice["total_fen"]:
                    assert all(gone[r] == s["amount_fen"] for r, s in invoice["shares"].items())
                charged[note["contract"]] -= amount
                operator_returned += note["shares"]["operator"]["amount_fen"]
                postings.extend(note["journal"])
            for statement in close.statements:
                lines = [x for x in statement["lines"] if not x["invoice"].startswith("crn_")]
                assert sum(x["amount_fen"] for x in lines if x["role"] in OWING) >= 0
                assert sum(x["amount_fen"] for x in lines if x["role"] not in OWING) >= 0
    assert len(settled) == len(set(settled))  # nothing settled twice
    assert set(settled) <= usage_seqs
    assert unbalanced(postings) == []
    books_after = balances(postings)
    assert all(v == 0 for k, v in books_after.items() if k.startswith("revenue:"))
    receivable = sum(
        v for k, v in books_after.items() if k.startswith(("receivable:", "voucher_receivable:"))
    )
    payable = -sum(v for k, v in books_after.items() if k.startswith("payable:"))
    assert receivable == payable == sum(charged.values())
    assert all(0 <= total <= cap for total in charged.values())  # the fee cap, net of refunds
    assert len(books.rejected) == rejected and {r["refund"] for r in books.refunds} == refunds_left
    assert 0 <= operator_returned <= operator_kept
    # Nothing the operator earns above a ceiling is kept once the carry has been deducted.
    assert operator_kept - books.carry.get("auz_1", 0) == capped_income


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("use"), st.integers(0, 2), st.integers(0, 5000)),
            st.tuples(st.just("ceiling"), st.integers(0, 2000), st.booleans()),
            st.tuples(st.just("close")),
        ),
        min_size=1,
        max_size=40,
    ),
    cuts=st.lists(st.integers(0, 100), min_size=2, max_size=2),
)
def test_nothing_the_operator_earns_above_its_ceiling_is_kept_once_the_carry_is_deducted(
    steps, cuts
):
    """Any sequence of usage, ceilings set (by the holder, or ignored when by another) and
    closes: over the closes, what the operator keeps less the carry it still owes is exactly
    the sum of its incomes each capped by the period's ruling ceiling; the carry comes off the
    operator's share alone and the books balance."""
    low, high = sorted(cuts)
    shares = {"holder": low, "operator": high - low, "platform": 100 - high}
    books = Books()
    for body in _context(10**9, shares):
        books.add(body)
    for n in range(3):
        books.add({"seq": 3 + n, "time": _time(0), "type": "contract.finalized", "data": {
            "contract": f"ctr_{n}", "offer": "off_1", "product": "prd_1",
            "consumer": "prt_c", "provider": "prt_o"}})  # fmt: skip
    seq, month, ruling = 5, 0, None
    kept, capped, postings = 0, 0, []
    for step in steps:
        seq += 1
        period = f"{2026 + month // 12}-{month % 12 + 1:02d}"
        if step[0] == "use":
            books.add({"seq": seq, "time": _time(0), "type": "exchange.delivered", "data": {
                "contract": f"ctr_{step[1]}", "delivery": "api", "rows": step[2]}})  # fmt: skip
        elif step[0] == "ceiling":
            holder = "prt_h" if step[2] else "prt_o"
            books.add({"seq": seq, "time": _time(0), "type": "settlement.ceiling-set", "data": {
                "authorisation": "auz_1", "holder": holder, "operator": "prt_o",
                "ceiling_fen": step[1], "from_period": period}})  # fmt: skip
            ruling = step[1] if step[2] else ruling
        else:
            month += 1
            carried_in = books.carry.get("auz_1", 0)
            close = books.close(period, through_seq=seq - 1, terms_of=lambda c, o: TERMS)
            income = 0
            for invoice in close.invoices:
                before = split(invoice["subtotal_fen"] - invoice["fee_cap_deduction_fen"], shares)
                taken = invoice["ceiling_deduction_fen"]
                assert {r: x["amount_fen"] for r, x in invoice["shares"].items()} == {
                    **before,
                    "operator": before["operator"] - taken,
                }  # the holder's and the platform's shares do not change
                assert invoice["total_fen"] == sum(before.values()) - taken >= 0
                income += before["operator"]
                kept += invoice["shares"]["operator"]["amount_fen"]
                postings.extend(invoice["journal"])
            assert sum(i["ceiling_deduction_fen"] for i in close.invoices) <= carried_in
            capped += income if ruling is None else min(income, ruling)
            [record] = close.ceilings or [None]
            if record is not None:
                assert (record["income_fen"], record["ceiling_fen"]) == (income, ruling)
                assert (
                    record["carried_out_fen"]
                    == books.carry["auz_1"]
                    == (carried_in - record["deducted_fen"] + record["excess_fen"])
                )
                operator = next(s for s in close.statements if s["party"] == "prt_o")
                assert operator["ceilings"] == [record]
                assert (
                    close.summary({s["statement"]: "" for s in close.statements})[
                        "ceiling_carried_fen"
                    ]
                    == record["carried_out_fen"]
                )
            else:
                assert carried_in == 0 and (ruling is None or income == 0)
    assert unbalanced(postings) == []
    assert kept - books.carry.get("auz_1", 0) == capped


_round = st.tuples(
    st.lists(st.tuples(st.just("use"), st.integers(0, 2), st.integers(0, 5000)), max_size=4),
    st.lists(st.tuples(st.just("voucher"), st.integers(1, 2000), st.integers(1, 100)), max_size=2),
    st.lists(st.tuples(st.just("refund"), st.integers(0, 30), st.integers(1, 2000)), max_size=4),
)


@settings(max_examples=150, deadline=None)
@given(
    rounds=st.lists(_round, min_size=1, max_size=6),
    cuts=st.lists(st.integers(0, 100), min_size=2, max_size=2),
    ceiling=st.one_of(st.none(), st.integers(0, 1000)),
)
def test_a_refund_reverses_at_most_what_was_charged_and_the_books_balance(rounds, cuts, ceiling):
    """Any sequence of usage, vouchers, refunds of closed invoices (within or above what is left
    of them) and closes, under a ceiling or none: each credit note splits its amount between
    the parties (none gives back more than its share of the invoice; a full refund reverses the
    split exactly), gives the voucher parts back before the consumer's, and balances; over-refunds
    get no credit note; receivables equal payables equal what was charged net of refunds."""
    low, high = sorted(cuts)
    shares = {"holder": low, "operator": high - low, "platform": 100 - high}
    books = Books()
    for body in _context(10**9, shares):
        books.add(body)
    for n in range(3):
        books.add({"seq": 3 + n, "time": _time(0), "type": "contract.finalized", "data": {
            "contract": f"ctr_{n}", "offer": "off_1", "product": "prd_1",
            "consumer": "prt_c", "provider": "prt_o"}})  # fmt: skip
    if ceiling is not None:
        books.add({"seq": 6, "time": _time(0), "type": "settlement.ceiling-set", "data": {
            "authorisation": "auz_1", "holder": "prt_h", "operator": "prt_o",
            "ceiling_fen": ceiling, "from_period": "2026-01"}})  # fmt: skip
    seq, month, postings, charged = 6, 0, [], 0
    invoices: dict[str, dict] = {}
    asked: dict[str, int] = {}
    back: dict[str, dict[str, int]] = {}
    credited = 0
    steps = [step for uses, vouchers, refunds in rounds
             for step in (*uses, *vouchers, *refunds, ("close",))]  # fmt: skip
    for step in [*steps, ("close",)]:
        seq += 1
        if step[0] == "use":
            books.add({"seq": seq, "time": _time(0), "type": "exchange.delivered", "data": {
                "contract": f"ctr_{step[1]}", "delivery": "api", "rows": step[2]}})  # fmt: skip
        elif step[0] == "voucher":
            books.add({"seq": seq, "time": _time(0), "type": "voucher.issued", "data": {
                "voucher": f"vch_{seq}", "issuer": "prt_gov", "enterprise": "prt_c",
                "amount_fen": step[1], "not_before": _time(0), "not_after": _time(400),
                "grades": None, "domains": None, "max_share_percent": step[2]}})  # fmt: skip
        elif step[0] == "refund":
            if not invoices:
                continue
            invoice = invoices[sorted(invoices)[step[1] % len(invoices)]]
            books.add({"seq": seq, "time": _time(0), "type": "settlement.refund", "data": {
                "refund": f"rfd_{seq}", "invoice": invoice["invoice"],
                "contract": invoice["contract"], "amount_fen": step[2]}})  # fmt: skip
            left = invoice["total_fen"] - asked.get(invoice["invoice"], 0)
            if step[2] <= left:
                asked[invoice["invoice"]] = asked.get(invoice["invoice"], 0) + step[2]
            else:
                assert books.rejected[-1] == seq  # an over-refund gets no credit note
        else:
            period = f"{2026 + month // 12}-{month % 12 + 1:02d}"
            month += 1
            close = books.close(period, through_seq=seq - 1, terms_of=lambda c, o: TERMS)
            # As a gateway does, go on from the state the close keeps (JSON and back).
            books = Books.from_state(json.loads(json.dumps(books.to_state())))
            for invoice in close.invoices:
                charged += invoice["total_fen"]
                postings.extend(invoice["journal"])
                if invoice["total_fen"] > 0:
                    invoices[invoice["invoice"]] = invoice
            event(f"credit notes: {min(len(close.credit_notes), 2)}")
            for note in close.credit_notes:
                invoice, amount = invoices[note["invoice"]], note["amount_fen"]
                assert sum(s["amount_fen"] for s in note["shares"].values()) == amount
                assert note["voucher_fen"] + note["consumer_fen"] == amount
                assert note["voucher_fen"] == sum(v["amount_fen"] for v in note["vouchers"])
                gone = back.setdefault(note["invoice"], {})
                for v in note["vouchers"]:
                    gone[v["voucher"]] = gone.get(v["voucher"], 0) + v["amount_fen"]
                gone["consumer"] = gone.get("consumer", 0) + note["consumer_fen"]
                for role, share in note["shares"].items():
                    gone[role] = gone.get(role, 0) + share["amount_fen"]
                covered = sum(v["amount_fen"] for v in invoice["vouchers"])
                # The voucher parts go back first: the consumer only once they all have.
                refunded = sum(gone[r] for r in invoice["shares"])
                assert gone["consumer"] == max(0, refunded - covered)
                for v in invoice["vouchers"]:
                    assert 0 <= gone.get(v["voucher"], 0) <= v["amount_fen"]
                for role, share in invoice["shares"].items():
                    assert 0 <= gone[role] <= share["amount_fen"]
                if sum(gone[r] for r in invoice["shares"]) == invoice["total_fen"]:
                    assert all(gone[r] == s["amount_fen"] for r, s in invoice["shares"].items())
                credited += amount
                postings.extend(note["journal"])
            statement_lines = [x for s in close.statements for x in s["lines"]]
            assert sum(-x["amount_fen"] for x in statement_lines
                       if x["invoice"].startswith("crn_") and x["role"] in OWING) == sum(
                n["amount_fen"] for n in close.credit_notes)  # fmt: skip
    assert credited == sum(asked.values())  # every valid refund credited by the last close
    assert unbalanced(postings) == []
    books_after = balances(postings)
    assert all(v == 0 for k, v in books_after.items() if k.startswith("revenue:"))
    receivable = sum(
        v for k, v in books_after.items() if k.startswith(("receivable:", "voucher_receivable:"))
    )
    payable = -sum(v for k, v in books_after.items() if k.startswith("payable:"))
    assert receivable == payable == charged - credited


# --- the auditor's recomputation -------------------------------------------------------------


def _closed_ledger(signer, *, rows: int) -> list[dict]:
    """Return the bodies of a small ledger: context, a contract used twice, November closed."""
    bodies = _context(100_000, {"holder": 40, "operator": 50, "platform": 10})
    bodies += [
        {"seq": 3, "time": "2026-11-02T00:00:00.000000Z", "type": "contract.finalized",
         "data": {"contract": "ctr_1", "offer": "off_1", "product": "prd_1",
                  "consumer": "prt_c", "provider": "prt_o"}},
        {"seq": 4, "time": "2026-11-03T00:00:00.000000Z", "type": "exchange.delivered",
         "data": {"contract": "ctr_1", "delivery": "api", "rows": rows}},
        {"seq": 5, "time": "2026-11-04T00:00:00.000000Z", "type": "transfer.completed",
         "data": {"contract": "ctr_1", "rows": 7, "bytes": 2_000_000}},
    ]  # fmt: skip
    books = Books()
    for body in bodies:
        books.add(body)
    close = books.close("2026-11", through_seq=5, terms_of=lambda c, o: TERMS)
    seq, hashes = 5, {}
    for invoice in close.invoices:
        seq += 1
        bodies.append({"seq": seq, "time": "2026-12-01T00:00:00.000000Z",
                       "type": "settlement.invoice", "data": invoice})  # fmt: skip
    for statement in close.statements:
        seq += 1
        data = sign_statement(statement, signer.sign, signer.kid)
        hashes[statement["statement"]] = data["hash"]
        bodies.append({"seq": seq, "time": "2026-12-01T00:00:00.000000Z",
                       "type": "settlement.statement", "data": data})  # fmt: skip
    bodies.append({"seq": seq + 1, "time": "2026-12-01T00:00:00.000000Z",
                   "type": "settlement.closed", "data": close.summary(hashes)})  # fmt: skip
    return bodies


def test_a_recorded_close_recomputes_line_by_line():
    signer = Signer.generate()
    findings = recompute(
        _closed_ledger(signer, rows=40), "2026-11", {signer.kid: signer.public_key()}
    )
    assert findings and all(f.ok for f in findings), [str(f) for f in findings if not f.ok]


def test_a_close_recorded_before_refunds_existed_still_recomputes():
    signer = Signer.generate()
    bodies = _closed_ledger(signer, rows=40)
    closed = next(b for b in bodies if b["type"] == "settlement.closed")["data"]
    del closed["credit_notes"], closed["refunded_fen"]  # as a close made before refunds
    findings = recompute(bodies, "2026-11", {signer.kid: signer.public_key()})
    assert findings and all(f.ok for f in findings), [str(f) for f in findings if not f.ok]
    closed["refunded_fen"] = 5  # but a member it does carry must match
    findings = recompute(bodies, "2026-11", {signer.kid: signer.public_key()})
    assert [f.what for f in findings if not f.ok] == ["close 2026-11 refunded_fen"]


@pytest.mark.parametrize(
    ("where", "change", "named"),
    [
        ("exchange.delivered", lambda d: d.update(rows=d["rows"] + 1), "line"),
        ("settlement.invoice", lambda d: d["shares"]["holder"].update(amount_fen=0), "shares"),
        (
            "settlement.statement",
            lambda d: d["statement"].update(owes_fen=d["statement"]["owes_fen"] + 1),
            "owes_fen",
        ),
        ("settlement.statement", lambda d: d.update(sig=d["sig"][::-1]), "signature"),
        ("settlement.closed", lambda d: d.update(through_seq=99), "through_seq"),
    ],
)
def test_a_changed_usage_invoice_statement_or_close_is_a_named_mismatch(where, change, named):
    signer = Signer.generate()
    bodies = _closed_ledger(signer, rows=40)
    change(next(b for b in bodies if b["type"] == where)["data"])
    findings = recompute(bodies, "2026-11", {signer.kid: signer.public_key()})
    bad = [str(f) for f in findings if not f.ok]
    assert bad and any(named in line for line in bad), bad


def test_a_period_never_closed_does_not_match():
    signer = Signer.generate()
    [finding] = recompute(_closed_ledger(signer, rows=1)[:5], "2026-11", {})
    assert not finding.ok and "closed" in finding.what


# --- transfers: every attempt rated, none twice ----------------------------------------------


def _transfer_books(attempts: list[tuple[str, int, int]]) -> dict:
    """Return November's one invoice for a contract whose one transfer made `attempts`
    (entry type, rows, bytes), in order."""
    bodies = _context(10**9, {"holder": 40, "operator": 50, "platform": 10})
    bodies.append({"seq": 3, "time": "2026-11-02T00:00:00.000000Z", "type": "contract.finalized",
                   "data": {"contract": "ctr_1", "offer": "off_1", "product": "prd_1",
                            "consumer": "prt_c", "provider": "prt_o"}})  # fmt: skip
    for n, (kind, rows, size) in enumerate(attempts):
        bodies.append({"seq": 4 + n, "time": "2026-11-03T00:00:00.000000Z", "type": kind,
                       "data": {"transfer": "trf_1", "contract": "ctr_1", "consumer": "prt_c",
                                "provider": "prt_o", "rows": rows, "bytes": size,
                                "sha256": "0" * 64, "format": "text/csv"}})  # fmt: skip
    books = Books()
    for body in bodies:
        books.add(body)
    close = books.close("2026-11", through_seq=len(bodies) + 1, terms_of=lambda c, o: TERMS)
    (invoice,) = close.invoices
    return invoice


def test_a_stream_broken_off_is_rated_for_what_it_was_sent():
    invoice = _transfer_books([("transfer.interrupted", 9_000, 3_000_000)])
    assert (invoice["usage"]["calls"], invoice["usage"]["rows"]) == (1, 9_000)
    assert invoice["usage"]["bytes"] == 3_000_000
    assert invoice["usage"]["entries"] == [3, 4]  # the finalisation, the attempt


def test_a_resumed_transfer_is_rated_once_for_its_rows():
    invoice = _transfer_books(
        [
            ("transfer.interrupted", 400, 40_000),  # suspended mid-stream, then resumed
            ("transfer.interrupted", 250, 25_000),  # a second attempt broken off earlier
            ("transfer.completed", 1_000, 100_000),  # the whole data, from the first row
        ]
    )
    assert invoice["usage"]["calls"] == 1
    assert (invoice["usage"]["rows"], invoice["usage"]["bytes"]) == (1_000, 100_000)
    assert invoice["usage"]["entries"] == [3, 4, 6]  # the second attempt added nothing


def test_an_attempt_that_sent_nothing_is_not_rated_but_a_completion_of_no_rows_is_one_call():
    invoice = _transfer_books([("transfer.interrupted", 0, 0), ("transfer.completed", 0, 0)])
    assert (invoice["usage"]["calls"], invoice["usage"]["rows"]) == (1, 0)
    assert invoice["usage"]["entries"] == [3, 5]


def _refunded_ledger(signer, amount: int) -> list[dict]:
    """November closed (as `_closed_ledger`), a refund of `amount` fen of its invoice, and
    December closed with the refund's credit note."""
    bodies = _closed_ledger(signer, rows=40)
    books = Books()
    for body in bodies:
        if body["type"] not in ("settlement.invoice", "settlement.statement", "settlement.closed"):
            books.add(body)
    books.close("2026-11", through_seq=5, terms_of=lambda c, o: TERMS)
    seq = bodies[-1]["seq"] + 1
    refund = {"seq": seq, "time": "2026-12-02T00:00:00.000000Z", "type": "settlement.refund",
              "data": {"refund": "rfd_1", "invoice": "inv_2026-11_ctr_1", "contract": "ctr_1",
                       "amount_fen": amount}}  # fmt: skip
    bodies.append(refund)
    books.add(refund)
    close = books.close("2026-12", through_seq=seq, terms_of=lambda c, o: TERMS)
    hashes = {}
    for note in close.credit_notes:
        seq += 1
        bodies.append({"seq": seq, "time": "2027-01-01T00:00:00.000000Z",
                       "type": "settlement.credit-note", "data": note})  # fmt: skip
    for statement in close.statements:
        seq += 1
        data = sign_statement(statement, signer.sign, signer.kid)
        hashes[statement["statement"]] = data["hash"]
        bodies.append({"seq": seq, "time": "2027-01-01T00:00:00.000000Z",
                       "type": "settlement.statement", "data": data})  # fmt: skip
    bodies.append({"seq": seq + 1, "time": "2027-01-01T00:00:00.000000Z",
                   "type": "settlement.closed", "data": close.summary(hashes)})  # fmt: skip
    return bodies


def test_a_refund_is_credited_in_the_next_close_and_recomputes():
    signer = Signer.generate()
    bodies = _refunded_ledger(signer, 100)
    [note] = [b["data"] for b in bodies if b["type"] == "settlement.credit-note"]
    assert note["amount_fen"] == 100 and note["credit_note"] == "crn_2026-12_rfd_1"
    assert note["consumer_fen"] == 100 and note["vouchers"] == []
    # 100 fen back in proportion to the invoice's shares (40/50/10), by the largest remainder
    assert {r: s["amount_fen"] for r, s in note["shares"].items()} == {
        "holder": 40, "operator": 50, "platform": 10,
    }  # fmt: skip
    findings = recompute(bodies, "2026-12", {signer.kid: signer.public_key()})
    assert findings and all(f.ok for f in findings), [str(f) for f in findings if not f.ok]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d.update(amount_fen=d["amount_fen"] + 1), "amount_fen"),
        (lambda d: d.update(amount_fen=10**9), "no such credit note"),  # above the charge
        (lambda d: d.update(invoice="inv_2026-10_ctr_1"), "no such credit note"),
    ],
)
def test_a_tampered_refund_is_a_named_mismatch(change, named):
    signer = Signer.generate()
    bodies = _refunded_ledger(signer, 100)
    change(next(b for b in bodies if b["type"] == "settlement.refund")["data"])
    findings = recompute(bodies, "2026-12", {signer.kid: signer.public_key()})
    bad = [str(f) for f in findings if not f.ok]
    assert bad and any(named in line and "credit note" in line for line in bad), bad


def test_a_transfer_resumed_after_a_close_is_rated_only_for_what_is_new_from_the_kept_books():
    bodies = _context(10**9, {"holder": 40, "operator": 50, "platform": 10})
    bodies.append({"seq": 3, "time": "2026-11-02T00:00:00.000000Z", "type": "contract.finalized",
                   "data": {"contract": "ctr_1", "offer": "off_1", "product": "prd_1",
                            "consumer": "prt_c", "provider": "prt_o"}})  # fmt: skip
    attempt = {"transfer": "trf_1", "contract": "ctr_1", "consumer": "prt_c", "provider": "prt_o"}
    bodies.append({"seq": 4, "time": "2026-11-30T23:00:00.000000Z",
                   "type": "transfer.interrupted",
                   "data": {**attempt, "rows": 600, "bytes": 6_000}})  # fmt: skip
    books = Books()
    for body in bodies:
        books.add(body)
    november = books.close("2026-11", through_seq=4, terms_of=lambda c, o: TERMS)
    assert november.invoices[0]["usage"]["rows"] == 600
    # The gateway keeps the books after a close as JSON, and the next close starts from them.
    kept = Books.from_state(json.loads(json.dumps(books.to_state())))
    kept.add({"seq": 5, "time": "2026-12-01T01:00:00.000000Z", "type": "transfer.completed",
              "data": {**attempt, "rows": 1_000, "bytes": 10_000}})  # fmt: skip
    december = kept.close("2026-12", through_seq=5, terms_of=lambda c, o: TERMS)
    usage = december.invoices[0]["usage"]
    assert (usage["calls"], usage["rows"], usage["bytes"]) == (0, 400, 4_000)
