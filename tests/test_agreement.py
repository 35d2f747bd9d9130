"""Agreement figures against textbook examples."""

from __future__ import annotations

import pytest

from coderai_assets.engine.agreement import UNKNOWN, agreement, cohen_kappa, krippendorff_alpha


def test_krippendorffs_binary_example_two_observers():
    """Krippendorff (2011), "Computing Krippendorff's alpha-reliability", example A: alpha = 0.095."""
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert krippendorff_alpha(list(zip(a, b, strict=True)), "nominal") == pytest.approx(0.095, abs=0.001)


def test_krippendorffs_nominal_example_two_observers():
    """Krippendorff (2011), example B: alpha = 0.692."""
    a = list("aabbdcccedda")
    b = list("babbbcccedd" + "d")
    assert krippendorff_alpha(list(zip(a, b, strict=True)), "nominal") == pytest.approx(0.692, abs=0.001)


def test_cohens_kappa_textbook_table():
    """20 yes-yes, 5 yes-no, 10 no-yes, 15 no-no: p_o = 0.7, p_e = 0.5, kappa = 0.4."""
    pairs = [("yes", "yes")] * 20 + [("yes", "no")] * 5 + [("no", "yes")] * 10 + [("no", "no")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)
    figures = agreement(pairs, "category")
    assert (figures["accuracy"], figures["kappa"], figures["n"]) == (0.7, 0.4, 50)
    low, high = figures["kappa_ci"]
    assert low < 0.4 < high


def test_interval_variables_and_dates_weigh_the_distance():
    near = agreement([(100, 101), (200, 199), (300, 300), (50, 52), (10, 10)], "integer", with_intervals=False)
    far = agreement([(100, 10), (200, 300), (300, 30), (50, 250), (10, 10)], "integer", with_intervals=False)
    assert near["level"] == "interval" and near["alpha"] > 0.99 > 0.5 > far["alpha"]
    days = agreement([("2024-03-12", "2024-03-12"), ("2023-06-03", "2023-06-04"), ("2022-11-21", "2022-11-21")], "date")
    assert days["alpha"] > 0.99 and days["accuracy"] == pytest.approx(2 / 3, abs=1e-4)


def test_text_is_compared_without_case_and_a_correction_nobody_gave_agrees_with_nothing():
    figures = agreement([("Lyon", " lyon "), ("Porto", UNKNOWN), ("Gdansk", "Gdansk")], "text", with_intervals=False)
    assert figures["accuracy"] == pytest.approx(2 / 3, abs=1e-4)


def test_intervals_need_enough_items():
    pairs = [(i % 3, (i * 7) % 3) for i in range(200)]
    assert agreement(pairs, "category")["alpha_ci"] is not None
    assert agreement(pairs[:4], "category")["alpha_ci"] is None


def test_coderai_eval_and_the_agreement_code_agree_on_the_same_data():
    """The same dataset scored by `coderai eval` against a gold file and by the agreement code against the same
    values as a reviewer's: eval's normalised match rate is the agreement's accuracy, variable by variable."""
    import pandas as pd

    from coderai_assets.engine.evaluation import evaluate
    from coderai_assets.engine.variables import VariableSpec

    model = {
        "city": ["Lyon", "Porto", "Gdańsk", None, "Tampere", "Oslo"],
        "violence": [False, True, None, False, True, False],
        "event_date": ["2024-03-12", "2023-06-03", "2022-11-21", None, "2024-02-08", "2021-01-01"],
        "participants": [3000, 450, 200, None, 1200, 10],
        "protest_type": ["march", "strike", "sit-in", "rally", None, "march"],
    }
    reviewer = {
        "city": ["lyon", "Porto.", "Gdansk", None, "Tampere", "Bergen"],
        "violence": [False, False, None, False, True, None],
        "event_date": ["2024-03-12", "2023-06-04", "2022-11-21", None, "2024-02-08", "2021-01-01"],
        "participants": [3000, 450, 250, 7, 1200, 10],
        "protest_type": ["march", "strike", "sit-in", "march", None, "march"],
    }
    types = {
        "city": "text",
        "violence": "boolean",
        "event_date": "date",
        "participants": "integer",
        "protest_type": "category",
    }
    names = [f"doc{i}.txt" for i in range(6)]
    dataset = pd.DataFrame({"file_name": names, **model})
    gold = pd.DataFrame({"file_name": names, **reviewer})
    report = evaluate(dataset, gold, {name: (name, VariableSpec(name=name, type=kind)) for name, kind in types.items()})
    for score in report.variables:
        pairs = list(zip(model[score.variable], reviewer[score.variable], strict=True))
        figures = agreement(pairs, types[score.variable], with_intervals=False)
        assert figures["accuracy"] == pytest.approx(score.normalised_rate, abs=1e-4), score.variable
