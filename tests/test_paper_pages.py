"""Each paper's page (``experiments/<code>/README.md``) against the template (``docs/paper_readme_template.md``): at
most 8 KB, prose lines of at most 120 characters; the template's ``##`` headings, and no others, in its order; no
generated block (``python -m reports readme`` writes whole pages under ``reports/generated/``), and a paper with a
released-weights catalogue links its generated page in "From the released weights"; and what a user page leaves out:
issue numbers, words about who worked when, stories of lost records, and a commit id or a date anywhere but beside a
figure. The harness's reference, ``experiments/README.md``, is at most 2,500 words."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from experiments.harness.released_weights import catalogue_papers
from experiments.paper_tables import papers
from reports.readme import page_link, released_page

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "docs" / "paper_readme_template.md"
REFERENCE = REPO / "experiments" / "README.md"
MAX_BYTES = 8192  # a page's whole text
MAX_LINE = 120  # characters of a prose line: table rows and code blocks left out
MAX_REFERENCE_WORDS = 2500  # experiments/README.md, counted as len(text.split())
# The first line of a generated block, as pages held them before their generated text moved to reports/generated/.
GENERATED = re.compile(r"<!-- [\w-]+:begin\b")

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


def prose_lines(text: str) -> list[str]:
    """The lines a reader reads as prose: not a code block's or a table row."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return [line for line in text.splitlines() if not line.lstrip().startswith("|")]


def long_lines(text: str) -> list[str]:
    return [f"{len(line)} characters: {line[:80]}" for line in prose_lines(text) if len(line) > MAX_LINE]


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
    size = len(PAGES[code].read_text().encode())
    assert size <= MAX_BYTES, f"{PAGES[code].relative_to(REPO)}: {size} bytes (at most {MAX_BYTES}: link the notes " \
                              f"under docs/ instead of repeating them)"


@pytest.mark.parametrize("code", sorted(PAGES))
def test_a_paper_pages_prose_lines_are_short(code):
    assert not long_lines(PAGES[code].read_text()), f"{PAGES[code].relative_to(REPO)}: prose lines over {MAX_LINE} " \
                                                    f"characters: {long_lines(PAGES[code].read_text())}"


def test_the_experiments_reference_is_short():
    words = len(REFERENCE.read_text().split())
    assert words <= MAX_REFERENCE_WORDS, f"{REFERENCE.relative_to(REPO)}: {words} words (at most " \
                                         f"{MAX_REFERENCE_WORDS}: state each command and option once, briefly)"


def test_the_line_limit_leaves_out_code_and_tables():
    wide = "x " * 150
    text = f"# A page\n\n```bash\n{wide}\n```\n\n| {wide} |\n|---|\n\nShort prose.\n"
    assert not long_lines(text)
    assert long_lines(f"Short prose.\n{wide}\n") == [f"{len(wide)} characters: {wide[:80]}"]


@pytest.mark.parametrize("code", sorted(PAGES))
def test_a_paper_page_holds_no_generated_block(code):
    assert not GENERATED.search(PAGES[code].read_text()), f"{PAGES[code].relative_to(REPO)}: a generated block; " \
        f"`python -m reports readme` writes whole pages under reports/generated/, which the page links"


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
def test_a_released_weights_page_is_linked_from_its_section(code):
    text = PAGES[code].read_text()
    section = text.split("\n## From the released weights\n", 1)[1].split("\n## ", 1)[0]
    link = page_link(released_page(code))
    assert link in section, f"{PAGES[code].relative_to(REPO)}: no link {link} to its released checkpoints there"


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


# ---- the figures a page's "Results at a glance" types, against the index ---------------------------------------------

MEAN_STD = re.compile(r"(?<![\w.])(\d+\.\d+)\s+±\s+(\d+\.\d+)(?![\w.])")  # a cell: mean ± std over seeds
LISTED = re.compile(r"(?<![\w.])\d+\.\d+(?:(?:, | / |,? and )\d+\.\d+){2,}(?![\w.])")  # a row or column of means


def glance(text: str) -> str:
    """A page's "Results at a glance", links' addresses removed."""
    return re.sub(r"\]\([^)\s]+\)", "]", text.split("\n## Results at a glance\n", 1)[1].split("\n## ", 1)[0])


def shown_as(figure: str, value: float) -> bool:
    """``figure`` is ``value`` rounded to the figure's decimals (either way at an exact half)."""
    return abs(float(figure) - value) <= 0.5 * 10 ** -len(figure.split(".")[1]) + 1e-9


def page_figures(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(each "mean ± std", each mean of a list of three or more) of a page's "Results at a glance"."""
    section = glance(text)
    listed = [figure for found in LISTED.finditer(section) for figure in re.findall(r"\d+\.\d+", found.group(0))]
    return MEAN_STD.findall(section), listed


@pytest.fixture(scope="module")
def tiny_cells() -> dict[str, list[tuple[str, float, float]]]:
    """{paper: (cell, mean, std) of every tracked tiny cell of its tables and own experiments}, as the index holds
    them (``reports.results_index``; ``tests/reports/test_tracked_results.py`` holds index.json to the same)."""
    from experiments.harness.spec import registered_specs, table_spec
    from experiments.paper_tables import paper_table
    from reports.records import one_scan
    from reports.results_index import table_cells

    out: dict[str, list[tuple[str, float, float]]] = {}
    with one_scan():
        for table_id in registered_specs():
            spec = table_spec(table_id)
            paper = paper_table(table_id).paper_code if spec.is_paper_table else table_id.split("_")[0]
            out.setdefault(paper, []).extend(
                (f"{table_id} {c['row']} · {c['column']}", c["tracked"]["mean"], c["tracked"]["std"])
                for c in table_cells(table_id, {}) if c.get("tracked") and c["scale"] == "tiny")
    return out


@pytest.mark.parametrize("code", sorted(PAGES))
def test_a_pages_figures_at_a_glance_are_the_indexs(code, tiny_cells):
    """Each "mean ± std" is one tracked tiny cell of the paper's tables or experiments, and each mean of a list
    (a row's columns, a column's rows) a tracked tiny cell's mean: a figure that drifts from the records fails."""
    pairs, listed = page_figures(PAGES[code].read_text())
    cells = tiny_cells[code]
    wrong = [f"{mean} ± {std}" for mean, std in pairs
             if not any(shown_as(mean, m) and shown_as(std, s) for _, m, s in cells)]
    wrong += [mean for mean in listed if not any(shown_as(mean, m) for _, m, _ in cells)]
    assert not wrong, f"{PAGES[code].relative_to(REPO)}: figures no tracked tiny cell holds: {wrong}"
    assert pairs or listed, f"{PAGES[code].relative_to(REPO)}: no figure at a glance to check"


def test_the_figure_checks_read_a_glance_as_a_reader_does():
    text = ("# P (`p`)\n\n## Results at a glance\n\n- A [table](x.md): 70.6 ± 1.5 vs 67.8\n  ± 1.3; 76.4, 74.1, "
            "73.8 and 71.4 for 1–4 heads; 66.8 / 69.1 / 70.3 on 8 frames, 12.5 GFLOPs.\n\n## Train\n\n9.9 ± 9.9\n")
    assert page_figures(text) == ([("70.6", "1.5"), ("67.8", "1.3")],
                                  ["76.4", "74.1", "73.8", "71.4", "66.8", "69.1", "70.3"])
    assert shown_as("74.1", 74.05) and shown_as("74.0", 74.05) and not shown_as("74.1", 74.04)
