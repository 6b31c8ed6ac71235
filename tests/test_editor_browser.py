"""The issue editor in a real browser: Chromium (Playwright) against uvicorn, mail through aiosmtpd.

From an empty month: create it, write two summaries (topics found with the search box, the
preview updated as you type), set the subject, preview the issue as a topic set and test-send
it, read from a real SMTP server, then send it and find it in the rebuilt archive. Screenshots
at 375 and 1280 px go to the test's temp folder.
"""

from __future__ import annotations

import pytest
from test_browser_web import PASSWORD
from test_browser_web import shoot
from test_browser_web import text_part
from test_browser_web import wait_for_messages

from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import default_taxonomy
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory

pytest_plugins = ["test_browser_web"]  # its fixtures: site (uvicorn + aiosmtpd), page
pytestmark = [pytest.mark.browser]

FIRST = {
    "title": "Empathy Goes With Better Outcomes",
    "search": "empath",
    "topic": "Empathy",
    "type": "Meta-analysis",
    "doi": "10.1037/pst0000175",
    "summary": "Across 82 studies, *therapist empathy* went with better outcomes.",
    "implications": "Check that you understood, out loud.",
}
SECOND = {
    "title": "Dropping Out Is Common and Predictable",
    "search": "drop",
    "topic": "Attendance, Attrition, and Drop-Out",
    "type": "Meta-analysis",
    "doi": "10.1037/a0028226",
    "summary": "About one client in five *drops out* of therapy.",
    "implications": "Talk about length and expectations at the start.",
}


def write_summary(page, base: str, month: str, fields: dict, tmp_path, shot: str = "") -> None:
    """Add a summary through the editor: topic by search, preview as you type, save."""
    page.goto(f"{base}/admin/issues/{month}")
    page.click("a:has-text('Add a summary')")
    page.wait_for_selector("h1:has-text('New summary')")
    page.fill("#title", fields["title"])
    search = page.locator("#topic-search")
    search.fill(fields["search"])  # the search box (shown by topics.js) narrows the list
    visible = page.locator(".topics-field .choice:visible")
    assert visible.count() == 1, "the search should leave one topic"
    visible.locator("input").check()
    page.select_option("#research_type", label=fields["type"])
    page.fill("#doi", fields["doi"])
    page.locator("#summary").press_sequentially(fields["summary"], delay=0)
    page.fill("#implications", fields["implications"])
    # editor.js asks the server for the preview as you type.
    page.wait_for_selector("#summary-preview em")
    page.wait_for_selector(f"#implications-preview p:has-text('{fields['implications']}')")
    if shot:
        shoot(page, tmp_path, shot)
    page.click("button:has-text('Save summary')")
    page.wait_for_selector("text=Saved.")


def test_write_preview_test_send_send_and_publish_a_new_issue(
    site, page, sink, settings, engine, tmp_path
):
    page.goto(f"{site}/admin")
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_selector("h1:has-text('Issues')")

    page.fill("#month", "2025-03")
    page.click("button:has-text('Create month')")
    page.wait_for_selector("h1:has-text('2025-03')")
    assert page.inner_text("#issue-state") == "draft"
    assert "No summaries yet" in page.content()

    write_summary(page, site, "2025-03", FIRST, tmp_path, shot="editor-summary")
    write_summary(page, site, "2025-03", SECOND, tmp_path)

    page.goto(f"{site}/admin/issues/2025-03")
    page.fill("#subject", "Empathy and dropout")
    page.fill("#intro", "Two findings this month.")
    page.check("input[name=status][value=ready]")
    page.click("button:has-text('Save issue')")
    page.wait_for_selector("text=Saved.")
    assert page.inner_text("#issue-state") == "ready"
    titles = page.locator(".desk-summaries li a strong").all_inner_texts()
    assert titles == [FIRST["title"], SECOND["title"]]
    shoot(page, tmp_path, "editor-issue")
    issue = load_issue(settings.content.dir, "2025-03", default_taxonomy(), "Test Digest")
    assert [s.title for s in issue.summaries] == [FIRST["title"], SECOND["title"]]

    # Preview as a topic set: only the summary of the topic.
    preview = page.locator("#preview form")
    preview.locator("summary:has-text('Or choose topics')").click()
    preview.locator("input[name=topic_mode][value=some]").check()
    preview.locator("input[name=topics][value=empathy]").check()
    preview.locator("button:has-text('Preview')").click()
    page.wait_for_selector("h1:has-text('Preview of 2025-03')")
    frame = page.frame_locator("iframe.frame-mobile")
    frame.locator("text=Practice Implications").first.wait_for()
    shown = frame.locator("body").inner_text()
    assert FIRST["title"] in shown and SECOND["title"] not in shown
    shoot(page, tmp_path, "editor-preview")

    page.goto(f"{site}/admin/issues/2025-03")
    page.fill("#addresses", "editor@example.org")
    page.click("button:has-text('Send test')")
    page.wait_for_selector("text=test sent to editor@example.org")
    [message] = wait_for_messages(sink, 1)
    assert message.recipients == ("editor@example.org",)
    assert b"[TEST] Empathy and dropout" in message.content
    text = text_part(message.content)
    assert FIRST["title"] in text and SECOND["title"] in text
    assert "Two findings this month." in text

    # The real send: the archive is rebuilt after it, with the issue's page in it.
    with session_factory(engine)() as session:
        api.add_subscriber(session, settings, default_taxonomy(), "reader@example.org")
        session.commit()
    page.goto(f"{site}/admin/issues/2025-03/send")
    page.click("button:has-text('Send 1 message now')")
    [_, sent] = wait_for_messages(sink, 2)
    assert sent.recipients == ("reader@example.org",)
    for _ in range(100):  # the send ends (and the archive is built) just after the message
        page.goto(f"{site}/admin/issues/2025-03")
        if page.inner_text("#issue-state") == "sent":
            break
        page.wait_for_timeout(100)
    assert page.inner_text("#issue-state") == "sent"
    page.goto(f"{site}/archive/2025-03/")
    archived = page.content()
    assert FIRST["title"] in archived and SECOND["title"] in archived
    shoot(page, tmp_path, "editor-archive")
