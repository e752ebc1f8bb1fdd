"""Documentation references resolve: every ``docs/<page>.md#<anchor>`` cited in ``src/`` or ``tests/``
(and every link between the pages in ``docs/``) names a page and a heading that exist, and no comment cites the
specification documents kept outside the repository (a reader cannot open them; ``docs/specs.md``
and ``docs/nautilus.md`` say what the code takes from them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SRC = ROOT / "src"
TEXT_SUFFIXES = {".py", ".yaml", ".yml", ".sql", ".md", ".toml", ".txt"}

CODE_REF = re.compile(r"docs/([A-Za-z0-9_\-]+\.md)(?:#([A-Za-z0-9_\-]+))?")
DOC_LINK = re.compile(r"\]\(([A-Za-z0-9_\-]+\.md)?(?:#([A-Za-z0-9_\-]+))?\)")
# Citations of the documents outside the repository (the product seeds and the measured-facts file).
OUTSIDE = re.compile(
    r"\bseed[ \-]?00[0-3]\b|NAUTILUS_FACTS|PRODUCT\.md|DOLPHIN_DIGEST|\bseed's\b|\bthe seeds?\b|\bseed (?:shape|thresholds?)\b",
    re.IGNORECASE,
)


def github_anchor(heading: str, seen: dict[str, int]) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces to hyphens,
    repeats suffixed ``-1``, ``-2``, ..."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip()).lower()
    slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return slug if count == 0 else f"{slug}-{count}"


def anchors(page: Path) -> set[str]:
    """Anchors of the ATX headings of `page`, outside fenced code blocks."""
    out: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = re.match(r"#{1,6} (.+)", line)
        if match and not fenced:
            out.add(github_anchor(match.group(1), seen))
    return out


def source_files(*roots: Path) -> list[Path]:
    return sorted(p for root in roots for p in root.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)


def test_github_anchor_rules() -> None:
    seen: dict[str, int] = {}
    assert github_anchor("Isolated-margin liquidation", seen) == "isolated-margin-liquidation"
    assert github_anchor("Strategies A, B, C", seen) == "strategies-a-b-c"
    assert github_anchor("`run_analysis` is O(n^2)", seen) == "run_analysis-is-on2"
    assert github_anchor("Strategies A, B, C", seen) == "strategies-a-b-c-1"


def test_every_docs_anchor_cited_in_src_and_tests_exists() -> None:
    pages = {page.name: anchors(page) for page in DOCS.glob("*.md")}
    dangling = []
    cited = 0
    for path in source_files(SRC, ROOT / "tests"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for page, anchor in CODE_REF.findall(line):
                cited += 1
                if page not in pages or (anchor and anchor not in pages[page]):
                    dangling.append(f"{path.relative_to(ROOT)}:{n}: docs/{page}#{anchor}")
    assert cited > 0, "no docs/*.md reference found (is the pattern right?)"
    assert not dangling, "references to missing pages or headings:\n" + "\n".join(dangling)


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_links_between_docs_resolve(page: str) -> None:
    pages = {p.name: anchors(p) for p in DOCS.glob("*.md")}
    dangling = []
    for target, anchor in DOC_LINK.findall((DOCS / page).read_text(encoding="utf-8")):
        target = target or page
        if target not in pages or (anchor and anchor not in pages[target]):
            dangling.append(f"{target}#{anchor}")
    assert not dangling, f"{page} links to missing pages or headings: {dangling}"


def test_src_cites_no_document_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in source_files(SRC)
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "cite docs/specs.md or docs/nautilus.md instead:\n" + "\n".join(found)
