"""Unified social credit codes (统一社会信用代码, GB 32100-2015) and their check character."""

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUE = {ch: i for i, ch in enumerate(CHARSET)}
_WEIGHTS = [pow(3, i, 31) for i in range(17)]


class InvalidUSCC(ValueError):
    """The text is not a valid unified social credit code; the message says why."""


def check_character(first17: str) -> str:
    """Return the 18th (check) character for the first 17 characters of a code."""
    total = sum(_VALUE[ch] * weight for ch, weight in zip(first17, _WEIGHTS, strict=True))
    return CHARSET[(31 - total % 31) % 31]


def validate(code: str) -> str:
    """Return the code if it is valid, else raise InvalidUSCC naming the first problem."""
    if not isinstance(code, str) or len(code) != 18:
        raise InvalidUSCC("a unified social credit code has exactly 18 characters")
    bad = [ch for ch in code if ch not in _VALUE]
    if bad:
        raise InvalidUSCC(
            f"character {bad[0]!r} is not allowed (only digits and the capitals {CHARSET[10:]})"
        )
    if not code[2:8].isdigit():
        raise InvalidUSCC("characters 3 to 8 must be the digits of an administrative division code")
    expected = check_character(code[:17])
    if code[17] != expected:
        raise InvalidUSCC(f"check character is {code[17]!r}, expected {expected!r}")
    return code


def complete(first17: str) -> str:
    """Return the full 18-character code for 17 leading characters."""
    return first17 + check_character(first17)
