"""Real-browser tests of the web app: Chromium (Playwright) against uvicorn, mail through aiosmtpd.

subscribe → confirmation email from a real SMTP server → confirm → change topics → one-click
unsubscribe; and the admin's login → preview → test send. Every page is screenshotted at 375
and 1280 px into the test's temp folder, and must not scroll sideways at 375 px.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import chromium
from conftest import ADMIN_PASSWORD
from smtp_sink import get_free_port
from smtp_sink import running_sink
from web_server import uvicorn_in_thread

from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import default_taxonomy
from newsletter.sending.campaign import send_month
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory
from newsletter.store.models import ACTIVE
from newsletter.store.models import UNSUBSCRIBED
from newsletter.transport import make_transport
from newsletter.web import create_app

PASSWORD = ADMIN_PASSWORD

pytestmark = [pytest.mark.browser]


@pytest.fixture
def sink():
    with running_sink() as server:
        yield server


@pytest.fixture
def site(settings, engine, sink, monkeypatch, admin_password_hash) -> Iterator[str]:
    """The web app under uvicorn on a free port, sending mail to the SMTP sink."""

    port = get_free_port()
    base = f"http://127.0.0.1:{port}"
    settings.newsletter.base_url = base
    settings.archive.base_path = "/archive/"  # where the app serves the archive, as in the demo
    settings.delivery.transport = "smtp"
    settings.smtp.host = sink.host
    settings.smtp.port = sink.port
    settings.web.login_failure_delay = 0.0
    monkeypatch.setenv("NEWSLETTER_ADMIN_PASSWORD_HASH", admin_password_hash)
    app = create_app(settings, engine=engine)
    try:
        with uvicorn_in_thread(app, port):
            yield base
    finally:
        app.state.ctx.engine.dispose()


@pytest.fixture
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def shoot(page, folder: Path, name: str) -> None:
    """Screenshots at 375 and 1280 px; no horizontal scrolling at 375 px."""
    page.set_viewport_size({"width": 375, "height": 800})
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name}: the page scrolls sideways by {overflow}px at 375 px"
    page.screenshot(path=str(folder / f"{name}-375.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(folder / f"{name}-1280.png"), full_page=True)


def wait_for_messages(sink, count: int, timeout: float = 15.0) -> list:
    deadline = time.monotonic() + timeout
    while len(sink.messages) < count:
        assert time.monotonic() < deadline, f"expected {count} messages, got {len(sink.messages)}"
        time.sleep(0.05)
    return sink.messages


def text_part(content: bytes) -> str:
    message = email.message_from_bytes(content, policy=email.policy.default)
    return message.get_body(("plain",)).get_content()


def test_subscribe_confirm_change_topics_and_unsubscribe(
    site, page, sink, engine, settings, tmp_path
):
    page.goto(f"{site}/subscribe")
    shoot(page, tmp_path, "subscribe")
    page.fill("#email", "ana@example.com")
    page.fill("#name", "Ana")
    page.check("input[name=topic_mode][value=some]")
    page.check("input[name=topics][value=anxiety-disorders]")
    page.check("input[name=topics][value=empathy]")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Check your inbox")
    shoot(page, tmp_path, "check-inbox")

    [confirmation] = wait_for_messages(sink, 1)
    text = text_part(confirmation.content)
    confirm_url = re.search(re.escape(site) + r"/confirm/\S+", text).group(0)
    page.goto(confirm_url)
    shoot(page, tmp_path, "confirm")
    page.click("text=Yes, subscribe me")
    page.wait_for_selector("text=You are subscribed")
    shoot(page, tmp_path, "confirmed")

    page.click("text=Choose your topics")
    page.wait_for_selector("h1:has-text('Your preferences')")
    shoot(page, tmp_path, "preferences")
    page.uncheck("input[name=topics][value=empathy]")
    page.check("input[name=topics][value=training]")
    page.click("text=Save my preferences")
    page.wait_for_selector("text=Your preferences are saved")
    with session_factory(engine)() as session:
        subscriber = api.get_subscriber(session, "ana@example.com")
        assert subscriber.status == ACTIVE
        assert subscriber.topic_slugs == {"anxiety-disorders", "training"}

    # The month's digest, through the same SMTP server; its links work in the browser.
    issue = load_issue(settings.content.dir, "2025-01", default_taxonomy(), "Test Digest")
    send_month(engine, settings, issue, make_transport(settings))
    digest = wait_for_messages(sink, 3)[-1]  # after the welcome note
    message = email.message_from_bytes(digest.content, policy=email.policy.default)
    html = message.get_body(("html",)).get_content()
    drop_url = re.search(re.escape(site) + r'/preferences/[^"]+\?drop=anxiety-disorders', html)
    page.goto(drop_url.group(0).replace("&amp;", "&"))
    page.wait_for_selector("text=Stop sending me Anxiety Disorders?")
    shoot(page, tmp_path, "drop-topic")

    unsubscribe_url = re.search(r"<(http[^>]+/u/[^>]+)>", message["List-Unsubscribe"]).group(1)
    page.goto(unsubscribe_url)
    page.wait_for_selector("button:has-text('Unsubscribe')")
    shoot(page, tmp_path, "unsubscribe")
    with session_factory(engine)() as session:
        assert api.get_subscriber(session, "ana@example.com").status == ACTIVE
    # What a mail provider does for RFC 8058: a bare POST, no cookies, no redirect.
    response = page.request.post(
        unsubscribe_url, form={"List-Unsubscribe": "One-Click"}, max_redirects=0
    )
    assert response.status == 200
    with session_factory(engine)() as session:
        assert api.get_subscriber(session, "ana@example.com").status == UNSUBSCRIBED
    page.goto(unsubscribe_url)
    page.wait_for_selector("text=You are unsubscribed")
    shoot(page, tmp_path, "unsubscribed")


def test_download_and_forget_through_the_emailed_link(site, page, sink, engine, settings, tmp_path):
    """The preferences page emails a short-lived link; the browser downloads and forgets
    through it (issue 11, item 8)."""
    from newsletter.tokens import PREFERENCES
    from newsletter.tokens import Signer

    with session_factory(engine)() as session:
        ana = api.add_subscriber(session, settings, default_taxonomy(), "ana@example.com")
        session.commit()
        prefs = Signer(settings.secret_key()).make(PREFERENCES, ana.id, ana.email)
    page.goto(f"{site}/preferences/{prefs}")
    page.click("text=Email me a link to download or delete my data")
    page.wait_for_selector("text=We have emailed a link to ana@example.com")
    shoot(page, tmp_path, "privacy-asked")
    [mail] = wait_for_messages(sink, 1)
    privacy_url = re.search(re.escape(site) + r"/privacy/\S+", text_part(mail.content)).group(0)
    page.goto(privacy_url)
    shoot(page, tmp_path, "privacy")
    with page.expect_download() as download:
        page.click("text=Download my data (JSON)")
    assert '"email": "ana@example.com"' in Path(download.value.path()).read_text()
    page.click("text=Forget me…")
    page.click("button:has-text('Delete my data')")
    page.wait_for_selector("text=Your data is deleted")
    shoot(page, tmp_path, "forgotten")
    with session_factory(engine)() as session:
        assert api.get_subscriber(session, "ana@example.com") is None


def test_admin_logs_in_previews_and_test_sends(site, page, sink, tmp_path):
    page.goto(f"{site}/admin")
    shoot(page, tmp_path, "admin-login")
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Log in')")
    page.wait_for_selector("h1:has-text('Issues')")
    shoot(page, tmp_path, "admin-issues")
    page.click("text=2025-01")
    page.wait_for_selector("h2:has-text('Preview')")
    shoot(page, tmp_path, "admin-issue")

    page.click("button:has-text('Preview')")
    page.wait_for_selector("h1:has-text('Preview of 2025-01')")
    frame = page.frame_locator("iframe.frame-mobile")
    frame.locator("text=Practice Implications").first.wait_for()
    assert "Gmail clips at 102 KB" in page.content()
    shoot(page, tmp_path, "admin-preview")

    page.go_back()
    page.fill("#addresses", "editor@example.org")
    page.click("button:has-text('Send test')")
    page.wait_for_selector("text=test sent to editor@example.org")
    [test_message] = wait_for_messages(sink, 1)
    assert test_message.recipients == ("editor@example.org",)
    assert b"[TEST]" in test_message.content

    page.goto(f"{site}/admin/subscribers")
    shoot(page, tmp_path, "admin-subscribers")
    page.click("button:has-text('Log out')")
    page.wait_for_selector("h1:has-text('Admin login')")
