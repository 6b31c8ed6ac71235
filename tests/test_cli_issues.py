"""`newsletter issues list|check` and `newsletter preview`, through the CLI runner."""

from __future__ import annotations

import email
import email.policy
import io
import re
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from click.testing import Result
from conftest import TEST_SECRET
from rich.text import Text

from newsletter.cli import main
from newsletter.cli.app import box_table
from newsletter.tokens import PREFERENCES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer
from newsletter.tokens import address_hash

Invoke = Callable[..., Result]

# The three summaries of the 2025-01 fixture, by topic.
TITLES = {
    "depression": "Client Contribution to the Alliance Predicts Recovery From Depression",
    "anxiety": "CBT Outperforms Placebo for Adult Anxiety Disorders",
    "therapist": "It Is the Therapist’s Side of the Alliance That Counts",
}
IMPLICATIONS = [
    "The alliance matters even when treatment is mainly medication.",
    "CBT’s benefits for anxiety go beyond expectancy and attention alone.",
    "Some therapists consistently form stronger alliances, and their clients do better.",
]
BAD_SUMMARY = "---\ntitle: Untitled?\ntopics: [Empathy]\nresearch_type: Review\n---\nText.\n"


@pytest.fixture
def cli(runner: CliRunner, config_file: Path) -> Invoke:
    """Run `newsletter --config <file> ...` against a migrated database."""

    def invoke(*args: str) -> Result:
        return runner.invoke(main, ["--config", str(config_file), *args])

    result = invoke("db", "upgrade")
    assert result.exit_code == 0, result.output
    return invoke


@pytest.fixture
def content(config_file: Path) -> Path:
    """The copy of the fixture content that `config_file` points at."""
    return config_file.parent / "content"


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def words(text: str) -> str:
    """Whitespace collapsed, so wrapped lines compare with one-line strings."""
    return " ".join(text.split())


def tokens(text: str, path: str) -> list[str]:
    return re.findall(rf"https://news\.example\.org/{path}/([A-Za-z0-9_.-]+)", text)


# --- issues list --------------------------------------------------------------------------------


def test_issues_list(cli: Invoke) -> None:
    output = ok(cli("issues", "list"))
    lines = {line.split()[1]: line for line in output.splitlines() if "2025-" in line}
    assert list(lines) == ["2025-01", "2025-02"]
    assert words(lines["2025-01"]).split()[3] == "3"
    assert words(lines["2025-02"]).split()[3] == "2"
    assert all("not sent" in line for line in lines.values())


def test_issues_list_shows_a_broken_month_with_its_file(cli: Invoke, content: Path) -> None:
    # "[red]" is also Rich markup: it must be shown, not taken as a style.
    bad = BAD_SUMMARY.replace("title:", 'slug: "[red]x"\ntitle:')
    (content / "2025-02" / "03-bad.md").write_text(bad, encoding="utf-8")
    output = words(ok(cli("issues", "list")))
    assert "│ 2025-02 │ ? │ error: 03-bad.md: slug: '[red]x':" in output
    assert "│ 2025-01 │ 3 │" in output


@pytest.mark.parametrize("width", [60, 80, 100, 200])
def test_the_listing_table_is_drawn_as_rich_drew_it(width: int) -> None:
    # `issues list` draws its table itself (rich's console cost more than the listing): the
    # same heavy header, padding, column widths and word wrapping as rich's `Table`.
    from rich.console import Console
    from rich.table import Table

    columns = ["month", "summaries", "subject", "state"]
    rows = [
        ["2026-08", "3", "The relationship, repairs, and the limits of self-assessment", "x"],
        ["2026-09", "?", "error: 03-bad.md: slug: '[red]x': is not a slug", "sending: 2 sent"],
    ]
    console = Console(width=width, file=io.StringIO(), color_system=None)
    table = Table(*columns)
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)
    drawn = box_table(columns, rows, width=width, styles={(1, 2): "red"})
    assert "\n".join(click.unstyle(line) for line in drawn) + "\n" == console.file.getvalue()
    red = click.style("", fg="red")[:-4]  # the escape code that starts red text
    assert [line.count(red) for line in drawn if "error:" in line] == [1]


def test_the_listing_table_folds_words_too_long_for_the_width() -> None:
    narrow = box_table(["s"], [["self-assessment"]], width=10, styles={})
    assert [click.unstyle(line) for line in narrow[3:-1]] == [
        "│ self-a │",
        "│ ssessm │",
        "│ ent    │",
    ]


def test_issues_need_a_migrated_database(runner: CliRunner, config_file: Path) -> None:
    result = runner.invoke(main, ["--config", str(config_file), "issues", "list"])
    assert result.exit_code == 1
    assert "db upgrade" in result.output


# --- issues check -------------------------------------------------------------------------------


def test_issues_check(cli: Invoke) -> None:
    output = ok(cli("issues", "check", "2025-01"))
    assert "3 summaries; subject: Fixture issue: alliance and anxiety" in output
    sizes = re.findall(r"HTML (.+?): (\d+\.\d) KB", output)
    assert [what for what, _ in sizes] == ["full issue", "with topic lines"]
    assert all(0 < float(kb) < 90 for _, kb in sizes)
    assert "error" not in output


def test_issues_check_notes_the_default_subject(cli: Invoke) -> None:
    output = ok(cli("issues", "check", "2025-02"))
    assert "subject: Test Digest — February 2025" in output
    assert "using the default subject" in output


def test_issues_check_a_bad_file(cli: Invoke, content: Path) -> None:
    (content / "2025-01" / "04-bad.md").write_text(BAD_SUMMARY, encoding="utf-8")
    result = cli("issues", "check", "2025-01")
    assert result.exit_code == 1
    assert re.search(
        r"^error +\S*2025-01/04-bad\.md: Practice Implications: missing", result.stdout
    )
    assert "KB" not in result.stdout


def test_issues_check_reports_every_problem_of_every_file(cli: Invoke, content: Path) -> None:
    """Not just the first: each problem of each file, named by file and field or line."""
    month = content / "2025-01"
    (month / "04-bad.md").write_text(
        "---\ntitle: T\ntopics: [Empathy, Depresion, Anxeity]\nresearch_type: Reviw\n"
        "writer: me\n---\nText.\n",
        encoding="utf-8",
    )
    (month / "05-bad.md").write_text("---\ntitle: [a\n---\nText.\n", encoding="utf-8")
    (month / "issue.md").write_text(
        "---\nsubject: S\npublic: maybe\n---\nIntro.\n\n{summary: x} misspelt.\n",
        encoding="utf-8",
    )
    result = cli("issues", "check", "2025-01")
    assert result.exit_code == 1
    errors = [line for line in result.stdout.splitlines() if line.startswith("error")]
    bad, yaml_bad, issue_md = (str(month / name) for name in ("04-bad.md", "05-bad.md", "issue.md"))
    expected = [
        f"{bad}: writer: unknown field",
        f"{bad}: topics: unknown topic 'Depresion'",
        f"{bad}: topics: unknown topic 'Anxeity'",
        f"{bad}: research_type: unknown research type 'Reviw'",
        f"{bad}: Practice Implications: missing",
        f"{yaml_bad}: line 3: invalid YAML front matter",
        f"{issue_md}: public: must be true or false",
        f"{issue_md}: line 7: '{{summary: x}}': write the marker as",
    ]
    assert len(errors) == len(expected), result.stdout
    for line, start in zip(errors, expected, strict=True):
        assert line.split(maxsplit=1)[1].startswith(start), line
    assert result.stdout.splitlines()[-1] == "8 errors: 2025-01 cannot be sent until they are fixed"


def test_send_refuses_a_month_with_errors_and_lists_them_all(cli: Invoke, content: Path) -> None:
    (content / "2025-01" / "04-bad.md").write_text(BAD_SUMMARY, encoding="utf-8")
    (content / "2025-01" / "05-bad.md").write_text(
        BAD_SUMMARY.replace("Empathy", "Empaty"), encoding="utf-8"
    )
    result = cli("send", "2025-01", "--yes")
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert "04-bad.md: Practice Implications: missing" in line
    assert "05-bad.md: topics: unknown topic 'Empaty'" in line
    assert (
        "Practice Implications: missing the '## Practice Implications' heading (3 problems" in line
    )


def test_issues_check_still_checks_the_size_of_the_good_files(cli: Invoke, content: Path) -> None:
    """Gmail's clip is an error found now, not after the other errors are fixed."""
    paragraph = "Therapists who listen well help their clients to recover. " * 40
    long_body = "\n\n".join([paragraph] * 60)
    (content / "2025-01" / "04-long.md").write_text(
        "---\ntitle: Long\ntopics: [Empathy]\nresearch_type: Review\n---\n"
        f"{long_body}\n\n## Practice Implications\n\nListen.\n",
        encoding="utf-8",
    )
    (content / "2025-01" / "05-bad.md").write_text(BAD_SUMMARY, encoding="utf-8")
    result = cli("issues", "check", "2025-01")
    assert result.exit_code == 1
    assert re.search(
        r"^error +HTML full issue: \d+\.\d KB — Gmail clips messages over 102 KB "
        r"\(without the 1 problem above\)$",
        result.stdout,
        re.M,
    )


def test_issues_check_warns_of_raw_html_with_file_and_line(cli: Invoke, content: Path) -> None:
    """Raw HTML is escaped, so readers would see the tags: a warning, not an error."""
    path = content / "2025-02" / "03-html.md"
    path.write_text(
        "---\ntitle: T\ntopics: [Empathy]\nresearch_type: Review\n---\n"
        "Plain first line,\nthen <b>bold</b> and `<code>` kept.\n\n<!-- editor: check -->\n\n"
        '## Practice Implications\n\n<div class="box">\nListen.\n</div>\n',
        encoding="utf-8",
    )
    output = ok(cli("issues", "check", "2025-02"))
    warnings = [line for line in output.splitlines() if line.startswith("warning")]
    assert [w.split(": raw HTML ")[0].split(maxsplit=1)[1] for w in warnings] == [
        f"{path}: line 7",
        f"{path}: line 9",
        f"{path}: line 13",
    ]
    assert "“<b>”, “</b>” is shown to readers as text" in warnings[0]
    assert "<code>" not in output
    assert "“<!-- editor: check -->”" in warnings[1]
    assert '“<div class="box">”' in warnings[2]


OLD_INTRO = (
    "---\nsubject: S\n---\nThis month brings three summaries. The first is a trial; "
    "the second and the third are about the alliance.\n"
)


def test_issues_check_warns_of_counts_and_ordinals_in_the_common_intro(
    cli: Invoke, content: Path
) -> None:
    """Some readers get fewer summaries than the intro counts: a warning, not an error."""
    issue_md = content / "2025-01" / "issue.md"
    issue_md.write_text(OLD_INTRO, encoding="utf-8")
    output = ok(cli("issues", "check", "2025-01"))
    [line] = [x for x in output.splitlines() if x.startswith("warning")]
    assert f"{issue_md}: the common part of the intro says" in line
    assert "“three summaries”, “The first”, “the second”, “the third”" in line
    assert "error" not in output


def test_issues_check_a_count_in_a_summarys_own_part_is_fine(cli: Invoke, content: Path) -> None:
    issue_md = content / "2025-01" / "issue.md"
    issue_md.write_text(
        "---\nsubject: S\n---\nThis month, the alliance.\n\n"
        "{summary=cbt-for-anxiety} Two trials in one: the first against pill placebo.\n",
        encoding="utf-8",
    )
    assert "warning" not in ok(cli("issues", "check", "2025-01"))


def test_issues_check_a_missing_month(cli: Invoke) -> None:
    result = cli("issues", "check", "2099-01")
    assert result.exit_code == 1
    assert "2099-01: no such month folder" in result.output


def test_issues_check_a_badly_named_month(cli: Invoke) -> None:
    result = cli("issues", "check", "2025-1")
    assert result.exit_code == 1
    assert "must be named YYYY-MM" in result.output


def test_issues_check_accepts_tab_completed_folders(cli: Invoke, content: Path) -> None:
    for form in ("2025-02/", str(content / "2025-02"), str(content / "2025-02") + "/"):
        assert "subject: Test Digest — February 2025" in ok(cli("issues", "check", form))


def test_issues_check_refuses_a_folder_outside_the_content_folder(
    cli: Invoke, tmp_path: Path
) -> None:
    other = tmp_path / "elsewhere" / "2025-02"
    other.mkdir(parents=True)
    result = cli("issues", "check", f"{other}/")
    assert result.exit_code == 2
    assert f"{other}/: not a month folder of the content folder" in result.output


def test_issues_check_suggests_the_month_meant(cli: Invoke) -> None:
    result = cli("issues", "check", "2025-2")
    assert result.exit_code == 1
    assert "2025-2: a month folder must be named YYYY-MM (e.g. 2026-11): did you mean 2025-02?" in (
        result.output
    )


def test_issues_list_warns_of_misnamed_month_folders(cli: Invoke, content: Path) -> None:
    for name in ("2022-9", "2022-13", "Sept-2022", "drafts", "2025-02.old"):
        (content / name).mkdir()
    result = cli("issues", "list")
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning")]
    expected = {
        "2022-13": "its month must be 01 to 12",
        "2022-9": "rename it to 2022-09",
        "Sept-2022": "rename it to 2022-09",
    }
    assert len(warnings) == len(expected), result.stderr
    for line, (name, advice) in zip(warnings, expected.items(), strict=True):
        assert line.startswith(f"warning: {content / name}: looks like a month but is not named")
        assert line.endswith(f"so it is ignored: {advice}")
    assert "2022-" not in result.stdout  # not listed as months


# --- preview ------------------------------------------------------------------------------------


def test_preview_text_of_the_full_issue(cli: Invoke) -> None:
    text = ok(cli("preview", "2025-01", "--format", "text"))
    flat = words(text)
    for title in TITLES.values():
        assert title in flat
    assert flat.count("PRACTICE IMPLICATIONS") == 3
    for sentence in IMPLICATIONS:
        assert sentence in flat
    assert "XNL" not in text
    assert "Matches your topics" not in text
    # A reader of every topic: why they got each summary, and a stop link per topic (2 each).
    assert flat.count("You receive all topics") == 3
    assert flat.count("Stop sending me") == 6
    signer = Signer(TEST_SECRET)
    preview_hash = address_hash("preview@example.org")
    [unsubscribe] = tokens(text, "u")
    [preferences] = set(tokens(text, "preferences"))  # in the footer and the stop links
    assert signer.read(UNSUBSCRIBE, unsubscribe) == (0, preview_hash)
    assert signer.read(PREFERENCES, preferences) == (0, preview_hash)
    assert "1 Test Street, Testville" in text


def test_preview_html_for_topics(cli: Invoke) -> None:
    html = ok(cli("preview", "2025-01", "--topics", "anxiety-disorders", "--format", "html"))
    assert html.lstrip().lower().startswith('<!doctype html>\n<html lang="en"')
    assert TITLES["anxiety"] in html
    assert TITLES["depression"] not in html
    assert "Side of the Alliance" not in html
    assert html.count("Matches your topics:") == 1
    assert "Matches your topics: Anxiety Disorders" in html
    assert "XNL" not in html
    assert len(tokens(html, "u")) >= 1


def test_preview_topics_by_label_separated_by_commas(cli: Invoke) -> None:
    text = ok(
        cli(
            "preview",
            "2025-01",
            "--topics",
            "Therapist Factors, depression and depressive symptoms",
            "--format",
            "text",
        )
    )
    flat = words(text)
    assert TITLES["depression"] in flat
    assert TITLES["therapist"] in flat
    assert TITLES["anxiety"] not in flat
    assert "Matches your topics: Depression and Depressive Symptoms" in flat
    assert "Matches your topics: Therapist Factors" in flat


def test_preview_topics_without_a_match(cli: Invoke) -> None:
    result = cli("preview", "2025-01", "--topics", "empathy")
    assert result.exit_code == 1
    assert "none of these topics is in 2025-01" in result.output
    assert result.stdout == ""


def test_preview_unknown_topic(cli: Invoke) -> None:
    result = cli("preview", "2025-01", "--topics", "Depresion")
    assert result.exit_code == 1
    assert "unknown topic 'Depresion'" in result.output
    assert "Depression and Depressive Symptoms" in result.output


def test_preview_eml_to_a_file(cli: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "preview.eml"
    result = cli("preview", "2025-01", "--format", "eml", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert f"wrote {out}" in result.stderr
    # The variant reads as the summaries it holds, not as its internal key.
    assert f"; {TITLES['depression']} + " in result.stderr and ";topics" not in result.stderr
    message = email.message_from_bytes(out.read_bytes(), policy=email.policy.default)
    assert message["From"] == "Test Digest <digest@example.org>"
    assert message["To"] == "preview@example.org"
    assert message["Subject"] == "Fixture issue: alliance and anxiety"
    assert message["List-Unsubscribe"].startswith("<https://news.example.org/u/")
    assert "mailto:" in message["List-Unsubscribe"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for title in TITLES.values():
        assert title in words(text)
        assert title in html
    assert "XNL" not in text + html


def test_preview_missing_month(cli: Invoke) -> None:
    result = cli("preview", "2099-01")
    assert result.exit_code == 1
    assert "no such month folder" in result.output


def test_preview_as_an_unknown_subscriber(cli: Invoke) -> None:
    result = cli("preview", "2025-01", "--subscriber", "nobody@example.org")
    assert result.exit_code == 1
    assert "nobody@example.org" in result.output
    assert result.stdout == ""


def test_preview_as_a_subscriber(cli: Invoke) -> None:
    ok(
        cli(
            "subscribers",
            "add",
            "reader@example.org",
            "--name",
            "Ada",
            "--topics",
            "Therapist Factors",
        )
    )
    text = ok(cli("preview", "2025-01", "--subscriber", "READER@example.org", "--format", "text"))
    flat = words(text)
    assert "Dear Ada," in flat
    assert TITLES["therapist"] in flat
    assert TITLES["depression"] not in flat
    assert TITLES["anxiety"] not in flat
    assert "Matches your topics: Therapist Factors" in flat
    [unsubscribe] = tokens(text, "u")
    subscriber_id, hashed = Signer(TEST_SECRET).read(UNSUBSCRIBE, unsubscribe)
    assert subscriber_id > 0
    assert hashed == address_hash("reader@example.org")


def test_preview_as_a_subscriber_eml(cli: Invoke) -> None:
    ok(cli("subscribers", "add", "reader@example.org", "--topics", "*"))
    result = cli("preview", "2025-02", "--subscriber", "reader@example.org", "--format", "eml")
    assert result.exit_code == 0, result.output
    message = email.message_from_bytes(result.stdout_bytes, policy=email.policy.default)
    assert message["To"] == "reader@example.org"
    assert message["Subject"] == "Test Digest — February 2025"


def test_preview_topics_and_subscriber_together_is_a_usage_error(cli: Invoke) -> None:
    result = cli("preview", "2025-01", "--topics", "empathy", "--subscriber", "reader@example.org")
    assert result.exit_code == 2
    assert "--topics or --subscriber, not both" in result.output
