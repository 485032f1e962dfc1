"""`dsgw`: serve the gateway, run the demo, export and verify the ledger, export the OpenAPI,
migrate the database schema (`dsgw db`), and browse the catalogue or move products and contracts
through their life cycles."""

import argparse
import asyncio
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from gateway.core.config import Settings, default_state_dir
from gateway.core.logging import to_stderr


def _settings(args: argparse.Namespace, **extra) -> Settings:
    return Settings.from_env(
        state_dir=Path(args.state).resolve() if getattr(args, "state", None) else None,
        database_url=getattr(args, "database_url", None),
        **extra,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    """Start OPA (unless --opa-url names one) and serve the gateway with hypercorn.

    With `--workers N` (N > 1, PostgreSQL only) this process starts the one OPA, settles the
    issuer, bootstraps the database once, binds the port and supervises N worker processes that
    serve on it (gateway/running.py `Workers`).
    """
    import os

    from authlib.common.security import is_secure_transport

    from gateway.core.config import IssuerConfigError, settle_issuer
    from gateway.core.db import DatabaseUnreachable
    from gateway.core.logging import configure_logging
    from gateway.migrations import SchemaOutdated
    from gateway.policy.opa_process import OpaNotFound, OpaServer

    if args.listen_fd is not None:
        return _serve_worker(args)
    if args.workers < 1:
        print("dsgw serve: --workers must be at least 1", file=sys.stderr)
        return 2
    configure_logging()
    if args.workers > 1 and _settings(args).resolved_database_url.startswith("sqlite"):
        print(
            f"dsgw serve: --workers {args.workers} needs PostgreSQL (--database-url "
            "postgresql+psycopg://… or DSGW_DATABASE_URL): SQLite allows one writer at a time, "
            "so more worker processes would only queue on its file lock "
            "(specs/operations.md); run one worker on SQLite",
            file=sys.stderr,
        )
        return 2
    opa = None
    opa_url = args.opa_url
    if not opa_url:
        try:
            opa = OpaServer().start()  # one OPA, however many workers
        except (OpaNotFound, RuntimeError) as exc:
            print(f"dsgw serve: cannot start OPA: {exc}", file=sys.stderr)
            return 2
        opa_url = opa.url
    try:
        # A wildcard bind is reached on loopback at least; any other name needs --issuer.
        shown = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
        base = f"http://{shown}:{args.port}"
        state_dir = _settings(args).state_dir
        # One issuer for every process of this state folder: the explicit one, else the one
        # recorded at the folder's first start (never each process's own port).
        issuer, note = settle_issuer(
            state_dir, explicit=args.issuer or os.environ.get("DSGW_ISSUER"), default=base
        )
        if note:
            print(f"dsgw serve: note: {note}", file=sys.stderr)
        settings = _settings(args, opa_url=opa_url, issuer=issuer, db_upgrade=args.upgrade or None)
        if not is_secure_transport(f"{settings.issuer.rstrip('/')}/oauth/token"):
            print(
                f"dsgw serve: warning: the issuer {settings.issuer} is neither https nor "
                "loopback, so the token endpoint refuses every request (OAuth 2.0 needs TLS); "
                "behind a TLS-terminating proxy, pass --issuer https://<public host>",
                file=sys.stderr,
            )
        banner = (
            f"gateway  {base}\n"
            f"docs     {base}/docs (OpenAPI: {base}/openapi.json)\n"
            f"portal   {base}/portal/ (pages for people, zh-CN and English)\n"
            f"opa      {opa_url}{' (started here, policies/)' if opa else ''}\n"
            f"issuer   {settings.issuer}\n"
            f"state    {settings.state_dir}\n"
            f"database {settings.resolved_database_url}\n"
        )
        stops = "Ctrl-C stops the gateway" + (" and OPA" if opa else "")
        from gateway.running import announce, local_url

        if args.workers > 1:
            return _serve_workers(args, settings, banner, stops)
        from hypercorn.config import Config

        from gateway.app import create_app

        app = create_app(settings)
        config = Config()
        config.bind = [f"{args.host}:{args.port}"]
        config.accesslog = None
        config.errorlog = "-"
        print(banner + stops, flush=True)
        with announce(settings.state_dir, local_url(args.host, args.port)):  # for `dsgw demo`
            asyncio.run(_hypercorn(app, config))
        print("stopped", flush=True)
        return 0
    except (OSError, SchemaOutdated, DatabaseUnreachable, IssuerConfigError) as exc:
        print(f"dsgw serve: {exc}", file=sys.stderr)
        return 2
    finally:
        if opa is not None:
            opa.stop()


async def _hypercorn(app, config, *, watch_parent: bool = False) -> None:
    """Serve `app` with hypercorn until SIGINT or SIGTERM (or, for a worker, its parent's end)."""
    from hypercorn.asyncio import serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if watch_parent:
        from gateway.running import watch_parent as watch

        watch(lambda: loop.call_soon_threadsafe(stop.set))
    await serve(app, config, shutdown_trigger=stop.wait)


def _serve_workers(args: argparse.Namespace, settings: Settings, banner: str, stops: str) -> int:
    """Bootstrap once, bind the port, and supervise `--workers` worker processes on it."""
    from gateway.app import build_gateway
    from gateway.running import Workers, announce, listen_socket, local_url

    # Migrations and the genesis run here, once, so that a start error is reported once and
    # the workers find a ready database (they would serialise on the advisory locks anyway).
    gateway = build_gateway(settings)
    gateway.policy.close()
    gateway.engine.dispose()
    sock = listen_socket(args.host, args.port)

    def command(fd: int) -> list[str]:
        argv = [sys.executable, "-m", "gateway.cli", "--state", str(settings.state_dir), "serve"]
        argv += ["--listen-fd", str(fd), "--opa-url", settings.opa_url]
        argv += ["--issuer", settings.issuer, "--host", args.host, "--port", str(args.port)]
        if settings.database_url:
            argv += ["--database-url", settings.database_url]
        return argv

    # The workers' metrics add up at every scrape (prometheus-client's multiprocess mode): each
    # worker writes its values under one fresh folder, removed at the end.
    metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = tempfile.mkdtemp(prefix="dsgw-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    workers = Workers(args.workers, sock, command)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, workers.stop)
    try:
        pids = workers.start()
        print(
            banner + f"workers  {args.workers} (pids {', '.join(map(str, pids))})\n" + stops,
            flush=True,
        )
        with announce(settings.state_dir, local_url(args.host, args.port)):
            code = workers.run()
    finally:
        sock.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    print("stopped", flush=True)
    return code


def _serve_worker(args: argparse.Namespace) -> int:
    """One worker of `serve --workers N`: serve on the inherited socket `--listen-fd`."""
    from hypercorn.config import Config

    from gateway.app import create_app
    from gateway.core.db import DatabaseUnreachable
    from gateway.core.logging import configure_logging
    from gateway.migrations import SchemaOutdated

    configure_logging()
    try:
        app = create_app(_settings(args, opa_url=args.opa_url, issuer=args.issuer))
        config = Config()
        config.bind = [f"fd://{args.listen_fd}"]
        config.accesslog = None
        config.errorlog = "-"
        asyncio.run(_hypercorn(app, config, watch_parent=True))
        return 0
    except (OSError, SchemaOutdated, DatabaseUnreachable) as exc:
        print(f"dsgw serve (worker {args.listen_fd}): {exc}", file=sys.stderr)
        return 2


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


def cmd_verify_certificate(args: argparse.Namespace) -> int:
    """Verify a registration certificate offline with the gateway's public keys."""
    from gateway.resources.certificate import CertificateError, verify

    try:
        text = Path(args.file).read_text(encoding="utf-8").strip()
        if args.jwks:
            keys = json.loads(Path(args.jwks).read_text(encoding="utf-8"))
        else:
            path = _settings(args).gateway_key_path
            if not path.exists():
                print(
                    f"dsgw resource verify-certificate: no gateway key at {path}; pass --jwks",
                    file=sys.stderr,
                )
                return 2
            keys = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"dsgw resource verify-certificate: {exc}", file=sys.stderr)
        return 2
    keys = keys.get("keys", [keys]) if isinstance(keys, dict) else []
    public = [{k: v for k, v in key.items() if k != "d"} for key in keys if isinstance(key, dict)]
    certificate = text
    if text.startswith("{"):
        try:
            certificate = json.loads(text).get("certificate", "")
        except (ValueError, AttributeError):
            certificate = ""
    try:
        payload = verify(certificate, public)
    except CertificateError as exc:
        print(f"INVALID: {exc}")
        return 1
    record = payload["record"]
    print(
        f"OK: registration {payload['registration']} ({payload['kind']}) coded "
        f"{payload['code']} at {payload['coded_at']}: resource {record['resource']} "
        f"{record['name']!r} v{record['version']} {record['status']}, held by "
        f"{record['holder']['name']} ({record['holder']['uscc']}); record_hash "
        f"{payload['record_hash']}"
    )
    return 0


def cmd_authorisations_sweep(args: argparse.Namespace) -> int:
    """End the authorisations past their term and suspend their products (state folder)."""
    from gateway.app import build_gateway
    from gateway.authorisations.service import sweep
    from gateway.core.errors import Problem

    gateway = build_gateway(_settings(args))
    try:
        with gateway.sessions() as session:
            result = sweep(session, gateway.signer)
    except Problem as exc:
        print(f"dsgw authorisations sweep: {exc.detail}", file=sys.stderr)
        return 2
    finally:
        gateway.engine.dispose()
    print(
        f"expired {len(result.expired)} authorisation(s) {result.expired}; suspended "
        f"{len(result.suspended_products)} product(s) {result.suspended_products}"
    )
    return 0


def _as_admin(args: argparse.Namespace, action) -> int:
    """Run `action(session, gateway, admin)` on the state folder's database as the platform
    admin; print its JSON result, or the problem (exit 1)."""
    from gateway.app import build_gateway
    from gateway.core.errors import Problem
    from gateway.participants.service import PLATFORM_ADMIN_ID
    from gateway.participants.service import get as get_participant

    gateway = build_gateway(_settings(args))
    try:
        with gateway.sessions() as session:
            admin = get_participant(session, PLATFORM_ADMIN_ID)
            result = action(session, gateway, admin)
    except Problem as exc:
        print(json.dumps(exc.body(), ensure_ascii=False, indent=2), file=sys.stderr)
        return 1
    finally:
        gateway.engine.dispose()
    print(result.model_dump_json(indent=2))
    return 0


def cmd_participant_status(args: argparse.Namespace) -> int:
    """Suspend or reinstate a participant as the platform admin (state folder)."""
    from gateway.participants import service

    def run(session, gateway, admin):
        participant, _ = service.change_status(
            session,
            gateway.signer,
            participant_id=args.participant_id,
            action=args.participant_command,
            actor=admin.id,
            reason=args.reason,
        )
        return service.to_read(participant)

    return _as_admin(args, run)


def cmd_registration_step(args: argparse.Namespace) -> int:
    """Take one step of a registration as the platform admin (state folder)."""
    from datetime import timedelta

    from gateway.resources import service

    def run(session, gateway, admin):
        seconds = args.window_seconds
        if seconds is None:
            seconds = gateway.settings.publicity_seconds
        registration, _ = service.advance(
            session,
            gateway.signer,
            registration_id=args.registration_id,
            action=args.registration_command,
            actor=admin,
            reason=args.reason or "",
            window=timedelta(seconds=seconds),
            issuer=gateway.settings.issuer,
        )
        return service.registration_read(registration)

    if args.window_seconds is not None and args.window_seconds < 0:
        print("dsgw registrations publicise: --window-seconds must be >= 0", file=sys.stderr)
        return 2
    if args.registration_command == "reject" and not args.reason:
        print("dsgw registrations reject: give --reason", file=sys.stderr)
        return 2
    return _as_admin(args, run)


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


def cmd_ledger_verify_receipt(args: argparse.Namespace) -> int:
    """Check a receipt offline with the gateway's public keys (the ledger package's checker)."""
    from ledger.cli import main as ledger_main

    argv = ["verify-receipt", args.file, "--keys", args.keys] + (["--json"] if args.json else [])
    return ledger_main(argv)


def cmd_ledger_verify_consistency(args: argparse.Namespace) -> int:
    """Check a consistency proof between two signed checkpoints offline."""
    from ledger.cli import main as ledger_main

    return ledger_main(["verify-consistency", args.file, "--keys", args.keys])


def cmd_ledger_verify_federated(args: argparse.Namespace) -> int:
    """Verify two gateways' exports and the cross-references of their federated exchanges."""
    from ledger.cli import main as ledger_main

    return ledger_main(["verify-federated", args.a, args.b] + (["--json"] if args.json else []))


def cmd_ledger_checkpoint(args: argparse.Namespace) -> int:
    """Sign a checkpoint of the local ledger now."""
    from gateway.ledger_admin import cut_checkpoint

    return cut_checkpoint(_settings(args))


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    """Rotate the gateway's signing key (gateway stopped): announce the new key in the ledger."""
    from gateway.ledger_admin import rotate_key
    from gateway.running import serving

    settings = _settings(args)
    running = serving(settings.state_dir)
    if running is not None:
        print(
            f"dsgw keys rotate: a gateway (pid {running.pid}, {running.url}) serves this state "
            f"folder {settings.state_dir}; stop it first (it would keep signing with the old key)",
            file=sys.stderr,
        )
        return 2
    return rotate_key(settings)


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
    serve.add_argument(
        "--issuer",
        help="public base URL of the gateway: the token issuer and audience, e.g. "
        "https://dsgw.example.gov.cn behind a TLS proxy; also DSGW_ISSUER. Recorded in the "
        "state folder (issuer.json), so that every process of it issues and accepts the same "
        "tokens (default: the recorded one, else http://HOST:PORT of the first start)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes serving the one port (default 1; more need PostgreSQL); one OPA "
        "is started for all of them",
    )
    serve.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)  # a worker's socket
    serve.add_argument(
        "--upgrade",
        action="store_true",
        help="migrate an older database schema in place first (default: refuse to start; "
        "also DSGW_DB_UPGRADE=1)",
    )
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="walk the whole story over HTTP")
    demo.add_argument(
        "--url",
        help="a running gateway; default: the one `dsgw serve` runs on this state folder, "
        "else start one on free ports",
    )
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
        "--trust-kid",
        action="append",
        dest="trusted_kids",
        help="trust only this first key (a kid that begins with '-' is taken as it is)",
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
    federated = ledger_sub.add_parser(
        "verify-federated",
        help="verify two federated gateways' exports and every cross-reference between them",
    )
    federated.add_argument("a", help="one gateway's exported ledger folder")
    federated.add_argument("b", help="its peer gateway's exported ledger folder")
    federated.add_argument("--json", action="store_true", help="print a JSON report")
    federated.set_defaults(func=cmd_ledger_verify_federated)
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

    resource = sub.add_parser("resource", help="data resource registrations")
    resource_sub = resource.add_subparsers(dest="resource_command", required=True)
    check = resource_sub.add_parser(
        "verify-certificate", help="verify a registration certificate offline"
    )
    check.add_argument("file", help="the certificate: compact JWS, or the JSON of the API")
    check.add_argument(
        "--jwks", help="the gateway's public keys (/.well-known/jwks.json); default: state folder"
    )
    check.set_defaults(func=cmd_verify_certificate)

    authorisations = sub.add_parser("authorisations", help="authorisations (授权运营)")
    authorisations_sub = authorisations.add_subparsers(dest="auz_command", required=True)
    sweep = authorisations_sub.add_parser(
        "sweep", help="end authorisations past their term, suspending their products"
    )
    sweep.add_argument("--database-url", help="SQLAlchemy URL; default SQLite in the state folder")
    sweep.set_defaults(func=cmd_authorisations_sweep)

    participants = sub.add_parser(
        "participants",
        help="suspend or reinstate a participant, manage its keys (admin, state folder)",
    )
    participants_sub = participants.add_subparsers(dest="participant_command", required=True)
    for name in ("suspend", "reinstate"):
        step = participants_sub.add_parser(name, help=f"{name} a participant")
        step.add_argument("participant_id")
        step.add_argument("--reason", required=True)
        step.add_argument("--database-url", help="SQLAlchemy URL; default SQLite in state folder")
        step.set_defaults(func=cmd_participant_status)
    from gateway.participants.cli import add_parsers as add_participant_key_parsers

    add_participant_key_parsers(participants_sub)  # participants keys list|add|retire

    registrations = sub.add_parser(
        "registrations", help="review resource registrations (admin, state folder)"
    )
    registrations_sub = registrations.add_subparsers(dest="registration_command", required=True)
    for name, text in [
        ("accept", "accept an application: applied → accepted"),
        ("review", "pass the review: accepted → reviewed"),
        ("publicise", "open the objection window: reviewed → publicised"),
        ("code", "code it once the window has closed: publicised → coded"),
        ("reject", "reject it before publicity"),
    ]:
        step = registrations_sub.add_parser(name, help=text)
        step.add_argument("registration_id")
        step.add_argument("--reason", help="why (required to reject)")
        step.add_argument(
            "--window-seconds", type=int, help="publicise: window length (default: settings)"
        )
        step.add_argument("--database-url", help="SQLAlchemy URL; default SQLite in state folder")
        step.set_defaults(func=cmd_registration_step)

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

    from gateway.products.cli import add_parsers as add_lifecycle_parsers

    add_lifecycle_parsers(sub)  # catalogue, product <action>, contract <action>
    from gateway.client.cli import add_parsers as add_client_parsers

    add_client_parsers(sub)  # pull, exchange, trace
    from gateway.auth.cli import add_parsers as add_token_parser

    add_token_parser(sub)  # token
    from gateway.migrations.cli import add_parsers as add_db_parsers

    add_db_parsers(sub)  # db upgrade, db current
    from gateway.peers.cli import add_parsers as add_peer_parsers

    add_peer_parsers(sub)  # peer add|list|suspend|reactivate
    from gateway.settlement.cli import add_parsers as add_settlement_parsers

    add_settlement_parsers(sub)  # settlement close|show|statement|verify
    from gateway.federation.cli import add_parsers as add_federation_parsers

    add_federation_parsers(sub)  # federation catalogue|negotiate|list|verify|transfer|pull
    return top


def main(argv: list[str] | None = None) -> int:
    """Run `dsgw`; return the exit code (141, quietly, when the reader of stdout goes away)."""
    from ledger.cli import glue_option_values, quiet_on_broken_pipe

    args = parser().parse_args(glue_option_values(sys.argv[1:] if argv is None else argv))
    # Log lines go to stderr, whatever the command: its stdout is its output (JSON reports).
    to_stderr()
    return quiet_on_broken_pipe(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
