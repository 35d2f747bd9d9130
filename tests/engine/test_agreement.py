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


def test_interval_variables_weigh_the_distance():
    near = agreement([(100, 101), (200, 199), (300, 300), (50, 52), (10, 10)], "integer", with_intervals=False)
    far = agreement([(100, 10), (200, 300), (300, 30), (50, 250), (10, 10)], "integer", with_intervals=False)
    assert near["level"] == "interval" and near["alpha"] > 0.99 > 0.5 > far["alpha"]


def test_a_sample_with_half_its_dates_wrong_cannot_pass_the_gate_on_nearness():
    """Documents spanning decades: a day off, or a year off, is as wrong as any other date. Dates are nominal."""
    right = ["1952-03-12", "1967-06-03", "1981-11-21", "1994-02-08", "2003-07-01", "2011-01-01", "2019-05-05"]
    wrong = ["1952-03-13", "1967-06-04", "1981-11-22", "1994-02-09"]
    pairs = [(d, d) for d in right] + [(d, w) for d, w in zip(right, wrong, strict=False)]
    figures = agreement(pairs, "date", with_intervals=False)
    assert figures["level"] == "nominal" and figures["accuracy"] == pytest.approx(7 / 11, abs=1e-4)
    assert figures["alpha"] < 0.8


def test_partial_dates_count_as_what_they_say():
    pairs = [("2003-04", "2003-05"), ("2003", "1999"), ("2003-04", None), ("2003-04", "2003-04"), ("2003", "2003")]
    figures = agreement(pairs, "date", with_intervals=False)
    assert figures["accuracy"] == pytest.approx(2 / 5) and figures["n"] == 5
    assert figures["alpha"] < 0.8


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
        "event_date": ["2024-03-12", "2023-06-03", "2022-11-21", None, "2024-02", "2021"],
        "participants": [3000, 450, 200, None, 1200, 10],
        "protest_type": ["march", "strike", "sit-in", "rally", None, "march"],
    }
    reviewer = {
        "city": ["lyon", "Porto.", "Gdansk", None, "Tampere", "Bergen"],
        "violence": [False, False, None, False, True, None],
        "event_date": ["2024-03-12", "2023-06-04", "2022-11-21", None, "2024-02", "2021-01"],
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


def _cohen_by_hand(pairs):
    """Cohen (1960): (p_o - p_e) / (1 - p_e), the chance term from each coder's marginals."""
    n = len(pairs)
    categories = {v for pair in pairs for v in pair}
    observed = sum(a == b for a, b in pairs) / n
    expected = sum((sum(a == c for a, _ in pairs) / n) * (sum(b == c for _, b in pairs) / n) for c in categories)
    return (observed - expected) / (1 - expected)


def _alpha_by_hand(pairs, interval):
    """Krippendorff's alpha for two coders and no missing values, from the coincidence matrix: 1 - D_o / D_e."""
    values = [v for pair in pairs for v in pair]
    n = len(values)

    def delta(a, b):
        return (a - b) ** 2 if interval else float(a != b)

    observed = sum(2 * delta(a, b) for a, b in pairs) / n  # each pair gives two ordered coincidences
    expected = sum(delta(a, b) for a in values for b in values) / (n * (n - 1))
    return 1 - observed / expected


@pytest.mark.parametrize("seed", range(6))
def test_the_figures_match_an_independent_computation_and_stay_in_range(seed):
    import random

    rng = random.Random(seed)
    nominal = [(rng.choice("abc"), rng.choice("abc")) for _ in range(40)]
    nominal += [(c, c) for c in rng.choices("abc", k=rng.randrange(0, 60))]  # agreement from little to near all
    figures = agreement(nominal, "category", seed=seed)
    assert figures["accuracy"] == pytest.approx(sum(a == b for a, b in nominal) / len(nominal), abs=1e-4)
    assert figures["kappa"] == pytest.approx(_cohen_by_hand(nominal), abs=1e-4)
    assert figures["alpha"] == pytest.approx(_alpha_by_hand(nominal, interval=False), abs=1e-4)
    numbers = [(x, x + rng.choice([0, 0, 1, -3, 20])) for x in (rng.randrange(0, 100) for _ in range(30))]
    interval = agreement(numbers, "integer", seed=seed)
    assert interval["alpha"] == pytest.approx(_alpha_by_hand(numbers, interval=True), abs=1e-4)
    for result, low_bound in ((figures, -1.0), (interval, -1.0)):
        for name in ("accuracy", "kappa", "alpha"):
            ci = result[f"{name}_ci"]
            if ci is not None:
                bottom = 0.0 if name == "accuracy" else low_bound
                assert bottom <= ci[0] <= ci[1] <= 1.0, (name, ci)


def test_kappas_interval_near_perfect_agreement_stays_at_most_one():
    pairs = [("yes", "yes")] * 9 + [("no", "no")] * 2 + [("yes", "no")]
    low, high = agreement(pairs, "boolean")["kappa_ci"]
    assert -1.0 <= low < high <= 1.0 and high == 1.0  # statsmodels' asymptotic upper bound is above 1 here
