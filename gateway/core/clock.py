"""The one clock of the gateway: every `now` comes from here, so tests can freeze it."""

from datetime import UTC, datetime

from ledger.canonical import rfc3339

__all__ = ["now", "as_utc", "rfc3339"]


def now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """Return `moment` as aware UTC; naive values (as SQLite returns them) are taken as UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
