"""Reads for short commands without SQLAlchemy: the declared schema head, and the campaigns'
states for `newsletter issues list` from a SQLite file with the stdlib `sqlite3` module.

Why a second way in: importing SQLAlchemy costs ~0.2 s of CPU, more than all the rest of
`issues list`, a command editors run at every prompt. It is kept to the common case and to
reads: a plain `sqlite:///FILE` URL whose file exists and is at the declared head. Anything
else (PostgreSQL, an odd URL, an old schema, any sqlite3 error) answers None and the caller
takes the SQLAlchemy path, which also gives every error its usual message. Its SQL is
`ledger.campaign_states`'s, and a test compares the two.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import re
import sqlite3
from pathlib import Path

from newsletter.paths import data_path

# What SQLAlchemy reads as a file database with no options; the rest goes the usual way.
_SQLITE_FILE_URL = re.compile(r"sqlite(?:\+pysqlite)?:///(?P<path>[^?#%]+)")

CampaignStates = dict[str, tuple[str, dict[str, int]]]


@functools.cache
def declared_head(folder: Path) -> str | None:
    """The head revision as the migration files declare it, read without importing Alembic
    (whose import costs more than a short command's whole run): the one `revision` that no
    file names as its `down_revision`. None when that is not one plain answer (two heads, a
    computed value): the caller then asks Alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in folder.glob("*.py"):
        values: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and isinstance(node.value, ast.Constant):
                        values[target.id] = node.value.value
        revision, parent = values.get("revision"), values.get("down_revision", ...)
        if not isinstance(revision, str) or not (parent is None or isinstance(parent, str)):
            return None
        revisions.add(revision)
        if parent is not None:
            parents.add(parent)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def campaign_states(url: str) -> CampaignStates | None:
    """Each planned month's campaign status and its rows per status, read from the SQLite
    file of `url`; None when this fast path does not apply (see the module doc)."""
    match = _SQLITE_FILE_URL.fullmatch(url)
    if match is None or match["path"] == ":memory:" or not Path(match["path"]).is_file():
        return None
    head = declared_head(data_path("migrations") / "versions")
    try:
        with contextlib.closing(sqlite3.connect(match["path"], timeout=30)) as connection:
            tables = {
                name
                for (name,) in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name IN ('alembic_version', 'subscribers')"
                )
            }
            if head is None or tables != {"alembic_version", "subscribers"}:
                return None
            versions = [v for (v,) in connection.execute("SELECT version_num FROM alembic_version")]
            if versions != [head]:
                return None
            rows = connection.execute(
                "SELECT campaigns.month, campaigns.status, deliveries.status, count(deliveries.id) "
                "FROM campaigns LEFT OUTER JOIN deliveries "
                "ON deliveries.campaign_id = campaigns.id "
                "GROUP BY campaigns.month, campaigns.status, deliveries.status"
            ).fetchall()
    except sqlite3.Error:
        return None
    states: CampaignStates = {}
    for month, status, row_status, count in rows:
        _, counts = states.setdefault(month, (status, {}))
        if row_status is not None:
            counts[row_status] = count
    return states
