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
