"""`coderai eval`: scores against gold, on real CUAD labels and on entity rows."""

from __future__ import annotations

import pandas as pd
import pytest

from coderai_assets.engine.coercion import coerce_value
from coderai_assets.engine.evaluation import evaluate, file_key
from coderai_assets.engine.variables import VariableSpec

VARIABLES = {
    "agreement_date": ("Agreement Date-Answer", VariableSpec(name="agreement_date", type="date")),
    "governing_law": ("Governing Law-Answer", VariableSpec(name="governing_law", type="text")),
    "non_compete": ("Non-Compete-Answer", VariableSpec(name="non_compete", type="boolean")),
}


@pytest.fixture
def cuad(corpus):
    folder = corpus / "labelled" / "cuad_v1"
    gold = pd.read_csv(folder / "master_clauses.csv", dtype=str)
    txt_names = sorted(p.name for p in (folder / "full_contract_txt").glob("*.txt"))
    return gold, txt_names


def _dataset_from_gold(gold: pd.DataFrame, txt_names: list[str]) -> pd.DataFrame:
    """A 'perfect' dataset written differently: the TXT file names, ISO dates, lower-case law, booleans."""
    by_key = {file_key(n): n for n in txt_names}
    rows = []
    for _, g in gold.iterrows():
        name = by_key.get(file_key(g["Filename"]))
        if name is None:
            continue
        date = VariableSpec(name="d", type="date")
        iso = (
            coerce_value(date, g["Agreement Date-Answer"]).value
            if isinstance(g["Agreement Date-Answer"], str)
            else None
        )
        rows.append(
            {
                "file_name": name,
                "agreement_date": iso,
                "governing_law": str(g["Governing Law-Answer"]).lower()
                if isinstance(g["Governing Law-Answer"], str)
                else None,
                "non_compete": {"Yes": "True", "No": "False"}.get(g["Non-Compete-Answer"]),
            }
        )
    return pd.DataFrame(rows)


def test_cuad_file_names_match_despite_renaming(cuad):
    gold, txt_names = cuad
    dataset = pd.DataFrame({"file_name": txt_names})
    report = evaluate(dataset, gold, {}, gold_key="Filename")
    assert report.documents_in_gold == 510
    # CUAD's caveat ('&' vs '_', apostrophes, trailing spaces, truncated suffixes): all 510 still match.
    assert report.documents_matched == 510 and report.unmatched_gold == []


def test_cuad_normalised_scores_see_through_formatting(cuad):
    gold, txt_names = cuad
    dataset = _dataset_from_gold(gold, txt_names)
    report = evaluate(dataset, gold, VARIABLES, gold_key="Filename")
    scores = {s.variable: s for s in report.variables}
    assert scores["governing_law"].normalised_rate == 1.0 and scores["governing_law"].exact_rate < 0.5
    assert scores["non_compete"].normalised_rate == 1.0 and scores["non_compete"].exact_rate < 0.5
    assert scores["agreement_date"].normalised_rate > 0.9 and scores["agreement_date"].exact_rate < 0.5


def test_cuad_errors_are_counted(cuad):
    gold, txt_names = cuad
    dataset = _dataset_from_gold(gold, txt_names)
    dataset.loc[:99, "governing_law"] = "Atlantis"  # wrong
    dataset.loc[100:149, "governing_law"] = None  # missed
    report = evaluate(dataset, gold, VARIABLES, gold_key="Filename")
    law = next(s for s in report.variables if s.variable == "governing_law")
    assert law.normalised <= law.compared - 100
    assert law.missed >= 40


def test_entity_rows_precision_recall_f1():
    gold = pd.DataFrame(
        [
            {"file": "a.txt", "event": "bombing in Lima", "city": "Lima"},
            {"file": "a.txt", "event": "attack on bus", "city": "Cusco"},
            {"file": "b.txt", "event": "kidnapping", "city": "Quito"},
        ]
    )
    dataset = pd.DataFrame(
        [
            {"file_name": "a.txt", "entity_text": "the bombing in Lima", "city": "lima"},
            {"file_name": "a.txt", "entity_text": "a strike", "city": "Lima"},
            {"file_name": "b.txt", "entity_text": "Kidnapping", "city": "Guayaquil"},
        ]
    )
    report = evaluate(
        dataset,
        gold,
        {"city": ("city", VariableSpec(name="city", type="text"))},
        gold_key="file",
        entity_column="entity_text",
        gold_entity_column="event",
    )
    assert (report.entities.matched, report.entities.predicted, report.entities.gold) == (2, 3, 3)
    assert round(report.entities.f1, 3) == round(2 / 3, 3)
    city = report.variables[0]
    assert (city.compared, city.normalised, city.exact) == (2, 1, 0)


def test_gold_dates_with_blank_parts_are_as_precise_as_they_say():
    """CUAD writes unknown parts of a date as []: "04/[]/2003" is April 2003, and "[]/[]/[]" is no date."""
    gold = pd.DataFrame(
        {
            "file": ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"],
            "date": ["04/[]/2003", "[]/[]/[]", "[]/[]/1999", "04/[]/2003", "5/8/14"],
        }
    )
    dataset = pd.DataFrame(
        {
            "file_name": ["a.txt", "b.txt", "c.txt", "d.txt", "e.txt"],
            "date": ["2003-04", None, "1999", "2003-05", "2014-05-08"],
        }
    )
    report = evaluate(dataset, gold, {"date": ("date", VariableSpec(name="date", type="date"))}, gold_key="file")
    (score,) = report.variables
    assert (score.compared, score.normalised, score.both_empty, score.missed, score.spurious) == (5, 4, 1, 0, 0)


def test_eval_command_writes_a_report(tmp_path):
    from typer.testing import CliRunner

    from coderai_assets.cli import app

    pd.DataFrame([{"file_name": "x.pdf", "law": "Nevada"}]).to_csv(tmp_path / "d.csv", index=False)
    pd.DataFrame([{"Filename": "x.txt", "Law": "nevada"}]).to_csv(tmp_path / "g.csv", index=False)
    result = CliRunner().invoke(
        app,
        [
            "eval",
            str(tmp_path / "d.csv"),
            str(tmp_path / "g.csv"),
            "--gold-key",
            "Filename",
            "--map",
            "law=Law:text",
            "--out",
            str(tmp_path / "r.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "law" in (tmp_path / "r.txt").read_text()
    import json

    data = json.loads((tmp_path / "r.json").read_text())
    assert data["variables"][0]["normalised_rate"] == 1.0 and data["variables"][0]["exact_rate"] == 0.0
