"""Grounding: find where a quote (or a value) sits in a document's text, tolerating case, whitespace and small
differences, and say how well it matched: exact, fuzzy, or not found. Built once per document, then fast per quote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rapidfuzz import fuzz

EXACT = "exact"  # verbatim, or differing only in case and whitespace
FUZZY = "fuzzy"  # approximately (a few characters differ); offsets cover the best-matching span
NOT_FOUND = "not_found"

_SPACE = re.compile(r"\s+")


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
            i = self.text.find(quote, lo, hi)
            if i != -1:
                return Alignment(EXACT, i, i + len(quote), 100.0)
        needle = normalise_quote(quote)
        if not needle:
            return Alignment(NOT_FOUND)
        for window in windows:
            nlo = self._norm_offset(window[0]) if window else 0
            nhi = self._norm_offset(window[1]) if window else len(self._norm)
            j = self._norm.find(needle, nlo, nhi)
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
        return Alignment(FUZZY, start, end, round(result.score, 1))

    def _snap(self, start: int, end: int) -> tuple[int, int]:
        """Widen an approximate span to whole words, so a fuzzy quote never starts or ends mid-word."""
        text = self.text
        while start > 0 and text[start - 1].isalnum() and text[start].isalnum():
            start -= 1
        while end < len(text) and text[end].isalnum() and text[end - 1].isalnum():
            end += 1
        return start, end
