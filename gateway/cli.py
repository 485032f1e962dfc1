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
    return ledger_main(argv)


def cmd_policy_explain(args: argparse.Namespace) -> int:
    """Replay a recorded decision against the current policies; exit 0 same, 1 differs."""
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.core.db import make_engine
    from gateway.exchanges.models import Decision
    from gateway.policy.client import PolicyClient
    from gateway.policy.explain import explain, render
    from gateway.policy.opa_process import OpaNotFound, OpaServer

    settings = _settings(args)
    if settings.database_url is None and not (settings.state_dir / "gateway.db").exists():
        print(f"dsgw policy explain: no database in {settings.state_dir}", file=sys.stderr)
        return 2
    engine = make_engine(settings.resolved_database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                Decision.__table__.select().where(Decision.__table__.c.id == args.decision_id)
            ).first()
    except SQLAlchemyError as exc:
        print(f"dsgw policy explain: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if row is None:
        print(f"dsgw policy explain: no decision {args.decision_id!r}", file=sys.stderr)
        return 2
    opa = None
    try:
        if not args.opa_url:
            opa = OpaServer().start()
        client = PolicyClient(args.opa_url or opa.url, timeout=settings.opa_timeout)
        report = explain(
            decision_id=row.id,
            policy_input=row.input,
            recorded=row.result,
            recorded_version=row.policy_version,
            client=client,
        )
        client.close()
    except (OpaNotFound, RuntimeError, ValueError) as exc:
        print(f"dsgw policy explain: {exc}", file=sys.stderr)
        return 2
    finally:
        if opa is not None:
            opa.stop()
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False, sort_keys=True))
    else:
        print(render(report))
    if report["same"] is None:
        return 2
    return 0 if report["same"] else 1


def cmd_policy_version(args: argparse.Namespace) -> int:
    """Print the bundle version of policies/ (and, with --opa-url, of what that OPA serves)."""
    from gateway.policy.client import PolicyClient
    from gateway.policy.opa_process import POLICIES_DIR
    from gateway.policy.versions import bundle_version_of_dir

    local = bundle_version_of_dir(Path(args.policies) if args.policies else POLICIES_DIR)
    print(f"files  {local}")
    if not args.opa_url:
        return 0
    served, _ = PolicyClient(args.opa_url, timeout=2.0).version(max_age=0)
    print(f"opa    {served or 'unavailable'}")
    return 0 if served == local else 1


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
    verify.set_defaults(func=cmd_ledger_verify)

    policy = sub.add_parser("policy", help="explain recorded decisions; show policy versions")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    explain = policy_sub.add_parser(
        "explain",
        help="replay a recorded decision against the current policies and say whether and why "
        "it would now differ (exit 0 same, 1 differs, 2 cannot tell)",
    )
    explain.add_argument("decision_id", help="a decision id (dec_...), as on its ledger entry")
    explain.add_argument("--opa-url", help="ask this OPA; default: start one on policies/")
    explain.add_argument(
        "--database-url", help="SQLAlchemy URL; default SQLite in the state folder"
    )
    explain.add_argument("--json", action="store_true", help="print a JSON report")
    explain.set_defaults(func=cmd_policy_explain)
    version = policy_sub.add_parser(
        "version", help="print the bundle version of the policy files (and of a running OPA)"
    )
    version.add_argument("--policies", help="policy folder; default: the repository's policies/")
    version.add_argument("--opa-url", help="also ask this OPA which version it serves")
    version.set_defaults(func=cmd_policy_version)

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
