"""The person-facing commands, through `gateway.client`: `dsgw product draft`, `dsgw contract
request|sign|list`, `dsgw pull`, `dsgw exchange` and `dsgw trace`.

Each signs in as one participant: `--participant ID` (or `--as`, `$DSGW_PARTICIPANT`) with its
private JWK `--key FILE` (`$DSGW_KEY`) at `--gateway URL` (or `--url`, `$DSGW_GATEWAY`); without
them, the platform admin with the state folder's key. Exit status: 0 done; 1 the gateway refused
(its problem printed as `HTTP <status> <type>: <title>: <detail>`) or could not be reached; 2 the
command's own input is wrong (a key or JSON file that cannot be read, a missing option); 3 data or
evidence did not check out (a download's digest, a receipt). No traceback in any of these.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from gateway.client.api import FORMATS, Client, public_keys
from gateway.client.errors import (
    ClientError,
    GatewayProblem,
    GatewayUnreachable,
    VerificationFailed,
)

OK, REFUSED, USAGE, UNVERIFIED = 0, 1, 2, 3
DEFAULT_GATEWAY = "http://127.0.0.1:8080"
http_factory: Callable[..., httpx.Client] = httpx.Client  # tests hand in their own transport


class UsageError(ClientError):
    """The command's own input is wrong (exit 2)."""


def connection(parser: argparse.ArgumentParser) -> None:
    """Add --gateway/--url, --participant/--as and --key, with their environment defaults."""
    parser.add_argument(
        "--gateway",
        "--url",
        dest="url",
        default=os.environ.get("DSGW_GATEWAY") or DEFAULT_GATEWAY,
        help=f"the gateway's URL (default $DSGW_GATEWAY, else {DEFAULT_GATEWAY})",
    )
    parser.add_argument(
        "--participant",
        "--as",
        dest="as_id",
        metavar="ID",
        default=os.environ.get("DSGW_PARTICIPANT") or None,
        help="participant id to act as (default $DSGW_PARTICIPANT, else the platform admin)",
    )
    parser.add_argument(
        "--key",
        metavar="FILE",
        default=os.environ.get("DSGW_KEY") or None,
        help="that participant's private Ed25519 JWK file (default $DSGW_KEY, else the "
        "admin's in the state folder)",
    )


def resolve_identity(args: argparse.Namespace) -> tuple[str, str | Path]:
    """Return the command's participant and key file: the given ones, else the platform admin
    and its key in the state folder."""
    from gateway.participants.service import PLATFORM_ADMIN_ID

    participant, key = args.as_id or PLATFORM_ADMIN_ID, args.key
    if not key:
        if participant != PLATFORM_ADMIN_ID:  # another's key would only be refused
            raise UsageError(f"give the private key of {participant} (--key FILE or $DSGW_KEY)")
        from gateway.core.config import Settings

        state = Path(args.state).resolve() if getattr(args, "state", None) else None
        key = Settings.from_env(state_dir=state).admin_key_path
    return participant, key


def client_of(args: argparse.Namespace) -> Client:
    """Return the client of the command's participant (the platform admin by default)."""
    participant, key = resolve_identity(args)
    url = args.url.rstrip("/")
    return Client(url, participant, key, http=http_factory(base_url=url, timeout=60))


def _closing(client: Client):
    """Close the command's client and the HTTP client it was handed (the command made both)."""
    client.close()
    client.http.close()


def run(name: str, args: argparse.Namespace, work: Callable[[Client], int]) -> int:
    """Run `work` with the command's client; print any failure as one line; return the exit."""
    try:
        client = client_of(args)
    except ClientError as exc:
        print(f"dsgw {name}: {exc}", file=sys.stderr)
        return USAGE
    try:
        return work(client)
    except GatewayProblem as exc:
        print(f"dsgw {name}: {exc}", file=sys.stderr)
        return REFUSED
    except GatewayUnreachable as exc:
        print(f"dsgw {name}: {exc}", file=sys.stderr)
        return REFUSED
    except VerificationFailed as exc:
        print(f"dsgw {name}: FAILED: {exc}", file=sys.stderr)
        return UNVERIFIED
    except (ClientError, OSError) as exc:
        print(f"dsgw {name}: {exc}", file=sys.stderr)
        return USAGE
    finally:
        _closing(client)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _json_arg(text: str, what: str) -> Any:
    """Return the JSON of `text`, or of the file it names as `@FILE`."""
    try:
        if text.startswith("@"):
            text = Path(text[1:]).read_text(encoding="utf-8")
        return json.loads(text)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {what}: {exc}") from None


def _fields(text: str | None) -> list[str] | None:
    return [f.strip() for f in text.split(",") if f.strip()] if text else None


# -- product draft ---------------------------------------------------------------------------


def draft_body(args: argparse.Namespace) -> dict[str, Any]:
    """Return the body of POST /products from --file and the options (options win)."""
    body: dict[str, Any] = {}
    if args.file:
        loaded = _json_arg(f"@{args.file}", f"the product file {args.file}")
        if not isinstance(loaded, dict):
            raise UsageError(f"the product file {args.file} must hold a JSON object")
        body.update(loaded)
    for option, member in (
        ("name", "name"),
        ("description", "description"),
        ("resource", "resource_id"),
        ("authorisation", "authorisation_id"),
    ):
        if getattr(args, option) is not None:
            body[member] = getattr(args, option)
    if args.delivery:
        body["delivery_modes"] = args.delivery
    if args.public_interest:
        body["public_interest"] = True
    offers = [_json_arg(o, "--offer") for o in args.offer or []]
    if args.purpose:
        offer: dict[str, Any] = {"purposes": args.purpose, "term": args.term}
        for option in ("price_fen", "quota_rows", "quota_calls"):
            if getattr(args, option) is not None:
                offer[option] = getattr(args, option)
        offers.append(offer)
    if offers:
        body["offers"] = offers
    missing = [
        f"{member} ({option})"
        for member, option in (
            ("name", "--name"),
            ("resource_id", "--resource"),
            ("authorisation_id", "--authorisation"),
            ("delivery_modes", "--delivery"),
            ("offers", "--purpose or --offer"),
        )
        if not body.get(member)
    ]
    if missing:
        raise UsageError(
            "a draft needs " + ", ".join(missing) + ": give the options or a --file with them"
        )
    return body


def _offer_line(offer: dict[str, Any]) -> str:
    terms = offer.get("terms") or {}
    quota = f", {terms['quota_rows']} rows" if terms.get("quota_rows") else ""
    return (
        f"{offer['id']} ({', '.join(terms.get('purposes') or [])}; {terms.get('term')}{quota}; "
        f"{terms.get('price_fen', 0)} fen)"
    )


def cmd_product_draft(args: argparse.Namespace) -> int:
    """Draft a product from an authorisation (merchant); print its derived grade and quality."""
    try:
        body = draft_body(args)
    except UsageError as exc:
        print(f"dsgw product draft: {exc}", file=sys.stderr)
        return USAGE

    def work(client: Client) -> int:
        product = client.draft_product(body)
        if args.submit:
            product = client.submit_product(product["id"])
        if args.json:
            _print_json(product)
            return OK
        grade = product["grade"] + (f"/{product['level']}" if product.get("level") else "")
        print(f"product {product['id']} is {product['status']}: {product['name']}")
        print(f"  grade    {grade} (derived by the policy from what the offers expose)")
        for offer in product["offers"]:
            print(f"  offer    {_offer_line(offer)}")
        for d in (product.get("quality") or {}).get("dimensions", []):
            score = "not stated" if d.get("score") is None else d["score"]
            print(f"  quality  {d.get('name')} ({d.get('dimension')}): {score} [{d.get('method')}]")
        if product["status"] == "draft":
            print(f"next: dsgw product submit {product['id']}")
        return OK

    return run("product draft", args, work)


# -- contracts ---------------------------------------------------------------------------------


def _contract_line(c: dict[str, Any]) -> str:
    usage, quota = c.get("usage") or {}, c.get("quota") or {}

    def of(kind: str) -> str:
        cap = quota.get(kind)
        return f"{usage.get(kind, 0)}/{cap if cap is not None else '∞'} {kind}"

    return (
        f"{c['id']}  {c['state']:10} {c['product_id']}  {c['purpose']}  "
        f"{of('rows')}, {of('calls')}  until {c['not_after']}"
    )


def cmd_contract_request(args: argparse.Namespace) -> int:
    """Request an offer for a purpose (consumer); print the contract REQUESTED."""

    def work(client: Client) -> int:
        contract = client.request_contract(args.offer_id, purpose=args.purpose)
        if args.json:
            _print_json(contract)
            return OK
        print(f"contract {contract['id']} is {contract['state']} (ledger entry "
              f"{contract.get('ledger_seq')}): offer {contract['offer_id']} of product "
              f"{contract['product_id']} for {contract['purpose']}, provider "
              f"{contract['provider_id']}")  # fmt: skip
        if (contract.get("holder_approval") or {}).get("required"):
            print("  important data: the holder must approve before the provider signs")
        print(f"next: the provider signs (dsgw contract sign {contract['id']}), then you do")
        return OK

    return run("contract request", args, work)


def cmd_contract_sign(args: argparse.Namespace) -> int:
    """Sign the contract as its provider or its consumer and send it (or print the JWS only)."""

    def work(client: Client) -> int:
        if args.jws_only:
            print(client.signature(args.contract_id))
            return OK
        contract = client.sign(args.contract_id)
        if args.json:
            _print_json(contract)
            return OK
        side = "provider" if contract["provider_id"] == client.participant_id else "consumer"
        print(f"contract {contract['id']} is {contract['state']}: signed as its {side} "
              f"(ledger entry {contract.get('ledger_seq')}); document sha256 "
              f"{contract['document_hash']}")  # fmt: skip
        return OK

    return run("contract sign", args, work)


def cmd_contract_list(args: argparse.Namespace) -> int:
    """Print my contracts with their usage beside their quotas."""

    def work(client: Client) -> int:
        found = client.contracts(
            role=args.role, state=args.state, offset=args.offset, limit=args.limit
        )
        if args.json:
            _print_json(found)
            return OK
        print(f"{len(found)} contracts" + (" (more: --offset)" if len(found) == args.limit else ""))
        for contract in found:
            print(f"  {_contract_line(contract)}")
        return OK

    return run("contract list", args, work)


# -- pull and exchange -------------------------------------------------------------------------


def _keys_file(path: str | None):
    if path is None:
        return None
    return public_keys(_json_arg(f"@{path}", f"the keys {path}"))


def cmd_pull(args: argparse.Namespace) -> int:
    """Pull a contract's data into --out; check its digest and its receipt; print the counts."""

    def work(client: Client) -> int:
        pulled = client.pull(
            args.contract_id,
            args.out,
            purpose=args.purpose,
            format=args.format,
            fields=_fields(args.fields),
            limit=args.limit,
            idempotency_key=args.idempotency_key,
            keys=_keys_file(args.keys),
        )
        report = pulled.receipt
        if args.json:
            _print_json({
                "transfer_id": pulled.transfer_id, "contract_id": pulled.contract_id,
                "path": str(pulled.path), "rows": pulled.rows, "bytes": pulled.bytes,
                "sha256": pulled.sha256, "receipt": report.to_json(),
            })  # fmt: skip
            return OK
        where = (
            f"proven in the signed checkpoint of size {report.checkpoint_size}"
            if report.checkpoint_size is not None
            else "no checkpoint covers it yet"
        )
        print(f"pulled {pulled.rows} rows, {pulled.bytes} bytes to {pulled.path} "
              f"(transfer {pulled.transfer_id})")  # fmt: skip
        print(f"sha256 {pulled.sha256}: the transfer's record and its receipt say the same")
        print(f"receipt: entry {report.seq} ({report.type}, {report.time}) verified offline, "
              f"signed by {report.kid}; {where}")  # fmt: skip
        return OK

    return run("pull", args, work)


def cmd_exchange(args: argparse.Namespace) -> int:
    """Run an exchange under a contract; print its rows (JSON Lines) and its checked receipt."""

    def work(client: Client) -> int:
        result = client.exchange(
            args.contract_id,
            purpose=args.purpose,
            delivery=args.delivery,
            fields=_fields(args.fields),
            limit=args.limit,
            cursor=args.cursor,
        )
        report = client.verify_exchange(result, keys=_keys_file(args.keys))
        if args.json:
            _print_json(result)
            return OK
        rows = "\n".join(json.dumps(r, ensure_ascii=False) for r in result["rows"])
        if result.get("file"):  # a file delivery: the JSON Lines file whose digest is recorded
            rows = result["file"]["content"].rstrip("\n")
        if args.out:
            Path(args.out).write_text(rows + ("\n" if rows else ""), encoding="utf-8")
        elif rows:
            print(rows)
        masked = ", ".join(result.get("masked") or []) or "none"
        print(f"{result['row_count']} rows under {result['contract_id']} (exchange "
              f"{result['exchange_id']}; masked: {masked})"
              + (f" written to {args.out}" if args.out else ""), file=sys.stderr)  # fmt: skip
        print(f"receipt: entry {report.seq} ({report.type}) verified offline, signed by "
              f"{report.kid}", file=sys.stderr)  # fmt: skip
        if result.get("next_cursor"):
            print(f"more rows: --cursor {result['next_cursor']}", file=sys.stderr)
        return OK

    return run("exchange", args, work)


# -- trace -------------------------------------------------------------------------------------


def _summary(data: dict[str, Any]) -> str:
    shown = []
    for key, value in data.items():
        if isinstance(value, (str, int, float, bool)) and key not in ("by",):
            text = str(value)
            shown.append(f"{key}={text if len(text) <= 40 else text[:37] + '…'}")
    return " ".join(shown[:6])


def cmd_trace(args: argparse.Namespace) -> int:
    """Print every ledger entry that names the product or contract (auditors, admins)."""
    ident = args.product or args.contract

    def work(client: Client) -> int:
        found = list(client.trace(ident))
        if args.json:
            _print_json(found)
            return OK
        kind = "product" if args.product else "contract"
        print(f"{len(found)} ledger entries name {kind} {ident}")
        for entry in found:
            body = entry["body"]
            data = body.get("data") or {}
            print(f"  {body['seq']:>6}  {body['time']}  {body['type']:28} by "
                  f"{data.get('by', '-')}  {_summary(data)}")  # fmt: skip
        return OK if found else REFUSED

    return run("trace", args, work)


# -- parsers -----------------------------------------------------------------------------------


def add_product_parsers(product_sub: Any) -> None:
    """Add `draft` to the `dsgw product` sub-commands."""
    draft = product_sub.add_parser(
        "draft",
        help="draft a product from an authorisation (merchant): offers and prices from a JSON "
        "file or options; prints the grade the policy derives and the quality report",
    )
    draft.add_argument("--file", help="JSON: the body of POST /products (options override it)")
    draft.add_argument("--name")
    draft.add_argument("--description")
    draft.add_argument("--resource", help="the resource id (res_…)")
    draft.add_argument("--authorisation", help="the authorisation id that covers it")
    draft.add_argument(
        "--delivery", action="append", choices=["api", "file", "compute"], help="repeatable"
    )
    draft.add_argument("--public-interest", action="store_true", help="公益: free of charge")
    draft.add_argument("--offer", action="append", help="an offer as JSON, or @FILE; repeatable")
    draft.add_argument("--purpose", action="append", help="one offer: its purposes (repeatable)")
    draft.add_argument("--term", default="P30D", help="one offer: its term (default P30D)")
    draft.add_argument("--price-fen", type=int, help="one offer: price in fen (within the cap)")
    draft.add_argument("--quota-rows", type=int)
    draft.add_argument("--quota-calls", type=int)
    draft.add_argument("--submit", action="store_true", help="submit it for review at once")
    draft.add_argument("--json", action="store_true", help="print the product's JSON")
    connection(draft)
    draft.set_defaults(func=cmd_product_draft)


def add_contract_parsers(contract_sub: Any) -> None:
    """Add `request`, `sign` and `list` to the `dsgw contract` sub-commands."""
    request = contract_sub.add_parser("request", help="request an offer for a purpose (consumer)")
    request.add_argument("offer_id")
    request.add_argument("--purpose", required=True, help="one of the offer's purposes")
    request.add_argument("--json", action="store_true", help="print the contract's JSON")
    connection(request)
    request.set_defaults(func=cmd_contract_request)

    sign = contract_sub.add_parser(
        "sign",
        help="sign the contract document as its provider (→ AGREED) or consumer (→ FINALIZED) "
        "and send it",
    )
    sign.add_argument("contract_id")
    sign.add_argument(
        "--jws-only", action="store_true", help="print the compact JWS only, send nothing"
    )
    sign.add_argument("--json", action="store_true", help="print the contract's JSON")
    connection(sign)
    sign.set_defaults(func=cmd_contract_sign)

    listing = contract_sub.add_parser("list", help="my contracts, with usage beside quota")
    listing.add_argument("--role", choices=["consumer", "provider", "holder"])
    listing.add_argument("--state", help="only contracts in this state (FINALIZED, …)")
    listing.add_argument("--offset", type=int)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="print the JSON")
    connection(listing)
    listing.set_defaults(func=cmd_contract_list)


def add_parsers(sub: Any) -> None:
    """Add `pull`, `exchange` and `trace` to the `dsgw` sub-commands."""
    pull = sub.add_parser(
        "pull",
        help="pull a contract's data to a file: streamed, its digest and receipt checked",
    )
    pull.add_argument("contract_id")
    pull.add_argument("--out", required=True, help="the file to write (only once it checks out)")
    pull.add_argument("--purpose", help="default: the contract's")
    pull.add_argument(
        "--format", default="jsonl", help=f"{', '.join(FORMATS)} or a media type (default jsonl)"
    )
    pull.add_argument("--fields", help="comma-separated fields (default: all allowed)")
    pull.add_argument("--limit", type=int)
    pull.add_argument("--idempotency-key", help="retry safely: the same key is the same pull")
    pull.add_argument("--keys", help="the gateway's JWKS to trust (default: GET /ledger/keys)")
    pull.add_argument("--json", action="store_true", help="print a JSON report")
    connection(pull)
    pull.set_defaults(func=cmd_pull)

    exchange = sub.add_parser(
        "exchange", help="run an exchange under a contract: rows, masking, checked receipt"
    )
    exchange.add_argument("contract_id")
    exchange.add_argument("--purpose", help="default: the contract's")
    exchange.add_argument("--delivery", choices=["api", "file"], default="api")
    exchange.add_argument("--fields", help="comma-separated fields (default: all allowed)")
    exchange.add_argument("--limit", type=int)
    exchange.add_argument("--cursor", help="the next_cursor of the previous page")
    exchange.add_argument("--out", help="write the rows (JSON Lines) here instead of stdout")
    exchange.add_argument("--keys", help="the gateway's JWKS to trust (default: GET /ledger/keys)")
    exchange.add_argument("--json", action="store_true", help="print the reply's JSON")
    connection(exchange)
    exchange.set_defaults(func=cmd_exchange)

    trace = sub.add_parser(
        "trace", help="every ledger entry that names a product or contract (auditor)"
    )
    which = trace.add_mutually_exclusive_group(required=True)
    which.add_argument("--product", help="a product id (prd_…)")
    which.add_argument("--contract", help="a contract id (ctr_…)")
    trace.add_argument("--json", action="store_true", help="print the entries' JSON")
    connection(trace)
    trace.set_defaults(func=cmd_trace)
