"""The FastAPI application: built from Settings, with every route and the problem handlers."""

from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials
from jwt.algorithms import OKPAlgorithm
from pydantic import BaseModel, Field
from sqlalchemy.orm import sessionmaker

from gateway import __version__, openapi
from gateway.auth.service import TokenIssuer
from gateway.auth.views import _bearer, claims_of, participant_of, require_role
from gateway.auth.views import router as auth_router
from gateway.authorisations.views import router as authorisations_router
from gateway.context import Gateway
from gateway.core import clock, metrics
from gateway.core.config import Settings
from gateway.core.db import (
    bootstrap_lock,
    create_schema,
    make_engine,
    session_scope,
    wait_for_database,
)
from gateway.core.errors import Problem, install_handlers, problem_responses
from gateway.core.guard import InputGuard
from gateway.core.ratelimit import RateLimit, RateLimiter
from gateway.disclosure.views import router as disclosure_router
from gateway.dsp.views import routers as dsp_routers
from gateway.evidence import sequencer
from gateway.evidence.service import check_signing_key, checkpoint_info, record
from gateway.evidence.views import router as ledger_router
from gateway.exchanges.fast import ExchangeFastPath
from gateway.exchanges.views import router as exchanges_router
from gateway.federation.views import routers as federation_routers
from gateway.negotiation.views import router as contracts_router
from gateway.participants import service as participants
from gateway.participants.views import router as participants_router
from gateway.peers.views import router as peers_router
from gateway.policy import versions as policy_versions
from gateway.policy.client import PolicyClient
from gateway.policy.watch import VersionWatcher
from gateway.portal.views import router as portal_router
from gateway.products.views import router as products_router
from gateway.resources.views import registrations as registrations_router
from gateway.resources.views import router as resources_router
from gateway.settlement.views import router as settlement_router
from gateway.transfers.views import router as transfers_router
from ledger import load_or_create_signer
from ledger import store as ledger_store

log = structlog.get_logger("gateway")


def build_gateway(settings: Settings) -> Gateway:
    """Open the state folder, database, keys and policy client; bootstrap a new ledger."""
    # The state folder holds the database (with the datasets) and the keys: owner only.
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    settings.state_dir.chmod(0o700)
    settings.keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    signer = load_or_create_signer(settings.gateway_key_path)
    engine = make_engine(settings.resolved_database_url, timeouts=settings.db_timeouts)
    metrics.watch_engine(engine)  # dsgw_db_errors_total, dsgw_db_lock_waits_total
    wait_for_database(engine, seconds=settings.db_wait_seconds)
    create_schema(engine, upgrade=settings.db_upgrade)
    sessions = sessionmaker(engine, expire_on_commit=False, info=checkpoint_info(settings))
    gateway = Gateway(
        settings=settings,
        engine=engine,
        sessions=sessions,
        signer=signer,
        private_key=OKPAlgorithm.from_jwk(signer.private_jwk()),
        policy=PolicyClient(
            settings.opa_url,
            timeout=settings.opa_timeout,
            version_ttl=settings.policy_version_ttl,
        ),
    )
    # Processes starting together on one database bootstrap one at a time, so that the genesis
    # and the admin exist once (on SQLite each check-then-write is one BEGIN IMMEDIATE).
    with bootstrap_lock(engine), sessions() as session:
        size, _ = ledger_store.head(session.connection())
        if size == 0:
            record(
                session,
                signer,
                type="ledger.genesis",
                data={"origin": settings.origin, "key": signer.public_jwk()},
            )
            session.commit()
        check_signing_key(session, signer)
        participants.ensure_admin(
            session, signer, admin_key=load_or_create_signer(settings.admin_key_path)
        )
        session.commit()
    with sessions() as session:
        # The policy version OPA serves at start is evidence (when OPA answers already).
        policy_versions.current(session, signer, gateway.policy)
        session.commit()
    return gateway


def api() -> FastAPI:
    """Return the application's routes and handlers, not yet bound to a running gateway."""
    app = FastAPI(
        title="Trusted data-space gateway",
        version=__version__,
        description=(
            "Registers participants, resources, products and usage contracts; decides every "
            "exchange with OPA; brokers the data under the policy's obligations; and signs "
            "every state change and decision into a hash-chained ledger. Errors are RFC 9457 "
            "problem details."
        ),
        docs_url=None,  # /docs and /redoc are served from the package (openapi.install_docs)
        redoc_url=None,
    )
    install_handlers(app)
    openapi.install(app)
    openapi.install_docs(app)
    # Innermost of ours: a well-formed JSON exchange is answered without FastAPI's routing.
    app.add_middleware(ExchangeFastPath)
    app.add_middleware(InputGuard)
    # Outermost: a client over its limits is refused before its body is even read.
    app.add_middleware(RateLimit)
    # Around everything, so that refused requests (429, 413) are counted too.
    app.add_middleware(metrics.MetricsMiddleware)

    @app.get("/health", tags=["health"], response_model=Health)
    async def health() -> Health:  # async: no worker thread for a probe
        """Return 200 while this process serves HTTP (liveness): it asks neither the database
        nor OPA; readiness is GET /ready."""
        return Health(status="ok", time=clock.rfc3339(clock.now()))

    @app.get("/ready", tags=["health"], response_model=Readiness, responses=problem_responses(503))
    def ready(request: Request) -> Readiness:
        """Return 200 when this process can serve: the database answers, the ledger's head is
        readable and OPA answers; else 503 `not-ready` naming what failed (for load balancers)."""
        gw: Gateway = request.app.state.gateway
        checks = readiness_checks(gw)
        if not all(value == "ok" for value in checks.values()):
            failed = sorted(name for name, value in checks.items() if value != "ok")
            log.error("not ready", checks=checks)
            raise Problem(
                503,
                "not-ready",
                "Not ready",
                f"this process cannot serve yet: {', '.join(failed)} failed",
                checks=checks,
            )
        return Readiness(status="ready", time=clock.rfc3339(clock.now()), checks=checks)

    @app.get(
        "/metrics",
        tags=["health"],
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition format (specs/operations.md)",
                "content": {metrics.CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}},
            },
            **problem_responses(401, 403),
        },
    )
    def prometheus_metrics(_: None = Depends(metrics_reader)) -> Response:
        """Return this gateway's Prometheus metrics; only with an admin's token unless
        `DSGW_METRICS_PUBLIC` is set (the counts show the shape of the traffic)."""
        return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)

    # Routes are matched in order: the health probes above (asked often, by every load
    # balancer), then each router's routes in turn, the exchange and transfer routes (the hot
    # path) first. No two routers' routes match the same path.
    for router in (
        exchanges_router,
        transfers_router,
        auth_router,
        participants_router,
        resources_router,
        registrations_router,
        authorisations_router,
        products_router,
        contracts_router,
        ledger_router,
        disclosure_router,
        settlement_router,
        *dsp_routers,
        *federation_routers,
        peers_router,
        portal_router,  # the portal's pages: include_in_schema=False, not in the OpenAPI
    ):
        app.include_router(router)
    return app


def create_app(settings: Settings | None = None, *, gateway: Gateway | None = None) -> FastAPI:
    """Return the gateway's ASGI application, bound to a gateway built from `settings`."""
    app = api()
    gw = gateway or build_gateway(settings or Settings.from_env())
    app.state.gateway = gw
    app.state.issuer = TokenIssuer(gw.settings, gw.signer)
    app.state.rate_limiter = RateLimiter.from_spec(gw.settings.rate_limits)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # The policy version is read off the request path; the sequencer drains at shutdown.
        watcher = VersionWatcher(gw, interval=gw.settings.policy_version_ttl).start()
        try:
            yield
        finally:
            watcher.stop()
            sequencer.close(gw)

    app.router.lifespan_context = lifespan
    return app


def metrics_reader(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> None:
    """Return if this request may read /metrics: anyone when metrics are public, else only
    the platform admin (401 without a valid token, 403 for another participant)."""
    gw: Gateway = request.app.state.gateway
    if gw.settings.metrics_public:
        return
    with session_scope(gw.sessions) as session:
        me = participant_of(session, claims_of(credentials, request.app.state.issuer))
        require_role(me, "admin")


class Health(BaseModel):
    status: str = Field(description="ok")
    time: str


class Readiness(BaseModel):
    status: str = Field(description="ready")
    time: str
    checks: dict[str, str] = Field(description="database, ledger, policy_engine: ok or why not")


def readiness_checks(gw: Gateway) -> dict[str, str]:
    """Return each dependency's state: "ok", or the kind of error that stopped it."""
    checks: dict[str, str] = {}
    try:
        with gw.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
            checks["database"] = "ok"
            ledger_store.head(conn)
            checks["ledger"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready, and is named
        checks.setdefault("database", type(exc).__name__)
        checks.setdefault("ledger", "unreadable")
    checks["policy_engine"] = "ok" if gw.policy.healthy() else "unavailable"
    return checks


def build_ledger_export(settings: Settings, out_dir: Path) -> dict:
    """Export the ledger of the state folder's database; return the signed manifest."""
    from ledger import export

    signer = load_or_create_signer(settings.gateway_key_path)
    engine = make_engine(settings.resolved_database_url)
    try:
        with engine.connect() as conn:
            return export(
                conn,
                out_dir,
                public_jwks=[signer.public_jwk()],
                signer=signer,
                origin=settings.origin,
                now=clock.now(),
            )
    finally:
        engine.dispose()
