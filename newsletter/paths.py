"""Where the package's data lives: templates and migrations, in a source checkout or an installed
wheel.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def data_path(name: str) -> Path:
    """A folder shipped with the project: the repo's top-level one, or the wheel's copy."""
    for candidate in (PACKAGE_DIR.parent / name, PACKAGE_DIR / "_data" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"cannot find the {name}/ folder next to the package")
