"""Agreement between two codings of the same values (the model and a reviewer, or two reviewers), per variable:
accuracy, Cohen's kappa for nominal variables (statsmodels), Krippendorff's alpha at the variable's level of
measurement (the `krippendorff` package), each with a 95% confidence interval: a percentile bootstrap over the items
for accuracy and alpha, statsmodels' asymptotic interval for kappa.

Levels: booleans, categories, text, lists and dates are nominal; integers and numbers interval. Dates are nominal
because an interval alpha in days lets wrong dates pass: over documents that span decades, a sample with half its
dates wrong had alpha 0.994. A date is its coded text, so partial dates (`2003-04`, `2003`) count as what they say.
Text is compared as `coderai eval` compares it (engine/evaluation.py: case, punctuation and whitespace aside),
lists as sets. An empty value is a coding like any other ("not in the document"): two empty codings agree, and for
nominal variables empty is a category of its own; an interval alpha has no distance to an empty value, so it
counts it as not coded."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from coderai_assets.engine.normalise import normalise_text

if TYPE_CHECKING:
    import numpy as np

NOMINAL, INTERVAL = "nominal", "interval"
EMPTY = "\x00empty"  # an empty coding, as a nominal category
# Resamples: an alpha takes about 0.4 ms for 200 items, so a 50-variable codebook's intervals take seconds.
BOOTSTRAP = 300
# A wrong verdict without a correction: the reviewer says "not this" without saying what; it agrees with nothing.
UNKNOWN = object()


def level_of(variable_type: str) -> str:
    return INTERVAL if variable_type in ("integer", "number") else NOMINAL


def _key(value: Any, level: str) -> Any:
    if value is UNKNOWN:
        return value
    if value is None or value == "" or value == []:
        return None if level == INTERVAL else EMPTY
    if level == INTERVAL:
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
    if isinstance(value, list):
        return tuple(sorted(_key(v, level) for v in value))
    if isinstance(value, str):
        return normalise_text(value)
    return value


def _codes(pairs: Sequence[tuple[Any, Any]], level: str) -> np.ndarray:
    """The pairs as Krippendorff's reliability data: 2 coders x items, nominal values numbered, missing as NaN."""
    import numpy as np  # with krippendorff and statsmodels, imported when figures are asked for, not at start

    numbers: dict[Any, float] = {}
    rows: list[list[float]] = [[], []]
    unknowns = 0
    for pair in pairs:
        for coder, value in enumerate(pair):
            if value is UNKNOWN:  # a value of its own, equal to no other
                unknowns += 1
                rows[coder].append(1e9 + unknowns if level == INTERVAL else -float(unknowns))
            elif value is None:
                rows[coder].append(math.nan)
            elif level == INTERVAL:
                rows[coder].append(float(value))
            else:
                rows[coder].append(numbers.setdefault(value, float(len(numbers))))
    return np.array(rows, dtype=float)


def krippendorff_alpha(pairs: Sequence[tuple[Any, Any]], level: str) -> float | None:
    """None when alpha is undefined (fewer than two values in all, or no item both coded)."""
    import krippendorff
    import numpy as np

    data = _codes(pairs, level)
    try:
        # Undefined when no disagreement is expected (0 / 0): NaN, said here as None, without numpy's warning.
        with np.errstate(invalid="ignore", divide="ignore"):
            value = krippendorff.alpha(reliability_data=data, level_of_measurement=level)  # type: ignore[arg-type]
    except (ValueError, ZeroDivisionError):
        return None
    return None if value is None or math.isnan(value) else float(value)


def cohen_kappa(pairs: Sequence[tuple[Any, Any]]) -> float | None:
    """Cohen's kappa over the items both coded; None when undefined (a single category)."""
    result = _kappa(pairs)
    return None if result is None else result[0]


def _kappa(pairs: Sequence[tuple[Any, Any]]) -> tuple[float, list[float] | None] | None:
    """(kappa, its 95% interval) from statsmodels; None when undefined."""
    import numpy as np
    from statsmodels.stats.inter_rater import cohens_kappa

    both = [(a, b) for a, b in pairs if a is not None and b is not None]
    categories = sorted({id(v) if v is UNKNOWN else v for pair in both for v in pair}, key=repr)
    if len(categories) < 2 or not both:
        return None
    index = {c: i for i, c in enumerate(categories)}
    table = np.zeros((len(categories), len(categories)))
    for a, b in both:
        table[index[id(a) if a is UNKNOWN else a], index[id(b) if b is UNKNOWN else b]] += 1
    try:
        # Its z statistic (unused here) divides by zero when every item agrees by chance alone; numpy warns.
        with np.errstate(invalid="ignore", divide="ignore"):
            result = cohens_kappa(table)
    except (ValueError, ZeroDivisionError):
        return None
    kappa = float(result.kappa)
    if math.isnan(kappa):
        return None
    # The asymptotic interval is kappa +- 1.96 standard errors, which runs past 1 near perfect agreement
    # ("0.4825 to 1.1304"): clipped to kappa's range, so no figure claims the impossible.
    low, high = float(result.kappa_low), float(result.kappa_upp)
    if math.isnan(low) or math.isnan(high) or len(both) < 5:
        return kappa, None
    return kappa, [round(max(-1.0, low), 4), round(min(1.0, high), 4)]


def _accuracy(pairs: Sequence[tuple[Any, Any]]) -> float | None:
    """The share of items coded alike (two empty codings alike too)."""
    if not pairs:
        return None
    return sum(1 for a, b in pairs if a is not UNKNOWN and b is not UNKNOWN and a == b) / len(pairs)


def _interval(
    pairs: Sequence[tuple[Any, Any]], statistic: Callable[[Sequence[tuple[Any, Any]]], float | None], seed: int
) -> list[float] | None:
    """95% percentile bootstrap interval, resampling items; None with fewer than 5 items."""
    if len(pairs) < 5:
        return None
    rng = random.Random(seed)
    values = []
    for _ in range(BOOTSTRAP):
        sample = [pairs[rng.randrange(len(pairs))] for _ in pairs]
        value = statistic(sample)
        if value is not None:
            values.append(value)
    if len(values) < BOOTSTRAP // 2:
        return None
    values.sort()
    return [round(values[int(0.025 * len(values))], 4), round(values[int(0.975 * len(values)) - 1], 4)]


def coded_alike(a: Any, b: Any, variable_type: str) -> bool:
    """Whether two codings of one item agree, as `agreement`'s accuracy counts it."""
    return _accuracy([(_key(a, level_of(variable_type)), _key(b, level_of(variable_type)))]) == 1.0


def agreement(
    pairs: Sequence[tuple[Any, Any]], variable_type: str, *, with_intervals: bool = True, seed: int = 0
) -> dict[str, Any]:
    """Accuracy, kappa (nominal variables) and alpha of two codings of the same items, with their intervals."""
    level = level_of(variable_type)
    keyed = [(_key(a, level), _key(b, level)) for a, b in pairs]

    def alpha(sample: Sequence[tuple[Any, Any]]) -> float | None:
        return krippendorff_alpha(sample, level)

    kappa = _kappa(keyed) if level == NOMINAL else None
    result: dict[str, Any] = {
        "level": level,
        "n": len(keyed),
        "accuracy": _round(_accuracy(keyed)),
        "kappa": _round(kappa[0]) if kappa else None,
        "alpha": _round(alpha(keyed)),
        "accuracy_ci": None,
        "kappa_ci": kappa[1] if kappa else None,
        "alpha_ci": None,
    }
    if with_intervals:
        result["accuracy_ci"] = _interval(keyed, _accuracy, seed)
        result["alpha_ci"] = _interval(keyed, alpha, seed)
    return result


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
