"""The benchmarks still run against the current code (tiny sizes; no figure is checked)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.parametrize(
    "command",
    [
        ["send_throughput.py", "--subscribers", "40", "--connections", "2"],
        ["memory.py", "--subscribers", "40", "--connections", "2"],
        ["startup.py", "--runs", "1"],
    ],
)
def test_benchmark_runs(command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / command[0]), *command[1:]],
        cwd=REPO / "bench",
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()
