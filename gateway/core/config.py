"""Settings: read once from the environment and the command line, then passed explicitly."""

import os
from dataclasses import dataclass, field
from pathlib import Path

from gateway.core.ratelimit import DEFAULT_RATE_LIMITS

_YES = ("1", "true", "yes")


def default_state_dir() -> Path:
    """Return the state folder: $DSGW_STATE, else `.dsgw` in the current directory."""
    return Path(os.environ.get("DSGW_STATE", ".dsgw")).resolve()


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
    # How long a bundle version read from OPA is trusted before OPA is asked again (seconds).
    policy_version_ttl: float = 1.0
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
