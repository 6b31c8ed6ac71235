"""The benchmarks still run against the current code (tiny sizes; no figure is checked)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import REPO
from outside_tools import require_tool

POSTFIX = "/usr/sbin:/usr/lib/postfix/sbin"


@pytest.mark.parametrize(
    "command",
    [
        ["send_throughput.py", "--subscribers", "40", "--connections", "2"],
        ["memory.py", "--subscribers", "40", "--connections", "2"],
        ["startup.py", "--runs", "1"],
    ],
)
def test_benchmark_runs(command: list[str]) -> None:
    run(command)


def test_send_limit_benchmarks_run(postgres_url: str) -> None:
    # bench/limit.py, durability.py and workers.py use Postfix's smtp-sink and smtp-source.
    found = all(shutil.which(tool, path=POSTFIX) for tool in ("smtp-sink", "smtp-source"))
    require_tool(found, "Postfix's smtp-sink and smtp-source (apt-get install postfix)")
    limit = run(["limit.py", "--subscribers", "60", "--processes", "2", "--compare-pipelining"])
    assert "ours / smtp-source:" in limit
    assert "ours with / without PIPELINING:" in limit
    assert "ratio:" in run(["durability.py", "--subscribers", "60", "--rounds", "1"])
    workers = ["workers.py", "--subscribers", "60", "--rounds", "1", "--database-url"]
    assert "ratio:" in run([*workers, postgres_url])


def run(command: list[str]) -> str:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / command[0]), *command[1:]],
        cwd=REPO / "bench",
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()
    return done.stdout
