"""Long documents in several chunks and entity-level projects, through the real parser and pipeline steps."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from coderai_assets.domain.runs import create_run
from coderai_assets.engine.llm import Answer
from coderai_assets.engine.variables import IfMultiple, VariableSpec, VariableType
from coderai_assets.storage.db import tenant_session
from coderai_assets.storage.files import LocalFileStorage
from coderai_assets.storage.models import (
    Document,
    DocumentChunk,
    Extraction,
    ExtractionUnit,
    Project,
    Run,
    RunKind,
    Variable,
)
from tests.fakes import AnsweringExtractor

FILLER = "The weather was mild and the streets were quiet for most of the day. " * 4


class ByChunkText(AnsweringExtractor):
    """Test double: answers each chunk from the rules whose phrase the chunk contains."""

    def __init__(self, rules):
        self.rules, self.model_name, self.calls = rules, "fake/by-chunk", 0

    def extract(self, codebook, *, text, **_):
        self.calls += 1
        for phrase, payload in self.rules:
            if phrase in text:
                return Answer(payload=payload, input_tokens=10, output_tokens=5)
        return Answer(payload={"entities": []} if "entities" in codebook.json_schema["properties"] else {})


class EntitiesThenVariables(AnsweringExtractor):
    """Test double for the two steps: lists the entities a chunk mentions, then codes the one it is asked about."""

    def __init__(self, mentions, values):
        self.mentions, self.values, self.model_name = mentions, values, "fake/entities"
        self.finder_calls = self.coder_calls = 0

    def extract(self, codebook, *, text, **_):
        if "entities" in codebook.json_schema["properties"]:
            self.finder_calls += 1
            return Answer(payload={"entities": [{"entity_text": e} for p, e in self.mentions.items() if p in text]})
        self.coder_calls += 1
        chunk, _, asked = text.rpartition("\n\nThe incident to code: ")
        for (phrase, entity), payload in self.values.items():
            if phrase in chunk and entity == asked:
                return Answer(payload=payload)
        return Answer(payload={})


def _setup(session_factory, tenant, settings, unit, variables, text):
    storage = LocalFileStorage(settings.storage_dir)
    with tenant_session(session_factory, tenant) as session:
        project = Project(
            tenant_id=tenant, name="p", domain_description="News.", extraction_unit=unit, entity_description="incident"
        )
        session.add(project)
        session.flush()
        for i, variable in enumerate(variables):
            session.add(Variable.of(VariableSpec(**variable), tenant_id=tenant, project_id=project.id, position=i))
        doc_id = uuid.uuid4()
        key = f"{tenant}/{project.id}/documents/{doc_id}/original"
        storage.write(key, text.encode())
        session.add(
            Document(
                id=doc_id,
                tenant_id=tenant,
                project_id=project.id,
                file_name="long.txt",
                size_bytes=len(text),
                sha256=doc_id.hex * 2,
                storage_path=key,
            )
        )
        session.flush()
        run, _ = create_run(session, project, RunKind.full, with_quotes=False)
        return project.id, doc_id, run.id


def _process(session_factory, tenant, code_run, ids, extractor, chunk_chars):
    """The run's document coded as a run worker codes it: parsed in chunks of `chunk_chars`, extracted, validated."""
    project_id, doc_id, run_id = ids
    code_run(
        tenant,
        run_id,
        extractor,
        chunk_chars=chunk_chars,
        chunk_overlap_chars=60,
        llm_cache=False,
        llm_quotes=False,
        llm_context_tokens=32768,
    )
    with tenant_session(session_factory, tenant) as session:
        document = session.get(Document, doc_id)
        assert document.status.value == "done", document.error_message
        chunks = session.scalars(select(DocumentChunk).where(DocumentChunk.document_id == doc_id)).all()
        rows = session.execute(
            select(Extraction, Variable.name)
            .join(Variable, Variable.id == Extraction.variable_id)
            .where(Extraction.run_id == run_id)
            .order_by(Extraction.entity_index)
        ).all()
        return len(chunks), [(e, name) for e, name in rows], document.text


def test_long_document_values_from_several_chunks_follow_the_variable_rule(session_factory, tenant, settings, code_run):
    text = f"Nurses marched in Lyon on Monday. {FILLER}{FILLER}A second march was held in Paris. {FILLER}"
    variables = [
        {"name": "city_first", "type": VariableType.text},
        {"name": "city_all", "type": VariableType.text, "if_multiple_values": IfMultiple.all},
        {"name": "city_flag", "type": VariableType.text, "if_multiple_values": IfMultiple.flag},
    ]
    ids = _setup(session_factory, tenant, settings, ExtractionUnit.document, variables, text)
    extractor = ByChunkText(
        [
            ("marched in Lyon", {"city_first": "Lyon", "city_all": "Lyon", "city_flag": "Lyon"}),
            ("held in Paris", {"city_first": "Paris", "city_all": "Paris", "city_flag": "Paris"}),
        ]
    )
    n_chunks, rows, _ = _process(session_factory, tenant, code_run, ids, extractor, chunk_chars=300)
    assert n_chunks >= 3 and extractor.calls == n_chunks  # every chunk was read: nothing truncated
    values = {name: e for e, name in rows}
    assert values["city_first"].value == "Lyon" and "first of several" in values["city_first"].message
    assert values["city_all"].value == ["Lyon", "Paris"]
    assert values["city_flag"].value is None and values["city_flag"].status.value == "invalid"


def test_entities_split_across_chunks_are_merged_and_overlap_duplicates_removed(
    session_factory, tenant, settings, code_run
):
    text = (
        f"A bombing in Lima killed two people on Monday. {FILLER}"
        f"Police later said the bombing in Lima was claimed by the Red Front. {FILLER}"
        f"On Tuesday, a kidnapping in Quito was reported. {FILLER}"
    )
    variables = [
        {"name": "city", "type": VariableType.text},
        {"name": "victims", "type": VariableType.integer},
        {"name": "perpetrator", "type": VariableType.text},
    ]
    ids = _setup(session_factory, tenant, settings, ExtractionUnit.entity, variables, text)
    extractor = EntitiesThenVariables(
        mentions={
            "killed two people": "A bombing in Lima",
            "claimed by the Red Front": "the bombing in Lima",
            "kidnapping in Quito was": "a kidnapping in Quito",
        },
        values={
            ("killed two people", "A bombing in Lima"): {"city": "Lima", "victims": 2},
            ("claimed by the Red Front", "the bombing in Lima"): {"perpetrator": "the Red Front"},
            ("kidnapping in Quito was", "a kidnapping in Quito"): {"city": "Quito"},
        },
    )
    n_chunks, rows, document_text = _process(session_factory, tenant, code_run, ids, extractor, chunk_chars=280)
    assert n_chunks >= 3
    assert extractor.finder_calls == n_chunks and extractor.coder_calls >= 3  # entities first, then each coded
    entities: dict[int, dict] = {}
    for extraction, name in rows:
        entities.setdefault(extraction.entity_index, {"_e": extraction})[name] = extraction.value
    assert len(entities) == 2  # the bombing (named twice) and the kidnapping
    bombing, kidnapping = entities[0], entities[1]
    assert (bombing["city"], bombing["victims"], bombing["perpetrator"]) == ("Lima", 2, "the Red Front")
    assert kidnapping["city"] == "Quito" and kidnapping["victims"] is None
    first = bombing["_e"]
    assert document_text[first.entity_start : first.entity_end] == "A bombing in Lima"


def test_a_codebook_too_large_for_one_call_is_split_into_groups(session_factory, tenant, settings, code_run):
    from coderai_assets.engine import budget
    from coderai_assets.engine.codebook import ProjectSpec

    names = [f"clause_{i}" for i in range(30)]
    variables = [
        {
            "name": n,
            "type": VariableType.text,
            "description": "Whether the contract has this clause, and its terms in a few words. " * 2,
        }
        for n in names
    ]
    spec = ProjectSpec(
        name="p",
        domain_description="Contracts.",
        variables=tuple(
            VariableSpec(name=n, type="text", description=v["description"])
            for n, v in zip(names, variables, strict=True)
        ),
    )
    groups = budget.variable_groups(spec, with_quotes=True, context_tokens=4096, max_output_tokens=1024)
    assert len(groups) > 1 and [v.name for g in groups for v in g] == names  # all, once, in order
    text = f"This agreement has a clause. {FILLER}"
    ids = _setup(session_factory, tenant, settings, ExtractionUnit.document, variables, text)

    class PerGroup(AnsweringExtractor):
        def __init__(self):
            self.model_name, self.asked = "fake/groups", []

        def extract(self, codebook, **_):
            asked = [n for n in codebook.json_schema["required"]]
            self.asked.append(asked)
            return Answer(payload={n: f"value of {n}" for n in asked}, input_tokens=1, output_tokens=1)

    extractor = PerGroup()
    project_id, doc_id, run_id = ids
    code_run(
        tenant,
        run_id,
        extractor,
        chunk_chars=2000,
        chunk_overlap_chars=0,
        llm_cache=False,
        llm_quotes=True,
        llm_context_tokens=4096,
        llm_max_output_tokens=1024,
    )
    assert extractor.asked == [[v.name for v in g] for g in groups]
    with tenant_session(session_factory, tenant) as session:
        values = {
            n: e.value
            for e, n in session.execute(
                select(Extraction, Variable.name)
                .join(Variable, Variable.id == Extraction.variable_id)
                .where(Extraction.run_id == run_id)
            ).all()
        }
        assert values == {n: f"value of {n}" for n in names}
        assert session.get(Run, run_id).llm_calls == len(groups)


def test_a_clause_only_in_the_last_chunk_is_exported_true_with_that_chunks_quote(
    session_factory, tenant, settings, code_run
):
    """A perfect model answers per chunk: false where the chunk has no such clause, true with its quote in the one
    that has it. The document is coded true, grounded in that chunk; a clause no chunk has is coded false."""
    import pandas as pd

    from coderai_assets.domain.dataset import write_export

    clause = "Licensee shall not assign this Agreement without the prior written consent of Licensor."
    text = f"This License Agreement is made between the parties. {FILLER}{FILLER}{FILLER}{clause} {FILLER}"
    variables = [
        {"name": "anti_assignment", "type": VariableType.boolean},
        {"name": "non_compete", "type": VariableType.boolean},
    ]
    ids = _setup(session_factory, tenant, settings, ExtractionUnit.document, variables, text)
    silent = {"anti_assignment": False, "non_compete": False}
    extractor = ByChunkText(
        [
            ("shall not assign", {**silent, "anti_assignment": True, "quotes": {"anti_assignment": clause}}),
            ("", silent),  # every other chunk: neither clause is there
        ]
    )
    n_chunks, rows, document_text = _process(session_factory, tenant, code_run, ids, extractor, chunk_chars=300)
    assert n_chunks >= 3 and clause not in document_text[:300]
    values = {name: e for e, name in rows}
    found = values["anti_assignment"]
    assert found.value is True and found.status.value == "ok" and found.alignment == "exact"
    assert document_text[found.char_start : found.char_end] == clause and found.chunk_index == n_chunks - 2
    absent = values["non_compete"]
    assert absent.value is False and absent.status.value == "ok" and absent.quote is None
    project_id, _, run_id = ids
    with tenant_session(session_factory, tenant) as session:
        export = write_export(
            session,
            LocalFileStorage(settings.storage_dir),
            session.get(Project, project_id),
            session.get(Run, run_id),
            None,
        )
        frame = pd.read_csv(settings.storage_dir / export.csv_path)
    row = frame.iloc[0]
    assert bool(row["anti_assignment"]) is True and row["anti_assignment__quote"] == clause
    assert bool(row["non_compete"]) is False and row["non_compete__status"] == "ok"


class Answered:
    """A chunk's answer, as records are made of it (validate.AnsweredChunk)."""

    def __init__(self, index, payload):
        self.chunk_index, self.payload = index, payload


class Span:
    def __init__(self, start, end):
        self.char_start, self.char_end = start, end


def test_a_yes_or_no_is_not_coded_false_when_a_chunk_could_not_be_read():
    from coderai_assets.engine.codebook import ProjectSpec
    from coderai_assets.engine.grounding import Aligner
    from coderai_assets.pipeline.validate import code_record, records_of

    spec = ProjectSpec(
        name="p", domain_description="Contracts.", variables=(VariableSpec(name="exclusivity", type="boolean"),)
    )
    chunks = {0: Span(0, 10), 1: Span(10, 20)}
    answered = [Answered(0, {"exclusivity": False})]
    (partial,) = records_of(spec, answered, Aligner("x" * 20), chunks)
    _, _, coded = code_record(spec, partial, 0.5)
    assert coded["exclusivity"].value is None and "not every chunk" in coded["exclusivity"].message
    (whole,) = records_of(spec, [*answered, Answered(1, {"exclusivity": "no"})], Aligner("x" * 20), chunks)
    assert code_record(spec, whole, 0.5)[2]["exclusivity"].value is False


def test_a_category_with_a_code_for_absent_takes_what_any_chunk_finds():
    """`absent_value`: chunks without the clause answer "none"; the one that has it decides, and "none" is coded
    only when every chunk says so."""
    from coderai_assets.engine.codebook import ProjectSpec
    from coderai_assets.engine.grounding import Aligner
    from coderai_assets.pipeline.validate import code_record, records_of

    variable = VariableSpec(
        name="exclusivity",
        type="category",
        allowed_values=["none", "exclusive", "non-exclusive"],
        absent_value="none",
    )
    spec = ProjectSpec(name="p", domain_description="Contracts.", variables=(variable,))
    chunks = {i: Span(10 * i, 10 * i + 10) for i in range(3)}

    def coded(*answers):
        (record,) = records_of(spec, [Answered(i, a) for i, a in answers], Aligner("x" * 30), chunks)
        return code_record(spec, record, 0.5)[2]["exclusivity"]

    found = coded((0, {"exclusivity": "none"}), (1, {"exclusivity": "none"}), (2, {"exclusivity": "exclusive"}))
    assert found.value == "exclusive"
    absent = coded((0, {"exclusivity": "none"}), (1, {"exclusivity": "none"}), (2, {"exclusivity": "none"}))
    assert absent.value == "none"
    unread = coded((0, {"exclusivity": "none"}), (1, {"exclusivity": "none"}))
    assert unread.value is None and "not every chunk" in unread.message
    assert "If the text does not show it, give none." in compile_codebook_text(spec)


def compile_codebook_text(spec) -> str:
    from coderai_assets.engine.codebook import compile_codebook

    return compile_codebook(spec, True).system_prompt
