"""Grounding: find where a quote (or a value) sits in a document's text, tolerating case, whitespace and small
differences, and say how well it matched: exact, fuzzy, or not found. Built once per document, then fast per quote.

A match never cuts a token: "3" is not found inside "3,000" nor "Lyon" inside "Lyonnais", because a quote that is
part of a word or of a number does not support what the model said (a perfect-looking "exact" at the wrong value).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rapidfuzz import fuzz

EXACT = "exact"  # verbatim, or differing only in case and whitespace
FUZZY = "fuzzy"  # approximately (a few characters differ); offsets cover the best-matching span
NOT_FOUND = "not_found"
MISMATCH = "mismatch"  # the quote is in the text, but it does not hold the value (a number it does not say)

_SPACE = re.compile(r"\s+")
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class Alignment:
    status: str
    start: int | None = None
    end: int | None = None
    score: float = 0.0

    @property
    def found(self) -> bool:
        return self.status != NOT_FOUND


def _normalise(text: str) -> tuple[str, list[int]]:
    """Lower-cased text with whitespace runs collapsed to one space, and for each of its characters the offset
    of the character it came from in `text`."""
    chars: list[str] = []
    index: list[int] = []
    in_space = False
    for i, ch in enumerate(text):
        if ch.isspace():
            if not in_space and chars:
                chars.append(" ")
                index.append(i)
            in_space = True
            continue
        in_space = False
        lowered = ch.lower()
        # Keep a one-to-one map: characters whose lower case is longer (rare) keep their own form.
        chars.append(lowered if len(lowered) == 1 else ch)
        index.append(i)
    return "".join(chars), index


def _cuts_token(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] begins or ends inside a word or a number. A digit run goes on through a thousands or
    decimal separator followed by a digit ("3" is the start of "3,000" and of "3.5")."""
    if start > 0 and text[start - 1].isalnum() and text[start].isalnum():
        return True
    if end < len(text) and text[end - 1].isalnum() and text[end].isalnum():
        return True
    if start >= 2 and text[start].isdigit() and text[start - 1] in ",." and text[start - 2].isdigit():
        return True
    return end + 1 < len(text) and text[end - 1].isdigit() and text[end] in ",." and text[end + 1].isdigit()


def find_token(text: str, needle: str, lo: int = 0, hi: int | None = None) -> int:
    """The first place of `needle` in text[lo:hi] that cuts no token (see `_cuts_token`); -1 if none."""
    hi = len(text) if hi is None else hi
    i = text.find(needle, lo, hi)
    while i != -1 and _cuts_token(text, i, i + len(needle)):
        i = text.find(needle, i + 1, hi)
    return i


def normalise_quote(quote: str) -> str:
    return _SPACE.sub(" ", quote.strip()).lower()


class Aligner:
    """Aligns many quotes against one document text. Normalisation is paid once per document."""

    def __init__(self, text: str, *, fuzzy_threshold: float = 90.0, max_fuzzy_window: int = 20_000):
        self.text = text
        self.fuzzy_threshold = fuzzy_threshold
        self.max_fuzzy_window = max_fuzzy_window
        self._norm, self._index = _normalise(text)

    def _to_original(self, norm_start: int, norm_end: int) -> tuple[int, int]:
        start = self._index[norm_start]
        end = self._index[norm_end - 1] + 1
        return start, end

    def _norm_offset(self, original: int) -> int:
        # First normalised character at or after `original` (binary search over the monotone index map).
        lo, hi = 0, len(self._index)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._index[mid] < original:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def align(self, quote: str, hint: tuple[int, int] | None = None) -> Alignment:
        """Where `quote` is; `hint` (the chunk it came from, in original offsets) is searched first."""
        quote = quote.strip()
        if not quote or not self.text:
            return Alignment(NOT_FOUND)
        windows = [hint, None] if hint else [None]
        for window in windows:
            lo, hi = window if window else (0, len(self.text))
            i = find_token(self.text, quote, lo, hi)
            if i != -1:
                return Alignment(EXACT, i, i + len(quote), 100.0)
        needle = normalise_quote(quote)
        if not needle:
            return Alignment(NOT_FOUND)
        for window in windows:
            nlo = self._norm_offset(window[0]) if window else 0
            nhi = self._norm_offset(window[1]) if window else len(self._norm)
            j = find_token(self._norm, needle, nlo, nhi)
            if j != -1:
                start, end = self._to_original(j, j + len(needle))
                return Alignment(EXACT, start, end, 100.0)
        # Approximate: only within the hint (or a short document), where it is cheap and meaningful.
        if hint:
            nlo, nhi = self._norm_offset(hint[0]), self._norm_offset(hint[1])
        else:
            nlo, nhi = 0, len(self._norm)
        if nhi - nlo > self.max_fuzzy_window or len(needle) < 4:
            return Alignment(NOT_FOUND)
        result = fuzz.partial_ratio_alignment(needle, self._norm[nlo:nhi], score_cutoff=self.fuzzy_threshold)
        if result is None or result.dest_end <= result.dest_start:
            return Alignment(NOT_FOUND)
        start, end = self._to_original(nlo + result.dest_start, nlo + result.dest_end)
        start, end = self._snap(start, end)
        if _DIGITS.findall(needle) != _DIGITS.findall(self.text[start:end]):
            return Alignment(NOT_FOUND)  # a differing digit is a different number, never a typo
        return Alignment(FUZZY, start, end, round(result.score, 1))

    def _snap(self, start: int, end: int) -> tuple[int, int]:
        """Widen an approximate span to whole words, so a fuzzy quote never starts or ends mid-word."""
        text = self.text
        while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
            start -= 1
        while end < len(text) and text[end].isalnum() and text[end - 1].isalnum():
            end += 1
        return start, end


_NUMERAL = re.compile(r"(?<![\w.,])[-+]?\d{1,3}(?:[, ]\d{3})+(?:\.\d+)?(?![\d])|(?<![\w.,])[-+]?\d+(?:\.\d+)?(?![\d])")
_SCALE = re.compile(r"\s*(hundred|thousand|million|billion|k\b|m\b|bn\b)", re.IGNORECASE)
_SCALES = {"hundred": 100, "thousand": 1_000, "k": 1_000, "million": 1_000_000, "m": 1_000_000}
_SCALES |= {"billion": 1_000_000_000, "bn": 1_000_000_000}


def numbers_in(quote: str) -> list[float]:
    """The numbers a quote writes in digits, as their values: "3,000" is 3000, "2.5 million" 2,500,000."""
    found: list[float] = []
    for match in _NUMERAL.finditer(quote):
        number = float(re.sub(r"[, ]", "", match.group()))
        scale = _SCALE.match(quote, match.end())
        found.append(number * _SCALES[scale.group(1).lower()] if scale else number)
    return found


def quote_holds_number(quote: str, value: float) -> bool | None:
    """Whether a quote says the number `value`: None when it writes no number in digits ("three thousand"), since
    then nothing can be checked; otherwise whether one of its numbers is the value."""
    numbers = numbers_in(quote)
    if not numbers:
        return None
    return any(math.isclose(n, value, rel_tol=1e-9, abs_tol=1e-9) for n in numbers)
