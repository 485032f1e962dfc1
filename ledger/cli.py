"""`python -m ledger verify DIR [NEW] ...`, `verify-receipt FILE --keys JWKS`, `verify-federated`.

`verify DIR` verifies an export offline; `verify OLD NEW` verifies both and proves, by an RFC
9162 consistency proof, that NEW extends OLD without rewriting it. `verify-receipt` checks a
receipt with only the gateway's public keys. Exit status: 0 verified, 1 a check failed, 2 the
input cannot be read (or the command line is wrong), 141 the reader of stdout went away
(`... | head`), as for a process that SIGPIPE ends.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ledger.errors import ExportUnreadableError, LedgerKeyError, LedgerVerificationError
from ledger.verify import verify_export, verify_extension

OK, FAILED, UNREADABLE = 0, 1, 2
BROKEN_PIPE = 128 + 13  # what a shell reports for a process ended by SIGPIPE
VALUE_OPTIONS = ("--trust-kid",)
"""Options whose value may begin with '-' (a kid is base64url: '-' is one of its letters)."""


def glue_option_values(argv: Iterable[str], options: Iterable[str] = VALUE_OPTIONS) -> list[str]:
    """Return `argv` with each `OPTION VALUE` of `options` written `OPTION=VALUE`.

    argparse takes a value that begins with '-' for an option of its own ("--trust-kid -abc"
    would be an error); glued to its option, the value is the option's whatever it looks like.
    Arguments after `--` are left as they are.
    """
    argv, options, out = list(argv), set(options), []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            out += argv[i:]
            break
        if arg in options and i + 1 < len(argv):
            out.append(f"{arg}={argv[i + 1]}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def quiet_on_broken_pipe(run: Callable[[], int]) -> int:
    """Return `run()`'s exit status, or BROKEN_PIPE without a traceback if stdout closes early.

    `dsgw ledger verify DIR | head -1` closes the pipe after one line; Python then raises
    BrokenPipeError at the next write, and again when it flushes stdout at exit. Stdout is
    pointed at /dev/null so that the last flush has nowhere to fail.
    """
    try:
        status = run()
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # pragma: no cover - stdout is no file
            pass
        return BROKEN_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (default: sys.argv[1:]); return the exit status."""
    return quiet_on_broken_pipe(lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(glue_option_values(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # --help, or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else UNREADABLE
    if args.command == "verify-receipt":
        return _verify_receipt(args)
    if args.command == "verify-consistency":
        return _verify_consistency(args)
    if args.command == "verify-federated":
        return _verify_federated(args)
    if args.new is not None:
        return _verify_extension(args)
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
    verify.add_argument("dir", type=Path, metavar="DIR", help="the export folder (OLD)")
    verify.add_argument(
        "new",
        type=Path,
        nargs="?",
        metavar="NEW",
        help="a later export of the same log: prove that it extends DIR without rewriting it",
    )
    verify.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    verify.add_argument(
        "--jobs", type=int, default=1, metavar="N", help="check entry signatures in N processes"
    )
    verify.add_argument(
        "--no-signatures",
        action="store_false",
        dest="signatures",
        help="skip the entries' own signatures (chain, Merkle roots, checkpoints, key rotations "
        "and the manifest are still checked)",
    )
    verify.add_argument(
        "--trust-kid",
        action="append",
        metavar="KID",
        dest="trusted_kids",
        help="accept only signatures by this key id (repeatable; a kid that begins with '-' is "
        "taken as it is); obtain the gateway's key ids from a source other than the export itself",
    )
    receipt = commands.add_parser(
        "verify-receipt",
        help="check a receipt (entry, signature, inclusion proof, checkpoint)",
        description="Check a receipt with only the gateway's public keys.",
    )
    receipt.add_argument("file", type=Path, metavar="FILE", help="the receipt (JSON)")
    receipt.add_argument(
        "--keys",
        type=Path,
        required=True,
        metavar="JWKS",
        help="the gateway's public keys as a JWK set (GET /ledger/keys, or an export's keys.json)",
    )
    receipt.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    consistency = commands.add_parser(
        "verify-consistency",
        help="check a consistency proof between two signed checkpoints",
        description="Check a proof saved from GET /ledger/proofs/consistency with only the "
        "gateway's public keys: both checkpoints' signatures and the RFC 9162 proof.",
    )
    consistency.add_argument("file", type=Path, metavar="FILE", help="the proof (JSON)")
    consistency.add_argument("--keys", type=Path, required=True, metavar="JWKS")
    federated = commands.add_parser(
        "verify-federated",
        help="verify two gateways' exports and every cross-reference between them",
        description="Verify A and B each on its own, then check every entry of one that names "
        "an entry of the other (data.peer_evidence): the entry is there with that hash, the "
        "checkpoint named is one of the other's signed checkpoints and covers it, and both are "
        "about the same exchange. A line per federated exchange; exit 1 on any mismatch.",
    )
    federated.add_argument("a", type=Path, metavar="A_EXPORT", help="one gateway's export")
    federated.add_argument("b", type=Path, metavar="B_EXPORT", help="its peer's export")
    federated.add_argument("--json", action="store_true", help="print a JSON report on stdout")
    return parser


def _verify_federated(args: argparse.Namespace) -> int:
    from ledger.federated import verify_federated

    try:
        report = verify_federated(args.a, args.b)
    except ExportUnreadableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return UNREADABLE
    except LedgerVerificationError as exc:
        if args.json:
            _print_json({"ok": False, "error": exc.to_json()})
        else:
            print(f"FAILED: {exc}")
        return FAILED
    if args.json:
        _print_json({"ok": True, **report.to_json(), "error": None})
        return OK
    print(f"OK: A {report.a.size} entries (head {report.a.head}), "
          f"B {report.b.size} entries (head {report.b.head}), each verified")  # fmt: skip
    for x in report.exchanges:
        print(f"  exchange {x.process}: {x.a_to_b} reference(s) A->B, {x.b_to_a} B->A, "
              f"all proven ({', '.join(x.steps)})")  # fmt: skip
    return OK


def _read_with_keys(path: Path, keys_path: Path, what: str):
    """Return (the JSON document, {kid: public key}), or None after saying what is unreadable."""
    from ledger.keys import jwk_thumbprint, public_key_from_jwk

    try:
        document = json.loads(path.read_bytes())
        jwks = json.loads(keys_path.read_bytes())
        return document, {jwk_thumbprint(k): public_key_from_jwk(k) for k in jwks["keys"]}
    except (OSError, ValueError, KeyError, TypeError, LedgerKeyError) as exc:
        print(f"error: cannot read the {what} or the keys: {exc}", file=sys.stderr)
        return None


def _verify_consistency(args: argparse.Namespace) -> int:
    from ledger.receipt import ReceiptError, check_consistency

    loaded = _read_with_keys(args.file, args.keys, "proof")
    if loaded is None:
        return UNREADABLE
    proof, keys = loaded
    try:
        old, new = check_consistency(proof, keys)
    except ReceiptError as exc:
        print(f"FAILED: {exc}")
        return FAILED
    print(f"OK: the signed checkpoint of size {new} extends the one of size {old}")
    return OK


def _verify_receipt(args: argparse.Namespace) -> int:
    from ledger.receipt import ReceiptError, check_receipt

    loaded = _read_with_keys(args.file, args.keys, "receipt")
    if loaded is None:
        return UNREADABLE
    receipt, keys = loaded
    try:
        report = check_receipt(receipt, keys)
    except ReceiptError as exc:
        if args.json:
            error = {"check": exc.check, "expected": exc.expected, "found": exc.found}
            _print_json({"ok": False, "error": error})
        else:
            print(f"FAILED: {exc}")
        return FAILED
    if args.json:
        _print_json({"ok": True, **report.to_json(), "error": None})
        return OK
    where = (
        f"proven in the signed checkpoint of size {report.checkpoint_size}"
        if report.checkpoint_size is not None
        else "no inclusion proof yet (fetch the receipt again after the next checkpoint)"
    )
    print(f"OK: entry {report.seq} ({report.type}, {report.time}) signed by {report.kid}")
    print(f"hash {report.hash}; {where}")
    return OK


def _verify_extension(args: argparse.Namespace) -> int:
    progress = _progress if (not args.json and sys.stderr.isatty()) else None
    try:
        report = verify_extension(
            args.dir,
            args.new,
            progress=progress,
            trusted_kids=args.trusted_kids,
            signatures=args.signatures,
            jobs=args.jobs,
        )
    except ExportUnreadableError as exc:
        _end_progress(progress)
        if args.json:
            error = {"seq": None, "check": "unreadable", "expected": "", "found": str(exc)}
            _print_json({"ok": False, "error": error})
        print(f"error: {exc}", file=sys.stderr)
        return UNREADABLE
    except LedgerVerificationError as exc:
        _end_progress(progress)
        if args.json:
            _print_json({"ok": False, "error": exc.to_json()})
        else:
            print(f"FAILED: {exc}")
        return FAILED
    _end_progress(progress)
    if args.json:
        _print_json({"ok": True, **report.to_json(), "error": None})
        return OK
    old, new = report.old, report.new
    print(
        f"OK: NEW ({new.size} entries, root {new.root}) extends OLD ({old.size} entries, "
        f"root {old.root}) without rewriting it"
    )
    print(f"consistency proof: {len(report.proof)} hashes (RFC 9162)")
    return OK


def _verify(args: argparse.Namespace) -> int:
    progress = _progress_for(args.dir) if (not args.json and sys.stderr.isatty()) else None
    try:
        report = verify_export(
            args.dir,
            progress=progress,
            trusted_kids=args.trusted_kids,
            signatures=args.signatures,
            jobs=args.jobs,
        )
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
    print(
        f"Merkle root {report.root}; {report.checkpoints} signed checkpoints verified; "
        + ("every entry signature checked" if report.signatures else "entry signatures skipped")
    )
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


def _progress(done: int, total: int | None = None) -> None:
    """Draw a progress bar on stderr: [#####.....]  45%  450000/1000000 entries."""
    if not total:
        print(f"\rverified {done} entries", end="", file=sys.stderr, flush=True)
        return
    width = 30
    filled = min(width, width * done // total)
    bar = "#" * filled + "." * (width - filled)
    print(
        f"\r[{bar}] {min(100, 100 * done // total):3d}%  {done}/{total} entries",
        end="",
        file=sys.stderr,
        flush=True,
    )


def _progress_for(folder: Path):
    """Return a progress callback that knows the size the manifest announces (if readable)."""
    try:
        total = json.loads((Path(folder) / "manifest.json").read_bytes()).get("size")
    except (OSError, ValueError, AttributeError):
        total = None
    total = total if isinstance(total, int) and total > 0 else None
    return lambda done: _progress(done, total)


def _end_progress(progress) -> None:
    if progress is not None:
        print(file=sys.stderr)


def _print_json(obj: dict) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))
