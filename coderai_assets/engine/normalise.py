"""Text as two codings are compared: `coderai eval` against a gold file, and the agreement figures against reviewers,
so that both count the same matches (a test holds them to it)."""

from __future__ import annotations

import re
import unicodedata
from typing import Any


def normalise_text(value: Any) -> str:
    """Case, quotes, punctuation and whitespace aside."""
    text = unicodedata.normalize("NFKC", str(value)).lower()
    text = re.sub(r"[\"'“”‘’`.,;:()\[\]]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


_ARTICLES = re.compile(r"^(?:the|a|an) ")


def entity_key(label: str) -> str:
    """An entity's name for matching (chunks of one document, held-out documents, runs): lower case, punctuation
    dropped, without a leading article."""
    return _ARTICLES.sub("", re.sub(r"\W+", " ", label.lower()).strip())
