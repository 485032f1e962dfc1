"""`dsgw catalogue`, `dsgw product …` and `dsgw contract …`: what a person types against a gateway.

`product draft`, `contract request|sign|list` (and `dsgw pull`, `exchange`, `trace`) live in
gateway/client/cli.py, on the client library; the life-cycle moves are here.

Each command signs in as one participant (its id and its private Ed25519 JWK file; by default the
platform admin with the key in the state folder), calls the API through gateway.client, and prints
the result; a problem is printed as `HTTP <status> <type>: <title>: <detail>` with the allowed
next states when there are any, and exits 1.
"""

import argparse
import json
import sys
from typing import Any

import httpx

PRODUCT_ACTIONS = {
    "submit": "submit a draft for compliance review (merchant): draft → review",
    "list": "list a product in review in the catalogue (admin): review → listed",
    "reject": "send a product in review back to draft (admin), with --reason",
    "suspend": "take a listed product out of the catalogue for now (admin)",
    "reinstate": "list a suspended product again (admin)",
    "delist": "withdraw a product for good (merchant, admin)",
}
CONTRACT_ACTIONS = {
    "approve": "approve a contract on important data (holder), before the provider signs",
    "refuse": "refuse it instead (holder): → TERMINATED",
    "suspend": "pause a running contract (provider, admin)",
    "reinstate": "resume a suspended contract (provider, admin)",
    "revoke": "withdraw it (provider, holder, admin): the next exchange is refused",
    "terminate": "end it (a party, as the offer's termination term allows)",
}
client_factory = httpx.Client  # tests hand in an in-process client


def _call(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> dict | None:
    """Call the API as the command's participant through gateway.client; print a problem (one
    line, `HTTP <status> <type>: <title>: <detail> (current state …)`) and return None on error."""
    from gateway.client import Client, ClientError
    from gateway.client.cli import resolve_identity

    try:
        participant, key = resolve_identity(args)
        url = args.url.rstrip("/")
        http = client_factory(base_url=url, timeout=30)  # tests hand in one they keep open
        response = Client(url, participant, key, http=http).request(method, path, **kwargs)
    except ClientError as exc:
        print(f"dsgw: {exc}", file=sys.stderr)
        return None
    try:
        return response.json() if response.content else {}
    except ValueError:
        print(f"dsgw: {path} answered HTTP {response.status_code} without JSON", file=sys.stderr)
        return None


def cmd_catalogue(args: argparse.Namespace) -> int:
    """Print a page of the catalogue (or its JSON-LD with --json)."""
    params = {
        k: v
        for k, v in {
            "grade": args.grade,
            "level": args.level,
            "domain": args.domain,
            "delivery": args.delivery,
            "q": args.q,
            "offset": args.offset,
            "limit": args.limit,
        }.items()
        if v is not None
    }
    page = _call(args, "GET", "/catalogue", params=params)
    if page is None:
        return 1
    if args.json:
        print(json.dumps(page, indent=2, ensure_ascii=False))
        return 0
    datasets = page["dcat:dataset"]
    print(f"{page['total']} products match; showing {len(datasets)} from offset {page['offset']}")
    for d in datasets:
        grade = d["dsgw:grade"] + (f"/{d['dsgw:level']}" if d.get("dsgw:level") else "")
        modes = ",".join(x["dsgw:deliveryMode"] for x in d["dcat:distribution"])
        offers = ", ".join(p["uid"] for p in d["odrl:hasPolicy"])
        print(
            f"  {d['dct:identifier']}  {grade:10} {d['dcat:theme']:20} {modes:16} {d['dct:title']}"
        )
        print(f"      offers: {offers}")
    if page.get("next"):
        print(f"next page: --offset {page['offset'] + len(datasets)}")
    return 0


def _transition(args: argparse.Namespace, kind: str, ident: str) -> int:
    body = {"reason": args.reason} if args.reason is not None else None
    result = _call(args, "POST", f"/{kind}s/{ident}/{args.action}", json=body)
    if result is None:
        return 1
    state = result.get("status") or result.get("state")
    allowed = ", ".join(result.get("allowed_next_states") or []) or "none"
    print(f"{kind} {result['id']} is {state} (ledger entry {result.get('ledger_seq')}); "
          f"allowed next states: {allowed}")  # fmt: skip
    return 0


def cmd_product(args: argparse.Namespace) -> int:
    """Move a product through its life cycle."""
    return _transition(args, "product", args.product_id)


def cmd_contract(args: argparse.Namespace) -> int:
    """Approve, refuse, suspend, reinstate, revoke or terminate a contract."""
    return _transition(args, "contract", args.contract_id)


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="the gateway")
    parser.add_argument(
        "--as", dest="as_id", help="participant id to act as (default: the platform admin)"
    )
    parser.add_argument(
        "--key", help="that participant's private Ed25519 JWK file (default: the admin's)"
    )


def add_parsers(sub: Any) -> None:
    """Add `catalogue`, `product` and `contract` to the `dsgw` sub-commands."""
    from gateway.client.cli import add_contract_parsers, add_product_parsers, connection

    catalogue = sub.add_parser("catalogue", help="browse the catalogue (DCAT) as a participant")
    connection(catalogue)
    catalogue.add_argument("--grade", choices=["general", "important", "core"])
    catalogue.add_argument("--level", choices=["L1", "L2", "L3", "L4"])
    catalogue.add_argument("--domain", help="industry domain; 'finance' also finds 'finance/…'")
    catalogue.add_argument("--delivery", choices=["api", "file", "compute"])
    catalogue.add_argument("--q", help="text in the name or description")
    catalogue.add_argument("--offset", type=int)
    catalogue.add_argument("--limit", type=int)
    catalogue.add_argument("--json", action="store_true", help="print the JSON-LD")
    catalogue.set_defaults(func=cmd_catalogue)

    product = sub.add_parser(
        "product", help="draft a product (merchant) or move it: submit, list, reject, …"
    )
    product_sub = product.add_subparsers(dest="product_command", required=True)
    add_product_parsers(product_sub)  # draft
    for action, text in PRODUCT_ACTIONS.items():
        step = product_sub.add_parser(action, help=text)
        step.add_argument("product_id")
        step.add_argument("--reason", help="why (kept in the ledger entry)")
        connection(step)  # --gateway/--url, --participant/--as, --key, with env defaults
        step.set_defaults(func=cmd_product, action=action)

    contract = sub.add_parser(
        "contract",
        help="request a contract, sign it, list mine; approve, suspend, revoke, terminate it",
    )
    contract_sub = contract.add_subparsers(dest="contract_command", required=True)
    add_contract_parsers(contract_sub)  # request, sign, list
    for action, text in CONTRACT_ACTIONS.items():
        step = contract_sub.add_parser(action, help=text)
        step.add_argument("contract_id")
        step.add_argument("--reason", help="why (kept in the ledger entry)")
        connection(step)  # --gateway/--url, --participant/--as, --key, with env defaults
        step.set_defaults(func=cmd_contract, action=action)
