"""tests/outside_tools.py: a missing outside tool skips by hand and fails under CI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from outside_tools import in_ci
from outside_tools import require_module
from outside_tools import update_golden

pytest_plugins = ["pytester"]

TESTS = Path(__file__).parent

NEEDS_TOOLS = """
from outside_tools import require_module
from outside_tools import require_tool

def test_tool_there():
    require_tool("/usr/bin/thing", "needs the thing")

def test_tool_missing():
    require_tool(None, "needs the frobnicator")

def test_module_missing():
    require_module("no_such_module_for_tests", "needs no_such_module_for_tests")
"""

NEEDS_A_MODULE = """
from outside_tools import require_module

missing = require_module("no_such_module_for_tests", "needs no_such_module_for_tests")

def test_never_runs():
    pass
"""


@pytest.fixture
def outside(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A pytester run that imports outside_tools, as the real tests do."""
    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.delenv("CI", raising=False)
    return pytester


def test_a_missing_tool_skips_by_hand(outside: pytest.Pytester) -> None:
    outside.makepyfile(test_tools=NEEDS_TOOLS)
    result = outside.runpytest("-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*needs the frobnicator*", "*needs no_such_module_for_tests*"])


def test_a_missing_tool_fails_under_ci(outside: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    outside.makepyfile(test_tools=NEEDS_TOOLS)
    result = outside.runpytest()
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        ["*needs the frobnicator (under CI a missing outside tool is a failure)*"]
    )


def test_a_missing_module_skips_the_module_by_hand(outside: pytest.Pytester) -> None:
    outside.makepyfile(test_module=NEEDS_A_MODULE)
    outside.runpytest().assert_outcomes(skipped=1)


def test_a_missing_module_is_a_collection_error_under_ci(outside: pytest.Pytester, monkeypatch):
    monkeypatch.setenv("CI", "true")
    outside.makepyfile(test_module=NEEDS_A_MODULE)
    result = outside.runpytest()
    result.assert_outcomes(errors=1)
    assert result.ret != 0


def test_a_present_module_is_returned() -> None:
    assert require_module("json", "needs json").dumps([]) == "[]"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        ("", False),
        ("0", False),
        ("false", False),
        ("No", False),
        ("true", True),
        ("1", True),
        ("yes", True),
        ("TRUE", True),
    ],
)
def test_what_counts_as_ci(monkeypatch, value, expected) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    assert in_ci() is expected


def test_golden_files_are_never_regenerated_under_ci(monkeypatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("UPDATE_GOLDEN", raising=False)
    assert update_golden() is False
    monkeypatch.setenv("UPDATE_GOLDEN", "1")
    assert update_golden() is True
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="UPDATE_GOLDEN is set under CI"):
        update_golden()
    monkeypatch.delenv("UPDATE_GOLDEN")
    assert update_golden() is False


_SKIPS = re.compile(r"pytest\.skip\(|importorskip|skipif|mark\.skip\b")
# Skips that are no missing tool: UPDATE_GOLDEN regenerated the tree (refused under CI).
_ALLOWED = {("test_archive.py", "golden tree regenerated")}


def test_tests_skip_only_through_outside_tools() -> None:
    """Every skip for a missing tool goes through outside_tools, so CI fails instead."""
    found = []
    for path in sorted(TESTS.glob("*.py")):
        if path.name in ("outside_tools.py", Path(__file__).name):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if _SKIPS.search(line) and not any(
                path.name == name and text in line for name, text in _ALLOWED
            ):
                found.append(f"{path.name}:{number}: {line.strip()}")
    assert found == [], "use outside_tools.require_tool / require_module instead"
