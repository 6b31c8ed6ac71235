"""Reading subscriber import files: UTF-8 text, a CSV with a header row, or a JSON array of
`export_json` records. Each reader yields (line, cells by column) or (line, why not), so
`newsletter.store.import_export` validates both formats with one parser and names lines alike.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from newsletter.errors import ImportFileError
from newsletter.store.topics import ALL_TOPICS
from newsletter.store.topics import EXCLUDE

# The columns an export writes and an import reads, in this order; only `email` is required.
CSV_COLUMNS = (
    "email",
    "name",
    "topics",
    "lists",
    "status",
    "created_at",
    "confirmed_at",
    "unsubscribed_at",
    "consent_source",
    "consent_ip",
)
# In a lists cell, "-slug" is a list the subscriber left, and "-" alone means no list at all.
LEFT = "-"
# Keys of a JSON record besides the columns: what `export_json` and the API add.
_JSON_EXTRA = frozenset({"id", "excluded_topics", "unsubscribed_lists", "deliveries"})


def decode_csv(data: bytes) -> str:
    """UTF-8 text of an import file (a BOM is dropped); `ImportFileError` naming the bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ImportFileError(
            f"the file is not UTF-8: byte 0x{data[error.start]:02x} at position {error.start} "
            f"(line {line}) cannot be decoded; save it as UTF-8 CSV",
            [(line, f"byte 0x{data[error.start]:02x} at position {error.start} is not UTF-8")],
        ) from None


def detect_format(text: str, filename: str | None = None) -> str:
    """ "json" or "csv": by the file name's extension, else by the first character."""
    if filename is not None:
        suffix = filename.lower().rsplit(".", 1)[-1] if "." in filename else ""
        if suffix in ("json", "csv"):
            return suffix
    return "json" if text.lstrip("\ufeff \t\r\n").startswith("[") else "csv"


def _read_header(reader: Any) -> list[str]:
    header = next(reader, None)
    if header is None or not any(cell.strip() for cell in header):
        raise ImportFileError(
            "the file has no header row: the first line must name the columns "
            f"({', '.join(CSV_COLUMNS)})",
            [(1, "missing header row")],
        )
    columns = [cell.strip().lower() for cell in header]
    while columns and not columns[-1]:
        columns.pop()  # trailing empty header cells from spreadsheet exports
    unknown = [c for c in columns if c not in CSV_COLUMNS]
    if unknown:
        reason = (
            f"unknown column{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(c) for c in unknown)}; expected {', '.join(CSV_COLUMNS)}"
        )
        raise ImportFileError(reason, [(1, reason)])
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        reason = f"column {twice[0]!r} appears more than once"
        raise ImportFileError(reason, [(1, reason)])
    if "email" not in columns:
        reason = f"the header has no 'email' column (found: {', '.join(columns)})"
        raise ImportFileError(reason, [(1, reason)])
    return columns


def csv_records(text: str) -> Iterator[tuple[int, dict[str, str] | str]]:
    """(line, cells by column) for each non-blank record of a CSV text, or (line, why not)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        columns = _read_header(reader)
        last_line = reader.line_num
        while True:
            # The record starts on the line after the previous one ended (quoted newlines span
            # several physical lines, so count with the reader, not by enumerating records).
            line = last_line + 1
            cells = next(reader, None)
            if cells is None:
                return
            last_line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            extra = any(c.strip() for c in cells[len(columns) :])
            if len(cells) < len(columns) or extra:
                yield line, f"{len(cells)} fields, but the header has {len(columns)}"
            else:
                yield line, dict(zip(columns, cells, strict=False))
    except csv.Error as error:
        where = reader.line_num or 1
        raise ImportFileError(f"line {where}: {error}", [(where, str(error))]) from None


def _json_cell(key: str, value: Any) -> str:
    """A JSON value as the CSV cell it stands for (null is a blank cell)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ";".join(value)
    raise ValueError(f"{key!r} must be a string or a list of strings, not {json.dumps(value)}")


def _json_values(record: Any) -> dict[str, str]:
    """The CSV cells a record of `export_json` (or of the API) stands for."""
    if not isinstance(record, dict):
        raise ValueError(f"a record must be an object, not {json.dumps(record)[:40]}")
    unknown = sorted(set(record) - set(CSV_COLUMNS) - _JSON_EXTRA)
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}; expected {', '.join(CSV_COLUMNS)}")
    values = {key: _json_cell(key, record[key]) for key in CSV_COLUMNS if key in record}
    stopped = record.get("excluded_topics") or []
    if stopped and values.get("topics", ALL_TOPICS) == ALL_TOPICS:
        values["topics"] = _json_cell("topics", [ALL_TOPICS, *(EXCLUDE + s for s in stopped)])
    left = record.get("unsubscribed_lists") or []
    if isinstance(record.get("lists"), list) or left:
        # A list, even empty, is a value: [] and no left lists is "on no list" ("-").
        lists = [*(record.get("lists") or []), *(LEFT + slug for slug in left)]
        values["lists"] = _json_cell("lists", lists) or LEFT
    return values


def json_records(text: str) -> Iterator[tuple[int, dict[str, str] | str]]:
    """(line, cells by column) for each record of a JSON array, or (line, why not).

    Hand-written around `raw_decode` so each record is named by the line it starts on, as a
    CSV row is (`json.loads` keeps no positions)."""
    decoder = json.JSONDecoder()
    text = text.removeprefix("\ufeff")

    def fail(position: int, reason: str) -> ImportFileError:
        line = text.count("\n", 0, position) + 1
        return ImportFileError(f"line {line}: {reason}", [(line, reason)])

    position = _skip_space(text, 0)
    if not text.startswith("[", position):
        raise fail(position, "a JSON import is an array of subscriber records ([{...}, ...])")
    position = _skip_space(text, position + 1)
    if text.startswith("]", position):
        return
    while True:
        try:
            record, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as error:
            raise fail(error.pos, f"invalid JSON: {error.msg}") from None
        line = text.count("\n", 0, position) + 1
        try:
            yield line, _json_values(record)
        except ValueError as error:
            yield line, str(error)
        position = _skip_space(text, end)
        if text.startswith("]", position):
            break
        if not text.startswith(",", position):
            raise fail(position, "invalid JSON: expected ',' or ']' after a record")
        position = _skip_space(text, position + 1)
    if text[position + 1 :].strip():
        raise fail(position + 1, "invalid JSON: text after the closing ']'")


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position
