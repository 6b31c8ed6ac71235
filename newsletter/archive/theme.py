"""The archive theme: a Jinja2 environment over the override folder and the built-in theme.

Lookup order for a template name: the user's folder (`[archive] templates_dir`), then the
built-in theme (`templates/archive/`). The built-in theme is also reachable under the prefix
`default:`, so an override can extend the template it replaces::

    {% extends "default:summary.html" %}
    {% block implications %}{{ super() }}<p>Discuss at the case conference.</p>{% endblock %}

Static files (CSS, JS) live in `static/` inside either folder; the override's win.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from newsletter.paths import data_path

PREFIX = "default"


def builtin_theme_dir() -> Path:
    """The theme shipped with the package: `templates/archive/`."""
    return data_path("templates") / "archive"


def theme_dirs(override: Path | None) -> list[Path]:
    """The theme folders in lookup order (override first)."""
    dirs = [builtin_theme_dir()]
    if override is not None:
        dirs.insert(0, Path(override))
    return dirs


def make_environment(override: Path | None = None) -> jinja2.Environment:
    """A Jinja2 environment with autoescaping and strict undefined variables."""
    builtin = jinja2.FileSystemLoader(str(builtin_theme_dir()))
    loaders: list[jinja2.BaseLoader] = []
    if override is not None:
        loaders.append(jinja2.FileSystemLoader(str(override)))
    loaders.append(jinja2.PrefixLoader({PREFIX: builtin}, delimiter=":"))
    loaders.append(builtin)
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(["html", "xml"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["plural"] = plural
    return env


def plural(count: int, singular: str, many: str | None = None) -> str:
    """'1 summary', '3 summaries'."""
    word = singular if count == 1 else (many or singular + "s")
    return f"{count} {word}"


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
