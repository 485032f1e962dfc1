"""ISO 8601 durations (the `duration` of RFC 3339 appendix A) for contract terms.

Only fixed-length units are accepted: weeks, days, hours, minutes and seconds (to the microsecond).
Years and months are refused because their length depends on the calendar, and a term that two
parties sign must mean one length of time. The canonical form written back is
``P[nD][T[nH][nM][n[.f]S]]``: weeks become days, days are never folded into years, fractional
seconds lose trailing zeros (timedelta(days=30) -> "P30D", timedelta(seconds=2) -> "PT2S").
"""

import re
from datetime import timedelta

# The longest duration accepted: a century. Any moment of the gateway's calendar plus this stays
# far inside what datetime holds, so no later computation of a contract's end can overflow.
MAX_DURATION = timedelta(days=36525)

_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+)W"
    r"|(?=\d|T\d)(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?"
    r"(?:(?P<seconds>\d+)(?:\.(?P<fraction>\d{1,6}))?S)?)?)"
)


# The same grammar without group names, for JSON Schema (ECMA-262 regular expressions).
DURATION_PATTERN = re.sub(r"\?P<\w+>", "", "^" + _DURATION.pattern + "$")


def parse_duration(text: str) -> timedelta:
    """Return the timedelta of an ISO 8601 duration such as "P30D" or "PT2S"."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"expected an ISO 8601 duration in weeks, days, hours, minutes or seconds "
            f"(e.g. 'P30D', 'PT2S'; years and months are refused, their length depends on the "
            f"calendar), found {text!r}"
        )
    too_long = ValueError(
        f"expected a duration of at most {format_duration(MAX_DURATION)} (a century), "
        f"found {text[:40]!r}"
    )
    if any(len(v) > 12 for k, v in match.groupdict().items() if v and k != "fraction"):
        raise too_long
    part = {k: int(v) if v else 0 for k, v in match.groupdict().items() if k != "fraction"}
    fraction = match["fraction"] or ""
    try:
        value = _timedelta(part, fraction)
    except OverflowError:
        raise too_long from None
    if value > MAX_DURATION:
        raise too_long
    return value


def _timedelta(part: dict[str, int], fraction: str) -> timedelta:
    return timedelta(
        weeks=part["weeks"],
        days=part["days"],
        hours=part["hours"],
        minutes=part["minutes"],
        seconds=part["seconds"],
        microseconds=int(fraction.ljust(6, "0")) if fraction else 0,
    )


def format_duration(value: timedelta) -> str:
    """Return the canonical ISO 8601 form of a positive timedelta."""
    if value <= timedelta(0):
        raise ValueError(f"expected a positive duration, found {value!r}")
    hours, rest = divmod(value.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "P" + (f"{value.days}D" if value.days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    if seconds or value.microseconds:
        fraction = f".{value.microseconds:06d}".rstrip("0") if value.microseconds else ""
        clock += f"{seconds}{fraction}S"
    return text + ("T" + clock if clock else "")


def signed_duration(value: timedelta) -> str:
    """Return an ISO 8601 form of any timedelta, zero and negative included (for messages)."""
    if value == timedelta(0):
        return "PT0S"
    return "-" + format_duration(-value) if value < timedelta(0) else format_duration(value)
