"""The READMEs' commands and references against the code. The READMEs are every ``README.md`` of the repository (the
landing page, each floor's, each paper's under ``experiments/<code>/``, the reports index), the research notes under
``docs/``, the claims page and the pages ``python -m reports readme`` writes (``OTHER_PAGES``). Every ``--option`` they
pass to a ``python -m ...`` command (``python -m tools <command>``: that tool's own parser), or name alone in backticks,
is one an argparse parser of those commands accepts; every table id and ``--rows`` key the commands name is registered;
every repository path and test node id named in backticks exists; every relative markdown link points to an existing
file or folder, and an anchor in it to a heading of that file. What the README once stated as figures in sentences
(the tables per paper, the AVX2 rerun's counts and gaps) lives in generated pages and in the results index
(``reports/generated/index.json``), which the README links and ``tests/reports/test_results_index.py`` checks against
the records; here: that the README links them, and that its reproducibility section states no figure."""

from __future__ import annotations

import argparse
import importlib
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.__main__ import build_parser
from experiments.harness.claims import heading_anchors
from experiments.harness.spec import registered_specs, table_spec
from experiments.paper_tables import papers
from reports.readme import generated_pages
from tools.__main__ import COMMANDS as TOOLS

REPO = Path(__file__).resolve().parents[1]
# Pages that are not named README.md: the research notes, the claims page and the pages `python -m reports readme`
# writes (reports.readme: the released checkpoints' commands among them).
OTHER_PAGES = ("docs/*.md", "reports/generated/claims.md", *(path.relative_to(REPO).as_posix()
                                                             for path in generated_pages()))


def markdown_pages() -> list[Path]:
    """Every README.md in the repository (tracked, or new and not ignored) and ``OTHER_PAGES``, the landing README
    first."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--",
                             "*README.md", *OTHER_PAGES], cwd=REPO, capture_output=True)
    names = [name for name in listed.stdout.decode().split("\0") if name] if listed.returncode == 0 else []
    if not names:  # no git checkout: look for them, away from runs and caches
        names = [str(p.relative_to(REPO)) for p in REPO.rglob("README.md")
                 if not any(part.startswith(".") or part == "runs" for part in p.relative_to(REPO).parts)]
        names += [str(path.relative_to(REPO)) for pattern in OTHER_PAGES for path in REPO.glob(pattern)]
    pages = {REPO / name for name in names if (REPO / name).is_file()}
    return sorted(pages, key=lambda page: (page != REPO / "README.md", str(page)))


READMES = markdown_pages()
COMMAND_START = re.compile(r"(?:python )?(?<![\w-])-m ([\w.]+)")
PLACEHOLDER_TABLE_IDS = {"ID", "TABLE", "cast_tableX", "all"}
# Modules run as ``python -m`` whose argparse parser these tests do not read (third-party tools).
NOT_OURS = {"pytest", "cProfile"}
# A command after ``git checkout <commit> &&`` runs that commit's code (an experiment retired since), not this one's.
AT_ANOTHER_COMMIT = re.compile(r"\bgit checkout [0-9a-f]{7,40} &&")
# Backticked paths that name a file outside this repository (the official code's and mmaction2's tools/) or what a
# run writes, not a tracked file.
NOT_TRACKED_PATH = re.compile(r"^(runs/|checkpoints/|data/augmentation\.py$|tools/(train_net|test_net)\.py$|"
                              r"tools/data/)")


def _name(readme: Path) -> str:
    return str(readme.relative_to(REPO))


def readme_command_texts() -> list[tuple[str, str]]:
    """(README path, command text) for every inline code span and every bash-block line holding ``-m MODULE``,
    line wraps inside a span joined, backslash continuations of a bash block joined; not a command that runs at
    another commit (``AT_ANOTHER_COMMIT``)."""
    texts = []
    for readme in READMES:
        text = readme.read_text()
        blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
        outside = re.sub(r"```.*?```", "", text, flags=re.S)
        for block in blocks:
            for line in block.replace("\\\n", " ").splitlines():
                texts.append((_name(readme), line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""))
        texts += [(_name(readme), " ".join(span.split())) for span in re.findall(r"`([^`]+)`", outside)]
    return [(name, t) for name, t in texts if COMMAND_START.search(t) and not AT_ANOTHER_COMMIT.search(t)]


def readme_commands() -> list[tuple[str, str, list[str]]]:
    """(README path, module, tokens after the module) for each ``-m MODULE`` command in the READMEs."""
    commands = []
    for name, text in readme_command_texts():
        starts = list(COMMAND_START.finditer(text))
        for i, start in enumerate(starts):
            end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
            tokens = text[start.end():end].replace("[", " ").replace("]", " ").replace("|", " ").split()
            commands.append((name, start.group(1), tokens))
            if start.group(1) in NOT_OURS:
                break  # the rest is that tool's own options: pytest's `-m slow` selects a marker, not a module
    return commands


class _ParserCaptured(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        super().__init__()
        self.parser = parser


def module_parser(module: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """The parser ``python -m module`` builds, captured at its ``parse_args`` call (nothing runs after it)."""
    if module == "experiments":
        return build_parser()
    if module == "tools":  # each tool parses its own options: one subcommand parser per tool
        parser = argparse.ArgumentParser(prog="python -m tools")
        sub = parser.add_subparsers()
        for name in TOOLS:
            sub.choices[name] = tool_parser(name, monkeypatch)
        return parser

    def capture(self, *args, **kwargs):
        raise _ParserCaptured(self)

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", capture)
        patch.setattr(argparse.ArgumentParser, "parse_known_args", capture)
        patch.setattr(sys, "argv", [module, "--help"])
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=False)
        except _ParserCaptured as captured:
            return captured.parser
    raise AssertionError(f"python -m {module} built no argparse parser")


def tool_parser(name: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """The parser ``python -m tools NAME`` builds, captured at its ``parse_args`` call."""
    def capture(self, *args, **kwargs):
        raise _ParserCaptured(self)

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", capture)
        patch.setattr(argparse.ArgumentParser, "parse_known_args", capture)
        try:
            importlib.import_module(TOOLS[name].module).main(["--help"])
        except _ParserCaptured as captured:
            return captured.parser
    raise AssertionError(f"python -m tools {name} built no argparse parser")


def subcommand_parser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices.get(name)
    return None


def accepted_options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


def option_names(tokens: list[str]) -> set[str]:
    return {token.split("=", 1)[0] for token in tokens if re.fullmatch(r"--[a-z][\w-]*(=\S*)?", token)}


def test_every_option_the_readmes_pass_to_a_command_is_one_its_parser_accepts(monkeypatch):
    parsers: dict[str, argparse.ArgumentParser] = {}
    unknown = []
    checked = 0
    for readme, module, tokens in readme_commands():
        if module in NOT_OURS:
            continue
        if module not in parsers:
            parsers[module] = module_parser(module, monkeypatch)
        parser, options = parsers[module], option_names(tokens)
        if module == "tools" and tokens[:1] in ([], ["<command>"]):  # the list of tools, or any one of them
            continue
        if any(isinstance(action, argparse._SubParsersAction) for action in parser._actions):
            sub = subcommand_parser(parser, tokens[0]) if tokens else None
            assert sub is not None, f"{readme}: python -m {module} {' '.join(tokens)}: no such subcommand"
            parser = sub
        missing = options - accepted_options(parser)
        checked += len(options)
        unknown += [f"{readme}: python -m {module} {' '.join(tokens[:2])}: {option}" for option in sorted(missing)]
    assert checked > 50, checked  # the READMEs pass dozens of options; finding few means the parsing broke
    assert not unknown, unknown


def all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    subs = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return [parser] + [nested for sub in subs for choice in sub.choices.values() for nested in all_parsers(choice)]


def test_every_option_the_readmes_name_in_prose_is_one_a_command_accepts(monkeypatch):
    """Options written alone in backticks (e.g. "`run` also takes ... `--num-nodes`"): each is accepted by the parser
    of some ``python -m`` command of the READMEs. Left out: tensorboard's ``--logdir``, SLURM's ``--cpus-per-task`` and
    the official scripts' options (snake_case, e.g. ``--mixup_prob``), which the README quotes from other code."""
    accepted = set()
    for module in {module for _, module, _ in readme_commands()} - NOT_OURS:
        for parser in all_parsers(module_parser(module, monkeypatch)):
            accepted |= accepted_options(parser)
    named = set()
    for readme in READMES:
        prose = re.sub(r"```.*?```", "", readme.read_text(), flags=re.S)
        for span in re.findall(r"`([^`]+)`", prose):
            span = " ".join(span.split())
            if not COMMAND_START.search(span) and not span.startswith("tensorboard"):
                named |= set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*(?![\w])", span))
    named -= {"--logdir", "--cpus-per-task"}  # tensorboard's and SLURM's
    assert len(named) > 20, sorted(named)
    assert not named - accepted, sorted(named - accepted)


def test_every_table_id_and_row_key_in_a_readme_command_is_registered():
    registered = set(registered_specs())
    problems = []
    for readme, module, tokens in readme_commands():
        takes_a_table = {"experiments": {"run", "show", "static"}, "tools": {"bench", "smoke", "loader-rate"}}
        if module not in takes_a_table or len(tokens) < 2 or tokens[0] not in takes_a_table[module]:
            continue
        table = tokens[1]
        if table in PLACEHOLDER_TABLE_IDS:
            continue
        if table not in registered:
            problems.append(f"{readme}: {module} {tokens[0]} {table}: no such table")
            continue
        if "--rows" in tokens:
            keys = {row.key for row in table_spec(table).rows}
            after = tokens[tokens.index("--rows") + 1:]
            named = [t for t in after[:next((i for i, t in enumerate(after) if t.startswith("--")), len(after))]
                     if t != "..." and not t.isupper()]
            problems += [f"{readme}: {table} --rows {key}: no such row" for key in named if key not in keys]
    assert not problems, problems


def named_repository_paths() -> list[tuple[str, int, str, str | None]]:
    """(README path, line, path, test node or None) for each repository path written in backticks (paths are
    relative to the repository's root in every README)."""
    pattern = re.compile(r"(?<![\w/.<-])((?:reports|experiments|tests|models|data|lightning_modules|tools|docs)/"
                         r"[\w./-]*\w)"
                         r"(?:::(\w+))?")
    found = []
    for readme in READMES:
        for number, line in enumerate(readme.read_text().splitlines(), 1):
            for span in re.findall(r"`([^`]+)`", line):
                for match in pattern.finditer(span):
                    if not NOT_TRACKED_PATH.match(match.group(1)):
                        found.append((_name(readme), number, match.group(1), match.group(2)))
    return found


def test_every_repository_path_and_test_node_the_readmes_name_exists():
    paths = named_repository_paths()
    assert len(paths) > 40, len(paths)
    missing = []
    for readme, number, path, node in paths:
        target = REPO / path
        if not target.exists():
            missing.append(f"{readme}:{number}: {path}")
        elif node and not re.search(rf"^def {node}\(", target.read_text(), flags=re.M):
            missing.append(f"{readme}:{number}: {path}::{node}")
    assert not missing, missing


def test_every_relative_link_in_the_readmes_resolves():
    """Every markdown link that is not a URL: its path, relative to the page, exists, and its anchor, if any, is a
    heading of the page it points to."""
    broken = []
    checked = 0
    for readme in READMES:
        # code blocks blanked, their lines kept, so that a link's line number is the file's
        text = re.sub(r"```.*?```", lambda block: "\n" * block.group(0).count("\n"), readme.read_text(), flags=re.S)
        for number, line in enumerate(text.splitlines(), 1):
            for link in re.findall(r"\]\(([^)\s]+)\)", line):
                if re.match(r"[a-z][a-z0-9+.-]*:", link):  # https:, mailto:
                    continue
                path, _, anchor = link.partition("#")
                target = (readme.parent / path).resolve() if path else readme
                checked += 1
                if not target.exists():
                    broken.append(f"{_name(readme)}:{number}: {link}")
                elif anchor and target.suffix == ".md" and anchor not in heading_anchors(target):
                    broken.append(f"{_name(readme)}:{number}: {link} (no such heading)")
    assert checked > 50, checked  # the READMEs link each other and the reports; finding few means the parsing broke
    assert not broken, broken


def test_the_readmes_include_every_papers_page_and_each_floors():
    """Each paper's folder under experiments/ has its README, and the tests above read it."""
    expected = {REPO / "experiments" / code / "README.md" for code in papers()}
    expected |= {REPO / floor / "README.md" for floor in ("data", "models", "experiments", "reports", "tools")}
    assert expected <= set(READMES), sorted(map(str, expected - set(READMES)))


def test_the_readme_links_the_results_as_data_and_states_no_figure_of_the_reruns():
    """The results index and the reruns' page are linked from the README; the reproducibility section says where
    the figures are, and states none itself (a decimal, a percentage or "N of M" cells): they are the records',
    read from the index and the page."""
    from reports.readme import page_link
    from reports.results_index import INDEX, REPRODUCIBILITY_PAGE

    text = (REPO / "README.md").read_text()
    assert f"]({INDEX.relative_to(REPO).as_posix()})" in text
    assert page_link(REPRODUCIBILITY_PAGE) in text
    section = text.split("\n## Reproducibility\n", 1)[1].split("\n## ", 1)[0]
    figures = re.findall(r"\d+\.\d+|\d+\s?%|\b\d+ of (?:the )?\d+\b", section)
    assert not figures, f"README.md's reproducibility section states figures {figures}: link the generated page"
