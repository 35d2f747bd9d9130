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
        # A model quotes whole words: the slice is widened to the words it cuts.
        start, end = rng.randrange(1, len(text) - 200), 0
        end = start + rng.randrange(20, 150)
        while text[start - 1].isalnum():
            start -= 1
        while text[end].isalnum():
            end += 1
        quote = text[start:end]
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


def test_a_quote_never_matches_part_of_a_number_or_a_word():
    text = "LYON, 12 March 2024 - About 3,000 nurses marched in Lyonnais streets; 2,500 more came, and 3 were hurt."
    aligner = Aligner(text)
    for quote in ("2", "000", "500", "3,00"):
        assert aligner.align(quote, hint=(0, len(text))).status == NOT_FOUND, quote
    part = aligner.align("Lyonnai", hint=(0, len(text)))  # never exact; approximately, the whole word
    assert part.status == FUZZY and text[part.start : part.end] == "Lyonnais"
    for quote in ("3,000", "2,500", "3 were hurt", "Lyonnais", "12 march"):
        alignment = aligner.align(quote)
        assert alignment.status == EXACT and normalise_quote(text[alignment.start : alignment.end]) == quote.lower()
    three = aligner.align("3")  # the lone 3, not the one that begins 3,000
    assert three.status == EXACT and text[three.start - 1 : three.end + 5] == " 3 were"


def _grounded(text, variable_type, raw, quote):
    from coderai_assets.engine.coercion import coerce_value
    from coderai_assets.engine.variables import VariableSpec
    from coderai_assets.pipeline.validate import Candidate, ground_value

    class Span:
        char_start, char_end = 0, len(text)

    v = VariableSpec(name="v", type=variable_type)
    return ground_value(Aligner(text), v, coerce_value(v, raw), Candidate(raw, quote, 0, None), {0: Span()})


@pytest.mark.parametrize(
    ("raw", "quote"),
    [(3, "3"), (3, "About 3,000 nurses"), (2, "2,500 more"), (3000, "3,000 nurses and 12 police"), (7, "2.5 million")],
)
def test_a_number_the_quote_does_not_say_is_ungrounded_never_exact(raw, quote):
    text = "About 3,000 nurses and 12 police; 2,500 more came. Turnout: 2.5 million."
    grounded = _grounded(text, "integer", raw, quote)
    if raw == 3000:
        assert grounded.status == "ok" and grounded.alignment.status == EXACT
        return
    assert grounded.status == "ungrounded" and grounded.alignment.status != EXACT
    assert "not grounded" in grounded.message


@pytest.mark.parametrize(("raw", "quote"), [(3000, "3 thousand nurses"), (2500000, "2.5 million"), (12, "twelve")])
def test_a_number_the_quote_says_in_words_or_with_a_scale_is_grounded(raw, quote):
    grounded = _grounded("About 3 thousand nurses, twelve police; turnout 2.5 million.", "number", raw, quote)
    assert grounded.status == "ok" and grounded.alignment.status == EXACT


def test_a_false_without_a_quote_claims_no_evidence_and_is_not_ungrounded():
    absent = _grounded("The parties agree to the terms below.", "boolean", False, "")
    assert absent.status == "ok" and absent.alignment is None and absent.quote is None
    claimed = _grounded("The parties agree to the terms below.", "boolean", True, "")
    assert claimed.status == "ungrounded"
    invented = _grounded("The parties agree to the terms below.", "boolean", False, "no exclusivity is granted")
    assert invented.status == "ungrounded"  # a quote given, and not in the text
