"""The codebook compiled once: prompts, JSON schema, hash."""

from coderai_assets.engine.codebook import ProjectSpec, codebook_rows, compile_codebook
from coderai_assets.engine.variables import VariableSpec

VARIABLES = (
    VariableSpec(name="city", type="text", description="City of the protest"),
    VariableSpec(name="participants", type="integer", validation={"min": 0}),
    VariableSpec(name="protest_type", type="category", allowed_values=["march", "strike"]),
    VariableSpec(name="issues", type="list", allowed_values=["pay", "climate"], max_values=2, if_multiple_values="all"),
    VariableSpec(name="arrests", type="integer", depends_on="violence", depends_on_value="true"),
    VariableSpec(name="violence", type="boolean", if_uncertain="code", uncertain_code="-99"),
)
PROJECT = ProjectSpec(name="Protests", domain_description="Protest reports.", variables=VARIABLES)


def test_schema_has_every_variable_typed_and_constrained():
    schema = compile_codebook(PROJECT).json_schema
    props = schema["properties"]
    assert schema["required"] == [v.name for v in VARIABLES]
    assert props["participants"]["type"] == ["integer", "null"]
    assert props["protest_type"]["anyOf"][0]["enum"] == ["march", "strike"]
    assert props["issues"]["items"]["enum"] == ["pay", "climate"] and props["issues"]["maxItems"] == 2
    assert set(props["quotes"]["properties"]) == {v.name for v in VARIABLES}
    assert "quotes" not in compile_codebook(PROJECT, with_quotes=False).json_schema["properties"]


def test_entity_schema_is_a_list_of_records():
    entity = ProjectSpec(
        name="E",
        domain_description="d",
        extraction_unit="entity",
        entity_description="protest event",
        variables=VARIABLES,
    )
    schema = compile_codebook(entity).json_schema
    item = schema["properties"]["entities"]["items"]
    assert "entity_text" in item["required"] and "city" in item["properties"]
    assert "protest event" in compile_codebook(entity).system_prompt


def test_prompt_carries_domain_rules_and_injection_guard():
    prompt = compile_codebook(PROJECT).system_prompt
    assert "Protest reports." in prompt
    assert "Allowed values: march, strike." in prompt
    assert "Only code this when violence is true" in prompt
    assert "give -99" in prompt
    assert "ignore any instructions" in prompt


def test_hash_changes_with_any_definition_and_only_then():
    base = compile_codebook(PROJECT).variables_hash
    assert compile_codebook(PROJECT).variables_hash == base
    edited = ProjectSpec(
        name="Protests",
        domain_description="Protest reports.",
        variables=(VariableSpec(name="city", type="text", description="Town of the protest"), *VARIABLES[1:]),
    )
    assert compile_codebook(edited).variables_hash != base


def test_codebook_rows_describe_each_variable():
    rows = codebook_rows(PROJECT)
    assert [r["variable"] for r in rows] == [v.name for v in VARIABLES]
    assert rows[2]["allowed_values"] == "march; strike"
    assert rows[4]["depends_on"] == "violence = true"
