"""Post-processing of one model answer: type coercion, allowed values, validation rules, defaults, dependencies.

Nothing the model wrote is stored silently: every value gets a status (see models.ValueStatus) and a message.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from coderai_assets.engine import patterns
from coderai_assets.engine.variables import VariableSpec, VariableType


@dataclass(frozen=True)
class Coerced:
    value: Any
    status: str  # ok, coerced, defaulted, invalid, missing, skipped
    message: str | None = None


class _Invalid(Exception):
    pass


_NUMBER = re.compile(r"[-+]?\d[\d,\s]*(?:\.\d+)?|[-+]?\.\d+")
_WORDS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "hundred": 100,
    "a hundred": 100,
    "dozen": 12,
    "a dozen": 12,
    "thousand": 1000,
    "a thousand": 1000,
}
_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}


def _is_empty(raw: Any) -> bool:
    return (
        raw is None
        or (isinstance(raw, str) and raw.strip().lower() in {"", "null", "none", "n/a", "na"})
        or (isinstance(raw, list) and not raw)
    )


def _to_number(raw: Any) -> tuple[float, bool]:
    """(number, changed): changed when text had to be read as a number."""
    if isinstance(raw, bool):
        raise _Invalid("a boolean is not a number")
    if isinstance(raw, int | float):
        return _finite(raw), False
    text = str(raw).strip().lower()
    if text in _WORDS:
        return float(_WORDS[text]), True
    match = _NUMBER.search(text)
    if not match:
        raise _Invalid(f"no number in {raw!r}")
    return _finite(re.sub(r"[,\s]", "", match.group())), True


def _finite(value: int | float | str) -> float:
    """A model can write 10**400 or 1e400: too large for a float (OverflowError) or infinite. Either is an invalid
    value of this document, never an error of the run."""
    try:
        number = float(value)
    except OverflowError:
        raise _Invalid("the number is too large") from None
    if not math.isfinite(number):
        raise _Invalid("not a finite number")
    return number


def _coerce_scalar(v: VariableSpec, raw: Any) -> tuple[Any, bool]:
    """(value, changed) for one scalar; raises _Invalid."""
    if v.type == "integer":
        number, changed = _to_number(raw)
        if number != int(number):
            raise _Invalid(f"{raw!r} is not a whole number")
        return int(number), changed or not isinstance(raw, int)
    if v.type == "number":
        number, changed = _to_number(raw)
        return (int(number) if number == int(number) else number), changed
    if v.type == "boolean":
        if isinstance(raw, bool):
            return raw, False
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True, True
        if text in _FALSE:
            return False, True
        raise _Invalid(f"{raw!r} is not yes or no")
    if v.type == "date":
        return _to_date(raw)
    if v.type == "category":
        return _to_category(v, raw)
    text = str(raw).strip()
    return text, text != raw


def _to_date(raw: Any) -> tuple[str, bool]:
    text = str(raw).strip()
    try:
        return date.fromisoformat(text).isoformat(), False
    except ValueError:
        pass
    if re.fullmatch(r"\d{4}(-\d{2})?", text):  # a year or a month is as precise as the text allows
        return text, False
    from dateutil import parser

    # Two different defaults reveal which parts the text did not give.
    try:
        first = parser.parse(text, default=datetime(1900, 1, 1), fuzzy=True)
        second = parser.parse(text, default=datetime(1904, 2, 2), fuzzy=True)
    except (ValueError, OverflowError) as exc:
        raise _Invalid(f"{raw!r} is not a date") from exc
    if first.year != second.year:
        raise _Invalid(f"{raw!r} has no year")
    if first.month != second.month:
        return f"{first.year:04d}", True
    if first.day != second.day:
        return f"{first.year:04d}-{first.month:02d}", True
    return first.date().isoformat(), True


def _norm(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", text.strip().lower())


def _to_category(v: VariableSpec, raw: Any) -> tuple[str, bool]:
    text = str(raw).strip()
    allowed = v.allowed_values or []
    if not allowed:
        return text, text != raw
    if text in allowed:
        return text, False
    by_norm = {_norm(a): a for a in allowed}
    if _norm(text) in by_norm:
        return by_norm[_norm(text)], True
    # A unique allowed value contained in the answer ("a peaceful march" -> "march") is a safe reading.
    hits = [a for a in allowed if re.search(rf"\b{re.escape(_norm(a))}\b", _norm(text))]
    if len(hits) == 1:
        return hits[0], True
    raise _Invalid(f"{raw!r} is not one of the allowed values")


def _validate(v: VariableSpec, value: Any) -> None:
    rules = v.rules or {}
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "min" in rules and value < rules["min"]:
            raise _Invalid(f"{value} is below the minimum {rules['min']}")
        if "max" in rules and value > rules["max"]:
            raise _Invalid(f"{value} is above the maximum {rules['max']}")
    if isinstance(value, str) and rules.get("pattern"):
        problem = patterns.check(rules["pattern"], value)
        if problem:
            raise _Invalid(problem)


def _default(v: VariableSpec) -> Coerced:
    if v.default_value is None:
        return Coerced(None, "missing")
    try:
        value, _ = _coerce_list(v, v.default_value) if v.type == "list" else _coerce_scalar(v, v.default_value)
    except _Invalid as exc:
        return Coerced(None, "invalid", f"the default is not valid: {exc}")
    return Coerced(value, "defaulted", "not found in the text; default used")


def _coerce_list(v: VariableSpec, raw: Any) -> tuple[list[Any], bool]:
    changed = False
    if isinstance(raw, str):
        raw = [part for part in re.split(r"[;,\n]", raw) if part.strip()]
        changed = True
    elif not isinstance(raw, list):
        raw, changed = [raw], True
    items: list[Any] = []
    element = VariableSpec(
        name=v.name,
        type=VariableType.category if v.allowed_values else VariableType.text,
        allowed_values=v.allowed_values,
    )
    for item in raw:
        if _is_empty(item):
            changed = True
            continue
        value, item_changed = _coerce_scalar(element, item)
        changed |= item_changed
        if value not in items:
            items.append(value)
        else:
            changed = True
    if v.max_values and len(items) > v.max_values:
        items, changed = items[: v.max_values], True
    return items, changed


def coerce_value(v: VariableSpec, raw: Any) -> Coerced:
    """Turn what the model wrote for one variable into a typed value with a status."""
    if v.if_uncertain == "code" and v.uncertain_code is not None and str(raw).strip() == str(v.uncertain_code):
        return Coerced(v.uncertain_code, "ok", "uncertain: the codebook's code")
    # An allowed value is a code, even one spelled like an empty answer ("none", "n/a").
    if _is_empty(raw) and not (isinstance(raw, str) and raw.strip() in (v.allowed_values or [])):
        return _default(v)
    try:
        if v.type == "list":
            value, changed = _coerce_list(v, raw)
            if not value:
                return _default(v)
            for item in value:
                _validate(v, item)
            return Coerced(value, "coerced" if changed else "ok")
        if isinstance(raw, list):
            values = [r for r in raw if not _is_empty(r)]
            if not values:
                return _default(v)
            if len(values) > 1 and v.if_multiple_values == "flag":
                return Coerced(None, "invalid", f"several values given: {values!r}")
            if len(values) > 1 and v.if_multiple_values == "all":
                coerced = [_coerce_scalar(v, r)[0] for r in values][: v.max_values or None]
                for item in coerced:
                    _validate(v, item)
                return Coerced(coerced, "coerced", "several values kept")
            value, _ = _coerce_scalar(v, values[0])
            _validate(v, value)
            return Coerced(value, "coerced", "first of several values" if len(values) > 1 else None)
        value, changed = _coerce_scalar(v, raw)
        _validate(v, value)
        return Coerced(value, "coerced" if changed else "ok")
    except _Invalid as exc:
        return Coerced(None, "invalid", str(exc))


def apply_dependencies(variables: list[VariableSpec], values: dict[str, Coerced]) -> dict[str, Coerced]:
    """Blank out variables whose `depends_on` condition does not hold (status 'skipped')."""
    result = dict(values)
    for v in variables:
        if not v.depends_on:
            continue
        parent = result.get(v.depends_on)
        parent_value = parent.value if parent else None
        expected = v.depends_on_value
        holds = parent_value is not None and (
            expected is None
            or _norm(str(parent_value)) == _norm(str(expected))
            or (isinstance(parent_value, bool) and str(parent_value).lower() == str(expected).lower())
        )
        if not holds:
            result[v.name] = Coerced(None, "skipped", f"{v.depends_on} is not {expected}")
    return result


def apply_uncertainty(v: VariableSpec, result: Coerced, model_confidence: float | None, threshold: float) -> Coerced:
    """The codebook's rule for uncertain values, applied when the model says it is unsure (below `threshold`):
    leave empty, keep the best guess but flag it, or write the codebook's code."""
    if model_confidence is None or result.value is None or model_confidence >= threshold:
        return result
    note = f"the model is unsure ({model_confidence:.2f})"
    if v.if_uncertain == "best_guess":
        return Coerced(result.value, result.status, "; ".join(filter(None, [result.message, f"best guess: {note}"])))
    if v.if_uncertain == "code" and v.uncertain_code is not None:
        return Coerced(v.uncertain_code, "coerced", f"uncertain code used: {note}")
    return Coerced(None, "missing", f"left empty: {note}")
