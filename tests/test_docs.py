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
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # the root group imports its commands on demand
        command = group.get_command(ctx, name)
        assert command is not None, name
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


def readme_key_rows() -> list[tuple[str, str, str]]:
    """(section, key, default cell) for each key of the README's configuration table."""
    table = README[README.index("| key | default | meaning |") :].split("\n\n", 1)[0]
    rows, section = [], ""
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip()[1:-1])]
        named = re.match(r"`\[+(\w+)\]+ ?", cells[0])
        if named:
            section = named.group(1)
        keys = re.findall(r"`(?:\[+\w+\]+ ?)?([\w.]+)`", cells[0])
        parts = [part.strip() for part in cells[1].split(", ")]
        if len(parts) != len(keys):
            parts = [cells[1]] * len(keys)
        rows += [(section, key, part) for key, part in zip(keys, parts, strict=True)]
    return rows


def shown_default(value: object) -> str | None:
    """How the table shows a scalar default (None: not a scalar the table can show)."""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"{value:g}"
    if isinstance(value, str) and value:
        return f"`{value}`"
    if value is not None and type(value).__name__.endswith("Path"):
        return f"`{value}`"
    return None


@pytest.mark.parametrize(("section", "key", "cell"), readme_key_rows())
def test_readme_key_table_shows_the_real_defaults(section: str, key: str, cell: str) -> None:
    model = Settings.model_fields[section].annotation
    fields = getattr(model, "model_fields", {})
    if key not in fields:  # a sub-table such as [[smtp_servers]] or "[archive] …"
        return
    default = fields[key].default
    shown = shown_default(default)
    if shown is not None:
        assert cell.startswith(shown), f"[{section}] {key}: default {shown}, README: {cell!r}"
    elif default == "":
        # Empty: the cell is empty, or says in words what is used instead (never a literal).
        assert cell in ("", '`""`') or "`" not in cell, f"[{section}] {key}: README: {cell!r}"
