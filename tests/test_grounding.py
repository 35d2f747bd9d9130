"""Grounding: quotes aligned to the document text with a status; never reported found when they are not."""

from __future__ import annotations

import random

import pytest

from coderai_assets.engine.grounding import EXACT, FUZZY, NOT_FOUND, Aligner, normalise_quote

TEXT = (
    "LYON, 12 March 2024 - About 3,000 nurses\nmarched through the centre of Lyon on Tuesday.\n\n"
    "Police said the march was peaceful. In Paris, about 3,000 nurses marched too."
)


def test_verbatim_quote_is_exact_with_offsets():
    alignment = Aligner(TEXT).align("centre of Lyon")
    assert alignment.status == EXACT and TEXT[alignment.start : alignment.end] == "centre of Lyon"


def test_case_and_whitespace_differences_are_tolerated():
    alignment = Aligner(TEXT).align("about 3,000 NURSES   marched")
    assert alignment.status == EXACT
    assert TEXT[alignment.start : alignment.end] == "About 3,000 nurses\nmarched"


def test_small_differences_are_fuzzy_and_cover_whole_words():
    alignment = Aligner(TEXT).align("Police said the marche was peacefull", hint=(0, len(TEXT)))
    assert alignment.status == FUZZY and alignment.score >= 90
    assert TEXT[alignment.start : alignment.end].startswith("Police said the march was peace")


def test_invented_quote_is_not_found():
    for quote in ("Riot police fired tear gas", "", "   "):
        alignment = Aligner(TEXT).align(quote, hint=(0, len(TEXT)))
        assert alignment.status == NOT_FOUND and alignment.start is None


def test_the_chunk_the_quote_came_from_is_preferred():
    second = TEXT.index("In Paris")
    alignment = Aligner(TEXT).align("about 3,000 nurses", hint=(second, len(TEXT)))
    assert alignment.start > second


def test_long_document_quotes(corpus):
    from coderai_assets.ingest.parse import parse

    text = parse((corpus / "txt" / "large" / "war_and_peace_pg2600.txt").read_bytes(), "txt").text
    aligner = Aligner(text)
    rng = random.Random(4)
    for _ in range(100):
        start = rng.randrange(0, len(text) - 200)
        quote = text[start : start + rng.randrange(20, 150)]
        if not normalise_quote(quote) or len(quote.strip()) < 10:
            continue
        varied = " ".join(quote.upper().split())  # case and line breaks differ
        alignment = aligner.align(varied, hint=(max(0, start - 2000), start + 2000))
        assert alignment.status == EXACT
        assert normalise_quote(text[alignment.start : alignment.end]) == normalise_quote(quote)
    assert aligner.align("Napoleon landed on the moon with his telephone").status == NOT_FOUND


@pytest.mark.parametrize(
    "text", ["held on 3 June 2023 at", "held on June 3, 2023 at", "held on 03/06/2023 at", "held on 3 Jun 2023 at"]
)
def test_a_date_the_model_normalised_is_found_as_the_text_writes_it(text):
    from coderai_assets.pipeline.validate import Candidate, ground

    quote, alignment = ground(Aligner(text), Candidate("2023-06-03", "", 0, None), 0, len(text))
    assert alignment.status == "exact" and quote in text and "3" in quote
