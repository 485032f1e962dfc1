"""`python -m ledger verify DIR [--json] [--trust-kid KID]...`: verify an export offline.

Exit status: 0 verified, 1 a check failed, 2 the folder or a file in it cannot be read (or the
command line is wrong).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ledger.errors import ExportUnreadableError, LedgerVerificationError
from ledger.verify import verify_export

OK, FAILED, UNREADABLE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (default: sys.argv[1:]); return the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else UNREADABLE
    return _verify(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ledger", description="Verify an exported dsgw ledger offline."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    verify = commands.add_parser(
        "verify",
        help="verify an export folder (entries.jsonl, keys.json, manifest.json)",
        description="Check every entry's sequence, chain, hash and signature, then the signed "
        "manifest. Exit 0 if all hold, 1 at the first failure, 2 if the folder is unreadable.",
    )
    verify.add_argument("dir", type=Path, metavar="DIR", help="the export folder")
    verify.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    verify.add_argument(
        "--trust-kid",
        action="append",
        metavar="KID",
        dest="trusted_kids",
        help="accept only signatures by this key id (repeatable); obtain the gateway's key ids "
        "from a source other than the export itself",
    )
    return parser


def _verify(args: argparse.Namespace) -> int:
    progress = _progress if (not args.json and sys.stderr.isatty()) else None
    try:
        report = verify_export(args.dir, progress=progress, trusted_kids=args.trusted_kids)
    except ExportUnreadableError as exc:
        _end_progress(progress)
        if args.json:
            error = {"seq": None, "check": "unreadable", "expected": "", "found": str(exc)}
            _print_json({"ok": False, "size": None, "head": None, "error": error})
        print(f"error: {exc}", file=sys.stderr)
        return UNREADABLE
    except LedgerVerificationError as exc:
        _end_progress(progress)
        if args.json:
            _print_json({"ok": False, "size": None, "head": None, "error": exc.to_json()})
        else:
            print(f"FAILED: {exc}")
        return FAILED
    _end_progress(progress)
    if args.json:
        _print_json({"ok": True, **report.to_json(), "error": None})
        return OK
    print(f"OK: {report.size} entries, head {report.head}, signed by {', '.join(report.kids)}")
    print(f"origin {report.origin}, exported at {report.exported_at}")
    if report.size:
        print(f"entries from {report.first_time} to {report.last_time}")
        for name, n in sorted(report.types.items()):
            print(f"  {n:>10}  {name}")
    if not args.trusted_kids:
        print(
            "note: the keys came from the export's own keys.json; compare the key ids above with "
            "the gateway's published ones, or pass --trust-kid"
        )
    return OK


def _progress(done: int) -> None:
    print(f"\rverified {done} entries", end="", file=sys.stderr, flush=True)


def _end_progress(progress) -> None:
    if progress is not None:
        print(file=sys.stderr)


def _print_json(obj: dict) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))
