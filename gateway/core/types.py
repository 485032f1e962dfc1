"""Constrained types every request model uses: each string, number, list and moment is bounded.

One place says how long an identifier or a field name may be, which integers the databases and
RFC 8785 hold exactly, and which moments convert to UTC with room for arithmetic, so that no
route has to remember it and nothing larger than the domain needs reaches a lock, OPA or a row.
"""

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import AfterValidator, Field, StrictInt, StringConstraints

from contracts.offer import MAX_SAFE_INTEGER
from contracts.offer import Purpose as Purpose

# An object id (`prt_k2j4…`, `prt_platform`), a catalogue code, a key id: short, printable ASCII.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
ID_MAX = 64
# A field of a resource: a short identifier, the same in rows, offers and exchanges.
FIELD_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
# Text the databases can store: no NUL (PostgreSQL refuses it; the guard refuses it too).
TEXT_PATTERN = r"^[^\x00]*$"
# The moments the gateway accepts, in UTC: far enough for any term, near enough that adding a
# term or an offset never leaves the calendar (datetime.max is 9999-12-31).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)

Identifier = Annotated[str, StringConstraints(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)]
FieldName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=FIELD_NAME_PATTERN)
]
ShortText = Annotated[str, StringConstraints(max_length=200, pattern=TEXT_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=4000, pattern=TEXT_PATTERN)]
# Money is integer fen; an integer is exact in JSON (I-JSON, RFC 8785) up to 2**53 - 1.
Fen = Annotated[StrictInt, Field(ge=0, le=MAX_SAFE_INTEGER)]
SafeInt = Annotated[int, Field(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
# A path parameter naming an object: the same bound as a body id.
ObjectId = Annotated[str, Path(min_length=1, max_length=ID_MAX, pattern=ID_PATTERN)]
# Paging: an offset no table reaches, a limit each route sets.
MAX_OFFSET = 1_000_000


def _utc_moment(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("expected a time with a UTC offset (RFC 3339), found none")
    try:
        moment = value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError(
            f"expected a time that converts to UTC, found {value.isoformat()}"
        ) from None
    if not EARLIEST <= moment < LATEST:
        raise ValueError(
            f"expected a time from {EARLIEST.isoformat()} to before {LATEST.isoformat()}, "
            f"found {value.isoformat()}"
        )
    return moment


# An RFC 3339 time with an offset, converted to UTC and within [EARLIEST, LATEST).
Moment = Annotated[datetime, AfterValidator(_utc_moment)]


def check_json_value(value: Any, where: str = "value", *, depth: int = 0) -> None:
    """Raise ValueError unless `value` is JSON that RFC 8785 and both databases hold exactly.

    Refused: NaN and infinities (JSON has none), integers beyond ±(2**53 - 1), lone surrogates
    (no UTF-8 form), NUL (PostgreSQL), and nesting deeper than 32.
    """
    if depth > 32:
        raise ValueError(f"{where}: nested deeper than 32 levels")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise ValueError(f"{where}: integers must be within ±(2**53 - 1), found {value}")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: numbers must be finite, found {value}")
        if value.is_integer() and abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"{where}: numbers must be within ±(2**53 - 1), found {value}")
    elif isinstance(value, str):
        check_text(value, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json_value(item, f"{where}[{index}]", depth=depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(str(key), where)
            check_json_value(item, f"{where}.{key}", depth=depth + 1)
    else:
        raise ValueError(f"{where}: not a JSON value ({type(value).__name__})")


def check_text(value: str, where: str = "value") -> None:
    """Raise ValueError if `value` holds a NUL or a lone surrogate (no UTF-8 form)."""
    if "\x00" in value:
        raise ValueError(f"{where}: text must not contain NUL")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{where}: text must not contain a lone surrogate") from None
