"""Start-up: how long `newsletter --help` and `newsletter issues list` take, process to exit.

    python bench/startup.py [--runs 11] [--vs /path/to/other/checkout/.venv/bin/newsletter]

Runs each command `--runs` times in a fresh process (after one warm-up run that fills the
bytecode cache) against a temp project with the repo's content and a migrated SQLite database,
and prints the median wall time and the median CPU time (user + system, the kernel's figure for
the finished child, which a busy machine moves less). With `--vs`, the other executable (for
example main's checkout) runs in turn with ours, A B A B ..., and the ratios are printed too.
Target: each command ≤ 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OURS = Path(sys.executable).parent / "newsletter"
COMMANDS = (["--help"], ["issues", "list"])
# As a user's shell runs it: Python keeps the bytecode of what it imports (a build or CI
# environment may say PYTHONDONTWRITEBYTECODE, which would compile every module on every run).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"COLUMNS": "100"}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(executable: Path, args: list[str], folder: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `executable args` in `folder`."""
    cpu = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(
        [str(executable), "--config", "config.toml", *args],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=ENV,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{executable} {' '.join(args)} failed: {done.stderr.decode()[-500:]}")
    return wall, _children_cpu() - cpu


def project(folder: Path, executable: Path) -> None:
    """A project with the repo's content and config and a migrated database."""
    folder.mkdir()
    shutil.copytree(REPO / "content", folder / "content")
    shutil.copytree(REPO / "templates", folder / "templates")
    shutil.copy(REPO / "config.toml", folder / "config.toml")
    subprocess.run(
        [str(executable), "--config", "config.toml", "db", "upgrade"],
        cwd=folder,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--vs", type=Path, help="another `newsletter` executable to compare")
    options = parser.parse_args()
    contenders = {"ours": OURS} | ({"vs": options.vs} if options.vs else {})
    with tempfile.TemporaryDirectory() as tmp:
        # A project for each: each executable migrates its own database to its own head.
        folders = {name: Path(tmp) / name for name in contenders}
        for name, executable in contenders.items():
            project(folders[name], executable)
        for args in COMMANDS:
            times: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
            for name, executable in contenders.items():
                run_once(executable, args, folders[name])  # warm-up: bytecode, page cache
            for _ in range(options.runs):
                for name, executable in contenders.items():
                    times[name].append(run_once(executable, args, folders[name]))
            line = f"newsletter {' '.join(args):<12}"
            for name, samples in times.items():
                wall = statistics.median(w for w, _ in samples)
                cpu = statistics.median(c for _, c in samples)
                line += f"  {name}: wall {wall:.3f} s, cpu {cpu:.3f} s"
            if "vs" in times:
                ratios = [a[1] / b[1] for a, b in zip(times["ours"], times["vs"], strict=True)]
                line += f"  cpu ours/vs {statistics.median(ratios):.2f}"
            print(line + "   (target ≤ 0.3 s)", flush=True)


if __name__ == "__main__":
    main()
