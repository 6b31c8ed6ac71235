"""The content writer and the editor's file operations: round trips through the reader,
normalization, versions, atomic saves, refusals (pure files, no web)."""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import FIXTURES
from conftest import REPO

from newsletter.content import desk
from newsletter.content.reader import parse_issue_meta
from newsletter.content.reader import parse_summary
from newsletter.content.taxonomy import default_taxonomy
from newsletter.content.writer import IssueDraft
from newsletter.content.writer import SummaryDraft
from newsletter.content.writer import issue_draft
from newsletter.content.writer import issue_text
from newsletter.content.writer import summary_draft
from newsletter.content.writer import summary_text
from newsletter.content.writer import version_of
from newsletter.errors import InvalidEdit

TAXONOMY = default_taxonomy()
ALL_FILES = sorted((REPO / "content").glob("*/*.md")) + sorted(FIXTURES.glob("content/*/*.md"))
SUMMARY_FILES = [p for p in ALL_FILES if p.name != "issue.md"]
ISSUE_FILES = [p for p in ALL_FILES if p.name == "issue.md"]


@pytest.mark.parametrize("path", SUMMARY_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_summary_file_round_trips(path: Path):
    text = path.read_text(encoding="utf-8")
    draft, meta = summary_draft(text, str(path))
    written = summary_text(draft, meta)
    month = path.parent.name
    assert parse_summary(written, str(path), month, TAXONOMY) == parse_summary(
        text, str(path), month, TAXONOMY
    )
    # The writer's own output is a fixed point: written, read and written again, unchanged.
    again, meta_again = summary_draft(written, str(path))
    assert again == draft
    assert summary_text(again, meta_again) == written


@pytest.mark.parametrize("path", ISSUE_FILES, ids=lambda p: p.parent.name)
def test_every_issue_file_round_trips(path: Path):
    text = path.read_text(encoding="utf-8")
    written = issue_text(issue_draft(text, str(path)))
    assert parse_issue_meta(written, str(path)) == parse_issue_meta(text, str(path))
    assert issue_text(issue_draft(written, str(path))) == written


def test_summary_text_format_and_kept_keys():
    article = {"type": "book", "title": "A", "author": [{"family": "B", "given": "C."}]}
    base = {"title": "Old", "article": {**article, "issued": 2020}, "slug": "x"}
    draft = SummaryDraft(
        title="New: a title",
        topics=("Empathy",),
        research_type="Meta-analysis",
        summary_md="Line one\r\nline two  \r\n",
        implications_md="Do this.",
        order=2,
        corrected=dt.date(2026, 12, 1),
    )
    text = summary_text(draft, base)
    assert text == (
        "---\n"
        "title: 'New: a title'\n"
        "article:\n  type: book\n  title: A\n  author:\n  - family: B\n    given: C.\n"
        "  issued: 2020\n"
        "slug: x\n"
        "topics:\n- Empathy\n"
        "research_type: Meta-analysis\n"
        "order: 2\n"
        "corrected: 2026-12-01\n"
        "---\n"
        "Line one\nline two\n\n## Practice Implications\n\nDo this.\n"
    )
    summary = parse_summary(text, "2026-11/x.md", "2026-11", TAXONOMY)
    assert summary.corrected == dt.date(2026, 12, 1) and summary.slug == "x"


def test_the_byline_is_written_read_and_dropped_when_blank():
    draft = SummaryDraft(
        "T", ("Empathy",), "Meta-analysis", summary_md="a", implications_md="b", author="Dana Reyes"
    )
    text = summary_text(draft)
    assert "research_type: Meta-analysis\nauthor: Dana Reyes\n" in text
    assert summary_draft(text, "s.md")[0].author == "Dana Reyes"
    assert parse_summary(text, "s.md", "2025-01", TAXONOMY).author == "Dana Reyes"
    _, meta = summary_draft(text, "s.md")
    assert "author" not in summary_text(replace(draft, author="  "), meta)


def test_issue_text_drops_empty_fields():
    assert issue_text(IssueDraft()) == "---\n---\n"
    assert parse_issue_meta("---\n---\n", "issue.md")[0] == {}
    text = issue_text(IssueDraft(subject="S", public=True, status="ready", intro_md="Hi\r\n"))
    assert text == "---\nsubject: S\npublic: true\nstatus: ready\n---\nHi\n"
    assert issue_draft(text, "issue.md").status == "ready"


def test_the_reader_refuses_a_bad_status_and_corrected():
    with pytest.raises(Exception, match="status: must be one of: draft, ready"):
        parse_issue_meta("---\nstatus: shipped\n---\n", "issue.md")
    text = summary_text(
        SummaryDraft("T", ("Empathy",), "Meta-analysis", summary_md="a", implications_md="b")
    )
    with pytest.raises(Exception, match="corrected: must be a date"):
        parse_summary(
            text.replace("---\na", "corrected: soon\n---\na"), "s.md", "2025-01", TAXONOMY
        )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURES / "content", tmp_path / "content")
    return tmp_path / "content"


def test_save_refuses_a_stale_version_and_keeps_the_file(folder: Path):
    on_disk = desk.read_summary_file(folder, "2025-02", "dropout-rates")
    draft = desk.load_draft(on_disk)
    on_disk.path.write_text(on_disk.text + "\nEdited in vim.\n", encoding="utf-8")
    with pytest.raises(desk.ChangedElsewhere) as refused:
        desk.save_summary(folder, "2025-02", "dropout-rates", draft, on_disk.version, TAXONOMY)
    assert refused.value.current.endswith("Edited in vim.\n")
    assert refused.value.version == version_of(refused.value.current)
    assert on_disk.path.read_text().endswith("Edited in vim.\n")


def test_save_creates_numbered_files_and_no_temporary_is_left(folder: Path):
    draft = SummaryDraft("T", ("empathy",), "meta-analysis", summary_md="a", implications_md="b")
    written, created = desk.save_summary(folder, "2025-02", "new-one", draft, "", TAXONOMY)
    assert created and written.path.name == "03-new-one.md"
    with pytest.raises(desk.ChangedElsewhere):  # a second "create" of the same slug
        desk.save_summary(folder, "2025-02", "new-one", draft, "", TAXONOMY)
    assert sorted(p.name for p in (folder / "2025-02").iterdir()) == [
        "01-feedback-not-on-track.md",
        "02-dropout-rates.md",
        "03-new-one.md",
    ]
    assert "- Empathy\n" in written.path.read_text()


def test_invalid_and_hostile_saves_write_nothing(folder: Path):
    draft = SummaryDraft("T\nBcc: x", ("empathy",), "Meta-analysis", summary_md="a")
    with pytest.raises(InvalidEdit) as invalid:
        desk.save_summary(folder, "2025-02", "../../etc", draft, "", TAXONOMY)
    assert set(invalid.value.problems) == {"slug", "title", "implications"}
    with pytest.raises(InvalidEdit):
        desk.delete_summary(folder, "2025-02", "../2025-01/issue", "")
    with pytest.raises(Exception, match="YYYY-MM"):
        desk.create_month(folder, "../2025-09")
    assert sorted(p.name for p in (folder / "2025-02").iterdir()) == [
        "01-feedback-not-on-track.md",
        "02-dropout-rates.md",
    ]


def test_a_corrected_summary_says_so_in_the_archive(folder: Path, settings, tmp_path: Path):
    from newsletter import archive

    on_disk = desk.read_summary_file(folder, "2025-02", "dropout-rates")
    draft = replace(desk.load_draft(on_disk), corrected=dt.date(2026, 12, 3))
    desk.save_summary(folder, "2025-02", "dropout-rates", draft, on_disk.version, TAXONOMY)
    settings.content.dir = folder
    archive.build_site(settings, TAXONOMY, tmp_path / "site", include_unsent=True, search=False)
    html = (tmp_path / "site" / "2025-02" / "dropout-rates" / "index.html").read_text()
    assert 'Corrected on <time datetime="2026-12-03">3 December 2026</time>' in html
    other = tmp_path / "site" / "2025-02" / "feedback-not-on-track" / "index.html"
    assert "Corrected on" not in other.read_text()
