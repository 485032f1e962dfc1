"""`dsgw peer add|list|suspend|reactivate`: the platform admin manages the peer gateways.

Each command signs in as the platform admin (or `--as` / `--key`), calls the API and prints the
result; a problem is printed as `HTTP <status> <type>: <detail>` and exits 1 (as
gateway/products/cli.py).
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def _call(args: argparse.Namespace, method: str, path: str, **kwargs: Any) -> dict | None:
    from gateway.products import cli as lifecycle

    return lifecycle._call(args, method, path, **kwargs)


def cmd_peer_add(args: argparse.Namespace) -> int:
    """Register a peer gateway from its id, DSP URL and keys (a JWKS file or a JWKS URL)."""
    body: dict[str, Any] = {
        "id": args.peer_id,
        "kind": args.kind,
        "dsp_url": args.dsp_url,
        "participants": args.participant or [],
        "accounts": dict(a.split("=", 1) for a in args.account or [] if "=" in a),
    }
    if args.jwks:
        try:
            body["jwks"] = json.loads(Path(args.jwks).read_text())
        except (OSError, ValueError) as exc:
            print(f"dsgw: cannot read the JWKS file {args.jwks}: {exc}", file=sys.stderr)
            return 1
    if args.jwks_url:
        body["jwks_url"] = args.jwks_url
    peer = _call(args, "POST", "/peers", json=body)
    if peer is None:
        return 1
    kids = ", ".join(k.get("kid", "?") for k in peer["jwks"]["keys"]) or "none"
    acts_for = ", ".join(peer["participants"]) or "no participant"
    print(f"peer {peer['id']} is {peer['status']} (ledger entry {peer['ledger_seq']}); "
          f"keys {kids}; acts for {acts_for}")  # fmt: skip
    return 0


def cmd_peer_list(args: argparse.Namespace) -> int:
    """Print the registered peers."""
    found = _call(args, "GET", "/peers")
    if found is None:
        return 1
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"{len(found['items'])} peer(s)")
    for peer in found["items"]:
        print(f"  {peer['id']}  {peer['status']:9}  {peer['dsp_url']}  "
              f"participants: {', '.join(peer['participants']) or '-'}")  # fmt: skip
    return 0


def cmd_peer_status(args: argparse.Namespace) -> int:
    """Suspend or reactivate a peer."""
    body = {"reason": args.reason} if args.reason is not None else None
    peer = _call(args, "POST", f"/peers/{args.peer_id}/{args.peer_command}", json=body)
    if peer is None:
        return 1
    print(f"peer {peer['id']} is {peer['status']} (ledger entry {peer['ledger_seq']})")
    return 0


def add_parsers(sub: Any) -> None:
    """Add `peer add|list|suspend|reactivate` to the `dsgw` sub-commands."""
    from gateway.products.cli import _connection

    peer = sub.add_parser("peer", help="peer gateways this gateway trusts over DSP (admin)")
    peer_sub = peer.add_subparsers(dest="peer_command", required=True)
    add = peer_sub.add_parser("add", help="register a peer gateway")
    add.add_argument("peer_id", help="the peer's issuer URL (its DSP participantId)")
    add.add_argument("--dsp-url", required=True, help="the peer's DSP base URL")
    add.add_argument(
        "--kind",
        choices=["dsgw", "dsp"],
        default="dsgw",
        help="dsgw: a dsgw gateway (give its keys); dsp: a DSP connector that is no dsgw gateway "
        "(no keys: it only answers our federated processes, its callbacks carry their key)",
    )
    keys = add.add_mutually_exclusive_group()
    keys.add_argument("--jwks", help="a file with the peer's public Ed25519 JWKS")
    keys.add_argument("--jwks-url", help="where to fetch the peer's JWKS (once, now)")
    add.add_argument(
        "--participant",
        action="append",
        help="a participant registered here whose home is the peer (repeat for several)",
    )
    add.add_argument(
        "--account",
        action="append",
        metavar="OURS=THEIRS",
        help="one of our participants and its id at the peer: this gateway acts for it there "
        "(federation; repeat for several)",
    )
    _connection(add)
    add.set_defaults(func=cmd_peer_add)
    listing = peer_sub.add_parser("list", help="list the registered peers")
    listing.add_argument("--json", action="store_true", help="print the JSON")
    _connection(listing)
    listing.set_defaults(func=cmd_peer_list)
    for name in ("suspend", "reactivate"):
        step = peer_sub.add_parser(name, help=f"{name} a peer")
        step.add_argument("peer_id")
        step.add_argument("--reason", help="why (kept in the ledger entry)")
        _connection(step)
        step.set_defaults(func=cmd_peer_status)
