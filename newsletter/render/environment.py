"""The one Jinja2 environment factory, shared by the email and web templates and the archive theme.

Lookup order for a template name: the user's override folder, then the built-in folder. The
built-ins are also reachable under the prefix `default/`, so an override can extend the template
it replaces: `{% extends "default/email/digest.txt.j2" %}` (email, web) or
`{% extends "default/summary.html" %}` (archive theme, whose built-in folder is
`templates/archive/`).
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from newsletter.paths import data_path
from newsletter.render.text import hanging
from newsletter.render.text import markdown_to_text
from newsletter.render.text import url_line
from newsletter.render.text import wrap_text

PREFIX = "default"


def default_templates_dir() -> Path:
    """The built-in templates folder (`templates/`: email/, web/, archive/)."""
    return data_path("templates")


def plural(count: int, singular: str, many: str | None = None) -> str:
    """'1 summary', '3 summaries'."""
    word = singular if count == 1 else (many or singular + "s")
    return f"{count} {word}"


def make_environment(
    override_dir: Path | None, builtin_dir: Path | None = None
) -> jinja2.Environment:
    """A Jinja2 environment over `override_dir` (if it exists) and the built-in folder.

    Autoescaping is on for HTML, XML and MJML templates and off for text templates; undefined
    variables are errors, so a typo in an override fails the render instead of mailing a gap.
    """
    builtin = jinja2.FileSystemLoader(str(builtin_dir or default_templates_dir()))
    loaders: list[jinja2.BaseLoader] = []
    if override_dir is not None and Path(override_dir).is_dir():
        loaders.append(jinja2.FileSystemLoader(str(override_dir)))
    loaders += [jinja2.PrefixLoader({PREFIX: builtin}), builtin]
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "xml", "mjml", "mjml.j2", "html.j2"),
            disabled_extensions=("txt", "txt.j2"),
            default_for_string=True,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap_text
    env.filters["hang"] = hanging
    env.filters["url_line"] = url_line
    env.filters["textblock"] = markdown_to_text
    env.filters["plural"] = plural
    return env


def where_it_failed(error: jinja2.TemplateError) -> str:
    """'file:line: ' for a template syntax error, '' for errors that carry no location."""
    if isinstance(error, jinja2.TemplateSyntaxError):
        return f"{error.filename or error.name}:{error.lineno}: "
    return ""
