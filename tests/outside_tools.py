"""Tests that need an outside tool skip without it by hand, and fail under CI.

By hand a missing Chromium, Java, npm, PostgreSQL… skips the test and says why. CI (`CI=true`,
set by the CI runner) installs all of them, so there a missing tool is a broken build, not a
skip: a green run must have run every test. Use these instead of `pytest.skip`, `skipif` and
`pytest.importorskip` (tests/test_outside_tools.py checks that nothing else skips).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

_OFF = {"", "0", "false", "no", "off"}


def in_ci() -> bool:
    """Whether the tests run under CI (`CI` set to anything but empty/0/false/no/off)."""
    return os.environ.get("CI", "").strip().lower() not in _OFF


def require_tool(available: object, reason: str) -> None:
    """Skip the calling test, fixture or module unless `available`; under CI, fail instead.

    Called at module level, a skip skips the whole module and a failure is a collection error.
    """
    __tracebackhide__ = True  # reports name the caller's line, not this one
    if available:
        return
    if in_ci():
        pytest.fail(f"{reason} (under CI a missing outside tool is a failure)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_module(name: str, reason: str) -> ModuleType:
    """`pytest.importorskip(name)` that fails under CI: the imported module."""
    __tracebackhide__ = True  # reports name the caller's line, not this one
    try:
        return importlib.import_module(name)
    except ImportError as error:
        require_tool(False, f"{reason} ({error})")
        raise  # not reached: require_tool skipped or failed


def update_golden() -> bool:
    """Whether UPDATE_GOLDEN asks a golden test to rewrite its expected files.

    Refused under CI: a golden test that rewrites its expected output passes whatever the
    output is, so there it fails instead.
    """
    __tracebackhide__ = True  # reports name the caller's line, not this one
    if not os.environ.get("UPDATE_GOLDEN"):
        return False
    if in_ci():
        pytest.fail("UPDATE_GOLDEN is set under CI: regenerate golden files by hand", pytrace=False)
    return True
