"""Settings: read once from the environment and the command line, then passed explicitly."""

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from gateway.core.ratelimit import DEFAULT_RATE_LIMITS

_YES = ("1", "true", "yes")


def default_state_dir() -> Path:
    """Return the state folder: $DSGW_STATE, else `.dsgw` in the current directory."""
    return Path(os.environ.get("DSGW_STATE", ".dsgw")).resolve()


ISSUER_FILE = "issuer.json"


class IssuerConfigError(ValueError):
    """The state folder's issuer file cannot be read, or an issuer is not an http(s) URL."""


def _check_issuer(issuer: str, where: str) -> str:
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise IssuerConfigError(
            f"{where}: the issuer must be an http(s) base URL such as https://dsgw.example.gov.cn, "
            f"not {issuer[:200]!r}"
        )
    return issuer


def stored_issuer(state_dir: Path) -> str | None:
    """Return the issuer recorded in the state folder (`issuer.json`), or None when none is.

    Every process of one state folder reads the same file, so that a token one of them issues
    is valid at every other (specs/operations.md). Raises IssuerConfigError when it is unreadable.
    """
    path = Path(state_dir) / ISSUER_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise IssuerConfigError(f"{path}: not readable as JSON ({exc})") from None
    issuer = data.get("issuer") if isinstance(data, dict) else None
    if not isinstance(issuer, str):
        raise IssuerConfigError(f'{path}: expected {{"issuer": "https://…"}}')
    return _check_issuer(issuer, str(path))


def _write_issuer(path: Path, issuer: str, *, replace: bool) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"issuer": issuer}, out)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)  # the first start's issuer stays; concurrent starts agree
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def settle_issuer(state_dir: Path, *, explicit: str | None, default: str) -> tuple[str, str | None]:
    """Return the issuer every process of `state_dir` uses, and a note for the operator (or None).

    An explicit issuer (`--issuer`, DSGW_ISSUER) wins and is recorded in `issuer.json` for the
    processes that start after without one. Without one, the recorded issuer is used; on the
    first start of a state folder, `default` (the first process's own address) is recorded,
    atomically, so that processes starting together all take the one written first.
    """
    path = Path(state_dir) / ISSUER_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    recorded = stored_issuer(state_dir)
    if explicit:
        _check_issuer(explicit, "--issuer")
        if recorded == explicit:
            return explicit, None
        _write_issuer(path, explicit, replace=True)
        note = None
        if recorded is not None:
            note = (
                f"the issuer changes from {recorded} to {explicit} (recorded in {path}); "
                "tokens of processes still running with the old issuer are refused here"
            )
        return explicit, note
    if recorded is not None:
        return recorded, None
    _write_issuer(path, _check_issuer(default, "the default issuer"), replace=False)
    return stored_issuer(state_dir) or default, None


@dataclass(frozen=True)
class Settings:
    """Everything the gateway needs to start; nothing else reads the environment."""

    state_dir: Path = field(default_factory=default_state_dir)
    database_url: str | None = None
    # Migrate an older schema in place at start (`dsgw serve --upgrade`); else refuse to start.
    db_upgrade: bool = False
    # PostgreSQL session limits, in seconds (0: none), so that a frozen or partitioned process
    # cannot stall the others: a lock waited for longer, a statement running longer, or a
    # transaction left idle longer is ended by the database (specs/operations.md).
    db_lock_timeout: float = 5.0
    db_statement_timeout: float = 30.0
    db_idle_in_transaction_timeout: float = 60.0
    # How long a start waits for the database to answer before it gives up (seconds).
    db_wait_seconds: float = 30.0
    # Internal networks a push transfer may write to (comma-separated CIDRs); none by default:
    # a consumer's sink must be a public address (gateway/dataplane/egress.py).
    sink_allowed_networks: str = ""
    opa_url: str = "http://127.0.0.1:8181"
    opa_timeout: float = 2.0
    # How often the watcher lists OPA's policies to read the bundle version (seconds); it asks
    # at once, too, when a file of the gateway's own policies/ folder changes (policy/watch.py).
    policy_version_ttl: float = 10.0
    issuer: str = "http://127.0.0.1:8080"
    audience: str = "dsgw-api"
    token_ttl_seconds: int = 900
    # Lifetime of a pull transfer's data token (EDR); capped at 600 s (gateway/transfers/tokens.py).
    transfer_token_ttl_seconds: int = 300
    # How far ahead a client assertion's exp may be (authlib's client signs for an hour, as the
    # large providers accept); its jti is kept until that exp, so it cannot be replayed meanwhile.
    assertion_max_age_seconds: int = 3600
    origin: str = "dsgw.local/ledger"
    # Default objection window of a publicised registration (公示期), in seconds: 7 days.
    publicity_seconds: int = 7 * 86400
    # A signed ledger checkpoint every N entries or T seconds, whichever comes first.
    checkpoint_every: int = 1000
    checkpoint_seconds: float = 300.0
    # Rate limits per route class and client (gateway/core/ratelimit.py); "off" disables them.
    rate_limits: str = DEFAULT_RATE_LIMITS
    # GET /metrics without a token (for a scraper on a trusted network); else admin token only:
    # the counts show the traffic's shape (who exchanges how much, when).
    metrics_public: bool = False

    @property
    def db_timeouts(self) -> dict[str, float]:
        """Return the PostgreSQL session limits: setting name -> seconds (0: none)."""
        return {
            "lock_timeout": self.db_lock_timeout,
            "statement_timeout": self.db_statement_timeout,
            "idle_in_transaction_session_timeout": self.db_idle_in_transaction_timeout,
        }

    @property
    def keys_dir(self) -> Path:
        return self.state_dir / "keys"

    @property
    def gateway_key_path(self) -> Path:
        return self.keys_dir / "gateway-ed25519.jwk"

    @property
    def admin_key_path(self) -> Path:
        return self.keys_dir / "admin-ed25519.jwk"

    @property
    def resolved_database_url(self) -> str:
        """Return the database URL: the configured one, else SQLite in the state folder."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.state_dir / 'gateway.db'}"

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """Return settings from DSGW_* variables, with explicit overrides winning."""
        env = os.environ
        values: dict = {}
        if "DSGW_STATE" in env:
            values["state_dir"] = Path(env["DSGW_STATE"]).resolve()
        if "DSGW_DATABASE_URL" in env:
            values["database_url"] = env["DSGW_DATABASE_URL"]
        if "DSGW_DB_UPGRADE" in env:
            values["db_upgrade"] = env["DSGW_DB_UPGRADE"].strip().lower() in ("1", "true", "yes")
        for name in (
            "db_lock_timeout",
            "db_statement_timeout",
            "db_idle_in_transaction_timeout",
            "db_wait_seconds",
        ):
            if f"DSGW_{name.upper()}" in env:
                values[name] = float(env[f"DSGW_{name.upper()}"])
        if "DSGW_SINK_ALLOWED_NETWORKS" in env:
            values["sink_allowed_networks"] = env["DSGW_SINK_ALLOWED_NETWORKS"]
        if "DSGW_OPA_URL" in env:
            values["opa_url"] = env["DSGW_OPA_URL"]
        if "DSGW_OPA_TIMEOUT" in env:
            values["opa_timeout"] = float(env["DSGW_OPA_TIMEOUT"])
        if "DSGW_POLICY_VERSION_TTL" in env:
            values["policy_version_ttl"] = float(env["DSGW_POLICY_VERSION_TTL"])
        if "DSGW_ISSUER" in env:
            values["issuer"] = env["DSGW_ISSUER"]
        elif overrides.get("issuer") is None:
            # The state folder's issuer (written by the first `dsgw serve`), so that the admin
            # commands sign with the same issuer as the processes serving it.
            state = overrides.get("state_dir") or values.get("state_dir") or default_state_dir()
            with contextlib.suppress(IssuerConfigError):
                recorded = stored_issuer(state)
                if recorded is not None:
                    values["issuer"] = recorded
        if "DSGW_ASSERTION_MAX_AGE_SECONDS" in env:
            values["assertion_max_age_seconds"] = int(env["DSGW_ASSERTION_MAX_AGE_SECONDS"])
        if "DSGW_TRANSFER_TOKEN_TTL_SECONDS" in env:
            values["transfer_token_ttl_seconds"] = int(env["DSGW_TRANSFER_TOKEN_TTL_SECONDS"])
        if "DSGW_PUBLICITY_SECONDS" in env:
            values["publicity_seconds"] = int(env["DSGW_PUBLICITY_SECONDS"])
        if "DSGW_CHECKPOINT_EVERY" in env:
            values["checkpoint_every"] = int(env["DSGW_CHECKPOINT_EVERY"])
        if "DSGW_CHECKPOINT_SECONDS" in env:
            values["checkpoint_seconds"] = float(env["DSGW_CHECKPOINT_SECONDS"])
        if "DSGW_RATE_LIMITS" in env:
            values["rate_limits"] = env["DSGW_RATE_LIMITS"]
        if "DSGW_METRICS_PUBLIC" in env:
            values["metrics_public"] = env["DSGW_METRICS_PUBLIC"].strip().lower() in _YES
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
