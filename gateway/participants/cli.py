"""`dsgw participants keys list|add|retire`: the platform admin's way back on the gateway host.

They work on the state folder's database directly (no token needed, so a participant locked out
by a lost or bad key can be rescued), as the platform admin, through the same service functions
as the API: each change is a ledger entry (`participant.key_added`, `participant.key_retired`)
by `prt_platform`. A problem is printed as JSON on stderr and exits 1.
"""

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from ledger import Signer


def _read_public_jwk(path: str) -> dict:
    """Return the public JWK in the file at `path` (a JWK or a one-key JWKS)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get("keys"), list) and len(data["keys"]) == 1:
        data = data["keys"][0]
    if not isinstance(data, dict):
        raise ValueError("expected a JWK object")
    return data


def _write_private_jwk(path: Path, signer: Signer) -> None:
    """Write the new private JWK to `path`, owner-only, never over an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(signer.private_jwk(), f, indent=2, sort_keys=True)
        f.write("\n")


class KeyListing(BaseModel):
    """What `keys list` prints: the active keys (each marked usable or not) and retired ones."""

    participant: str
    keys: list[dict]
    retired_keys: list[dict]


def _listing(participant) -> KeyListing:
    from gateway.participants.models import is_usable_jwk

    active = (participant.jwks or {}).get("keys", [])
    return KeyListing(
        participant=participant.id,
        keys=[{**k, "usable": is_usable_jwk(k)} for k in active if isinstance(k, dict)],
        retired_keys=participant.retired_keys or [],
    )


def cmd_keys_list(args: argparse.Namespace) -> int:
    """Print a participant's active and retired keys."""
    from gateway.cli import _as_admin
    from gateway.participants import service

    return _as_admin(args, lambda session, gateway, admin: _listing(service.get(session, args.id)))


def cmd_keys_add(args: argparse.Namespace) -> int:
    """Add a public key to a participant (from --jwk, or a new pair written to --generate)."""
    from gateway.cli import _as_admin
    from gateway.participants import service
    from gateway.participants.models import PublicJWK

    signer = None
    try:
        if args.generate:
            if Path(args.generate).exists():
                raise ValueError(f"{args.generate} exists; give a new file for the private key")
            signer = Signer.generate()
            jwk: dict[str, Any] = signer.public_jwk()
        else:
            jwk = _read_public_jwk(args.jwk)
        if args.kid:
            jwk = {**jwk, "kid": args.kid}
        key = PublicJWK.model_validate(jwk)
    except (OSError, ValueError) as exc:  # ValidationError is a ValueError
        detail = _validation_detail(exc) if isinstance(exc, ValidationError) else str(exc)
        print(f"dsgw participants keys add: {detail}", file=sys.stderr)
        return 2

    def run(session, gateway, admin):
        participant, _ = service.add_key(
            session, gateway.signer, participant_id=args.id, key=key, actor=admin
        )
        if signer is not None:
            _write_private_jwk(Path(args.generate), signer)
            print(f"private key written to {args.generate} (mode 0600)", file=sys.stderr)
        return service.to_read(participant)

    return _as_admin(args, run)


def cmd_keys_retire(args: argparse.Namespace) -> int:
    """Retire a participant's key: it stops authenticating and signing at once."""
    from gateway.cli import _as_admin
    from gateway.participants import service

    def run(session, gateway, admin):
        participant, _ = service.retire_key(
            session,
            gateway.signer,
            participant_id=args.id,
            kid=args.kid,
            actor=admin,
            reason=args.reason,
        )
        return service.to_read(participant)

    return _as_admin(args, run)


def _validation_detail(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "jwk"
    return f"{where}: {first.get('msg', 'invalid')}"


def add_parsers(participants_sub: Any) -> None:
    """Add `keys list|add|retire` under `dsgw participants`."""
    keys = participants_sub.add_parser(
        "keys", help="list, add or retire a participant's keys (admin, state folder)"
    )
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("id", help="the participant id (prt_…)")
        parser.add_argument("--database-url", help="SQLAlchemy URL; default SQLite in state folder")

    listing = keys_sub.add_parser("list", help="print the active and retired keys")
    common(listing)
    listing.set_defaults(func=cmd_keys_list)

    add = keys_sub.add_parser("add", help="add a public Ed25519 key (ledger entry key_added)")
    common(add)
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--jwk", help="file with the public JWK (OKP, Ed25519) to add")
    source.add_argument(
        "--generate", metavar="OUT", help="make a new key pair; write its private JWK to OUT"
    )
    add.add_argument("--kid", help="key id (default: the key's RFC 7638 thumbprint)")
    add.set_defaults(func=cmd_keys_add)

    retire = keys_sub.add_parser("retire", help="retire a key (ledger entry key_retired)")
    common(retire)
    retire.add_argument(
        "kid", help='the key id to retire (one that begins with "-" goes after "--": ID -- KID)'
    )
    retire.add_argument("--reason", default="", help="why (kept in the ledger entry)")
    retire.set_defaults(func=cmd_keys_retire)
