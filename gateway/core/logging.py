"""Structured logs with structlog: JSON lines when not on a terminal, readable on one."""

import logging
import sys

import structlog


class _Stderr:
    """The standard error stream as it is when a line is written (tests swap sys.stderr)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


STDERR = _Stderr()


def to_stderr(level: str = "WARNING") -> None:
    """Send log lines of `level` and above to stderr, whatever else is configured: a command's
    stdout is its output (a JSON report, an export), never mixed with log lines, and a command
    says only what went wrong (`serve` configures its own, request lines included)."""
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(file=STDERR),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
    )


def configure_logging(level: str = "INFO") -> None:
    """Configure structlog and the standard library logging once."""
    renderer = (
        structlog.dev.ConsoleRenderer()
        if sys.stderr.isatty()
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=STDERR),
        cache_logger_on_first_use=True,
    )
