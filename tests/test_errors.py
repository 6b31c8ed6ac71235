"""The one exception tree: every error the package raises on purpose lives in errors.py."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from newsletter import errors
from newsletter.content.reader import load_issue
from newsletter.errors import NewsletterError
from newsletter.errors import NoMatchingVariant
from newsletter.errors import SendError
from newsletter.message.preview import preview_parts
from newsletter.personalize import make_recipient

PACKAGE = Path(errors.__file__).parent


def test_every_error_class_of_the_package_is_in_errors_py() -> None:
    """An exception class anywhere else splits the tree (private control-flow ones excepted)."""
    elsewhere = []
    exception_names = {"Exception", "ValueError", "LookupError", "RuntimeError", "OSError"}
    exception_names |= {name for name, _ in inspect.getmembers(errors, inspect.isclass)}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
                continue
            bases = {
                b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
            }
            if bases & exception_names:
                elsewhere.append(f"{path.relative_to(PACKAGE)}: {node.name}")
    assert elsewhere == []


def test_every_error_in_errors_py_is_a_newsletter_error() -> None:
    classes = [cls for _, cls in inspect.getmembers(errors, inspect.isclass)]
    assert len(classes) > 10
    assert all(issubclass(cls, NewsletterError) for cls in classes)


def test_a_reader_with_no_matching_topic_gets_a_distinct_error(settings, taxonomy) -> None:
    issue = load_issue(settings.content.dir, "2025-01", taxonomy, settings.newsletter.name)
    nobody = make_recipient(settings, "ana@example.org", "", frozenset({"group-psychotherapy"}))
    with pytest.raises(NoMatchingVariant) as caught:
        preview_parts(settings, issue, nobody)
    assert isinstance(caught.value, SendError)  # callers that catch send errors still do
