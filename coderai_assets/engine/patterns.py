"""Validation patterns (`validation.pattern`) run on what a model wrote, so on input nobody controls: with
Python's `re`, `(a+)+$` took 0.63 s on 24 characters and four times longer per two more. The `regex` engine
takes a timeout, and values are capped in length before they are matched.

The pattern itself is input too: the engine unrolls counted repeats when it compiles, so `(?:a{1000}){1000}` (17
characters) took 250 MB that stayed, and `(?:(?:a{1000}){1000}){4}` 4.2 s and 1.7 GB. A pattern is refused before
it is compiled when it is longer than MAX_PATTERN_CHARS or would unroll to more than MAX_EXPANSION atoms (the
product of its nested counts, summed along it): `a{1000}` is 1,000, `^\d{4}-\d{2}$` is 9."""

from __future__ import annotations

import re
from functools import lru_cache

import regex

MAX_VALUE_CHARS = 2_000
TIMEOUT_SECONDS = 0.05
MAX_PATTERN_CHARS = 1_000
MAX_EXPANSION = 10_000  # atoms; about 3 MB compiled (a{100000} took 26 MB)
_COUNT = re.compile(r"\{(\d{1,9})(?:,(\d{0,9}))?\}")


class PatternError(ValueError):
    pass


def expansion(pattern: str) -> int:
    """How many atoms the pattern unrolls to: each atom (a character, an escape, a class) counts 1, a group the sum
    of its alternatives, and a counted repeat {n} or {n,m} multiplies what it repeats by n (an engine unrolls the
    required copies; the optional ones, and *, + and ?, are loops). An estimate from the text, not a parse: it
    over-counts a little (a group's name), never under-counts a repeat."""
    frames = [[0, 0, 0]]  # per open group: finished alternatives, the current one, the last atom's weight
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        frame = frames[-1]
        if ch == "\\":
            i += 2
            if pattern[i - 1 : i] in ("p", "P", "N") and pattern[i : i + 1] == "{":
                i = pattern.find("}", i) + 1 or len(pattern)
            frame[1], frame[2] = frame[1] + 1, 1
            continue
        if ch == "[":
            j = i + 1
            j += pattern[j : j + 1] == "^"
            j += pattern[j : j + 1] == "]"
            while j < len(pattern) and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            i = j + 1
            frame[1], frame[2] = frame[1] + 1, 1
            continue
        count = _COUNT.match(pattern, i) if ch == "{" else None
        if count is not None:
            n = int(count.group(1))
            frame[1] += frame[2] * (n - 1)
            frame[2] *= n
            i = count.end()
            continue
        i += 1
        if ch == "(":
            frames.append([0, 0, 0])
        elif ch == ")" and len(frames) > 1:
            done = frames.pop()
            weight = done[0] + done[1]
            frames[-1][1], frames[-1][2] = frames[-1][1] + weight, weight
        elif ch == "|":
            frame[0], frame[1], frame[2] = frame[0] + frame[1], 0, 0
        elif ch not in "*+?":
            frame[1], frame[2] = frame[1] + 1, 1
    return sum(f[0] + f[1] for f in frames)


def bounded(pattern: str) -> None:
    """PatternError when the pattern is too long or would unroll too far to compile safely."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(f"the pattern is {len(pattern)} characters; at most {MAX_PATTERN_CHARS} are allowed")
    size = expansion(pattern)
    if size > MAX_EXPANSION:
        raise PatternError(
            f"the pattern's counted repeats unroll to about {size:,} atoms; at most {MAX_EXPANSION:,} are allowed"
            " (use * or + instead of large counts)"
        )


@lru_cache(maxsize=256)  # each entry is bounded (above), so the cache is too
def compile_pattern(pattern: str) -> regex.Pattern:
    """The compiled pattern; PatternError if it is not one, or too large to compile (the API refuses it when the
    variable is saved; a run refuses a stored one value by value)."""
    if not isinstance(pattern, str):
        raise PatternError("the pattern must be text")
    bounded(pattern)
    try:
        return regex.compile(pattern)
    except (regex.error, TypeError, OverflowError, RecursionError) as exc:
        raise PatternError(str(exc)) from exc


def check(pattern: str, value: str) -> str | None:
    """None when `value` matches the whole pattern; otherwise why not."""
    if len(value) > MAX_VALUE_CHARS:
        return f"the value is {len(value)} characters, too long to check against the pattern"
    try:
        matched = compile_pattern(pattern).fullmatch(value, timeout=TIMEOUT_SECONDS)
    except PatternError as exc:
        return f"the pattern {pattern[:100]} cannot be used: {exc}"
    except TimeoutError:
        return f"the pattern {pattern} took too long on this value"
    return None if matched else f"{value[:100]!r} does not match the pattern {pattern}"
