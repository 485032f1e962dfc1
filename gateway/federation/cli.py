"""`dsgw federation catalogue|negotiate|list|verify|transfer|pull`: a consumer of this gateway
uses a peer gateway's products through it (specs/dsp.md, *Consumer side*).

Each command signs in as `--as` with `--key` (the consumer's own private key), calls this
gateway's API and prints the result; a problem is printed as `HTTP <status> <type>: <detail>`
and exits 1 (as gateway/products/cli.py).
"""

import argparse
import sys
from pathlib import Path
from typing import Any


def _call(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> Any:
    from gateway.products import cli as lifecycle

    return lifecycle._call(args, method, path, **kwargs)


def _line(p: dict) -> str:
    return (f"{p['kind']} {p['consumer_pid']} at {p['peer']}: {p['state']} (peer's id "
            f"{p['provider_pid'] or '-'}; ledger entry {p.get('ledger_seq') or '-'})")  # fmt: skip


def cmd_catalogue(args: argparse.Namespace) -> int:
    """Print the peer's datasets and offers the caller may request there."""
    found = _call(args, "GET", "/federation/catalogue", params={"peer": args.peer})
    if found is None:
        return 1
    datasets = found["catalog"].get("dataset", [])
    print(f"{len(datasets)} dataset(s) at {found['peer']} (you are {found['participant_id']} "
          f"there; ledger entry {found['ledger_seq']})")  # fmt: skip
    for d in datasets:
        offers = ", ".join(o.get("@id", "?") for o in d.get("hasPolicy", []))
        print(f"  {d.get('@id')}  {d.get('dct:title', '')}  offers: {offers}")
    return 0


def cmd_negotiate(args: argparse.Namespace) -> int:
    """Request an offer of the peer's catalogue through this gateway."""
    body = {"peer": args.peer, "offer_id": args.offer}
    if args.dataset:
        body["dataset_id"] = args.dataset
    if args.purpose:
        body["purpose"] = args.purpose
    found = _call(args, "POST", "/federation/consumer/negotiations", json=body)
    if found is None:
        return 1
    print(_line(found))
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Print the caller's federated negotiations and transfers."""
    found = _call(args, "GET", "/federation/consumer/negotiations")
    if found is None:
        return 1
    for p in found:
        print(_line(p))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Sign the peer's agreement with --key and send the verification (→ FINALIZED)."""
    from contracts.signing import sign_contract
    from gateway.auth.cli import read_key

    path = f"/federation/consumer/negotiations/{args.pid}"
    found = _call(args, "GET", path)
    if found is None:
        return 1
    if found["document"] is None:
        print(f"dsgw: negotiation {args.pid} is {found['state']}: no agreement to sign yet",
              file=sys.stderr)  # fmt: skip
        return 1
    key = read_key(args)
    from jwt.algorithms import OKPAlgorithm

    jws = sign_contract(found["document"], OKPAlgorithm.from_jwk(key.private_jwk()), kid=key.kid)
    done = _call(args, "POST", f"{path}/verify", json={"signature": jws})
    if done is None:
        return 1
    print(_line(done))
    return 0


def cmd_transfer(args: argparse.Namespace) -> int:
    """Ask the peer for a pull under a FINALIZED federated agreement."""
    found = _call(args, "POST", "/federation/consumer/transfers", json={"negotiation": args.pid})
    if found is None:
        return 1
    print(_line(found))
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    """Pull a STARTED federated transfer's data (to --out, else stdout)."""
    import httpx

    from gateway.auth.cli import TokenRefused, fetch_token, read_key
    from gateway.participants.service import PLATFORM_ADMIN_ID
    from gateway.products.cli import client_factory

    client = client_factory(base_url=args.url.rstrip("/"), timeout=120)
    try:
        token = fetch_token(client, read_key(args), args.as_id or PLATFORM_ADMIN_ID)
        answer = client.get(f"/federation/consumer/transfers/{args.pid}/data",
                            headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    except (TokenRefused, httpx.HTTPError) as exc:
        print(f"dsgw: {exc}", file=sys.stderr)
        return 1
    if answer.status_code != 200:
        body = answer.json() if answer.content else {}
        print(f"HTTP {answer.status_code} {body.get('type', '')}: {body.get('detail', '')}",
              file=sys.stderr)  # fmt: skip
        return 1
    if args.out:
        Path(args.out).write_bytes(answer.content)
        print(f"{len(answer.content)} bytes to {args.out} "
              f"(ledger entry {answer.headers.get('DSGW-Ledger-Seq')})")  # fmt: skip
    else:
        sys.stdout.buffer.write(answer.content)
    return 0


def cmd_counter(args: argparse.Namespace) -> int:
    """Counter a peer's offer on an OFFERED federated negotiation (→ REQUESTED)."""
    body = {"offer_id": args.offer} if args.offer else None
    found = _call(args, "POST", f"/federation/consumer/negotiations/{args.pid}/counter", json=body)
    if found is None:
        return 1
    print(_line(found))
    return 0


def cmd_offer(args: argparse.Namespace) -> int:
    """The merchant answers a DSP consumer's request with one of the product's offers."""
    body = {"offer_id": args.offer} if args.offer else None
    found = _call(args, "POST", f"/federation/negotiations/{args.pid}/offer", json=body)
    if found is None:
        return 1
    print(f"{found['provider_pid']}  {found['state']}  offer {found['offer_id']}")
    return 0


def cmd_move(args: argparse.Namespace) -> int:
    """The merchant starts, suspends, completes or terminates a DSP consumer's transfer."""
    found = _call(args, "POST", f"/federation/transfers/{args.pid}/{args.action}")
    if found is None:
        return 1
    print(f"{found['provider_pid']}  {found['state']}")
    return 0


def add_parsers(sub: Any) -> None:
    """Add `federation catalogue|negotiate|list|verify|transfer|pull|counter|offer|move` to
    the sub-commands."""
    from gateway.products.cli import _connection

    fed = sub.add_parser("federation", help="use a peer gateway's products through this one")
    fed_sub = fed.add_subparsers(dest="federation_command", required=True)
    catalogue = fed_sub.add_parser("catalogue", help="a peer's catalogue, as you may see it")
    catalogue.add_argument("--peer", required=True, help="the peer's id (its issuer URL)")
    _connection(catalogue)
    catalogue.set_defaults(func=cmd_catalogue)
    negotiate = fed_sub.add_parser("negotiate", help="request an offer of a peer's catalogue")
    negotiate.add_argument("--peer", required=True)
    negotiate.add_argument("--offer", required=True, help="the offer's id in the catalogue")
    negotiate.add_argument("--dataset", help="the dataset (product) id")
    negotiate.add_argument("--purpose", help="needed when the offer allows several")
    _connection(negotiate)
    negotiate.set_defaults(func=cmd_negotiate)
    listing = fed_sub.add_parser("list", help="your federated negotiations and transfers")
    _connection(listing)
    listing.set_defaults(func=cmd_list)
    for name, func, what in (
        ("verify", cmd_verify, "sign the peer's agreement (with --key) and verify it"),
        ("transfer", cmd_transfer, "start a pull under a FINALIZED federated agreement"),
        ("pull", cmd_pull, "pull a STARTED federated transfer's data"),
    ):
        step = fed_sub.add_parser(name, help=what)
        step.add_argument("pid", help="the process id (fng_… or ftr_…)")
        if name == "pull":
            step.add_argument("--out", help="write the data here (default: stdout)")
        _connection(step)
        step.set_defaults(func=func)
    for name, func, what in (
        ("counter", cmd_counter, "counter a peer's offer (OFFERED) with a request of your own"),
        ("offer", cmd_offer, "merchant: answer a DSP consumer's request with a product offer"),
    ):
        step = fed_sub.add_parser(name, help=what)
        step.add_argument("pid", help="the negotiation (fng_… yours, ctr_… the merchant's)")
        step.add_argument("--offer", help="the offer's id (default: the one requested)")
        _connection(step)
        step.set_defaults(func=func)
    move = fed_sub.add_parser("move", help="merchant: move a DSP consumer's transfer")
    move.add_argument("pid", help="the transfer id (trf_…)")
    move.add_argument("action", choices=["start", "suspend", "complete", "terminate"])
    _connection(move)
    move.set_defaults(func=cmd_move)
