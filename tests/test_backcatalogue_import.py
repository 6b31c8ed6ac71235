"""`newsletter import feed` writing a back catalogue: the plan, the dry run, the files, the
command, and the months it writes read back by `issues check` and the archive."""

from __future__ import annotations

from pathlib import Path

import frontmatter
import pytest
from click.testing import CliRunner
from conftest import write_config
from test_backcatalogue import ATOM
from test_backcatalogue import PLAIN_CITATION
from test_backcatalogue import RSS
from test_backcatalogue import WXR
from test_backcatalogue import WXR_FILES
from test_backcatalogue import folder_files

from newsletter.backfill.feed import read_feed
from newsletter.backfill.importer import describe
from newsletter.backfill.importer import plan_import
from newsletter.backfill.importer import write_import
from newsletter.cli import main
from newsletter.content.reader import load_issue
from newsletter.content.reader import parse_summary
from newsletter.content.taxonomy import Taxonomy

# --- the plan, the dry run and the files -----------------------------------------------------


def test_the_plan_makes_one_folder_per_month_ordered_by_date(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    plan = plan_import(read_feed(WXR), tmp_path / "content", taxonomy)
    assert {m.month: [f.path.name for f in m.files] for m in plan.months} == WXR_FILES
    march = plan.months[0]
    # The feedback post is older: order 1, although the export lists it second.
    assert [frontmatter.loads(f.text).get("order") for f in march.files] == [None, 1, 2]
    assert not (tmp_path / "content").exists()  # planning writes nothing


def test_the_report_lists_each_post_mapping_and_what_it_lacks(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    lines = describe(plan_import(read_feed(WXR), tmp_path, taxonomy))
    text = "\n".join(lines)
    assert lines[0] == f"{WXR}: WordPress export (WXR 1.2), 6 published posts"
    assert lines[1] == (
        '  left out: 1 attachment, 1 page ("About the Blog"), '
        '1 draft ("Working Title: Group Therapy for Social Anxiety")'
    )
    early = text.index("02-clients-who-leave-therapy-early.md")
    assert text.index('not in the taxonomy: "Premature Termination"', early) < text.index(
        "2019-04:"
    )
    rate = text.index("01-how-therapists-rate-themselves.md")
    block = text[rate : text.index("02-empathy-and-outcome.md")]
    assert "topics: none | research type: Survey/cross-sectional" in block
    assert 'not in the taxonomy: "Uncategorized", "Self-Assessment Bias"' in block
    assert "note: no category is a topic of the taxonomy: `topics` is left empty" in block
    empathy = text[text.index("02-empathy-and-outcome.md") :]
    for note in (
        "no category is a type of research: `research_type` is left empty",
        "does not start with an APA citation line: `citation` is left out",
        "no 'Practice Implications' heading: the section is left empty",
    ):
        assert f"note: {note}" in empathy
    assert lines[-1] == (
        'Not in the taxonomy (left out of `topics`): "Premature Termination" (1 post), '
        '"Ruptures" (1 post), "Deliberate Practice" (1 post), "Uncategorized" (1 post), '
        '"Self-Assessment Bias" (1 post)'
    )


def test_an_imported_summary_reads_back_with_every_field(
    tmp_path: Path, taxonomy: Taxonomy
) -> None:
    content = tmp_path / "content"
    result = write_import(plan_import(read_feed(WXR), content, taxonomy))
    assert len(result.written) == 9 and result.skipped == ()
    assert folder_files(content) == WXR_FILES
    path = content / "2019-03" / "02-clients-who-leave-therapy-early.md"
    summary = parse_summary(path.read_text(encoding="utf-8"), str(path), "2019-03", taxonomy)
    assert summary.slug == "clients-who-leave-therapy-early"
    assert summary.title == "Clients Who Leave Therapy Early"
    assert [t.label for t in summary.topics] == ["Attendance, Attrition, and Drop-Out"]
    assert summary.research_type.label == "Meta-analysis"
    assert summary.citation == PLAIN_CITATION
    assert summary.doi == "10.1037/a0028226"
    assert summary.order == 2
    assert summary.summary_md.startswith("Ending therapy before the work is done is common")
    assert "Swift, J. K." not in summary.summary_md  # the citation line is not repeated
    assert summary.summary_md.endswith("more likely to stop.")
    assert summary.implications_md.startswith("Roughly one client in five may stop")
    assert summary.implications_md.endswith("someone is about to leave.")
    assert "\n\nAsking regularly" in summary.implications_md
    # The unmapped tag stays in the file, as a comment an editor sees.
    assert '# The blog\'s categories and tags not in the taxonomy: "Premature Termination"' in (
        path.read_text(encoding="utf-8")
    )
    issue = frontmatter.loads((content / "2019-03" / "issue.md").read_text(encoding="utf-8"))
    assert issue.metadata == {"public": True}
    march = load_issue(content, "2019-03", taxonomy, "Digest")
    assert march.public
    assert [s.slug for s in march.summaries] == [
        "progress-feedback-helps-clients-at-risk",
        "clients-who-leave-therapy-early",
    ]
    feedback = march.summaries[0]
    assert feedback.doi == "10.1037/pst0000167"  # from the link
    assert "- the client’s motivation for change," in feedback.summary_md
    assert "*worse*" in feedback.summary_md


def test_rss_and_atom_files_import_too(tmp_path: Path, taxonomy: Taxonomy) -> None:
    content = tmp_path / "content"
    write_import(plan_import(read_feed(RSS), content, taxonomy))
    write_import(plan_import(read_feed(ATOM), content, taxonomy))
    january = load_issue(content, "2020-01", taxonomy, "Digest")
    assert [s.slug for s in january.summaries] == [
        "long-term-psychodynamic-therapy-for-complex-problems",  # from <description>
        "dialectical-behaviour-therapy-for-women-at-high-risk-of",  # cut at a word
    ]
    psychodynamic, dbt = january.summaries
    assert psychodynamic.doi == "10.1001/jama.300.13.1551"
    assert psychodynamic.implications_md.startswith("For clients with complex")
    assert [t.label for t in dbt.topics] == [
        "Suicide and Crisis Intervention",
        "Personality Disorders",
    ]
    assert dbt.research_type.label == "Randomized controlled trial"
    (empathy,) = load_issue(content, "2020-02", taxonomy, "Digest").summaries
    assert empathy.doi == "10.1037/pst0000175"
    assert empathy.research_type.label == "Meta-analysis"
    (alliance,) = load_issue(content, "2018-11", taxonomy, "Digest").summaries
    assert alliance.title == "The Alliance & Outcome in Adult Therapy"
    assert alliance.citation.startswith("Flückiger, C., Del Re, A. C., Wampold, B. E.")


def test_nothing_that_exists_is_overwritten(tmp_path: Path, taxonomy: Taxonomy) -> None:
    content = tmp_path / "content"
    (content / "2019-03").mkdir(parents=True)
    (content / "2019-06").mkdir()
    mine = {
        content / "2019-03" / "issue.md": "---\nsubject: An editor's subject\n---\n",
        content / "2019-06" / "empathy-and-outcome.md": "the same slug, another name\n",
    }
    for path, text in mine.items():
        path.write_text(text, encoding="utf-8")
    plan = plan_import(read_feed(WXR), content, taxonomy)
    lines = describe(plan)
    assert f"  skip  {content}/2019-03/issue.md: exists, not overwritten" in lines
    assert (
        f"  skip  {content}/2019-06/02-empathy-and-outcome.md: its summary exists as "
        f"{content}/2019-06/empathy-and-outcome.md, not overwritten"
    ) in lines
    assert f"2019-03: {content}/2019-03/ (exists)" in lines
    # A file that appears after the plan was made is not overwritten either.
    late = content / "2019-04" / "01-repairing-alliance-ruptures.md"
    late.parent.mkdir()
    late.write_text("written meanwhile\n", encoding="utf-8")
    result = write_import(plan)
    same_slug = content / "2019-06" / "02-empathy-and-outcome.md"
    assert set(result.skipped) == {content / "2019-03" / "issue.md", same_slug, late}
    assert not same_slug.exists()
    assert len(result.written) == 9 - 3
    for path, text in mine.items():
        assert path.read_text(encoding="utf-8") == text
    assert late.read_text(encoding="utf-8") == "written meanwhile\n"
    again = write_import(plan_import(read_feed(WXR), content, taxonomy))
    assert again.written == ()


# --- the command -----------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def run(runner: CliRunner, config: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(main, ["--config", str(config), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_the_command_is_a_dry_run_by_default(runner: CliRunner, site: Path) -> None:
    content = site.parent / "content"
    before = sorted(p.relative_to(content) for p in content.rglob("*"))
    code, output = run(runner, site, "import", "feed", str(WXR))
    assert code == 0, output
    assert sorted(p.relative_to(content) for p in content.rglob("*")) == before
    assert "  new   " in output
    assert "Dry run, nothing written: --write writes 9 files in 3 months." in output
    assert output.rstrip().endswith(
        "2 summaries lack what `newsletter issues check` requires (see the notes above): "
        f"{content}/2019-06/01-how-therapists-rate-themselves.md, "
        f"{content}/2019-06/02-empathy-and-outcome.md"
    )


def test_written_months_pass_issues_check_or_fail_on_what_the_report_said(
    runner: CliRunner, site: Path
) -> None:
    content = site.parent / "content"
    code, output = run(runner, site, "import", "feed", str(WXR), "--write")
    assert code == 0, output
    assert "Wrote 9 files in 3 months." in output
    assert folder_files(content) == WXR_FILES
    for month in ("2019-03", "2019-04"):
        code, output = run(runner, site, "issues", "check", month)
        assert code == 0, output
        assert "warning" not in output, output
    code, output = run(runner, site, "issues", "check", "2019-06")
    assert code == 1
    errors = [line for line in output.splitlines() if line.startswith("error")]
    assert errors == [
        f"error   {content}/2019-06/01-how-therapists-rate-themselves.md: topics: "
        "at least one topic is required",
        f"error   {content}/2019-06/02-empathy-and-outcome.md: research_type: is required",
        f"error   {content}/2019-06/02-empathy-and-outcome.md: Practice Implications: "
        "the section is empty",
    ]
    code, output = run(runner, site, "import", "feed", str(WXR), "--write")
    assert code == 0
    assert "Wrote 0 files in 0 months; 9 files left alone: they exist." in output


def test_the_archive_publishes_the_ready_months_and_waits_for_the_rest(
    runner: CliRunner, site: Path
) -> None:
    content = site.parent / "content"
    code, output = run(runner, site, "import", "feed", str(WXR), "--write")
    assert code == 0, output
    assert "2019-06/issue.md (public: false until `issues check` passes)" in output
    june = frontmatter.loads((content / "2019-06" / "issue.md").read_text(encoding="utf-8"))
    assert june.metadata == {"public": False}
    out = site.parent / "site"
    code, output = run(runner, site, "archive", "build", "--no-search", str(out))
    assert code == 0, output
    assert (out / "2019-03" / "clients-who-leave-therapy-early" / "index.html").exists()
    assert (out / "2019-04" / "repairing-alliance-ruptures" / "index.html").exists()
    assert not (out / "2019-06").exists()


def test_rss_months_pass_issues_check(runner: CliRunner, site: Path) -> None:
    code, output = run(runner, site, "import", "feed", str(RSS), "--write")
    assert code == 0, output
    assert "lack what" not in output
    for month in ("2020-01", "2020-02"):
        code, output = run(runner, site, "issues", "check", month)
        assert code == 0, output


@pytest.mark.parametrize("write", [[], ["--write"]])
def test_a_file_that_is_not_a_feed_is_one_error_line(
    runner: CliRunner, site: Path, write: list[str]
) -> None:
    notes = site.parent / "notes.txt"
    notes.write_text("Meeting notes.\n", encoding="utf-8")
    code, output = run(runner, site, "import", "feed", str(notes), *write)
    assert code == 1
    assert output.splitlines() == [
        f"Error: {notes}: not an RSS, Atom or WordPress export (WXR) file (XML: syntax error)"
    ]
