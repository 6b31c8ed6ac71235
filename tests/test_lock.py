"""requirements/constraints.txt, written by `make lock`, keeps up with pyproject.toml."""

from __future__ import annotations

import re
import tomllib

import pytest
from conftest import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

LOCKED_EXTRAS = ("test", "postgres")  # what `make lock` resolves besides the runtime deps
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)\s*$")


def _pins() -> dict[str, Version]:
    text = (REPO / "requirements" / "constraints.txt").read_text(encoding="utf-8")
    pins = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            match = _PIN.match(line)
            assert match, f"not a plain pin in constraints.txt: {line!r}"
            pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    lines = project["dependencies"] + [line for name in LOCKED_EXTRAS for line in extras[name]]
    return [Requirement(line) for line in lines]


PINS = _pins()


@pytest.mark.parametrize("requirement", _requirements(), ids=str)
def test_every_dependency_is_locked_within_its_range(requirement: Requirement) -> None:
    name = canonicalize_name(requirement.name)
    assert name in PINS, f"{name} is not in requirements/constraints.txt: run `make lock`"
    assert requirement.specifier.contains(PINS[name], prereleases=True), (
        f"{name}=={PINS[name]} in requirements/constraints.txt is outside {requirement}: "
        "run `make lock`"
    )
