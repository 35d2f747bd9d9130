"""Score a dataset against a gold CSV keyed by document file name: accuracy for categories and booleans,
exact and normalised match for text and dates, numeric equality, and precision/recall/F1 for entity rows."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from coderai_assets.engine.coercion import coerce_value
from coderai_assets.engine.normalise import normalise_text
from coderai_assets.engine.variables import VariableSpec

_EMPTY = {"", "nan", "none", "null", "n/a", "[]"}


def file_key(name: str) -> str:
    """A file name reduced to what survives renaming: the stem, lower case, letters and digits only
    (CUAD's CSV and files differ in '&' vs '_', apostrophes, trailing spaces)."""
    stem = Path(str(name).strip()).stem if "." in str(name)[-6:] else str(name).strip()
    return re.sub(r"[^a-z0-9]+", "", unicodedata.normalize("NFKD", stem).lower())


# CUAD writes a date's unknown parts as "[]": "04/[]/2003" is April 2003, "[]/[]/[]" no date at all.
_BLANK_PARTS = re.compile(r"^\s*(\d{1,2}|\[\])\s*/\s*(\d{1,2}|\[\])\s*/\s*(\d{4}|\[\])\s*$")


def _blank_parts_date(value: Any) -> str | None:
    """A month/day/year date with blank parts as precise as what it gives: "04/[]/2003" -> "2003-04", "[]/[]/2003"
    -> "2003"; "" when nothing is given; None when it is not such a date."""
    match = _BLANK_PARTS.match(str(value))
    if match is None or "[]" not in match.group(0):
        return None
    month, day, year = (None if part == "[]" else int(part) for part in match.groups())
    if year is None:
        return ""
    if month is None:
        return f"{year:04d}"
    if day is None:
        return f"{year:04d}-{month:02d}"
    return f"{year:04d}-{month:02d}-{day:02d}"


def is_empty(value: Any) -> bool:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return True
    return str(value).strip().lower() in _EMPTY or _blank_parts_date(value) == ""


@dataclass
class VariableScore:
    variable: str
    type: str
    compared: int = 0
    exact: int = 0
    normalised: int = 0
    both_empty: int = 0
    missed: int = 0  # gold has a value, the dataset none
    spurious: int = 0  # the dataset has a value, gold none

    @property
    def exact_rate(self) -> float:
        return self.exact / self.compared if self.compared else 0.0

    @property
    def normalised_rate(self) -> float:
        return self.normalised / self.compared if self.compared else 0.0


@dataclass
class EntityScore:
    predicted: int = 0
    gold: int = 0
    matched: int = 0

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class Report:
    documents_in_gold: int
    documents_matched: int
    unmatched_gold: list[str] = field(default_factory=list)
    variables: list[VariableScore] = field(default_factory=list)
    entities: EntityScore | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for score, out in zip(self.variables, data["variables"], strict=True):
            out["exact_rate"], out["normalised_rate"] = round(score.exact_rate, 4), round(score.normalised_rate, 4)
        if self.entities:
            data["entities"].update(
                precision=round(self.entities.precision, 4),
                recall=round(self.entities.recall, 4),
                f1=round(self.entities.f1, 4),
            )
        return data

    def table(self) -> str:
        lines = [
            f"documents: {self.documents_matched} of {self.documents_in_gold} in gold matched",
            f"{'variable':<28} {'type':<9} {'n':>4} {'exact':>7} {'normalised':>11} {'missed':>7} {'spurious':>9}",
        ]
        for s in self.variables:
            lines.append(
                f"{s.variable:<28} {s.type:<9} {s.compared:>4} {s.exact_rate:>7.1%} {s.normalised_rate:>11.1%} "
                f"{s.missed:>7} {s.spurious:>9}"
            )
        if self.entities:
            e = self.entities
            lines.append(
                f"entities: precision {e.precision:.1%}, recall {e.recall:.1%}, F1 {e.f1:.1%} "
                f"({e.matched} matched of {e.predicted} predicted, {e.gold} gold)"
            )
        return "\n".join(lines)


def canonical(spec: VariableSpec, value: Any) -> Any:
    """A value in the variable's type, so '5/8/14' and '2014-05-08' or 'Yes' and True compare equal."""
    if is_empty(value):
        return None
    if spec.type == "date" and (partial := _blank_parts_date(value)) is not None:
        return partial
    if spec.type in ("date", "boolean", "integer", "number"):
        result = coerce_value(VariableSpec(name=spec.name, type=spec.type), str(value).strip())
        return result.value if result.value is not None else normalise_text(value)
    return normalise_text(value)


def _match_gold(dataset_keys: list[str], gold_keys: list[str]) -> dict[str, str]:
    """gold key -> dataset key: equal keys, else a unique prefix match (names truncated on one side)."""
    pool = set(dataset_keys)
    matched = {}
    for g in gold_keys:
        if g in pool:
            matched[g] = g
            continue
        candidates = [d for d in pool if len(min(d, g, key=len)) >= 30 and (d.startswith(g) or g.startswith(d))]
        if len(candidates) == 1:
            matched[g] = candidates[0]
    return matched


def evaluate(
    dataset: pd.DataFrame,
    gold: pd.DataFrame,
    variables: dict[str, tuple[str, VariableSpec]],
    *,
    dataset_key: str = "file_name",
    gold_key: str = "file_name",
    entity_column: str | None = None,
    gold_entity_column: str | None = None,
) -> Report:
    """`variables`: dataset column -> (gold column, spec). With entity columns, rows are matched within each
    document on the normalised entity text, and precision/recall/F1 count the rows."""
    dataset = dataset.assign(_key=dataset[dataset_key].map(file_key))
    gold = gold.assign(_key=gold[gold_key].map(file_key))
    matches = _match_gold(list(dataset["_key"].unique()), list(gold["_key"].unique()))
    report = Report(
        documents_in_gold=gold["_key"].nunique(),
        documents_matched=len(matches),
        unmatched_gold=sorted(set(gold[gold_key]) - {n for n in gold[gold_key] if file_key(n) in matches}),
    )
    scores = {name: VariableScore(name, spec.type) for name, (_, spec) in variables.items()}
    entity_score = EntityScore() if entity_column and gold_entity_column else None
    for gold_key_value, dataset_key_value in matches.items():
        gold_rows = gold[gold["_key"] == gold_key_value]
        rows = dataset[dataset["_key"] == dataset_key_value]
        pairs: list[tuple[pd.Series, pd.Series]] = []
        if entity_score is not None and entity_column and gold_entity_column:
            unused = list(rows.itertuples(index=False))
            entity_score.predicted += len(rows)
            entity_score.gold += len(gold_rows)
            for _, g in gold_rows.iterrows():
                target = normalise_text(g[gold_entity_column])
                hit = next(
                    (
                        r
                        for r in unused
                        if target
                        and (
                            normalise_text(getattr(r, entity_column)) in target
                            or target in normalise_text(getattr(r, entity_column))
                        )
                    ),
                    None,
                )
                if hit is not None:
                    unused.remove(hit)
                    entity_score.matched += 1
                    pairs.append((pd.Series(hit._asdict()), g))
        else:
            pairs = [(rows.iloc[0], gold_rows.iloc[0])]
        for predicted, expected in pairs:
            for name, (gold_column, spec) in variables.items():
                score = scores[name]
                p, g = predicted.get(name), expected.get(gold_column)
                score.compared += 1
                if is_empty(p) and is_empty(g):
                    score.both_empty += 1
                    score.exact += 1
                    score.normalised += 1
                    continue
                if is_empty(p):
                    score.missed += 1
                    continue
                if is_empty(g):
                    score.spurious += 1
                    continue
                if str(p).strip() == str(g).strip():
                    score.exact += 1
                if canonical(spec, p) == canonical(spec, g):
                    score.normalised += 1
    report.variables = list(scores.values())
    report.entities = entity_score
    return report


def write_report(report: Report, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.as_dict(), indent=2, default=str))
    path.with_suffix(".txt").write_text(report.table() + "\n")
