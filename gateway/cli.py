"""`dsgw`: serve the gateway, run the demo, export and verify the ledger, export the OpenAPI."""

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from gateway.core.config import Settings, default_state_dir


def _settings(args: argparse.Namespace, **extra) -> Settings:
    return Settings.from_env(
        state_dir=Path(args.state).resolve() if getattr(args, "state", None) else None,
        database_url=getattr(args, "database_url", None),
        **extra,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Start OPA (unless --opa-url names one) and serve the gateway with hypercorn."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from gateway.app import create_app
    from gateway.core.logging import configure_logging
    from gateway.policy.opa_process import OpaNotFound, OpaServer

    configure_logging()
    opa = None
    opa_url = args.opa_url
    if not opa_url:
        try:
            opa = OpaServer().start()
        except (OpaNotFound, RuntimeError) as exc:
            print(f"dsgw serve: cannot start OPA: {exc}", file=sys.stderr)
            return 2
        opa_url = opa.url
    try:
        base = f"http://{args.host}:{args.port}"
        settings = _settings(args, opa_url=opa_url, issuer=args.issuer or base)
        app = create_app(settings)
        config = Config()
        config.bind = [f"{args.host}:{args.port}"]
        config.accesslog = None
        config.errorlog = "-"
        print(
            f"gateway  {base}\n"
            f"docs     {base}/docs (OpenAPI: {base}/openapi.json)\n"
            f"opa      {opa_url}{' (started here, policies/)' if opa else ''}\n"
            f"state    {settings.state_dir}\n"
            f"database {settings.resolved_database_url}\n"
            "Ctrl-C stops the gateway" + (" and OPA" if opa else ""),
            flush=True,
        )

        async def _run() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await serve(app, config, shutdown_trigger=stop.wait)

        asyncio.run(_run())
        print("stopped", flush=True)
        return 0
    except OSError as exc:
        print(f"dsgw serve: {exc}", file=sys.stderr)
        return 2
    finally:
        if opa is not None:
            opa.stop()


def cmd_demo(args: argparse.Namespace) -> int:
    """Walk the whole story over HTTP (starting a gateway unless --url names one)."""
    from gateway.demo import run_demo

    return run_demo(url=args.url, state_dir=Path(args.state).resolve() if args.state else None)


def cmd_ledger_export(args: argparse.Namespace) -> int:
    """Export the local ledger (state folder) with the public keys needed to verify it."""
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.app import build_ledger_export
    from ledger import LedgerError

    settings = _settings(args)
    if settings.database_url is None and not (settings.state_dir / "gateway.db").exists():
        print(
            f"dsgw ledger export: no ledger in {settings.state_dir} (run `dsgw serve` or "
            "`dsgw demo` there first, or pass --state / --database-url)",
            file=sys.stderr,
        )
        return 2
    try:
        manifest = build_ledger_export(settings, Path(args.out))
    except (SQLAlchemyError, LedgerError, OSError) as exc:
        print(f"dsgw ledger export: {exc}", file=sys.stderr)
        return 2
    print(f"exported {manifest['size']} entries to {args.out} (head {manifest['head']})")
    return 0


def cmd_ledger_verify(args: argparse.Namespace) -> int:
    """Verify an exported ledger offline (the ledger package's verifier)."""
    from ledger.cli import main as ledger_main

    argv = ["verify", args.dir] + (["--json"] if args.json else [])
    argv += [args.new] if getattr(args, "new", None) else []
    argv += ["--jobs", str(args.jobs)] if getattr(args, "jobs", 1) != 1 else []
    argv += [] if getattr(args, "signatures", True) else ["--no-signatures"]
    for kid in getattr(args, "trusted_kids", None) or []:
        argv += [f"--trust-kid={kid}"]  # a kid may begin with "-"
    return ledger_main(argv)


def cmd_ledger_verify_receipt(args: argparse.Namespace) -> int:
    """Check a receipt offline with the gateway's public keys (the ledger package's checker)."""
    from ledger.cli import main as ledger_main

    argv = ["verify-receipt", args.file, "--keys", args.keys] + (["--json"] if args.json else [])
    return ledger_main(argv)


def cmd_ledger_verify_consistency(args: argparse.Namespace) -> int:
    """Check a consistency proof between two signed checkpoints offline."""
    from ledger.cli import main as ledger_main

    return ledger_main(["verify-consistency", args.file, "--keys", args.keys])


def cmd_ledger_checkpoint(args: argparse.Namespace) -> int:
    """Sign a checkpoint of the local ledger now."""
    from gateway.ledger_admin import cut_checkpoint

    return cut_checkpoint(_settings(args))


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """Rotate the gateway's signing key (gateway stopped): announce the new key in the ledger."""
    from gateway.ledger_admin import rotate_key

    return rotate_key(_settings(args))


def cmd_openapi(args: argparse.Namespace) -> int:
    """Print (or write) the OpenAPI document of the gateway."""
    from gateway.openapi import openapi_document

    text = json.dumps(openapi_document(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def parser() -> argparse.ArgumentParser:
    """Return the argument parser of `dsgw`."""
    top = argparse.ArgumentParser(prog="dsgw", description=__doc__)
    top.add_argument(
        "--state",
        help=f"state folder (database, keys); default $DSGW_STATE or {default_state_dir()}",
    )
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway (and a local OPA)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--opa-url", help="use this OPA instead of starting one")
    serve.add_argument("--database-url", help="SQLAlchemy URL; default SQLite in the state folder")
    serve.add_argument("--issuer", help="public base URL of the gateway (token issuer)")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="walk the whole story over HTTP")
    demo.add_argument("--url", help="a running gateway; default: start one on free ports")
    demo.set_defaults(func=cmd_demo)

    ledger = sub.add_parser("ledger", help="export or verify the evidence ledger")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True)
    export = ledger_sub.add_parser("export", help="write the ledger and its public keys")
    export.add_argument("--out", required=True, help="folder to write")
    export.add_argument("--database-url", help="SQLAlchemy URL; default SQLite in the state folder")
    export.set_defaults(func=cmd_ledger_export)
    verify = ledger_sub.add_parser("verify", help="verify an exported ledger offline")
    verify.add_argument("dir", help="an exported ledger folder")
    verify.add_argument("--json", action="store_true", help="print a JSON report")
    verify.add_argument(
        "new", nargs="?", help="a later export: prove it extends DIR without rewriting it"
    )
    verify.add_argument("--jobs", type=int, default=1, help="check signatures in N processes")
    verify.add_argument(
        "--no-signatures", action="store_false", dest="signatures", help="skip entry signatures"
    )
    verify.add_argument(
        "--trust-kid", action="append", dest="trusted_kids", help="trust only this first key"
    )
    verify.set_defaults(func=cmd_ledger_verify)
    receipt = ledger_sub.add_parser("verify-receipt", help="check a receipt offline")
    receipt.add_argument("file", help="a receipt saved from GET /ledger/receipts/{seq}")
    receipt.add_argument("--keys", required=True, help="the gateway's JWKS (GET /ledger/keys)")
    receipt.add_argument("--json", action="store_true", help="print a JSON report")
    receipt.set_defaults(func=cmd_ledger_verify_receipt)
    consistency = ledger_sub.add_parser(
        "verify-consistency", help="check a consistency proof between two checkpoints offline"
    )
    consistency.add_argument("file", help="a proof saved from GET /ledger/proofs/consistency")
    consistency.add_argument("--keys", required=True, help="the gateway's JWKS")
    consistency.set_defaults(func=cmd_ledger_verify_consistency)
    checkpoint = ledger_sub.add_parser("checkpoint", help="sign a ledger checkpoint now")
    checkpoint.add_argument("--database-url", help="SQLAlchemy URL; default SQLite in the state")
    checkpoint.set_defaults(func=cmd_ledger_checkpoint)

    keys = sub.add_parser("keys", help="manage the gateway's signing key")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keys_sub.add_parser(
        "rotate", help="replace the signing key; the ledger announces the new one (stop first)"
    )
    rotate.add_argument("--database-url", help="SQLAlchemy URL; default SQLite in the state")
    rotate.set_defaults(func=cmd_keys_rotate)

    openapi = sub.add_parser("openapi", help="print the OpenAPI document")
    openapi.add_argument("--out", help="write it to this file")
    openapi.set_defaults(func=cmd_openapi)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run `dsgw`; return the exit code."""
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
