"""Validation patterns (`validation.pattern`) run on what a model wrote, so on input nobody controls: with
Python's `re`, `(a+)+$` took 0.63 s on 24 characters and four times longer per two more. The `regex` engine
takes a timeout, and values are capped in length before they are matched."""

from __future__ import annotations

from functools import lru_cache

import regex

MAX_VALUE_CHARS = 2_000
TIMEOUT_SECONDS = 0.05


class PatternError(ValueError):
    pass


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> regex.Pattern:
    """The compiled pattern; PatternError if it is not one (the API refuses it when the variable is saved)."""
    try:
        return regex.compile(pattern)
    except (regex.error, TypeError) as exc:
        raise PatternError(str(exc)) from exc


def check(pattern: str, value: str) -> str | None:
    """None when `value` matches the whole pattern; otherwise why not."""
    if len(value) > MAX_VALUE_CHARS:
        return f"the value is {len(value)} characters, too long to check against the pattern"
    try:
        matched = compile_pattern(pattern).fullmatch(value, timeout=TIMEOUT_SECONDS)
    except TimeoutError:
        return f"the pattern {pattern} took too long on this value"
    return None if matched else f"{value[:100]!r} does not match the pattern {pattern}"
