"""`newsletter send`, `deliveries` and `demo` through the CLI runner, writing real Maildirs."""

from __future__ import annotations

import csv
import email
import email.policy
import html
import io
import json
import mailbox
import re
import shutil

import pytest
from click.testing import CliRunner
from conftest import REPO
from conftest import write_config

from newsletter.cli import main
from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import default_taxonomy


def invoke(runner, config, *args, input=None):
    return runner.invoke(main, ["--config", str(config), *args], input=input)


@pytest.fixture
def maildir_config(tmp_path):
    return write_config(tmp_path, delivery={"transport": "maildir", "maildir": "outbox"})


@pytest.fixture
def with_subscribers(runner, maildir_config):
    assert invoke(runner, maildir_config, "db", "upgrade").exit_code == 0
    for address, topics in [
        ("all@example.net", "*"),
        ("anxious@example.net", "anxiety-disorders"),
        ("groups@example.net", "group-psychotherapy"),
    ]:
        result = invoke(runner, maildir_config, "subscribers", "add", address, "--topics", topics)
        assert result.exit_code == 0, result.output
    return maildir_config


def outbox(config) -> list[email.message.EmailMessage]:
    box = mailbox.Maildir(config.parent / "outbox", create=False)
    policy = email.policy.default
    return [email.message_from_bytes(box.get_bytes(key), policy=policy) for key in box.iterkeys()]


def test_dry_run_changes_nothing(runner, with_subscribers) -> None:
    result = invoke(runner, with_subscribers, "send", "2025-01", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "messages to send: 2" in result.output
    assert "skipped (no matching topics): 1" in result.output
    assert not (with_subscribers.parent / "outbox").exists()


def test_send_asks_then_sends_once(runner, with_subscribers) -> None:
    refused = invoke(runner, with_subscribers, "send", "2025-01", input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    result = invoke(runner, with_subscribers, "send", "2025-01", input="y\n")
    assert result.exit_code == 0, result.output
    assert "sent 2, failed 0" in result.output
    messages = outbox(with_subscribers)
    assert sorted(str(m["To"]) for m in messages) == ["all@example.net", "anxious@example.net"]
    again = invoke(runner, with_subscribers, "send", "2025-01", "--yes")
    assert again.exit_code == 0 and "nothing to send" in again.output
    assert len(outbox(with_subscribers)) == 2
    report = invoke(runner, with_subscribers, "deliveries", "2025-01")
    assert "sent     2" in report.output and "skipped  1" in report.output
    assert "groups@example.net" in report.output
    assert "none of their topics" in report.output


def test_test_send_goes_outside_the_ledger(runner, with_subscribers) -> None:
    result = invoke(runner, with_subscribers, "send", "2025-01", "--test-to", "editor@example.net")
    assert result.exit_code == 0, result.output
    (message,) = outbox(with_subscribers)
    assert str(message["Subject"]).startswith("[TEST] ")
    missing = invoke(runner, with_subscribers, "deliveries", "2025-01")
    assert missing.exit_code == 1 and "has not been sent or planned" in missing.output


def test_send_reports_content_errors_with_the_file(runner, with_subscribers) -> None:
    broken = with_subscribers.parent / "content" / "2025-01" / "01-alliance-in-depression.md"
    broken.write_text("---\ntitle: x\n---\nno topics\n", encoding="utf-8")
    result = invoke(runner, with_subscribers, "send", "2025-01", "--yes")
    assert result.exit_code == 1
    assert "01-alliance-in-depression.md: topics:" in result.output
    assert not (with_subscribers.parent / "outbox").exists()


def test_unknown_list_is_an_error(runner, with_subscribers) -> None:
    result = invoke(runner, with_subscribers, "send", "2025-01", "--list", "nope", "--yes")
    assert result.exit_code == 1 and "unknown list 'nope'" in result.output


def test_demo_on_a_fresh_copy_of_the_project(runner, tmp_path) -> None:
    for name in ("content", "demo"):
        shutil.copytree(REPO / name, tmp_path / name)
    shutil.copy(REPO / "config.toml", tmp_path / "config.toml")
    config = tmp_path / "config.toml"
    result = invoke(runner, config, "demo")
    assert result.exit_code == 0, result.output
    assert "imported 30 demo subscribers" in result.output
    written = len(outbox(config))
    assert written > 0
    assert f"messages written: {written}" in " ".join(result.output.split())
    assert str(tmp_path / "outbox") in result.output.replace("\n", "")
    # Every message is a valid multipart message with both parts and working links.
    for message in outbox(config):
        assert message.get_body(("plain",)) is not None
        assert "/u/" in str(message["List-Unsubscribe"])
    again = invoke(runner, config, "demo")
    assert again.exit_code == 0, again.output
    assert len(outbox(config)) == written


def intro_phrases(issue) -> dict[str, str]:
    """The first words of each summary's part of the intro, by slug."""
    common = set(issue.intro.common.splitlines())
    phrases = {}
    for slug in issue.intro.slugs:
        [line] = [x for x in issue.intro_for([slug]).splitlines() if x and x not in common]
        phrases[slug] = " ".join(line.removeprefix("- ").split()[:8])
    return phrases


def test_every_demo_reader_gets_the_intro_of_the_summaries_they_get(runner, tmp_path) -> None:
    """The defect: 11 of 20 demo readers got one summary under an intro about two."""
    for name in ("content", "demo"):
        shutil.copytree(REPO / name, tmp_path / name)
    shutil.copy(REPO / "config.toml", tmp_path / "config.toml")
    config = tmp_path / "config.toml"
    assert invoke(runner, config, "demo").exit_code == 0
    issue = load_issue(tmp_path / "content", "2026-11", default_taxonomy(), "x")
    phrases = intro_phrases(issue)
    assert set(phrases) == {s.slug for s in issue.summaries}
    counts = set()
    for message in outbox(config):
        for part in ("plain", "html"):
            body = message.get_body((part,)).get_content()
            text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())
            # Whitespace-normalized: the text part wraps long titles over two lines.
            got = {s.slug for s in issue.summaries if " ".join(s.title.split()) in text}
            shown = {slug for slug, phrase in phrases.items() if phrase in text}
            assert shown == got, (message["To"], part)
            assert "{summary=" not in body
            counts.add(len(got))
    assert counts == {1, 2}  # readers of one summary and of both


@pytest.mark.parametrize(
    ("base_url", "allow", "refused"),
    [
        ("http://news.example.org", False, True),
        ("http://news.example.org", True, False),
        ("https://news.example.org", False, False),
        ("http://127.0.0.1:8000", False, False),
        ("http://localhost:8000", False, False),
    ],
)
def test_smtp_sends_need_https_links(tmp_path, base_url, allow, refused) -> None:
    config = write_config(
        tmp_path,
        newsletter={"base_url": base_url},
        delivery={"transport": "smtp", "allow_insecure_links": allow},
        smtp={"port": 1},  # nothing listens: a send that passes the check stops at the preflight
    )
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    assert (
        runner.invoke(
            main, ["--config", str(config), "subscribers", "add", "ana@example.org"]
        ).exit_code
        == 0
    )
    result = runner.invoke(main, ["--config", str(config), "send", "2025-01", "--yes"])
    assert result.exit_code == 1
    assert ("real mail needs https links" in result.output) is refused, result.output
    if refused:
        assert "allow_insecure_links" in result.output
        assert "audience" not in result.output  # stopped before planning or showing a plan


def demo_project(tmp_path):
    for name in ("content", "demo"):
        shutil.copytree(REPO / name, tmp_path / name)
    shutil.copy(REPO / "config.toml", tmp_path / "config.toml")
    return tmp_path / "config.toml"


def test_demo_never_uses_smtp(runner, tmp_path) -> None:
    config = demo_project(tmp_path)
    text = config.read_text(encoding="utf-8").replace('transport = "maildir"', 'transport = "smtp"')
    config.write_text(text, encoding="utf-8")
    result = invoke(runner, config, "demo")
    assert result.exit_code == 1
    assert "the demo only writes to a Maildir" in result.output
    assert not (tmp_path / "subscribers.db").exists()  # refused before touching anything


def test_demo_refuses_a_database_with_real_subscribers(runner, tmp_path) -> None:
    config = demo_project(tmp_path)
    assert invoke(runner, config, "db", "upgrade").exit_code == 0
    assert invoke(runner, config, "subscribers", "add", "real@example.org").exit_code == 0
    result = invoke(runner, config, "demo")
    assert result.exit_code == 1
    assert "1 subscriber(s) the demo did not add" in " ".join(result.output.split())
    assert not (tmp_path / "outbox").exists()


def test_topics_without_test_to_is_an_error_not_ignored(runner, with_subscribers) -> None:
    result = invoke(runner, with_subscribers, "send", "2025-01", "--topics", "empathy", "--yes")
    assert result.exit_code == 2
    assert "--topics only cuts a test send" in result.output
    assert not (with_subscribers.parent / "outbox").exists()


def test_send_refuses_an_issue_that_fails_its_checks(runner, with_subscribers) -> None:
    """A summary so long that Gmail would clip the message: refused by every send path."""
    folder = with_subscribers.parent / "content" / "2025-01"
    summary = next(folder.glob("*alliance*.md"))
    text = summary.read_text(encoding="utf-8")
    filler = "\n\n".join(f"Paragraph {n} of a very long summary. " * 30 for n in range(120))
    summary.write_text(text.replace("## Practice", filler + "\n\n## Practice", 1), "utf-8")
    result = invoke(runner, with_subscribers, "send", "2025-01", "--yes")
    assert result.exit_code == 1
    assert "fails its checks, so nothing was planned or sent" in result.output
    assert "Gmail clips messages over 102 KB" in result.output
    assert not (with_subscribers.parent / "outbox").exists()
    ledger = invoke(runner, with_subscribers, "deliveries", "2025-01")
    assert ledger.exit_code == 1 and "has not been sent or planned" in ledger.output


def test_smtp_sends_need_a_postal_address(tmp_path) -> None:
    config = write_config(
        tmp_path, newsletter={"postal_address": ""}, delivery={"transport": "smtp"}
    )
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    result = runner.invoke(main, ["--config", str(config), "send", "2025-01", "--yes"])
    assert result.exit_code == 1
    assert "[newsletter] postal_address is empty" in result.output


@pytest.mark.parametrize(
    "args",
    [
        ["worker", "--poll", "-1"],
        ["worker", "--month", "nope"],
        ["deliveries", "2025-01", "--limit", "-1"],
        ["bounces", "list", "--limit", "0"],
        ["schedule", "show", "--count", "-1"],
    ],
)
def test_out_of_range_options_are_usage_errors(runner, maildir_config, args) -> None:
    result = invoke(runner, maildir_config, *args)
    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output
    assert "Traceback" not in result.output


def test_deliveries_filter_by_status_and_print_whole_rows(runner, with_subscribers) -> None:
    assert invoke(runner, with_subscribers, "send", "2025-01", "--yes").exit_code == 0
    skipped = invoke(
        runner, with_subscribers, "deliveries", "2025-01", "--status", "skipped", "--format", "csv"
    )
    assert skipped.exit_code == 0, skipped.output
    rows = list(csv.DictReader(io.StringIO(skipped.output)))
    assert [(r["email"], r["status"]) for r in rows] == [("groups@example.net", "skipped")]
    assert rows[0]["error"] == "none of their topics is in this issue"
    sent = invoke(
        runner, with_subscribers, "deliveries", "2025-01", "--status", "sent", "--format", "json"
    )
    assert sorted(r["email"] for r in json.loads(sent.output)) == [
        "all@example.net",
        "anxious@example.net",
    ]
    table = invoke(runner, with_subscribers, "deliveries", "2025-01", "--status", "failed")
    assert table.exit_code == 0 and "groups@example.net" not in table.output
    bad = invoke(runner, with_subscribers, "deliveries", "2025-01", "--status", "lost")
    assert bad.exit_code == 2


# --- issue 12: late joiners, `newsletter plan`, readable variants ---------------------------


def test_send_leaves_late_joiners_out_and_says_how_to_include_them(
    runner, with_subscribers
) -> None:
    assert invoke(runner, with_subscribers, "send", "2025-01", "--yes").exit_code == 0
    assert invoke(runner, with_subscribers, "subscribers", "add", "late@example.net").exit_code == 0
    dry = invoke(runner, with_subscribers, "send", "2025-01", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "left out: 1 late joiner, who joined after 2025-01 was first planned (" in dry.output
    assert "`newsletter send 2025-01 --include-late-joiners` includes them" in dry.output
    assert "messages to send: 0" in dry.output
    again = invoke(runner, with_subscribers, "send", "2025-01", "--yes")
    assert again.exit_code == 0 and "nothing to send" in again.output
    resumed = invoke(runner, with_subscribers, "send", "2025-01", "--yes", "--resume")
    assert resumed.exit_code == 0 and "nothing to send" in resumed.output
    assert len(outbox(with_subscribers)) == 2
    asked = invoke(runner, with_subscribers, "send", "2025-01", "--yes", "--include-late-joiners")
    assert asked.exit_code == 0, asked.output
    assert "sent 1, failed 0" in asked.output
    assert sorted(str(m["To"]) for m in outbox(with_subscribers))[-1] == "late@example.net"


def test_plan_writes_the_rows_for_workers_without_sending(runner, with_subscribers) -> None:
    first = invoke(runner, with_subscribers, "plan", "2025-01")
    assert first.exit_code == 0, first.output
    assert "2025-01: planned 3 new rows, 2 to send: run `newsletter worker` to send" in first.output
    assert not (with_subscribers.parent / "outbox").exists()  # nothing sent
    second = invoke(runner, with_subscribers, "plan", "2025-01")
    assert second.exit_code == 0, second.output
    assert "planned 0 new rows, 2 to send" in second.output  # idempotent
    assert "already in the ledger: 2 queued, 1 skipped" in second.output
    # The rows are exactly those `send` would have written: the worker sends them.
    worked = invoke(runner, with_subscribers, "worker", "--once")
    assert worked.exit_code == 0, worked.output
    assert sorted(str(m["To"]) for m in outbox(with_subscribers)) == [
        "all@example.net",
        "anxious@example.net",
    ]
    assert invoke(runner, with_subscribers, "subscribers", "add", "late@example.net").exit_code == 0
    late = invoke(runner, with_subscribers, "plan", "2025-01")
    assert "`newsletter plan 2025-01 --include-late-joiners` includes them" in late.output
    assert "planned 0 new rows; nothing to send" in late.output
    included = invoke(runner, with_subscribers, "plan", "2025-01", "--include-late-joiners")
    assert "planned 1 new row, 1 to send: run `newsletter worker`" in included.output
    assert invoke(runner, with_subscribers, "worker", "--once").exit_code == 0
    assert len(outbox(with_subscribers)) == 3


def test_plan_refuses_an_issue_that_fails_its_checks(runner, with_subscribers) -> None:
    broken = with_subscribers.parent / "content" / "2025-01" / "01-alliance-in-depression.md"
    broken.write_text("---\ntitle: x\n---\nno topics\n", encoding="utf-8")
    result = invoke(runner, with_subscribers, "plan", "2025-01")
    assert result.exit_code == 1
    assert "01-alliance-in-depression.md: topics:" in result.output
    ledger = invoke(runner, with_subscribers, "deliveries", "2025-01")
    assert "has not been sent or planned" in ledger.output


def test_the_plan_names_variants_by_summary_titles(runner, with_subscribers) -> None:
    result = invoke(runner, with_subscribers, "send", "2025-01", "--dry-run")
    assert result.exit_code == 0, result.output
    assert ";topics" not in result.output and "cbt-for-anxiety" not in result.output
    assert "1 reader: CBT Outperforms Placebo for Adult Anxiety Disorders; with topic notes" in (
        result.output
    )


def test_the_demo_plan_reads_as_summary_titles(runner, tmp_path) -> None:
    config = demo_project(tmp_path)
    result = invoke(runner, config, "demo")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert ";topics" not in result.output and "potentially-harmful" not in result.output
    assert (
        "  9 readers: First, Do No Harm: Psychological Treatments That Can Make Things Worse + "
        "Adding Psychotherapy to Antidepressants Improves Outcomes; with topic notes"
    ) in lines
    summary = next(line for line in lines if line.startswith("sent 20,"))
    assert "variants rendered in" in summary and "wall time" in summary


def test_output_off_a_terminal_is_never_wrapped(runner, tmp_path) -> None:
    # Cron mail and pipes get each line whole: rich wrapped them at 80 columns, splitting the
    # issue's subject and the Maildir path over two lines.
    config = demo_project(tmp_path)
    result = invoke(runner, config, "demo")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(
        line.startswith("subscribers: 30 (28 active); newest issue: 2026-11 — ")
        and line.endswith("treatments that can harm")
        for line in lines
    ), result.output
    assert any(
        line.startswith("look here: ") and line.endswith("open in any mail client)")
        for line in lines
    ), result.output
