"""The one Jinja2 environment factory, shared by the email templates and the archive theme."""

from __future__ import annotations

from pathlib import Path

import jinja2

from newsletter.paths import data_path
from newsletter.render.text import markdown_to_text
from newsletter.render.text import wrap_text


def default_templates_dir() -> Path:
    """The built-in templates folder."""
    return data_path("templates")


def make_environment(override_dir: Path | None, *, html: bool = True) -> jinja2.Environment:
    """A Jinja2 environment: the override folder first, then the built-ins.

    Built-ins are also reachable as "default/<name>", so an override can extend the original.
    """
    defaults = jinja2.FileSystemLoader(str(default_templates_dir()))
    loaders: list[jinja2.BaseLoader] = []
    if override_dir is not None and Path(override_dir).is_dir():
        loaders.append(jinja2.FileSystemLoader(str(override_dir)))
    loaders += [jinja2.PrefixLoader({"default": defaults}), defaults]
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "mjml", "mjml.j2", "html.j2"),
            disabled_extensions=("txt", "txt.j2"),
            default_for_string=html,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap_text
    env.filters["textblock"] = markdown_to_text
    return env
