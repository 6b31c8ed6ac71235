"""What SpamAssassin thinks of our mail: the digest and a transactional email, local rules only.

`spamassassin -t -L` (test mode, no network tests: no DNS blocklists, no Razor/Pyzor) scores
the message exactly as a preview or a real send builds it, with its own home folder and no
Bayes, so the run leaves nothing behind and depends on nothing learnt. Skips without
SpamAssassin by hand, fails under CI (.ci/run installs the `spamassassin` package).

The scores are printed (`pytest -s tests/test_spam.py`) and attached to the test report as
the `spamassassin` property.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from outside_tools import require_tool

from newsletter.content.choice import TopicChoice
from newsletter.content.reader import load_issue
from newsletter.message.preview import preview_parts
from newsletter.personalize import make_recipient
from newsletter.tokens import Signer
from newsletter.web.mail import Mailer
from newsletter.web.mail import Person

# Rules a well-made message of ours must never trigger, whatever else scores.
NEVER = {"HTML_FONT_LOW_CONTRAST", "HTML_FONT_INVALID_COLOR"}
# Far below SpamAssassin's 5.0 threshold: informational rules score 0 or less, and anything
# that scores is a defect of our markup or headers worth a look.
MAX_SCORE = 0.5


@dataclass(frozen=True)
class SpamReport:
    score: float
    required: float
    rules: dict[str, float]  # rule name → points

    def summary(self) -> str:
        fired = ", ".join(f"{name} {points:+.1f}" for name, points in sorted(self.rules.items()))
        return f"{self.score:.1f} points (required {self.required:.1f}): {fired}"


def parse_report(output: str) -> SpamReport:
    """The score and fired rules of `spamassassin -t` output (its "Content analysis" table)."""
    head = re.search(
        r"Content analysis details:\s+\((-?[\d.]+) points, (-?[\d.]+) required\)", output
    )
    assert head, f"no SpamAssassin report in:\n{output[-2000:]}"
    table = output[head.end() :]
    rules = {
        m.group(2): float(m.group(1))
        for m in re.finditer(r"^\s*(-?\d+\.\d+)\s+([A-Z][A-Z0-9_]+)\s", table, re.MULTILINE)
    }
    assert rules, f"no rules in the report:\n{table}"
    return SpamReport(float(head.group(1)), float(head.group(2)), rules)


@pytest.fixture
def spamassassin(tmp_path: Path):
    """Score one message: a function bytes → SpamReport."""
    program = shutil.which("spamassassin")
    require_tool(program, "needs SpamAssassin (apt-get install spamassassin)")
    home = tmp_path / "sa-home"
    home.mkdir()

    def score(message: bytes) -> SpamReport:
        result = subprocess.run(
            [
                str(program),
                "-t",  # test mode: the report is appended to the message
                "-L",  # local tests only: no network
                "-p",
                str(home / "user_prefs"),
                "--cf=use_bayes 0",
                "--cf=bayes_auto_learn 0",
            ],
            input=message,
            capture_output=True,
            env={"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            timeout=120,
            check=False,
        )
        output = result.stdout.decode("utf-8", "replace")
        assert result.returncode == 0, result.stderr.decode("utf-8", "replace")[-2000:]
        return parse_report(output)

    return score


def check(report: SpamReport, record_property, what: str) -> None:
    print(f"\nSpamAssassin, {what}: {report.summary()}")
    record_property("spamassassin", f"{what}: {report.summary()}")
    assert not NEVER & set(report.rules), report.summary()
    assert report.score <= MAX_SCORE, report.summary()


def test_parse_report_reads_the_score_and_the_rules() -> None:
    output = (
        "Subject: x\n\nbody\n\nContent analysis details:   (0.7 points, 5.0 required)\n\n"
        " pts rule name              description\n"
        "---- ---------------------- --------------------------------------------------\n"
        "-0.0 NO_RECEIVED            Informational: message has no Received headers\n"
        " 0.7 HTML_FONT_LOW_CONTRAST BODY: HTML font color similar or identical to\n"
        "                            background\n"
        " 0.0 HTML_MESSAGE           BODY: HTML included in message\n"
    )
    report = parse_report(output)
    assert report.score == 0.7 and report.required == 5.0
    assert report.rules == {"NO_RECEIVED": -0.0, "HTML_FONT_LOW_CONTRAST": 0.7, "HTML_MESSAGE": 0.0}


def test_digest_passes_spamassassin(settings, taxonomy, spamassassin, record_property) -> None:
    issue = load_issue(settings.content.dir, "2025-01", taxonomy, settings.newsletter.name)
    topics = frozenset({"anxiety-disorders", "alliance-and-therapeutic-relationship"})
    recipient = make_recipient(settings, "ada@example.net", "Ada Reader", topics)
    parts = preview_parts(settings, issue, recipient)
    assert "Matches your topics" in parts.html  # the personal variant, with every slot filled
    check(spamassassin(parts.eml), record_property, "digest")


def test_confirmation_passes_spamassassin(
    settings, taxonomy, engine, spamassassin, record_property
) -> None:
    mailer = Mailer(settings, taxonomy, Signer(settings.secret_key()), engine)
    message = mailer.confirmation(Person(1, "ada@example.net", "Ada Reader", TopicChoice.every()))
    check(spamassassin(message), record_property, "confirmation")
