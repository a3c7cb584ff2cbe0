"""The release command's arguments: strict values, one-line errors, exit status 2.

``int()`` takes ``1_0``, `` 10`` and any Unicode digit; Python's ``$`` matches before a trailing
newline. Every case below was accepted once.
"""

from __future__ import annotations

import argparse

import pytest

from release.cli import main, percentage, stack_name


@pytest.mark.parametrize(("value", "number"), [("0", 0), ("10", 10), ("100", 100), ("50%", 50)])
def test_plain_ascii_percentages_are_accepted(value, number):
    assert percentage(value) == number


@pytest.mark.parametrize(
    "value",
    ["1_0", "\u0661\u0660", "100%%", " 10", "10 ", "10\n", "101", "010", "-0", "+10", "1e1", ""],
)
def test_percentages_that_are_not_plain_ascii_digits_are_refused(value):
    with pytest.raises(argparse.ArgumentTypeError, match="whole percentage from 0 to 100"):
        percentage(value)


@pytest.mark.parametrize("value", ["prod", "org/prod", "org/golden-fleet/prod", "a" * 100])
def test_stack_names_pulumi_accepts_are_accepted(value):
    assert stack_name(value) == value


@pytest.mark.parametrize(
    "value", ["prod\n", "a" * 101, "a/b/c/d", "pr od", "\uff50rod", "prod/", "", "x" * 300]
)
def test_stack_names_pulumi_refuses_are_refused(value):
    with pytest.raises(argparse.ArgumentTypeError, match="is not a stack name"):
        stack_name(value)


@pytest.mark.parametrize(
    "argv",
    [
        ["shift", "prod", "150"],
        ["shift", "prod", "1_0"],
        ["shift", "x" * 300, "10"],
        ["shift"],
        ["bogus", "prod"],
        ["deploy", "prod"],
    ],
)
def test_argument_errors_are_one_line_and_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("python -m release"), err
    assert "Traceback" not in err and "usage:" not in err
