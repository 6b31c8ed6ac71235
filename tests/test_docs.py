"""The README keeps up with the code: every command and every configuration key is documented."""

from __future__ import annotations

import re

import click
import pytest
from conftest import REPO

from newsletter.cli import main
from newsletter.config import Settings

README = (REPO / "README.md").read_text(encoding="utf-8")
DOCS = README + "".join(p.read_text(encoding="utf-8") for p in (REPO / "docs").glob("*.md"))


def command_paths(group: click.Group, prefix: str = "newsletter") -> list[str]:
    paths = []
    for name, command in group.commands.items():
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            paths += command_paths(command, path)
        else:
            paths.append(path)
    return paths


@pytest.mark.parametrize("path", command_paths(main))
def test_every_command_is_documented(path: str) -> None:
    assert f"`{path}" in DOCS, f"{path} is not in README.md or docs/"


def setting_keys() -> list[str]:
    keys = []
    for section, field in Settings.model_fields.items():
        annotation = field.annotation
        fields = getattr(annotation, "model_fields", None)
        if fields is None:  # [[lists]]: a list of sections
            keys.append(section)
            continue
        keys += [f"{section}.{key}" for key in fields]
    return keys


@pytest.mark.parametrize("key", setting_keys())
def test_every_setting_is_documented(key: str) -> None:
    section, _, name = key.partition(".")
    text = DOCS
    assert f"[{section}]" in text or f"[[{section}]]" in text, f"section [{section}] undocumented"
    if name:
        assert re.search(rf"`{re.escape(name)}`|\[{section}\] {re.escape(name)}\b", text), (
            f"{key} is not documented in README.md or docs/"
        )


def package_parts() -> list[str]:
    package = REPO / "newsletter"
    parts = [p.name + "/" for p in package.iterdir() if (p / "__init__.py").exists()]
    parts += [p.name for p in package.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    return sorted(parts)


@pytest.mark.parametrize("part", package_parts())
def test_every_package_is_in_the_readme_layout(part: str) -> None:
    layout = README[README.index("## Layout") :]
    name = part.removesuffix(".py")
    assert f"`newsletter/{part}`" in layout or f"`{name}.py`" in layout, part
    assert f"`newsletter.{name.rstrip('/')}" in DOCS or f"`{name.rstrip('/')}`" in DOCS
