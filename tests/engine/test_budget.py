"""Chunks are sized so that prompt, schema, text and answer fit the model's context."""

from coderai_assets.engine import budget
from coderai_assets.engine.codebook import ProjectSpec, compile_codebook
from coderai_assets.engine.variables import VariableSpec


def _codebook(n: int):
    variables = tuple(
        VariableSpec(name=f"v{i}", type="text", description="A clause of the contract " * 3) for i in range(n)
    )
    return compile_codebook(ProjectSpec(name="p", domain_description="Commercial contracts.", variables=variables)), n


def test_chunk_shrinks_as_the_codebook_grows_and_everything_fits():
    sizes = []
    for n in (1, 5, 20):
        codebook, count = _codebook(n)
        size = budget.chunk_chars(codebook, count, context_tokens=8192, max_output_tokens=2048)
        total = budget.prompt_tokens(codebook) + budget.estimate_tokens("x" * size) + budget.answer_tokens(count, 2048)
        assert total <= 8192 + 1
        sizes.append(size)
    assert sizes[0] > sizes[1] > sizes[2] >= budget.MIN_CHUNK_CHARS


def test_a_codebook_too_large_for_the_context_is_reported():
    codebook, count = _codebook(50)
    assert not budget.fits(codebook, count, context_tokens=4096, max_output_tokens=1024)
    assert budget.fits(*_codebook(5), context_tokens=4096, max_output_tokens=1024)


def _spec(n: int, unit: str = "document") -> ProjectSpec:
    variables = tuple(
        VariableSpec(name=f"v{i}", type="text", description="A clause of the contract " * 3) for i in range(n)
    )
    return ProjectSpec(name="p", domain_description="Contracts.", extraction_unit=unit, variables=variables)


def test_one_call_plan_decides_how_a_chunk_is_asked_for_the_run_the_refiner_and_the_estimate():
    """The whole codebook while it leaves room for text, its variable groups once it does not, nothing when even
    a group cannot fit; the refiner's trial (ask_chunk) makes exactly the plan's calls."""
    from coderai_assets.engine.llm import Answer
    from coderai_assets.pipeline.extract import ChunkText, ask_chunk
    from tests.fakes import AnsweringExtractor

    class Asked(AnsweringExtractor):
        def __init__(self):
            self.model_name, self.books = "fake/asked", []

        def extract(self, codebook, **_):
            self.books.append(codebook.json_schema["required"])
            return Answer(payload={})

    chunk = ChunkText(0, "The parties agree.", 0, 18)
    options = {"with_quotes": True, "max_output_tokens": 1024}
    whole = budget.call_plan(_spec(5), context_tokens=4096, **options)
    split = budget.call_plan(_spec(30), context_tokens=4096, **options)
    unknown = budget.call_plan(_spec(30), context_tokens=None, **options)
    assert whole is not None and len(whole.books) == whole.calls_per_chunk == 1
    assert split is not None and split.calls_per_chunk == len(split.books) > 1 and sum(split.sizes) == 30
    assert unknown is not None and len(unknown.books) == 1  # no known context: nothing to split for
    assert budget.call_plan(_spec(30), context_tokens=600, **options) is None
    assert budget.call_plan(_spec(30, "entity"), context_tokens=4096, **options) is None  # entities are not split
    assert budget.call_plan(_spec(5, "entity"), context_tokens=4096, **options).calls_per_chunk == 2
    for n, plan in ((5, whole), (30, split)):
        extractor = Asked()
        _, calls = ask_chunk(extractor, _spec(n), chunk, 1, "a.txt", context_tokens=4096, **options)
        assert calls == len(plan.books) and extractor.books == [b.json_schema["required"] for b in plan.books]
