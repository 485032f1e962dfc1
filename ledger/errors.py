"""The ledger's exceptions: every failure raises one of these, none returns False."""

from __future__ import annotations

# Longest rendering of an expected/found value in str(); the attributes keep the full value.
_SHOWN = 200


class LedgerError(Exception):
    """The base of every error the ledger raises."""


class LedgerKeyError(LedgerError, ValueError):
    """A key is unusable: a malformed or foreign JWK, or an unsafe key file."""


class ExportUnreadableError(LedgerError):
    """The export folder, or one of its files, does not exist or cannot be read."""


class LedgerVerificationError(LedgerError):
    """A check failed: names the entry (or the file), the check, what was expected and found.

    `seq` is the entry's position in the log (1-based) or None when the failure is not about
    one entry (keys.json, manifest.json). `check` is a short stable name (see specs/ledger.md).
    `expected` and `found` are strings, kept whole; str() shortens long ones.
    """

    def __init__(
        self,
        check: str,
        *,
        seq: int | None = None,
        expected: object = "",
        found: object = "",
        location: str | None = None,
    ) -> None:
        self.seq = seq
        self.check = check
        self.expected = str(expected)
        self.found = str(found)
        self.location = location or (f"entry {seq}" if seq is not None else "export")
        super().__init__(
            f"{self.location}: check '{check}' failed: "
            f"expected {_shorten(self.expected)}, found {_shorten(self.found)}"
        )

    def to_json(self) -> dict:
        """Return the failure as a JSON object (seq, check, expected, found)."""
        return {
            "seq": self.seq,
            "check": self.check,
            "expected": self.expected,
            "found": self.found,
        }


def _shorten(text: str) -> str:
    if len(text) <= _SHOWN:
        return text
    return f"{text[:_SHOWN]}... ({len(text)} characters)"
