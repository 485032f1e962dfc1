"""`dsgw catalogue`, `dsgw product …` and `dsgw contract …`: what a person types against a gateway.

Each command signs in as one participant (its id and its private Ed25519 JWK file; by default the
platform admin with the key in the state folder), calls the API, and prints the result; a problem
is printed as `HTTP <status> <type>: <detail>` with the allowed next states when there are any,
and exits 1.
"""

import argparse
import json
import sys
from typing import Any

import httpx

PRODUCT_ACTIONS = ["submit", "list", "reject", "suspend", "reinstate", "delist"]
CONTRACT_ACTIONS = ["approve", "refuse", "suspend", "reinstate", "revoke", "terminate"]
client_factory = httpx.Client  # tests hand in an in-process client


def _call(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> dict | None:
    """Call the API as the command's participant; print a problem and return None on error."""
    from gateway.auth.cli import TokenRefused, fetch_token, read_key
    from gateway.participants.service import PLATFORM_ADMIN_ID

    client = client_factory(base_url=args.url.rstrip("/"), timeout=30)
    try:
        token = fetch_token(client, read_key(args), args.as_id or PLATFORM_ADMIN_ID)
        headers = {"Authorization": f"Bearer {token}"}
        response = client.request(method, path, headers=headers, **kwargs)
    except TokenRefused as exc:  # the token request itself was refused
        print(f"dsgw: {exc}", file=sys.stderr)
        return None
    except httpx.HTTPError as exc:
        print(f"dsgw: cannot reach {args.url}: {exc}", file=sys.stderr)
        return None
    body = response.json() if response.content else {}
    if response.status_code >= 400:
        line = f"HTTP {response.status_code} {body.get('type', '')}: {body.get('detail', '')}"
        if "allowed_next_states" in body:
            line += f" (current state {body.get('current_state')}; allowed next states: "
            line += f"{', '.join(body['allowed_next_states']) or 'none'})"
        print(line, file=sys.stderr)
        return None
    return body


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
    """Approve, refuse, suspend, reinstate, revoke or terminate a contract; or sign it."""
    if args.action == "sign":
        return cmd_contract_sign(args)
    return _transition(args, "contract", args.contract_id)


def cmd_contract_sign(args: argparse.Namespace) -> int:
    """Print the compact JWS (EdDSA) of the contract's canonical document, signed with --key:
    the `signature` that POST /contracts/{id}/agree (provider) and /verify (consumer) take."""
    contract = _call(args, "GET", f"/contracts/{args.contract_id}")
    if contract is None:
        return 1
    from jwt.algorithms import OKPAlgorithm

    from contracts import sign_contract
    from gateway.auth.cli import read_key

    key = read_key(args)
    private = OKPAlgorithm.from_jwk(key.private_jwk())
    print(sign_contract(contract["document"], private, kid=key.kid))
    return 0


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
    catalogue = sub.add_parser("catalogue", help="browse the catalogue (DCAT) as a participant")
    _connection(catalogue)
    catalogue.add_argument("--grade", choices=["general", "important", "core"])
    catalogue.add_argument("--level", choices=["L1", "L2", "L3", "L4"])
    catalogue.add_argument("--domain", help="industry domain; 'finance' also finds 'finance/…'")
    catalogue.add_argument("--delivery", choices=["api", "file", "compute"])
    catalogue.add_argument("--q", help="text in the name or description")
    catalogue.add_argument("--offset", type=int)
    catalogue.add_argument("--limit", type=int)
    catalogue.add_argument("--json", action="store_true", help="print the JSON-LD")
    catalogue.set_defaults(func=cmd_catalogue)

    product = sub.add_parser("product", help="move a product: submit, list, reject, …")
    product.add_argument("action", choices=PRODUCT_ACTIONS)
    product.add_argument("product_id")
    product.add_argument("--reason", help="why (kept in the ledger entry)")
    _connection(product)
    product.set_defaults(func=cmd_product)

    contract = sub.add_parser(
        "contract",
        help="approve, suspend, revoke, terminate a contract; or sign it (prints the JWS)",
    )
    contract.add_argument("action", choices=[*CONTRACT_ACTIONS, "sign"])
    contract.add_argument("contract_id")
    contract.add_argument("--reason", help="why (kept in the ledger entry)")
    _connection(contract)
    contract.set_defaults(func=cmd_contract)
