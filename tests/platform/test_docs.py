"""The README and docs/ hold the project's own record: every link in them resolves, to a file of the repository
or a heading of one, and none points at a file the repository does not have."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for the page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", page.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves(page):
    text = page.read_text()
    links = _LINK.findall(text)
    for target in links:
        if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: {target} does not exist"
        if anchor:
            assert anchor in _anchors(resolved), f"{page.name}: {target} names no heading"


def test_the_record_is_the_projects_own_and_the_readme_is_short():
    assert (ROOT / "README.md").stat().st_size < 12_000
    for page in PAGES:
        text = page.read_text()
        assert "DESIGN.md" not in text, page.name  # a file outside the repository
        assert not re.search(r"\bitem_\d+\b|\bissue \d+\b", text), page.name
    for name in ("architecture", "configuration", "api", "research-loop", "operations", "benchmarks", "glossary"):
        assert (ROOT / "docs" / f"{name}.md").exists(), name
