"""The archive theme: the built-in theme folder (`templates/archive/`) and its static files.

Templates are found through the one environment factory (`render.environment`): the user's
folder (`[archive] templates_dir`) first, then the built-in theme, also reachable as
`default/…` so an override can extend the template it replaces::

    {% extends "default/summary.html" %}
    {% block implications %}{{ super() }}<p>Discuss at the case conference.</p>{% endblock %}

Static files (CSS, JS) live in `static/` inside either folder; the override's win.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from newsletter.render.environment import default_templates_dir
from newsletter.render.environment import make_environment


def builtin_theme_dir() -> Path:
    """The theme shipped with the package: `templates/archive/`."""
    return default_templates_dir() / "archive"


def theme_environment(override: Path | None = None) -> jinja2.Environment:
    """The environment the archive pages are rendered with."""
    return make_environment(override, builtin_theme_dir())


def theme_dirs(override: Path | None) -> list[Path]:
    """The theme folders in lookup order (override first)."""
    dirs = [builtin_theme_dir()]
    if override is not None:
        dirs.insert(0, Path(override))
    return dirs


def static_files(override: Path | None) -> dict[str, Path]:
    """Relative path under `static/` -> source file, override winning over the built-in theme."""
    found: dict[str, Path] = {}
    for folder in reversed(theme_dirs(override)):
        root = folder / "static"
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    found[path.relative_to(root).as_posix()] = path
    return found
