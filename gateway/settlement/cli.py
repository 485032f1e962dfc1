"""`dsgw settlement close|show|statements|statement|refund|verify`: close a month, read it,
list and read statements, refund part of an invoice, and recompute it.

`close`, `show`, `statements`, `statement` and `refund` call a running gateway as one participant
(by default the platform admin), like `dsgw product`; `verify` needs no gateway: it recomputes
every statement of a period from an exported ledger (`dsgw ledger export`) with
`ledger.settlement` alone.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def cmd_close(args: argparse.Namespace) -> int:
    """Close a period; print what it produced."""
    from gateway.products.cli import _call

    result = _call(args, "POST", f"/settlement/periods/{args.period}/close")
    if result is None:
        return 1
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    verb = "was closed already" if result["already_closed"] else "closed"
    print(
        f"period {result['period']} {verb} (ledger entry {result['ledger_seq']}, through entry "
        f"{result['through_seq']}): {len(result['invoices'])} invoice(s), "
        f"{len(result['statements'])} statement(s), {result['invoiced_fen']} fen invoiced"
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print a closed period as JSON."""
    from gateway.products.cli import _call

    result = _call(args, "GET", f"/settlement/periods/{args.period}")
    if result is None:
        return 1
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


def cmd_statement(args: argparse.Namespace) -> int:
    """Print a signed statement as JSON."""
    from gateway.products.cli import _call

    result = _call(args, "GET", f"/settlement/statements/{args.statement_id}")
    if result is None:
        return 1
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


STATEMENTS_PAGE = 200  # the largest `limit` of GET /settlement/statements


def cmd_statements(args: argparse.Namespace) -> int:
    """List the statements the participant may read (its own; every one to the admin and
    auditors), newest period first, every page of them: one line each, or JSON."""
    from gateway.products.cli import _call

    found: list[dict] = []
    while True:
        params = {"offset": len(found), "limit": STATEMENTS_PAGE}
        params |= {k: v for k, v in (("period", args.period), ("party", args.party)) if v}
        page = _call(args, "GET", "/settlement/statements", params=params)
        if page is None:
            return 1
        found += page
        if len(page) < STATEMENTS_PAGE:
            break
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
        return 0
    for s in found:
        print(
            f"{s['id']}  {s['period']}  owes {s['owes_fen']} fen  earns {s['earns_fen']} fen  "
            f"(ledger entry {s['ledger_seq']})"
        )
    print(f"{len(found)} statement(s)", file=sys.stderr)
    return 0


def cmd_refund(args: argparse.Namespace) -> int:
    """Refund a consumer part of a closed invoice (as the contract's merchant or the admin)."""
    from gateway.products.cli import _call

    target = {"invoice_id": args.invoice} if args.invoice else {"delivery_id": args.delivery}
    body = {"contract_id": args.contract, **target, "amount_fen": args.amount_fen,
            "reason": args.reason}  # fmt: skip
    result = _call(args, "POST", "/settlement/refunds", json=body)
    if result is None:
        return 1
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0
    print(
        f"refund {result['id']}: {result['amount_fen']} fen of {result['invoice_id']} "
        f"(ledger entry {result['ledger_seq']}); {result['refundable_fen']} fen left to "
        "refund; its credit note comes with the next close"
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Recompute a period from an export: 0 when every line matches, 1 when one does not, 2
    when the period or the export cannot be read."""
    from ledger.settlement import SettlementError, verify_settlement

    folder = Path(args.export)
    if not (folder / "entries.jsonl").is_file():
        print(f"dsgw: {folder} is not a ledger export (no entries.jsonl)", file=sys.stderr)
        return 2
    try:
        report = verify_settlement(folder, args.period)
    except SettlementError as exc:
        print(f"dsgw: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        for finding in report.findings:
            if args.all or not finding.ok:
                print(finding)
        bad = sum(1 for f in report.findings if not f.ok)
        verdict = "MATCHES" if report.ok else f"DOES NOT MATCH ({bad} line(s))"
        print(f"period {args.period}: {len(report.findings)} line(s) recomputed; {verdict}")
    return 0 if report.ok else 1


def add_parsers(sub: Any) -> None:
    """Add `settlement close|show|statements|statement|refund|verify` to the `dsgw` commands."""
    from gateway.products.cli import _connection

    settlement = sub.add_parser("settlement", help="close a month, read it, recompute it")
    verbs = settlement.add_subparsers(dest="settlement_command", required=True)
    close = verbs.add_parser("close", help="close a period (the platform admin)")
    close.add_argument("--period", required=True, help="the month, YYYY-MM")
    close.add_argument("--json", action="store_true")
    _connection(close)
    close.set_defaults(func=cmd_close)
    show = verbs.add_parser("show", help="print a closed period")
    show.add_argument("--period", required=True, help="the month, YYYY-MM")
    _connection(show)
    show.set_defaults(func=cmd_show)
    statements = verbs.add_parser(
        "statements", help="list the statements you may read, newest period first"
    )
    statements.add_argument("--period", help="only this month, YYYY-MM")
    statements.add_argument("--party", help="only this party's (the admin, auditors)")
    statements.add_argument("--json", action="store_true")
    _connection(statements)
    statements.set_defaults(func=cmd_statements)
    statement = verbs.add_parser("statement", help="print a signed statement")
    statement.add_argument("statement_id")
    _connection(statement)
    statement.set_defaults(func=cmd_statement)
    refund = verbs.add_parser(
        "refund", help="refund a consumer part of a closed invoice (the merchant, the admin)"
    )
    refund.add_argument("--contract", required=True, help="the contract, ctr_…")
    what = refund.add_mutually_exclusive_group(required=True)
    what.add_argument("--invoice", help="the closed invoice, inv_<period>_<contract>")
    what.add_argument("--delivery", help="or the exchange (dec_…) or transfer (trf_…) it settled")
    refund.add_argument("--amount-fen", type=int, required=True, help="integer fen, > 0")
    refund.add_argument("--reason", required=True, help="why: bad data, an outage, …")
    refund.add_argument("--json", action="store_true")
    _connection(refund)
    refund.set_defaults(func=cmd_refund)
    verify = verbs.add_parser(
        "verify", help="recompute every statement of a period from an exported ledger"
    )
    verify.add_argument("export", help="the folder `dsgw ledger export` wrote")
    verify.add_argument("--period", required=True, help="the month, YYYY-MM")
    verify.add_argument("--all", action="store_true", help="print matching lines too")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(func=cmd_verify)
