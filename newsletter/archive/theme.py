"""The archive theme: the built-in theme folder (`templates/archive/`) and its static files.

Templates are found through the one environment factory (`render.environment`): the user's
folder (`[archive] templates_dir`) first, then the built-in theme, also reachable as
`default/…` so an override can extend the template it replaces::

    {% extends "default/summary.html" %}
    {% block implications %}{{ super() }}<p>Discuss at the case conference.</p>{% endblock %}

Static files (CSS, JS) live in `static/` inside either folder; the override's win. The look
shared with the web app (`templates/shared/`: the header partial, `look.css`, the favicon) comes
first: `{% include "shared/_header.html" %}`, and its static files sit beside the theme's.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from newsletter.render.environment import default_templates_dir
from newsletter.render.environment import make_environment


def builtin_theme_dir() -> Path:
    """The theme shipped with the package: `templates/archive/`."""
    return default_templates_dir() / "archive"


def shared_dir() -> Path:
    """The parts the archive shares with the web app's pages: `templates/shared/`."""
    return default_templates_dir() / "shared"


def theme_environment(override: Path | None = None) -> jinja2.Environment:
    """The environment the archive pages are rendered with; `shared/…` names the shared
    partials (an override folder may replace them too: `theme/shared/_header.html`)."""
    env = make_environment(override, builtin_theme_dir())
    shared = jinja2.PrefixLoader({"shared": jinja2.FileSystemLoader(str(shared_dir()))})
    env.loader = jinja2.ChoiceLoader([env.loader, shared]) if env.loader else shared
    return env


def theme_dirs(override: Path | None) -> list[Path]:
    """The theme folders in lookup order (override first)."""
    dirs = [builtin_theme_dir()]
    if override is not None:
        dirs.insert(0, Path(override))
    return dirs


def static_files(override: Path | None) -> dict[str, Path]:
    """Relative path under `static/` -> source file, override winning over the built-in theme."""
    found: dict[str, Path] = {}
    for folder in [shared_dir(), *reversed(theme_dirs(override))]:
        root = folder / "static"
        if root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file():
                    found[path.relative_to(root).as_posix()] = path
    return found
