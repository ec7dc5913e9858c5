"""Each paper's page (``experiments/<code>/README.md``) against the template (``docs/paper_readme_template.md``): at
most 150 lines; the template's ``##`` headings, and no others, in its order; a paper with a released-weights catalogue
keeps its generated block in "From the released weights"; and what a user page leaves out: issue numbers, words about
who worked when, stories of lost records, and a commit id or a date anywhere but beside a figure."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from experiments.harness.released_weights import catalogue_papers
from experiments.paper_tables import papers
from reports.readme import RELEASED, markers

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "docs" / "paper_readme_template.md"
MAX_LINES = 150

ISSUE_NUMBER = re.compile(r"\bissues? #?\d+|(?<![\w/&#])#\d+\b", re.I)
HISTORY_WORDS = re.compile(r"\bsessions?\b|\bthis round\b|\bround \d+\b|\blost records?\b|\brecords? (?:was|were) "
                           r"lost\b|\bhelpers?\b", re.I)
# A git commit as pages name one: 7 to 40 hex digits with a letter and a digit among them; a date as ISO writes it.
PROVENANCE = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,40}\b|\b\d{4}-\d{2}-\d{2}\b")
FIGURE = re.compile(r"\d\.\d|\d\s?%")  # a measured figure: a decimal number or a percentage


def sections(text: str) -> list[str]:
    """The ``##`` headings of a markdown text, outside code blocks, in order."""
    outside = re.sub(r"```.*?```", "", text, flags=re.S)
    return [line[3:].strip() for line in outside.splitlines() if line.startswith("## ")]


def template_sections() -> list[str]:
    return sections(TEMPLATE.read_text())


def paragraphs(text: str) -> list[str]:
    """The text's blocks as a reader meets them: paragraphs, list items and table rows, links' addresses removed."""
    text = re.sub(r"\]\([^)\s]+\)", "]", text)
    text = re.sub(r"https?://\S+", "", text)
    blocks = []
    for paragraph in re.split(r"\n\s*\n", text):
        lines = paragraph.splitlines()
        if lines and all(line.startswith("|") for line in lines):
            blocks += lines  # a table: each row stands alone
        else:
            blocks += re.split(r"\n(?=\s*- )", paragraph)  # a list: each item stands alone
    return blocks


def left_out_problems(text: str) -> list[str]:
    """What a user page should leave out, each as ``<what>: <the text>``."""
    problems = []
    for block in paragraphs(text):
        one_line = " ".join(block.split())
        problems += [f"issue number {m.group(0)!r}: {one_line[:100]}" for m in ISSUE_NUMBER.finditer(block)]
        problems += [f"history word {m.group(0)!r}: {one_line[:100]}" for m in HISTORY_WORDS.finditer(block)]
        if not FIGURE.search(PROVENANCE.sub("", block)):
            problems += [f"commit or date {m.group(0)!r} beside no figure: {one_line[:100]}"
                         for m in PROVENANCE.finditer(block)]
    return problems


PAGES = {code: REPO / "experiments" / code / "README.md" for code in papers()}


def test_the_template_names_the_pages_sections():
    assert template_sections()[:3] == ["What is reproduced", "Results at a glance", "Train"], template_sections()
    assert template_sections()[-1] == "Citation"


@pytest.mark.parametrize("code", sorted(PAGES))
def test_a_paper_page_is_short(code):
    lines = PAGES[code].read_text().splitlines()
    assert len(lines) <= MAX_LINES, f"{PAGES[code].relative_to(REPO)}: {len(lines)} lines (at most {MAX_LINES}: " \
                                    f"move the investigations to docs/)"


@pytest.mark.parametrize("code", sorted(PAGES))
def test_a_paper_page_has_the_templates_sections_in_order(code):
    text = PAGES[code].read_text()
    assert text.startswith("# ") and f"(`{code}`)" in text.splitlines()[0], text.splitlines()[0]
    assert sections(text) == template_sections(), (f"{PAGES[code].relative_to(REPO)}: sections {sections(text)}, "
                                                   f"the template's {template_sections()}")


@pytest.mark.parametrize("code", sorted(PAGES))
def test_a_paper_page_leaves_out_history(code):
    problems = left_out_problems(PAGES[code].read_text())
    assert not problems, f"{PAGES[code].relative_to(REPO)}: {problems}"


@pytest.mark.parametrize("code", sorted(catalogue_papers()))
def test_a_released_weights_block_stays_in_its_section(code):
    text = PAGES[code].read_text()
    begin, end = markers(RELEASED)
    section = text.split("\n## From the released weights\n", 1)[1].split("\n## ", 1)[0]
    assert begin in section and end in section, f"{PAGES[code].relative_to(REPO)}: no released-weights block there"


@pytest.mark.parametrize(("text", "found"), [
    ("Measured by the lead in issue #63.", "issue number"),
    ("See #12 for the rest.", "issue number"),
    ("The records of this session were lost.", "history word"),
    ("Trained again after the lost records.", "history word"),
    ("The code changed at 795ac8b.", "commit or date"),
    ("Measured on 2026-11-24.", "commit or date"),
])
def test_the_checks_find_what_a_page_leaves_out(text, found):
    assert any(problem.startswith(found) for problem in left_out_problems(text)), left_out_problems(text)


@pytest.mark.parametrize("text", [
    "Measured on an H100 at 7009e8e: 5.0 GiB (paper 7.4).",
    "[the puzzle](../../docs/tiny_scale_puzzles.md#1-why-the-k-and-v-shifts-stay-at-chance-on-the-motion-set)",
    "| [`x`](https://example.org/deadbeef1234) | 79.7 |",
    "ViT-B/16 from ImageNet-21K, 16 × 224² clips, 35 epochs.",
])
def test_the_checks_pass_what_a_page_may_say(text):
    assert not left_out_problems(text), left_out_problems(text)
