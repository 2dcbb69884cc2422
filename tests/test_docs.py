"""The documentation holds together: links resolve, every page is reachable from the README, the README stays
short, and code and configs carry no dated measurement history (that lives in docs/ and recipes/*/RESULTS.md)."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = sorted([README, *(ROOT / "docs").glob("*.md"), *(ROOT / "recipes").glob("*/*.md"),
                *(p for p in (ROOT / "data" / "README.md", ROOT / "exp" / "README.md") if p.exists())])
DOCS = sorted((ROOT / "docs").glob("*.md"))

FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"`+[^`]*`+")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` of the Markdown outside fenced code blocks."""
    out, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            out.append((number, line))
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lowercased, punctuation but hyphens and underscores dropped, spaces
    turned into hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 ... suffixes for repeated headings."""
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        m = HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[tuple[int, str]]:
    """``(line number, target)`` of every link and image in a Markdown file, outside code."""
    out = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for m in LINK.finditer(INLINE_CODE.sub("", line)):
            out.append((number, m.group(1)))
    return out


def relative(target: str) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I)  # http:, https:, mailto: ... are not checked


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_and_anchors_resolve(page):
    bad = []
    for number, target in links(page):
        if not relative(target):
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (page.parent / file_part).resolve() if file_part else page
        where = f"{page.relative_to(ROOT)}:{number}: {target}"
        if not resolved.exists():
            bad.append(f"{where} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            bad.append(f"{where} (no heading #{anchor} in {resolved.relative_to(ROOT)})")
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / t.partition("#")[0]).resolve() for _, t in links(README) if relative(t) and t.partition("#")[0]}
    missing = [str(p.relative_to(ROOT)) for p in DOCS if p.resolve() not in linked]
    assert DOCS and not missing, f"docs pages the README does not link: {missing}"


def test_readme_is_short():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 180, f"README.md has {len(lines)} lines; the rest belongs in docs/"


def test_readme_shows_how_to_transcribe_within_its_first_screen():
    head = README.read_text(encoding="utf-8").splitlines()[:40]
    assert any(re.search(r"\basr transcribe --model\b", line) for line in head), \
        "the first 40 lines of README.md should show the `asr transcribe` command"


def test_readme_names_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text


# -- no lab notebook in code and configs ---------------------------------------------------------------------

DATE = re.compile(r"20\d\d-\d\d-\d\d")
ARCHIVE_NAME = re.compile(r"cv-corpus-[\w.-]*")  # Common Voice's archive names carry a release date
MACHINES = re.compile(r"AMD EPYC|Intel Xeon")
EXPERIMENT_ID = re.compile(r"\bE\d{1,2}\b|\b[GH]\d\b")
CODE = sorted([*(ROOT / "asr").rglob("*.py"), *(ROOT / "recipes").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")])
CONFIGS = sorted([*(ROOT / "recipes").rglob("*.yaml"), *(ROOT / "asr").rglob("*.yaml")])


def comments_and_strings(source: str) -> list[tuple[int, str]]:
    """``(line number, text)`` of a Python file's comments and string literals (docstrings included)."""
    kinds = {tokenize.COMMENT, tokenize.STRING}
    kinds |= {getattr(tokenize, "FSTRING_MIDDLE")} if hasattr(tokenize, "FSTRING_MIDDLE") else set()
    return [(t.start[0], t.string) for t in tokenize.generate_tokens(io.StringIO(source).readline) if t.type in kinds]


def history(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        line = ARCHIVE_NAME.sub("", line)
        found += [f"{number}: {m.group(0)}" for m in (*DATE.finditer(line), *MACHINES.finditer(line))]
    commented = comments_and_strings(text) if path.suffix == ".py" else \
        [(n, line[line.index("#"):]) for n, line in enumerate(text.splitlines(), 1) if "#" in line]
    for number, piece in commented:
        found += [f"{number}: {m.group(0)}" for m in EXPERIMENT_ID.finditer(piece)]
    return found


@pytest.mark.parametrize("path", CODE + CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_dated_measurements_or_experiment_ids(path):
    found = history(path)
    assert not found, (f"{path.relative_to(ROOT)} carries measurement history ({', '.join(found)}): give the reason "
                       "in a sentence and point to docs/ or recipes/<name>/RESULTS.md")
