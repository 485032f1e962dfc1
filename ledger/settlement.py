"""Settlement an auditor can recompute: rating, revenue split, journal and statements.

The format is specs/settlement.md. Everything here is computed from ledger entry bodies alone
(the `body` of each line of an export's entries.jsonl, or the gateway's stored entries), in
integer fen: the gateway closes a period with `Books.close`, and an auditor recomputes every
recorded close with `verify_settlement`, which says line by line whether it matches. This module
never imports `gateway`.
"""

import hashlib
import json
import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.canonical import b64url, b64url_decode, canonical_json

STATEMENT_FORMAT = "dsgw-statement/1"
PARTIES = ("holder", "operator", "platform")  # the order that breaks ties of the split
PLATFORM = "platform"  # the party id of the platform in statements and accounts
OWING = ("consumer", "voucher_issuer")  # the roles of statement lines that owe
# What is rated: every delivery, and every attempt of a transfer that sent bytes, completed or
# not (a stream the consumer breaks off at 99 % has still delivered 99 %). `Books` rates a
# transfer once: each attempt restarts from the first row, so an attempt bills only what it
# sent beyond the transfer's earlier attempts (see `_transfer_usage`).
USAGE_TYPES = ("exchange.delivered", "transfer.completed", "transfer.interrupted")
CONTEXT_TYPES = (
    "authorisation.granted",
    "product.drafted",
    "contract.finalized",
    "voucher.issued",
    "settlement.ceiling-set",
    "settlement.refund",
)
SETTLEMENT_TYPES = (
    "settlement.invoice",
    "settlement.credit-note",
    "settlement.statement",
    "voucher.redeemed",
    "voucher.expired",
    "settlement.closed",
)
RELEVANT_TYPES = (*USAGE_TYPES, *CONTEXT_TYPES, *SETTLEMENT_TYPES)
# The quantity one unit price is for, per metric: a call, 1,000 rows, an MB (10^6 bytes), a query.
PER_UNIT = {"calls": 1, "rows": 1000, "bytes": 1_000_000, "queries": 1}
RATES = {
    "per_call_fen": "calls",
    "per_1000_rows_fen": "rows",
    "per_mb_fen": "bytes",
    "per_query_fen": "queries",
}
_PERIOD = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")


class SettlementError(ValueError):
    """A period, a share or a price that settlement cannot work with."""


def period_bounds(period: str) -> tuple[str, str]:
    """Return the start and end (exclusive) of a monthly period `YYYY-MM`, as ledger times."""
    match = _PERIOD.match(period) if isinstance(period, str) else None
    if match is None or not 2000 <= int(match.group(1)) <= 9998:
        raise SettlementError(f"expected a period YYYY-MM (2000-01 to 9998-12), found {period!r}")
    year, month = int(match.group(1)), int(match.group(2))
    end_year, end_month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}-01T00:00:00.000000Z", (
        f"{end_year:04d}-{end_month:02d}-01T00:00:00.000000Z"
    )


def content_hash(value: Any) -> str:
    """Return the hex SHA-256 of the JCS of `value` (as the gateway's content hashes)."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def split(amount: int, shares: dict[str, int]) -> dict[str, int]:
    """Split `amount` fen by percentages with the largest-remainder rule: each party gets the
    floor of its exact share, and the fen left over go one each to the largest remainders (ties:
    holder, operator, platform). The parts add up to `amount` exactly."""
    if sorted(shares) != sorted(set(shares)) or not set(shares) <= set(PARTIES):
        raise SettlementError(f"expected shares of {list(PARTIES)}, found {sorted(shares)}")
    if sum(shares.values()) != 100 or any(not 0 <= v <= 100 for v in shares.values()):
        raise SettlementError(f"expected percentages adding up to 100, found {shares}")
    if amount < 0:
        raise SettlementError(f"expected an amount >= 0 fen, found {amount}")
    parts = {party: amount * pct // 100 for party, pct in shares.items()}
    left = amount - sum(parts.values())
    order = sorted(shares, key=lambda p: (-(amount * shares[p] % 100), PARTIES.index(p)))
    for party in order[:left]:
        parts[party] += 1
    return {party: parts[party] for party in PARTIES if party in parts}


def apportion(amount: int, weights: dict[str, int]) -> dict[str, int]:
    """Split `amount` fen in proportion to non-negative integer `weights` (per role, summing to
    more than 0) with the largest-remainder rule of `split` (ties: holder, operator, platform)."""
    whole = sum(weights.values())
    if whole <= 0 or any(w < 0 for w in weights.values()):
        raise SettlementError(f"expected weights adding up to more than 0, found {weights}")
    parts = {role: amount * w // whole for role, w in weights.items()}
    left = amount - sum(parts.values())
    order = sorted(weights, key=lambda r: (-(amount * weights[r] % whole), PARTIES.index(r)))
    for role in order[:left]:
        parts[role] += 1
    return {role: parts[role] for role in PARTIES if role in parts}


def rate(terms: dict, usage: dict[str, int], *, flat: int) -> list[dict]:
    """Return the invoice lines of a contract's usage in a period under its offer's terms: the
    flat price once per finalisation in the period, each usage rate, the tiers. Amounts are
    rounded down to the fen, once per line (quantity × rate ÷ the metric's unit)."""
    lines = []
    price_fen = int(terms.get("price_fen") or 0)
    if flat and price_fen:
        lines.append(_line("flat", "contracts", flat, price_fen, flat * price_fen))
    price = terms.get("price") or {}
    for name, metric in RATES.items():
        unit_fen = int(price.get(name) or 0)
        if unit_fen:
            quantity = usage[metric]
            amount = quantity * unit_fen // PER_UNIT[metric]
            lines.append(_line(name.removesuffix("_fen"), metric, quantity, unit_fen, amount))
    tiers = price.get("tiers")
    if tiers:
        metric, quantity = tiers["metric"], usage[tiers["metric"]]
        below, total = 0, 0
        for band in tiers["bands"]:
            end = band["up_to"]
            in_band = max(0, (quantity if end is None else min(quantity, end)) - below)
            total += in_band * band["unit_fen"]
            below = end if end is not None else below
        lines.append(_line("tiers", metric, quantity, None, total // PER_UNIT[metric]))
    return lines


def _line(item: str, metric: str, quantity: int, unit_fen: int | None, amount: int) -> dict:
    return {
        "item": item,
        "metric": metric,
        "quantity": quantity,
        "unit_fen": unit_fen,
        "per": PER_UNIT.get(metric, 1),
        "amount_fen": amount,
    }


def journal(
    invoice: str,
    *,
    consumer: str,
    contract: str,
    total: int,
    shares: dict,
    vouchers: list[dict] = (),
) -> list:
    """Return the balanced postings of an invoice: the consumer's receivable (less what vouchers
    cover, owed by their issuers: voucher receivable) against the contract's revenue, then that
    revenue against each party's share (no line for 0)."""
    if total == 0:
        return []
    revenue = f"revenue:{contract}"
    covered = sum(v["amount_fen"] for v in vouchers)
    return [
        {
            "posting": f"{invoice}/charge",
            "lines": [
                *(
                    [
                        {
                            "account": f"receivable:{consumer}",
                            "debit_fen": total - covered,
                            "credit_fen": 0,
                        }
                    ]
                    if total > covered
                    else []
                ),
                *(
                    {
                        "account": f"voucher_receivable:{v['issuer']}",
                        "debit_fen": v["amount_fen"],
                        "credit_fen": 0,
                    }
                    for v in vouchers
                ),
                {"account": revenue, "debit_fen": 0, "credit_fen": total},
            ],
        },  # fmt: skip
        {
            "posting": f"{invoice}/split",
            "lines": [
                {"account": revenue, "debit_fen": total, "credit_fen": 0},
                *(
                    {
                        "account": f"payable:{role}:{share['party']}",
                        "debit_fen": 0,
                        "credit_fen": share["amount_fen"],
                    }
                    for role, share in shares.items()
                    if share["amount_fen"]
                ),
            ],
        },
    ]


def balances(postings: Iterable[dict]) -> dict[str, int]:
    """Return each account's balance (debits minus credits) over the postings."""
    out: dict[str, int] = {}
    for posting in postings:
        for line in posting["lines"]:
            out[line["account"]] = out.get(line["account"], 0) + line["debit_fen"]
            out[line["account"]] -= line["credit_fen"]
    return out


def unbalanced(postings: Iterable[dict]) -> list[str]:
    """Return the ids of the postings whose debits and credits differ."""
    return [
        p["posting"]
        for p in postings
        if sum(x["debit_fen"] for x in p["lines"]) != sum(x["credit_fen"] for x in p["lines"])
    ]


_NEVER = 2**63  # the horizon of an event that no recorded close can settle


def _bucket() -> dict:
    return {"calls": 0, "rows": 0, "bytes": 0, "queries": 0, "finalised": 0, "entries": []}


@dataclass
class Close:
    """A period's settlement: invoices per contract, statements per party, and its summary."""

    period: str
    start: str
    end: str
    through_seq: int
    invoices: list[dict]
    statements: list[dict]
    settled: list[int]
    """The seqs of the entries this close settles (usage and finalisations)."""
    redemptions: list[dict] = field(default_factory=list)
    """The data of its `voucher.redeemed` entries, in order."""
    expiries: list[dict] = field(default_factory=list)
    """The data of its `voucher.expired` entries, in order."""
    ceilings: list[dict] = field(default_factory=list)
    """Per authorisation under a ceiling (or with a carry): the carry in, what was deducted,
    the operator's income, the excess over the ceiling and the carry out (specs §10)."""
    credit_notes: list[dict] = field(default_factory=list)
    """The data of its `settlement.credit-note` entries: one per refund recorded since the last
    close (specs §11), in the refunds' seq order."""

    def summary(self, statement_hashes: dict[str, str]) -> dict:
        """Return the data of the period's `settlement.closed` entry."""
        postings = [p for doc in (*self.invoices, *self.credit_notes) for p in doc["journal"]]
        return {
            "period": self.period,
            "start": self.start,
            "end": self.end,
            "through_seq": self.through_seq,
            "invoices": [inv["invoice"] for inv in self.invoices],
            "statements": [
                {
                    "statement": s["statement"],
                    "party": s["party"],
                    "hash": statement_hashes[s["statement"]],
                }
                for s in self.statements
            ],
            "credit_notes": [c["credit_note"] for c in self.credit_notes],
            "invoiced_fen": sum(inv["total_fen"] for inv in self.invoices),
            "refunded_fen": sum(c["amount_fen"] for c in self.credit_notes),
            "vouchers_fen": sum(r["amount_fen"] for r in self.redemptions),
            "ceiling_deducted_fen": sum(c["deducted_fen"] for c in self.ceilings),
            "ceiling_carried_fen": sum(c["carried_out_fen"] for c in self.ceilings),
            "debits_fen": sum(x["debit_fen"] for p in postings for x in p["lines"]),
            "credits_fen": sum(x["credit_fen"] for p in postings for x in p["lines"]),
        }


# Members of `settlement.closed` that closes recorded before refunds existed do not carry;
# such a close matches when the recomputation has nothing for them either.
BEFORE_REFUNDS: dict[str, Any] = {"credit_notes": [], "refunded_fen": 0}


def statement_id(period: str, party: str) -> str:
    return f"stm_{period}_{party}"


def invoice_id(period: str, contract: str) -> str:
    return f"inv_{period}_{contract}"


def credit_note_id(period: str, refund: str) -> str:
    return f"crn_{period}_{refund}"


def credit_journal(
    note: str,
    *,
    consumer: str,
    contract: str,
    amount: int,
    consumer_fen: int,
    vouchers: list[dict],
    shares: dict,
) -> list:
    """Return the balanced postings of a credit note, the mirror of an invoice's: the contract's
    revenue against the consumer's receivable and each voucher issuer's part given back, then
    each party's payable (its part of the reversal; a negative part is a credit) against that
    revenue."""
    revenue = f"revenue:{contract}"
    owed = [{"account": f"receivable:{consumer}", "debit_fen": 0, "credit_fen": consumer_fen}]
    return [
        {
            "posting": f"{note}/refund",
            "lines": [
                {"account": revenue, "debit_fen": amount, "credit_fen": 0},
                *(owed if consumer_fen else []),
                *(
                    {
                        "account": f"voucher_receivable:{v['issuer']}",
                        "debit_fen": 0,
                        "credit_fen": v["amount_fen"],
                    }
                    for v in vouchers
                ),
            ],
        },  # fmt: skip
        {
            "posting": f"{note}/reversal",
            "lines": [
                *(
                    {
                        "account": f"payable:{role}:{share['party']}",
                        "debit_fen": max(0, share["amount_fen"]),
                        "credit_fen": max(0, -share["amount_fen"]),
                    }
                    for role, share in shares.items()
                    if share["amount_fen"]
                ),
                {"account": revenue, "debit_fen": 0, "credit_fen": amount},
            ],
        },  # fmt: skip
    ]


class Books:
    """The settlement state that the ledger's entries build up, read in `seq` order."""

    def __init__(self) -> None:
        self.authorisations: dict[str, dict] = {}
        self.products: dict[str, dict] = {}
        self.contracts: dict[str, dict] = {}
        # The usage and finalisations not settled yet, summed per (contract, month of their
        # time, horizon): the horizon is the through_seq of the first recorded close that may
        # settle them (0: any close; an auditor's replay knows the closes ahead, the gateway
        # only feeds entries up to the close it makes). Memory grows with contracts × months,
        # not with the number of deliveries.
        self.pending: dict[tuple[str, str, int], dict] = {}
        self.horizon: list[int] = []  # the recorded closes' through_seqs, ascending
        self.charged: dict[str, int] = {}  # per contract, over its life (the fee cap)
        self.closed: dict[str, dict] = {}  # period -> its settlement.closed data
        self.vouchers: dict[str, dict] = {}  # id -> its voucher.issued data, seq and balance
        self.last_period: str | None = None
        # authorisation -> its settlement.ceiling-set data (with seq), in seq order
        self.ceilings: dict[str, list[dict]] = {}
        # authorisation -> the operator's income above its ceiling still to be deducted (fen)
        self.carry: dict[str, int] = {}
        # transfer -> {calls, rows, bytes} already rated of its attempts (each one restarts)
        self.transfers: dict[str, dict[str, int]] = {}
        # invoice id -> what a refund needs of it (closed invoices), and the refunds recorded
        # since the last close (their credit notes are the next close's)
        self.invoices: dict[str, dict] = {}
        self.refunds: list[dict] = []
        self.rejected: list[int] = []  # seqs of settlement.refund entries that refund nothing

    _STATE = (
        "authorisations", "products", "contracts", "charged", "vouchers", "last_period",
        "ceilings", "carry", "invoices", "refunds", "rejected", "transfers",
    )  # fmt: skip

    def to_state(self) -> dict:
        """Return the books as JSON-ready data (what a gateway keeps after a close, so that the
        next close reads only the entries after it instead of the whole ledger again)."""
        return {
            **{name: getattr(self, name) for name in self._STATE},
            "pending": [[*key, bucket] for key, bucket in self.pending.items()],
        }

    @classmethod
    def from_state(cls, state: dict) -> "Books":
        """Return the books `to_state` saved (the horizon is empty: a gateway's close)."""
        books = cls()
        for name in cls._STATE:
            if name in state:  # a state kept before a member was added keeps its default
                setattr(books, name, state[name])
        books.pending = {(c, m, limit): b for c, m, limit, b in state["pending"]}
        return books

    def add(self, body: dict) -> None:
        """Take one entry body (entries must come in seq order)."""
        kind, data = body["type"], body["data"]
        if kind == "authorisation.granted":
            self.authorisations[data["authorisation"]] = data
        elif kind == "product.drafted":
            self.products[data["product"]] = data
        elif kind == "settlement.ceiling-set":
            granted = self.authorisations.get(data["authorisation"])
            if granted is not None and granted["holder"] == data["holder"]:  # its holder only
                self.ceilings.setdefault(data["authorisation"], []).append(
                    {**data, "seq": body["seq"]}
                )
        elif kind == "voucher.issued":
            self.vouchers[data["voucher"]] = {
                **data, "seq": body["seq"], "balance_fen": int(data["amount_fen"]), "done": False,
            }  # fmt: skip
        elif kind == "contract.finalized":
            self.contracts[data["contract"]] = data
            bucket = self._bucket(data["contract"], body)
            bucket["finalised"] += 1
            bucket["entries"].append(body["seq"])
        elif kind == "settlement.refund":
            invoice = self.invoices.get(data.get("invoice"))
            amount = data.get("amount_fen")
            if (
                invoice is None
                or invoice["contract"] != data.get("contract")
                or not isinstance(amount, int)
                or isinstance(amount, bool)
                or not 0 < amount <= invoice["total_fen"] - invoice["refunded_fen"]
            ):
                self.rejected.append(body["seq"])  # the gateway never records one: tampering
                return
            invoice["refunded_fen"] += amount
            self.refunds.append({**data, "seq": body["seq"]})
        elif kind in USAGE_TYPES:
            usage = _usage_of(kind, data)
            if usage is not None and kind != "exchange.delivered":
                usage = self._transfer_usage(kind, data, usage, seq=body["seq"])
            if usage is not None:
                bucket = self._bucket(data["contract"], body)
                for metric, amount in usage.items():
                    bucket[metric] += amount
                bucket["entries"].append(body["seq"])

    def _bucket(self, contract: str, body: dict) -> dict:
        """Return the pending sums that an event of `contract` at `body`'s time adds to."""
        at = bisect_left(self.horizon, body["seq"])
        limit = (self.horizon[at] if at < len(self.horizon) else _NEVER) if self.horizon else 0
        key = (contract, str(body["time"])[:7], limit)
        bucket = self.pending.get(key)
        if bucket is None:
            bucket = self.pending[key] = _bucket()
        return bucket

    def _transfer_usage(
        self, kind: str, data: dict, sent: dict[str, int], *, seq: int
    ) -> dict[str, int] | None:
        """Return what one attempt of a transfer adds to its rating, None when nothing.

        Its one call is rated at its first attempt that sent anything, or at its completion;
        its rows and bytes are those beyond the most any earlier attempt sent (an attempt
        restarts from the first row: a resumed transfer is not rated twice for the same rows).
        """
        key = str(data.get("transfer") or f"entry {seq}")  # an entry without an id: its own
        billed = self.transfers.setdefault(key, dict.fromkeys(sent, 0))
        began = kind == "transfer.completed" or sent["rows"] > 0 or sent["bytes"] > 0
        usage = {
            "calls": 1 if began and not billed["calls"] else 0,
            "rows": max(0, sent["rows"] - billed["rows"]),
            "bytes": max(0, sent["bytes"] - billed["bytes"]),
        }
        if not any(usage.values()):
            return None
        for key in ("rows", "bytes"):
            billed[key] = max(billed[key], sent[key])
        billed["calls"] = max(billed["calls"], usage["calls"])
        return usage

    def close(
        self, period: str, *, through_seq: int, terms_of: Callable[[str, str], dict | None]
    ) -> Close:
        """Settle the period: every pending event with seq <= `through_seq` and a time before
        the period's end (usage recorded after an earlier close included), rated under the
        terms `terms_of(contract, offer)` gives. Marks those events settled."""
        start, end = period_bounds(period)
        by_contract: dict[str, dict] = {}
        for key in [k for k in self.pending if k[2] <= through_seq and k[1] <= period]:
            bucket = self.pending.pop(key)
            into = by_contract.setdefault(key[0], _bucket())
            for metric in ("calls", "rows", "bytes", "queries", "finalised"):
                into[metric] += bucket[metric]
            into["entries"].extend(bucket["entries"])
        redemptions: list[dict] = []
        budget = dict(self.carry)  # what is left to deduct of each authorisation's carry
        invoices = [
            self._invoice(
                period, contract, events, terms_of,
                vouchers=(start, end, through_seq, redemptions), budget=budget,
            )
            for contract, events in sorted(by_contract.items())
        ]  # fmt: skip
        ceilings = self._carry(period, through_seq, invoices, budget)
        due_refunds = [r for r in self.refunds if r["seq"] <= through_seq]
        self.refunds = [r for r in self.refunds if r["seq"] > through_seq]
        credit_notes = [self._credit_note(period, refund) for refund in due_refunds]
        for inv in invoices:
            if inv["total_fen"] > 0:  # what a refund of it needs
                self.invoices[inv["invoice"]] = {
                    "contract": inv["contract"], "consumer": inv["consumer"],
                    "provider": inv["provider"], "authorisation": inv["authorisation"],
                    "total_fen": inv["total_fen"], "vouchers": inv["vouchers"],
                    "shares": {r: {"party": x["party"], "amount_fen": x["amount_fen"]}
                               for r, x in inv["shares"].items()},
                    "refunded_fen": 0, "credited_fen": 0, "returned": {},
                }  # fmt: skip
        expiries = []
        for ident, v in sorted(self.vouchers.items()):
            if v["seq"] <= through_seq and not v["done"] and v["not_after"] <= end:
                v["done"] = True
                expiries.append(
                    {"voucher": ident, "issuer": v["issuer"], "enterprise": v["enterprise"],
                     "period": period, "not_after": v["not_after"],
                     "unused_fen": v["balance_fen"]}
                )  # fmt: skip
        self.last_period = period
        return Close(
            period=period,
            start=start,
            end=end,
            through_seq=through_seq,
            invoices=invoices,
            statements=_statements(period, start, end, invoices, ceilings, credit_notes),
            settled=sorted(seq for b in by_contract.values() for seq in b["entries"]),
            redemptions=redemptions,
            expiries=expiries,
            ceilings=ceilings,
            credit_notes=credit_notes,
        )

    def _credit_note(self, period: str, refund: dict) -> dict:
        """Return the credit note of a refund: the invoice's split reversed by the largest
        remainder rule (on the invoice's shares, over what its refunds add up to, so that a full
        refund reverses the split exactly and no party gives back more than it got); the voucher
        parts go back to their issuers first, the latest redeemed first, the rest to the
        consumer."""
        inv = self.invoices[refund["invoice"]]
        amount = int(refund["amount_fen"])
        weights = {role: s["amount_fen"] for role, s in inv["shares"].items()}
        before, after = inv["credited_fen"], inv["credited_fen"] + amount
        was, now = apportion(before, weights), apportion(after, weights)
        inv["credited_fen"] = after
        left, returned = amount, []
        for v in reversed(inv["vouchers"]):
            part = min(v["amount_fen"] - inv["returned"].get(v["voucher"], 0), left)
            if part > 0:
                inv["returned"][v["voucher"]] = inv["returned"].get(v["voucher"], 0) + part
                left -= part
                returned.append({"voucher": v["voucher"], "issuer": v["issuer"],
                                 "amount_fen": part})  # fmt: skip
        self.charged[inv["contract"]] = self.charged.get(inv["contract"], 0) - amount
        shares = {
            role: {"party": inv["shares"][role]["party"], "amount_fen": now[role] - was[role]}
            for role in now
        }
        note = credit_note_id(period, refund["refund"])
        return {
            "credit_note": note,
            "period": period,
            "refund": refund["refund"],
            "refund_seq": refund["seq"],
            "invoice": refund["invoice"],
            "contract": inv["contract"],
            "consumer": inv["consumer"],
            "provider": inv["provider"],
            "authorisation": inv["authorisation"],
            "amount_fen": amount,
            "vouchers": returned,
            "voucher_fen": amount - left,
            "consumer_fen": left,
            "shares": shares,
            "journal": credit_journal(
                note, consumer=inv["consumer"], contract=inv["contract"], amount=amount,
                consumer_fen=left, vouchers=returned, shares=shares,
            ),
        }  # fmt: skip

    def ceiling_of(self, authorisation: str, period: str, through_seq: int) -> dict | None:
        """Return the `settlement.ceiling-set` that rules the period: the latest (by seq, at or
        before `through_seq`) whose `from_period` is the period or an earlier one."""
        ruling = None
        for item in self.ceilings.get(authorisation, []):
            if item["seq"] <= through_seq and item["from_period"] <= period:
                ruling = item
        return ruling

    def _carry(
        self, period: str, through_seq: int, invoices: list[dict], budget: dict[str, int]
    ) -> list[dict]:
        """Settle the ceilings after the period's invoices: per authorisation, the operator's
        income of the period (its shares before the carry came off them: what it earned in the
        period) above the ruling ceiling is the excess; the carry out is what could not be
        deducted plus the excess. So what the operator keeps over any run of periods, less the
        carry still owed, is never above the sum of their ceilings."""
        income: dict[str, int] = {}
        for inv in invoices:
            earned = inv["shares"].get("operator", {}).get("amount_fen", 0)
            income[inv["authorisation"]] = (
                income.get(inv["authorisation"], 0) + earned + inv["ceiling_deduction_fen"]
            )
        out = []
        for ident in sorted(set(self.ceilings) | set(self.carry)):
            ruling = self.ceiling_of(ident, period, through_seq)
            carried_in = self.carry.get(ident, 0)
            earned = income.get(ident, 0)
            removed = ruling is None or ruling["ceiling_fen"] is None  # none set, or removed
            ceiling = None if removed else int(ruling["ceiling_fen"])
            excess = max(0, earned - ceiling) if ceiling is not None else 0
            left = budget.get(ident, 0)
            if not (carried_in or earned or excess):
                continue
            self.carry[ident] = left + excess
            out.append(
                {"authorisation": ident,
                 "operator": self.authorisations[ident]["operator"],
                 "ceiling_fen": ceiling,
                 "ceiling_seq": ruling["seq"] if ruling is not None else None,
                 "carried_in_fen": carried_in, "deducted_fen": carried_in - left,
                 "income_fen": earned, "excess_fen": excess, "carried_out_fen": left + excess}
            )  # fmt: skip
        return out

    def _redeem(
        self, invoice: str, *, consumer: str, product: dict, total: int, window: tuple
    ) -> tuple[list[dict], list[dict]]:
        """Apply the consumer's vouchers to an invoice in the documented order (the earliest to
        expire first, then by id); return the parts applied and the vouchers refused, with why."""
        start, end, through_seq, redemptions = window
        applied, refused = [], []
        mine = sorted(
            (v for v in self.vouchers.values()
             if v["enterprise"] == consumer and v["seq"] <= through_seq and not v["done"]),
            key=lambda v: (v["not_after"], v["voucher"]),
        )  # fmt: skip
        left = total
        for v in mine:
            reason = _refusal(v, product, start=start, end=end)
            if reason is None and v["balance_fen"] == 0:
                reason = "exhausted"
            if reason is None and left == 0:
                break
            if reason is not None:
                refused.append({"voucher": v["voucher"], "reason": reason})
                continue
            part = min(v["balance_fen"], total * int(v["max_share_percent"]) // 100, left)
            if part == 0:
                continue
            v["balance_fen"] -= part
            left -= part
            applied.append({"voucher": v["voucher"], "issuer": v["issuer"], "amount_fen": part})
            redemptions.append(
                {"voucher": v["voucher"], "issuer": v["issuer"], "enterprise": consumer,
                 "invoice": invoice, "amount_fen": part, "balance_fen": v["balance_fen"]}
            )  # fmt: skip
        return applied, refused

    def _invoice(
        self,
        period: str,
        contract_id: str,
        events: dict,
        terms_of: Callable[[str, str], dict | None],
        *,
        vouchers: tuple,
        budget: dict[str, int],
    ) -> dict:
        contract = self.contracts.get(contract_id)
        if contract is None:
            raise SettlementError(f"usage under contract {contract_id}, which no entry finalised")
        product = self.products.get(contract["product"])
        if product is None:
            raise SettlementError(f"contract {contract_id}: no product.drafted for its product")
        authorisation = self.authorisations.get(product["authorisation"])
        if authorisation is None:
            raise SettlementError(f"product {product['product']}: no authorisation.granted")
        terms = terms_of(contract_id, contract["offer"])
        hashes = {o["offer"]: o["terms_hash"] for o in product.get("offers", [])}
        if terms is None or content_hash(terms) != hashes.get(contract["offer"]):
            raise SettlementError(
                f"contract {contract_id}: expected the terms of offer {contract['offer']} with "
                f"hash {hashes.get(contract['offer'])}, found "
                f"{content_hash(terms) if terms is not None else 'none'}"
            )
        usage = {metric: events[metric] for metric in PER_UNIT}
        flat = events["finalised"]
        free = bool(product.get("public_interest"))
        lines = [] if free else rate(terms, usage, flat=flat)
        subtotal = sum(line["amount_fen"] for line in lines)
        cap = int(authorisation["fee_cap_fen"])
        so_far = self.charged.get(contract_id, 0)
        deduction = max(0, so_far + subtotal - cap)
        parts = split(subtotal - deduction, authorisation["revenue_share"])
        # The carry of the operator's income above the ceiling (earlier periods) comes off this
        # invoice, borne by the operator's share alone: the consumer is charged that much less.
        carried = min(budget.get(product["authorisation"], 0), parts.get("operator", 0))
        if carried:
            budget[product["authorisation"]] -= carried
            parts["operator"] -= carried
        total = subtotal - deduction - carried
        self.charged[contract_id] = so_far + total
        parties = {
            "holder": authorisation["holder"],
            "operator": authorisation["operator"],
            "platform": PLATFORM,
        }
        shares = {
            role: {
                "party": parties[role],
                "percent": authorisation["revenue_share"][role],
                "amount_fen": amount,
            }
            for role, amount in parts.items()
        }
        invoice = invoice_id(period, contract_id)
        applied, refused = self._redeem(
            invoice, consumer=contract["consumer"], product=product, total=total, window=vouchers
        )
        covered = sum(v["amount_fen"] for v in applied)
        return {
            "invoice": invoice,
            "period": period,
            "contract": contract_id,
            "consumer": contract["consumer"],
            "provider": contract["provider"],
            "product": contract["product"],
            "offer": contract["offer"],
            "authorisation": product["authorisation"],
            "public_interest": free,
            "terms_hash": content_hash(terms),
            "terms": terms,
            "usage": {**usage, "finalised": flat, "entries": sorted(events["entries"])},
            "lines": lines,
            "subtotal_fen": subtotal,
            "fee_cap_fen": cap,
            "fee_cap_deduction_fen": deduction,
            "ceiling_deduction_fen": carried,
            "total_fen": total,
            "vouchers": applied,
            "voucher_refusals": refused,
            "voucher_fen": covered,
            "consumer_due_fen": total - covered,
            "shares": shares,
            "journal": journal(
                invoice, consumer=contract["consumer"], contract=contract_id, total=total,
                shares=shares, vouchers=applied,
            ),
        }  # fmt: skip


def _refusal(voucher: dict, product: dict, *, start: str, end: str) -> str | None:
    """Return why a voucher does not apply to an invoice of the period on this product."""
    if voucher["not_before"] >= end:
        return "not-yet-valid"
    if voucher["not_after"] <= start:
        return "expired"
    grades, domains = voucher.get("grades"), voucher.get("domains")
    if grades is not None and product.get("grade") not in grades:
        return "ineligible-product"
    if domains is not None and not any(
        str(product.get("domain")) == d or str(product.get("domain")).startswith(d + "/")
        for d in domains
    ):
        return "ineligible-product"
    return None


def _usage_of(kind: str, data: dict) -> dict[str, int] | None:
    """Return what a delivery entry meters (None for one under no contract: open data)."""
    if data.get("contract") is None:
        return None
    if kind in ("transfer.completed", "transfer.interrupted"):
        return {
            "calls": 1,
            "rows": int(data.get("rows") or 0),
            "bytes": int(data.get("bytes") or 0),
        }
    if data.get("delivery") == "compute":
        return {"queries": 1}
    file = data.get("file") or {}
    return {
        "calls": 1,
        "rows": int(data.get("rows") or 0),
        "bytes": int(file.get("bytes") or 0),
    }


def _statements(
    period: str,
    start: str,
    end: str,
    invoices: list[dict],
    ceilings: list[dict] = (),
    credit_notes: list[dict] = (),
) -> list[dict]:
    """Return one statement per party: what it owes (consumer) and earns (shares); an operator
    under a ceiling also gets its `ceilings` (the excess carried, the carry deducted)."""
    lines: dict[str, list[dict]] = {}
    under: dict[str, list[dict]] = {}
    for item in ceilings:
        under.setdefault(item["operator"], []).append(item)
        lines.setdefault(item["operator"], [])
    for inv in invoices:
        lines.setdefault(inv["consumer"], []).append(
            {"invoice": inv["invoice"], "contract": inv["contract"], "role": "consumer",
             "amount_fen": inv["consumer_due_fen"]}
        )  # fmt: skip
        for v in inv["vouchers"]:
            lines.setdefault(v["issuer"], []).append(
                {"invoice": inv["invoice"], "contract": inv["contract"],
                 "role": "voucher_issuer", "amount_fen": v["amount_fen"]}
            )  # fmt: skip
        for role, share in inv["shares"].items():
            lines.setdefault(share["party"], []).append(
                {"invoice": inv["invoice"], "contract": inv["contract"], "role": role,
                 "amount_fen": share["amount_fen"]}
            )  # fmt: skip
    for note in credit_notes:  # after the invoices: what each gives back, as negative lines
        ident, contract = note["credit_note"], note["contract"]
        lines.setdefault(note["consumer"], []).append(
            {"invoice": ident, "contract": contract, "role": "consumer",
             "amount_fen": -note["consumer_fen"]}
        )  # fmt: skip
        for v in note["vouchers"]:
            lines.setdefault(v["issuer"], []).append(
                {"invoice": ident, "contract": contract, "role": "voucher_issuer",
                 "amount_fen": -v["amount_fen"]}
            )  # fmt: skip
        for role, share in note["shares"].items():
            lines.setdefault(share["party"], []).append(
                {"invoice": ident, "contract": contract, "role": role,
                 "amount_fen": -share["amount_fen"]}
            )  # fmt: skip
    return [
        {
            "format": STATEMENT_FORMAT,
            "statement": statement_id(period, party),
            "period": period,
            "start": start,
            "end": end,
            "party": party,
            "lines": party_lines,
            "owes_fen": sum(x["amount_fen"] for x in party_lines if x["role"] in OWING),
            "earns_fen": sum(x["amount_fen"] for x in party_lines if x["role"] not in OWING),
            "ceilings": under.get(party, []),
        }
        for party, party_lines in sorted(lines.items())
    ]


def sign_statement(statement: dict, sign: Callable[[bytes], bytes], kid: str) -> dict:
    """Return the data of a `settlement.statement` entry: the statement, its hash, signature."""
    return {
        "statement": statement,
        "hash": content_hash(statement),
        "sig": b64url(sign(canonical_json(statement))),
        "kid": kid,
    }


# ---------------------------------------------------------------------------------------------
# The auditor's recomputation


@dataclass
class Finding:
    """One line of the recomputation: what was checked, and whether the ledger agrees."""

    what: str
    ok: bool
    expected: Any = None
    found: Any = None

    def __str__(self) -> str:
        if self.ok:
            return f"ok       {self.what}"
        return f"MISMATCH {self.what}: expected {_show(self.expected)}, found {_show(self.found)}"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 200 else text[:197] + "..."


@dataclass
class SettlementReport:
    """The recomputation of one period from an export: every finding, and the verdict."""

    period: str
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return bool(self.findings) and all(f.ok for f in self.findings)

    def to_json(self) -> dict:
        return {
            "period": self.period,
            "ok": self.ok,
            "findings": [
                {
                    "what": f.what,
                    "ok": f.ok,
                    **({} if f.ok else {"expected": f.expected, "found": f.found}),
                }
                for f in self.findings
            ],
        }


def iter_bodies(folder: Path, findings: list[Finding]) -> Iterator[dict]:
    """Yield the entry bodies of an export's entries.jsonl in its order (seq order), one line
    at a time; a line that does not parse is a finding, not a body."""
    with (folder / "entries.jsonl").open("rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                body = json.loads(raw)["body"]
                _ = (body["seq"], body["time"], body["type"], body["data"])
            except (ValueError, KeyError, TypeError):
                findings.append(
                    Finding(f"entry line {n} readable", False, "an entry", "unreadable")
                )
                continue
            yield body


def _settlement_bodies(folder: Path) -> Iterator[dict]:
    """Yield the bodies of the export's settlement entries only (a cheap first pass)."""
    with (folder / "entries.jsonl").open("rb") as f:
        for raw in f:
            if b'"type":"settlement.' in raw or b'"type":"voucher.' in raw:
                try:
                    body = json.loads(raw)["body"]
                    _ = (body["seq"], body["type"], body["data"])
                except (ValueError, KeyError, TypeError):
                    continue
                yield body


def _period_of(kind: str, data: dict) -> str:
    """Return the period a settlement entry belongs to (the close that records it)."""
    if kind == "voucher.redeemed":
        return str(str(data.get("invoice", "inv_"))[4:11])
    if kind == "settlement.statement":
        doc = data.get("statement") if isinstance(data.get("statement"), dict) else {}
        return str(doc.get("period"))
    return str(data.get("period"))


def horizon_of(bodies: Iterable[dict]) -> list[int]:
    """Return, ascending, the through_seq each recorded close settles up to (as `replay`
    reads it: one not below the close's first entry counts as the entry before it)."""
    first: dict[str, int] = {}
    out = set()
    for body in bodies:
        kind, data = body["type"], body["data"]
        if kind == "settlement.closed":
            start = min(first.pop(str(data.get("period")), body["seq"]), body["seq"])
            through = data.get("through_seq")
            ok = isinstance(through, int) and not isinstance(through, bool) and through < start
            out.add(through if ok else start - 1)
        elif kind in SETTLEMENT_TYPES or kind == "voucher.expired":
            first.setdefault(_period_of(kind, data), body["seq"])
    return sorted(out)


def _keys(folder: Path) -> dict[str, Any]:
    from ledger.keys import jwk_thumbprint, public_key_from_jwk

    try:
        jwks = json.loads((folder / "keys.json").read_text())["keys"]
        return {jwk_thumbprint(k): public_key_from_jwk(k) for k in jwks}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def replay(
    bodies: Iterable[dict],
    *,
    period: str | None = None,
    keys: dict | None = None,
    horizon: list[int] | None = None,
):
    """Read the bodies in seq order, recomputing each recorded close (under the terms its own
    invoices carry) as it comes; stop after `period`'s close. Return the books as they then
    stand, and the findings: every line of `period`'s close, one for any earlier close that does
    not recompute, and one when `period` has no close. Without `horizon` (the closes'
    through_seqs, `horizon_of`) the bodies are a list, sorted here; with it, any iterable in seq
    order, read once (an export streamed line by line)."""
    books = Books()
    if horizon is None:
        bodies = sorted(bodies, key=lambda b: b["seq"])
        horizon = horizon_of(bodies)
    books.horizon = horizon
    recorded: dict[str, dict] = {}
    findings: list[Finding] = []
    seen_close = False
    for body in bodies:
        kind, data = body["type"], body["data"]
        if kind in ("voucher.redeemed", "voucher.expired"):
            per = (
                str(data.get("invoice", "inv_")[4:11])
                if kind == "voucher.redeemed"
                else (str(data.get("period")))
            )
            book = recorded.setdefault(
                per, {"invoices": {}, "statements": {}, "first": body["seq"]}
            )
            book.setdefault(kind, []).append((body["seq"], data))
            continue
        if kind in ("settlement.invoice", "settlement.statement", "settlement.credit-note"):
            if kind == "settlement.invoice":
                key, ident, per = "invoices", data.get("invoice"), data.get("period")
            elif kind == "settlement.credit-note":
                key, ident, per = "credit_notes", data.get("credit_note"), data.get("period")
            else:
                doc = data.get("statement") if isinstance(data.get("statement"), dict) else {}
                key, ident, per = "statements", doc.get("statement"), doc.get("period")
            book = recorded.setdefault(
                str(per), {"invoices": {}, "statements": {}, "first": body["seq"]}
            )
            book.setdefault(key, {})[ident] = (body["seq"], data)
            continue
        if kind != "settlement.closed":
            books.add(body)
            continue
        closed_period = str(data.get("period"))
        book = recorded.pop(closed_period, {"invoices": {}, "statements": {}, "first": body["seq"]})
        out = _check_close(books, body, book, keys or {})
        if closed_period == period:
            findings.extend(out)
            seen_close = True
            break
        bad = [f for f in out if not f.ok and (keys is not None or "signature" not in f.what)]
        if bad:
            findings.append(
                Finding(f"earlier period {closed_period} recomputes", False, "every line matching",
                        f"{len(bad)} mismatch(es), first: {bad[0]}")
            )  # fmt: skip
    if period is not None and not seen_close:
        findings.append(
            Finding(f"period {period} closed", False, "a settlement.closed entry", "none")
        )
    return books, findings


def recompute(bodies: list[dict], period: str, keys: dict[str, Any]) -> list[Finding]:
    """Return the findings of recomputing `period`'s close (see `replay`)."""
    period_bounds(period)
    return replay(bodies, period=period, keys=keys)[1]


def _check_close(books: Books, body: dict, book: dict, keys: dict[str, Any]) -> list[Finding]:
    data, period = body["data"], body["data"].get("period")
    findings: list[Finding] = []
    through = data.get("through_seq")
    first = min([book["first"], body["seq"]])
    if not isinstance(through, int) or through >= first:
        findings.append(
            Finding(f"close {period} through_seq", False, f"an entry before seq {first}", through)
        )
        through = first - 1
    if books.last_period is not None and str(period) <= books.last_period:
        findings.append(
            Finding(f"close {period} order", False, f"a period after {books.last_period}", period)
        )

    def terms_of(contract: str, _offer: str) -> dict | None:
        recorded = book["invoices"].get(invoice_id(str(period), contract))
        return recorded[1].get("terms") if recorded is not None else None

    try:
        expected = books.close(str(period), through_seq=through, terms_of=terms_of)
    except SettlementError as exc:
        return [
            *findings,
            Finding(f"close {period} recomputable", False, "a recomputation", str(exc)),
        ]
    for inv in expected.invoices:
        findings.extend(_compare_invoice(inv, book["invoices"].pop(inv["invoice"], None)))
    for ident in sorted(book["invoices"]):
        findings.append(
            Finding(f"invoice {ident}", False, "no such invoice (no usage)", "an invoice")
        )
    notes = book.get("credit_notes", {})
    for note in expected.credit_notes:
        findings.extend(_compare_credit_note(note, notes.pop(note["credit_note"], None)))
    for ident in sorted(notes):
        findings.append(
            Finding(f"credit note {ident}", False, "no such credit note (no valid refund)",
                    "a credit note")
        )  # fmt: skip
    hashes = {}
    for stm in expected.statements:
        hashes[stm["statement"]] = content_hash(stm)
        findings.extend(
            _compare_statement(stm, book["statements"].pop(stm["statement"], None), keys)
        )
    for ident in sorted(book["statements"]):
        findings.append(Finding(f"statement {ident}", False, "no such statement", "a statement"))
    for kind, wanted in (("voucher.redeemed", expected.redemptions),
                         ("voucher.expired", expected.expiries)):  # fmt: skip
        got = book.get(kind, [])
        for i, item in enumerate(wanted):
            seq, entry_data = got[i] if i < len(got) else (None, None)
            findings.append(Finding(f"{kind} {item['voucher']} #{i + 1} (entry {seq})",
                                    entry_data == item, item, entry_data))  # fmt: skip
        for seq, entry_data in got[len(wanted) :]:
            findings.append(Finding(f"{kind} (entry {seq})", False, "no such entry", entry_data))
    summary = expected.summary(hashes)
    for key, value in summary.items():
        if key in BEFORE_REFUNDS and key not in data and value == BEFORE_REFUNDS[key]:
            continue  # a close recorded before refunds existed, and none is due in it
        findings.append(
            Finding(f"close {period} {key}", data.get(key) == value, value, data.get(key))
        )
    postings = [p for doc in (*expected.invoices, *expected.credit_notes) for p in doc["journal"]]
    findings.append(
        Finding(
            f"close {period} journal balanced", not unbalanced(postings), [], unbalanced(postings)
        )
    )
    return findings


def _compare_invoice(expected: dict, recorded: tuple[int, dict] | None) -> list[Finding]:
    name = f"invoice {expected['invoice']}"
    if recorded is None:
        return [Finding(name, False, "an invoice entry", "none")]
    seq, found = recorded
    total = expected["total_fen"]
    out = [Finding(f"{name} (entry {seq}) total_fen", found.get("total_fen") == total, total,
                   found.get("total_fen"))]  # fmt: skip
    lines = found.get("lines") if isinstance(found.get("lines"), list) else []
    for i, line in enumerate(expected["lines"]):
        got = lines[i] if i < len(lines) else None
        out.append(Finding(f"{name} line {i + 1} {line['item']}", got == line, line, got))
    for i in range(len(expected["lines"]), len(lines)):
        out.append(Finding(f"{name} line {i + 1}", False, "no line", lines[i]))
    for key in expected:
        if key in ("lines", "total_fen"):
            continue
        out.append(
            Finding(f"{name} {key}", found.get(key) == expected[key], expected[key], found.get(key))
        )
    return out


def _compare_credit_note(expected: dict, recorded: tuple[int, dict] | None) -> list[Finding]:
    name = f"credit note {expected['credit_note']} (refund {expected['refund']})"
    if recorded is None:
        return [Finding(name, False, "a credit-note entry", "none")]
    seq, found = recorded
    return [
        Finding(f"{name} (entry {seq}) {key}", found.get(key) == value, value, found.get(key))
        for key, value in expected.items()
    ]


def _compare_statement(
    expected: dict, recorded: tuple[int, dict] | None, keys: dict[str, Any]
) -> list[Finding]:
    name = f"statement {expected['statement']}"
    if recorded is None:
        return [Finding(name, False, "a statement entry", "none")]
    seq, found = recorded
    doc = found.get("statement") or {}
    out = [Finding(f"{name} (entry {seq}) {key}", doc.get(key) == value, value, doc.get(key))
           for key, value in expected.items() if key != "lines"]  # fmt: skip
    lines = doc.get("lines") if isinstance(doc.get("lines"), list) else []
    for i, line in enumerate(expected["lines"]):
        got = lines[i] if i < len(lines) else None
        out.append(
            Finding(f"{name} line {i + 1} {line['invoice']} {line['role']}", got == line, line, got)
        )
    if len(lines) > len(expected["lines"]):
        out.append(Finding(f"{name} lines", False, len(expected["lines"]), len(lines)))
    out.append(
        Finding(
            f"{name} hash",
            found.get("hash") == content_hash(doc),
            content_hash(doc),
            found.get("hash"),
        )
    )
    out.append(Finding(f"{name} signature", _signed(doc, found, keys), "a valid Ed25519 signature "
                       f"by {found.get('kid')}", found.get("sig")))  # fmt: skip
    return out


def _signed(doc: dict, found: dict, keys: dict[str, Any]) -> bool:
    from ledger.keys import verify_signature

    key = keys.get(found.get("kid"))
    try:
        signature = b64url_decode(found.get("sig") or "")
    except (ValueError, TypeError):
        return False
    return key is not None and verify_signature(key, signature, canonical_json(doc))


def verify_settlement(folder: Path, period: str) -> SettlementReport:
    """Recompute every statement of `period` from the export at `folder` alone; the report says
    line by line whether the ledger agrees. The export's own integrity (chain, hashes,
    signatures, manifest: specs/ledger.md §6) is the first finding."""
    from ledger.errors import ExportUnreadableError, LedgerVerificationError
    from ledger.verify import verify_export

    period_bounds(period)
    findings: list[Finding] = []
    try:
        report = verify_export(folder)
        findings.append(Finding(f"ledger export verifies ({report.size} entries)", True))
    except LedgerVerificationError as exc:
        findings.append(Finding("ledger export verifies", False, "a valid export", str(exc)))
    except ExportUnreadableError as exc:
        return SettlementReport(
            period, [Finding("ledger export readable", False, "an export", str(exc))]
        )
    unreadable: list[Finding] = []
    horizon = horizon_of(_settlement_bodies(folder))
    _, found = replay(
        iter_bodies(folder, unreadable), period=period, keys=_keys(folder), horizon=horizon
    )
    findings.extend(unreadable)
    findings.extend(found)
    return SettlementReport(period, findings)
