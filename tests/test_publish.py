"""Publishing: every completed send rebuilds the archive (CLI, worker, the one send path), the
swap is atomic, and a failing rebuild never fails the send."""

from __future__ import annotations

import threading

import pytest
from conftest import write_config

from newsletter.archive.publish import rebuild
from newsletter.archive.writer import MARKER
from newsletter.cli import main
from newsletter.config import load_settings
from newsletter.content.reader import load_issue
from newsletter.errors import NewsletterError
from newsletter.sending.campaign import send_month
from newsletter.sending.plan import plan_campaign
from newsletter.sending.worker import run_worker
from newsletter.store import audit
from newsletter.store import engine as db
from newsletter.store import ledger
from newsletter.store.models import DONE
from newsletter.store.subscribers import add_subscriber
from newsletter.transport.memory import MemoryTransport


@pytest.fixture
def reader(engine, settings, taxonomy):
    with db.transaction(engine) as session:
        add_subscriber(session, settings, taxonomy, "ana@example.net")


@pytest.fixture
def issue(settings, taxonomy):
    return load_issue(settings.content.dir, "2025-01", taxonomy, settings.newsletter.name)


def events(engine, action: str) -> list[audit.AuditEntry]:
    with db.session_factory(engine)() as session:
        return audit.recent(session, action=action)[0]


def test_a_completed_send_publishes_the_issue(engine, settings, issue, reader):
    site = settings.archive.dir
    result = send_month(engine, settings, issue, MemoryTransport(), actor="scheduler")
    assert result.archive is not None and result.archive.ok, result.archive
    assert (site / "2025-01" / "index.html").is_file()
    assert not (site / "2025-02").exists()  # never sent, not public
    sends = events(engine, "send")
    assert [(e.actor, e.target) for e in sends] == [("scheduler", "2025-01")]
    assert sends[0].detail == "completed: 1 sent, 0 failed, 0 skipped"
    assert [e.actor for e in events(engine, "archive-rebuild")] == ["scheduler"]
    # Run again: nothing left to send, so nothing is recorded or rebuilt a second time.
    again = send_month(engine, settings, issue, MemoryTransport())
    assert again.archive is None
    assert len(events(engine, "send")) == 1


def test_an_unfinished_send_does_not_publish(engine, settings, issue, reader):
    stop = threading.Event()
    stop.set()  # stopped before the first message
    result = send_month(engine, settings, issue, MemoryTransport(), stop=stop)
    assert result.report is not None and not result.report.finished
    assert result.archive is None
    assert not settings.archive.dir.exists()
    assert events(engine, "send") == []


def test_a_failing_rebuild_never_fails_the_send(engine, settings, issue, reader, caplog):
    site = settings.archive.dir
    site.mkdir()
    (site / "notes.txt").write_text("someone else's folder")  # not ours: never replaced
    result = send_month(engine, settings, issue, MemoryTransport())
    assert result.report is not None and result.report.finished and result.report.sent == 1
    assert result.archive is not None and not result.archive.ok
    assert "refusing to replace" in result.archive.error
    assert "archive not rebuilt" in caplog.text
    assert sorted(p.name for p in site.iterdir()) == ["notes.txt"]
    with db.session_factory(engine)() as session:
        campaign = ledger.find_campaign(session, "2025-01")
        assert campaign is not None and campaign.status == DONE
    assert events(engine, "archive-rebuild")[0].detail.startswith("failed:")


def test_rebuild_after_send_can_be_turned_off(engine, settings, issue, reader):
    settings.archive.rebuild_after_send = False
    result = send_month(engine, settings, issue, MemoryTransport())
    assert result.archive is None and not settings.archive.dir.exists()
    assert len(events(engine, "send")) == 1  # the send is recorded all the same


def test_a_worker_publishes_what_it_completes(engine, settings, taxonomy, issue, reader):
    plan_campaign(engine, settings, issue, None)
    settings.delivery.transport = "memory"
    sent = run_worker(engine, settings, taxonomy, stop=threading.Event(), once=True)
    assert sent == 1
    assert (settings.archive.dir / "2025-01" / "index.html").is_file()
    assert [e.actor for e in events(engine, "archive-rebuild")] == ["worker"]


def test_a_rebuild_swaps_a_whole_site_in_or_leaves_the_old_one(engine, settings, issue, reader):
    send_month(engine, settings, issue, MemoryTransport())
    site = settings.archive.dir
    before = site.stat().st_ino
    page = site / "2025-01" / "index.html"
    old_page = page.read_text()
    rebuild(engine, settings)
    assert site.stat().st_ino != before  # a new folder renamed into place, not files rewritten
    assert (site / MARKER).is_file()
    assert page.read_text() == old_page
    leftovers = [p.name for p in site.parent.iterdir() if p.name.startswith(f".{site.name}.")]
    assert leftovers == [f".{site.name}.lock"]  # no half-built or old folder left behind
    # A sent month that no longer reads: the rebuild fails and the old site stays.
    summary = settings.content.dir / "2025-01" / "02-cbt-for-anxiety.md"
    summary.write_text("---\ntitle: [broken\n---\n")
    with pytest.raises(NewsletterError, match="02-cbt-for-anxiety"):
        rebuild(engine, settings)
    assert page.read_text() == old_page
    leftovers = [p.name for p in site.parent.iterdir() if p.name.startswith(f".{site.name}.")]
    assert leftovers == [f".{site.name}.lock"]


def test_cli_send_publishes_the_issue(runner, tmp_path):
    config = write_config(tmp_path, delivery={"transport": "maildir", "maildir": "outbox"})

    def invoke(*args):
        return runner.invoke(main, ["--config", str(config), *args])

    assert invoke("db", "upgrade").exit_code == 0
    assert invoke("subscribers", "add", "ana@example.net").exit_code == 0
    result = invoke("send", "2025-01", "--yes")
    assert result.exit_code == 0, result.output
    assert "archive rebuilt" in result.output
    settings = load_settings(config)
    assert (settings.archive.dir / "2025-01" / "index.html").is_file()
