"""YAML front matter: split from a Markdown file's body with its line numbers kept, and its
one-line text fields read (pure: takes text). Used for summaries and `issue.md` alike."""

from __future__ import annotations

from typing import Any

import frontmatter
import yaml

from newsletter.errors import ContentError

# python-frontmatter's parser: it splits on '---' fences; the YAML is loaded here, so that errors
# keep their line numbers and a front matter that is not a mapping is reported, not dropped.
_FRONT_MATTER = frontmatter.YAMLHandler()


def split_front_matter(text: str, source: str) -> tuple[dict[str, Any], str, int]:
    """(front matter, body stripped, the file line the stripped body starts on);
    `ContentError` when there is no front matter or its YAML does not read."""
    # CRLF to LF as python-frontmatter does; drop a byte-order mark, which would hide the fence.
    text = text.lstrip("\ufeff").replace("\r\n", "\n")
    fence = _FRONT_MATTER.FM_BOUNDARY.match(text)
    if fence is None:
        raise ContentError(source, "must start with YAML front matter between '---' lines")
    try:
        yaml_text, body = _FRONT_MATTER.split(text)
    except ValueError:
        raise ContentError(source, "the front matter has no closing '---' line") from None
    # The YAML text starts where the opening fence's match ends: the file line of its line 0.
    first_line = text.count("\n", 0, fence.end()) + 1
    try:
        meta = _FRONT_MATTER.load(yaml_text)
    except yaml.MarkedYAMLError as error:
        raise ContentError(source, _yaml_error_message(error, first_line)) from None
    except yaml.YAMLError as error:
        raise ContentError(source, f"invalid YAML front matter: {error}") from None
    except ValueError as error:  # PyYAML reads 2014-02-30 as a date, and datetime refuses it
        message = f"invalid YAML front matter: {error} (a date that does not exist?)"
        raise ContentError(source, message) from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise ContentError(source, "front matter must be a mapping of keys to values")
    # The body is the text's tail: count the lines before its first non-blank character.
    start = len(text) - len(body.lstrip()) if text.endswith(body) else 0
    return meta, body.strip(), text.count("\n", 0, start) + 1


def _yaml_error_message(error: yaml.MarkedYAMLError, first_line: int) -> str:
    """'line N: invalid YAML front matter: <problem> (<context> that starts on line M)'."""
    mark = error.problem_mark or error.context_mark
    if mark is None:
        return f"invalid YAML front matter: {error}"
    message = f"line {first_line + mark.line}: invalid YAML front matter: "
    message += error.problem or error.context or "syntax error"
    context = error.context_mark
    if error.problem and error.context and context is not None and context.line != mark.line:
        message += f" ({error.context} that starts on line {first_line + context.line})"
    return message


def text_field(
    meta: dict[str, Any],
    key: str,
    source: str,
    problems: list[ContentError],
    *,
    required: bool = False,
) -> str:
    """The value as one line of text; '' (and a problem) when it is missing or not text."""
    value = meta.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems.append(ContentError(source, "is required", field=key))
        return ""
    if isinstance(value, list | dict):
        problems.append(ContentError(source, "must be text, not a list or mapping", field=key))
        return ""
    return " ".join(str(value).split())
