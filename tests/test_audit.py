"""The audit log (store.audit): events kept in order, counted, filtered, unknown verbs refused."""

from __future__ import annotations

import pytest

from newsletter.store import audit


def test_events_come_back_newest_first_with_a_total(session) -> None:
    audit.record(session, "ana", "send", "2026-11")
    audit.record(session, "ben", "import", "people.csv", "12 added")
    audit.record(session, "ana", "forget", "subscriber 7")
    session.commit()
    entries, total = audit.recent(session)
    assert total == 3
    assert [(e.actor, e.action, e.target) for e in entries] == [
        ("ana", "forget", "subscriber 7"),
        ("ben", "import", "people.csv"),
        ("ana", "send", "2026-11"),
    ]
    only_imports, count = audit.recent(session, action="import")
    assert count == 1 and only_imports[0].detail == "12 added"
    page, total = audit.recent(session, limit=1, offset=1)
    assert total == 3 and [e.actor for e in page] == ["ben"]


def test_an_unknown_action_is_refused_and_a_long_target_cut(session) -> None:
    with pytest.raises(ValueError, match="unknown audit action 'hack'"):
        audit.record(session, "ana", "hack")
    audit.record(session, "ana", "edit-issue", "x" * 900)
    session.commit()
    entries, _ = audit.recent(session)
    assert len(entries[0].target) == audit.MAX_TARGET
