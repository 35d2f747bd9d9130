"""Post-processing: every value gets a typed value and a status, never what the model wrote silently."""

import pytest

from coderai_assets.engine.coercion import apply_dependencies, coerce_value
from coderai_assets.engine.variables import VariableSpec


def v(type_, **kw):
    return VariableSpec(name="x", type=type_, **kw)


@pytest.mark.parametrize(
    ("variable", "raw", "value", "status"),
    [
        (v("integer"), 450, 450, "ok"),
        (v("integer"), "about 3,000", 3000, "coerced"),
        (v("integer"), "twelve", 12, "coerced"),
        (v("integer"), "2.5", None, "invalid"),
        (v("integer", validation={"min": 0}), -4, None, "invalid"),
        (v("number"), "1.5 million", 1.5, "coerced"),
        (v("boolean"), False, False, "ok"),
        (v("boolean"), "yes", True, "coerced"),
        (v("boolean"), "maybe", None, "invalid"),
        (v("date"), "2024-03-12", "2024-03-12", "ok"),
        (v("date"), "12 March 2024", "2024-03-12", "coerced"),
        (v("date"), "March 2024", "2024-03", "coerced"),
        (v("date"), "last Tuesday", None, "invalid"),
        (v("category", allowed_values=["march", "sit-in"]), "march", "march", "ok"),
        (v("category", allowed_values=["march", "sit-in"]), "Sit In", "sit-in", "coerced"),
        (v("category", allowed_values=["march", "sit-in"]), "a peaceful march", "march", "coerced"),
        (v("category", allowed_values=["march", "sit-in"]), "riot", None, "invalid"),
        (v("text", validation={"pattern": r"[A-Z]{2}"}), "FR", "FR", "ok"),
        (v("text", validation={"pattern": r"[A-Z]{2}"}), "France", None, "invalid"),
        (v("text"), None, None, "missing"),
        (v("text", default_value="unknown"), "", "unknown", "defaulted"),
        (v("integer", if_uncertain="code", uncertain_code="-99"), "-99", "-99", "ok"),
    ],
)
def test_coercion(variable, raw, value, status):
    result = coerce_value(variable, raw)
    assert (result.value, result.status) == (value, status), result.message


def test_several_values_follow_the_variable_rule():
    assert coerce_value(v("text"), ["Lyon", "Paris"]).value == "Lyon"
    flagged = coerce_value(v("text", if_multiple_values="flag"), ["Lyon", "Paris"])
    assert flagged.status == "invalid" and "several" in flagged.message
    kept = coerce_value(v("text", if_multiple_values="all", max_values=2), ["Lyon", "Paris", "Nice"])
    assert kept.value == ["Lyon", "Paris"]


def test_lists_are_split_deduplicated_limited_and_checked():
    issues = v("list", allowed_values=["pay", "staffing", "climate"], max_values=2)
    assert coerce_value(issues, ["pay", "staffing"]).status == "ok"
    result = coerce_value(issues, "Pay; pay; staffing; climate")
    assert (result.value, result.status) == (["pay", "staffing"], "coerced")
    assert coerce_value(issues, ["pay", "war"]).status == "invalid"


def test_dependent_variable_is_skipped_unless_its_condition_holds():
    violence = VariableSpec(name="violence", type="boolean")
    arrests = VariableSpec(name="arrests", type="integer", depends_on="violence", depends_on_value="true")
    values = {"violence": coerce_value(violence, False), "arrests": coerce_value(arrests, 3)}
    assert apply_dependencies([violence, arrests], values)["arrests"].status == "skipped"
    values = {"violence": coerce_value(violence, True), "arrests": coerce_value(arrests, 3)}
    assert apply_dependencies([violence, arrests], values)["arrests"].value == 3


def test_unsure_values_follow_the_if_uncertain_rule():
    from coderai_assets.engine.coercion import apply_uncertainty

    value = coerce_value(v("integer"), 300)
    assert apply_uncertainty(v("integer"), value, 0.9, 0.5) == value  # sure: unchanged
    assert apply_uncertainty(v("integer"), value, None, 0.5) == value  # no report: unchanged
    empty = apply_uncertainty(v("integer", if_uncertain="leave_empty"), value, 0.2, 0.5)
    assert (empty.value, empty.status) == (None, "missing") and "unsure" in empty.message
    guess = apply_uncertainty(v("integer", if_uncertain="best_guess"), value, 0.2, 0.5)
    assert guess.value == 300 and "best guess" in guess.message
    code = apply_uncertainty(v("integer", if_uncertain="code", uncertain_code="-99"), value, 0.2, 0.5)
    assert (code.value, code.status) == ("-99", "coerced")


def test_a_catastrophic_pattern_on_model_output_is_an_invalid_value_in_bounded_time():
    """`(a+)+$` on 24 characters took 0.63 s with `re`, four times longer per two more characters; a model
    writes such values at will. Patterns run with a timeout, on values of bounded length."""
    import time

    from coderai_assets.engine.coercion import coerce_value
    from coderai_assets.engine.patterns import MAX_VALUE_CHARS, TIMEOUT_SECONDS
    from coderai_assets.engine.variables import VariableSpec

    def coded(pattern: str, raw: str):
        spec = VariableSpec(name="code", type="text", validation={"pattern": pattern})
        start = time.perf_counter()
        result = coerce_value(spec, raw)
        return result, time.perf_counter() - start

    for pattern, raw in [(r"(a+)+$", "a" * 40 + "b"), (r"(a|aa)+$", "a" * 40 + "b"), (r"(x+x+)+y", "x" * 1000)]:
        result, seconds = coded(pattern, raw)
        assert result.status == "invalid" and seconds < 20 * TIMEOUT_SECONDS, (pattern, result, seconds)
    too_long, _ = coded(r"[a-z]+", "a" * (MAX_VALUE_CHARS + 1))
    assert too_long.status == "invalid" and "too long" in too_long.message
    ok, _ = coded(r"[A-Z]{2}", "FR")
    assert ok.status == "ok" and ok.value == "FR"
