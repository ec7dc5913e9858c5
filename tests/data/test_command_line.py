"""The types every option is read by (``data/command_line.py``), on their own: each refuses what is no value of its
kind in argparse's one line, and ``OneLineParser`` holds every value, typed or not, to what any option takes."""

from __future__ import annotations

import argparse

import pytest

from data.command_line import (
    MAX_JSON_DEPTH,
    MAX_OPTION_CHARS,
    OneLineParser,
    count,
    count_or,
    counts,
    is_checked_type,
    number,
    path,
    setting,
    word,
)


def parse(value_type, value: str, capsys):
    parser = OneLineParser(prog="probe")
    parser.add_argument("--option", type=value_type)
    try:
        return parser.parse_args([f"--option={value}"]).option
    except SystemExit as stop:
        err = capsys.readouterr().err
        assert stop.code == 2 and err.count("\n") == 1 and err.startswith("error: argument --option: "), err
        return SystemExit


@pytest.mark.parametrize("value", ["١٢", "1_000", "nan", "inf", "1e999", "٣.٥", "0x10", "", "9" * 5001])
def test_a_number_is_ascii_and_finite(value, capsys):
    assert parse(number(0, 10_000), value, capsys) is SystemExit


@pytest.mark.parametrize("value, expected", [("12", 12.0), ("1.5", 1.5), (".5", 0.5), ("1e3", 1000.0),
                                             ("+2", 2.0)])
def test_a_number_in_ascii_is_read(value, expected, capsys):
    assert parse(number(0, 10_000), value, capsys) == expected


@pytest.mark.parametrize("value", ["١٢", "1_000", "1.5", "nan", "0", "-1"])
def test_a_count_or_auto_takes_the_word_or_a_count(value, capsys):
    jobs = count_or(("auto",), 1, 64, "a job count")
    assert parse(jobs, value, capsys) is SystemExit
    assert parse(jobs, "auto", capsys) == "auto" and parse(jobs, "3", capsys) == 3


@pytest.mark.parametrize("value", ["1,2", "1,2,3,4", "١,2,3", "1,2,-3", "1,2,1_0", "a,b,c", ""])
def test_parts_are_each_a_count(value, capsys):
    assert parse(counts("TYX", 0, 100), value, capsys) is SystemExit
    assert parse(counts("TYX", 0, 100), "1,2,3", capsys) == (1, 2, 3)


def test_a_setting_is_bounded_in_depth_before_it_is_parsed(capsys):
    """``--set "data.options=[[[...2,000 deep...]]]"`` ended in a RecursionError's traceback."""
    assert parse(setting(), "data.options=" + "[" * 2000 + "]" * 2000, capsys) is SystemExit
    deep_enough = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert parse(setting(), f"data.options={deep_enough}", capsys)[0] == "data.options"
    assert parse(setting(), 'a.b="[[[["', capsys) == ("a.b", "[[[[")  # brackets in a string are no nesting
    assert parse(setting(), "a.b=" + "9" * 5001, capsys) is SystemExit
    assert parse(setting(), "a.b=text", capsys) == ("a.b", "text")


def test_a_value_too_long_or_holding_a_nul_is_refused_whatever_its_type(capsys):
    assert parse(None, "x" * (MAX_OPTION_CHARS + 1), capsys) is SystemExit
    assert parse(None, "a\0b", capsys) is SystemExit
    assert parse(None, "x" * MAX_OPTION_CHARS, capsys) == "x" * MAX_OPTION_CHARS


def test_what_a_type_raises_besides_is_the_options_one_line(capsys):
    def recurses(value):
        raise RecursionError("maximum recursion depth exceeded")

    assert parse(recurses, "x", capsys) is SystemExit


@pytest.mark.parametrize("value", ["", "a b", "a\nb", "a\x1bb"])
def test_a_word_is_one_printable_word(value, capsys):
    assert parse(word("a partition"), value, capsys) is SystemExit


def test_a_path_is_a_name_the_system_can_take(capsys):
    assert parse(path(), "", capsys) is SystemExit
    assert parse(path(), "a" * 5000, capsys) is SystemExit
    assert str(parse(path(), "runs/x", capsys)) == "runs/x"


def test_the_types_made_here_are_known_as_such():
    assert all(is_checked_type(t) for t in (None, count(), number(), count_or(("auto",)), counts("ab"), setting(),
                                            word(), path()))
    assert not any(is_checked_type(t) for t in (int, float, str, lambda v: v, argparse.FileType("r")))
