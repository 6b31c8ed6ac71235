"""The admin pages in Chromium (Playwright) against uvicorn: usable at 375 px (the page never
scrolls sideways; wide tables scroll inside their box) and axe-core clean (no serious or
critical violation) at 375 and 1280 px, in light and dark colour schemes.

One server, one browser and one logged-in state for the whole module: the pages are only read.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import chromium
from browser import serious_violations
from conftest import ADMIN_PASSWORD
from conftest import TEST_SECRET
from conftest import make_config
from smtp_sink import get_free_port
from web_server import uvicorn_in_thread

from newsletter.config import settings_from_dict
from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import default_taxonomy
from newsletter.passwords import hash_password
from newsletter.sending.campaign import send_month
from newsletter.store import audit
from newsletter.store import subscribers as api
from newsletter.store.engine import make_engine
from newsletter.store.engine import transaction
from newsletter.store.models import BOUNCED
from newsletter.store.models import PENDING
from newsletter.transport.memory import MemoryTransport
from newsletter.web import create_app

pytestmark = [pytest.mark.browser]
LONG = "a.very.long.address.of.a.clinician.at.a.hospital@department-of-psychiatry.example.org"


@pytest.fixture(scope="module")
def site(tmp_path_factory, migrated_sqlite) -> Iterator[dict]:
    """The app under uvicorn with a few subscribers (one with a very long address) and a log."""
    folder = tmp_path_factory.mktemp("admin-browser")
    shutil.copyfile(migrated_sqlite, folder / "subscribers.db")
    settings = settings_from_dict(make_config(folder), folder)
    port = get_free_port()
    settings.newsletter.base_url = f"http://127.0.0.1:{port}"
    settings.web.login_failure_delay = 0.0
    settings.schedule.timezone = "America/Toronto"
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("NEWSLETTER_ADMIN_PASSWORD_HASH", hash_password(ADMIN_PASSWORD))
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", TEST_SECRET)  # the autouse one is per test
    engine = make_engine(settings.database.url)
    taxonomy = default_taxonomy()
    with transaction(engine) as session:
        first = api.add_subscriber(session, settings, taxonomy, LONG, name="Dr. Long Name Here")
        api.add_subscriber(session, settings, taxonomy, "pat@example.com", status=PENDING)
        api.add_subscriber(
            session, settings, taxonomy, "bo@example.com", status=BOUNCED, topics={"empathy"}
        )
        audit.record(session, "admin", "import", "people.csv", "3 added, 0 updated, 0 rejected")
        audit.record(session, "admin", "edit-subscriber", "subscriber 1", "changed " + "x " * 80)
        subscriber_id = first.id
    # One sent issue, so that its report and the dashboard have something to show.
    issue = load_issue(settings.content.dir, "2025-01", taxonomy, settings.newsletter.name)
    send_month(engine, settings, issue, transport=MemoryTransport())
    app = create_app(settings, transport_factory=MemoryTransport, engine=engine)
    try:
        with uvicorn_in_thread(app, port):
            yield {"base": settings.newsletter.base_url, "subscriber": subscriber_id}
    finally:
        engine.dispose()
        monkeypatch.undo()


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def logged_in(browser, site, tmp_path_factory) -> Path:
    """The storage state (cookies) of a browser that logged in through the form."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(site["base"] + "/admin/login")
        page.fill("#name", "admin")
        page.fill("#password", ADMIN_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("text=Log out admin")
        state = tmp_path_factory.mktemp("state") / "state.json"
        context.storage_state(path=str(state))
    finally:
        context.close()
    return state


def admin_pages(site) -> list[str]:
    return [
        "/admin/issues",
        "/admin/issues/2025-01",
        "/admin/issues/2025-01/preview",
        "/admin/issues/2025-01/send",
        "/admin/subscribers",
        f"/admin/subscribers/{site['subscriber']}",
        "/admin/import",
        "/admin/schedule",
        "/admin/audit",
        "/admin/dashboard",
        "/admin/issues/2025-01/report",
        "/admin/issues/2025-01/new-summary",
        "/admin/issues/2025-01/summaries/alliance-in-depression",
    ]


def _overflow(page) -> int:
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def _serious(page, axe: Path, label: str) -> list[str]:
    page.add_script_tag(path=str(axe))
    return serious_violations(page, label)


def test_the_subscriber_list_and_a_bulk_change_fit_a_phone(
    browser,
    site,
    logged_in,
    axe_script,
    tmp_path,
) -> None:
    context = browser.new_context(
        viewport={"width": 375, "height": 800}, storage_state=logged_in, bypass_csp=True
    )
    try:
        page = context.new_page()
        page.goto(site["base"] + "/admin/subscribers")
        page.wait_for_selector("text=3 subscribers")
        assert _overflow(page) <= 0, "the subscribers page scrolls sideways at 375 px"
        box = page.locator(".table-wrap").first
        # The table is wider than the phone: it scrolls inside its box, which holds the address.
        sizes = box.evaluate("el => [el.scrollWidth, el.clientWidth]")
        assert sizes[0] > sizes[1] and sizes[1] <= 375
        assert page.get_by_role("link", name=LONG).count() == 1
        # The bulk form, the pager and the add form are within the page's width.
        for selector in ("form[action='/admin/subscribers/bulk']", ".pager", "#new-email"):
            right = page.locator(selector).first.evaluate("el => el.getBoundingClientRect().right")
            assert right <= 375, f"{selector} is cut off at 375 px ({right})"
        page.screenshot(path=str(tmp_path / "admin-subscribers-375.png"), full_page=True)
        # The bulk change's confirm page, reached through the form as an admin would.
        page.goto(site["base"] + "/admin/subscribers?status=bounced")
        page.click("form[action='/admin/subscribers/bulk'] >> text=Review the change…")
        page.wait_for_selector("text=Change 1 subscriber?")
        assert _overflow(page) <= 0
        assert _serious(page, axe_script, "bulk confirm at 375 px") == []
        page.goto(site["base"] + "/admin/subscribers?status=bounced")
        page.wait_for_selector("text=1 subscriber,")  # not confirmed: nothing changed
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_admin_pages_at_375_and_1280_px(browser, site, logged_in, axe_script, scheme) -> None:
    problems: list[str] = []
    for width in (375, 1280):
        context = browser.new_context(
            viewport={"width": width, "height": 900},
            color_scheme=scheme,
            storage_state=logged_in,
            bypass_csp=True,  # only so that axe-core can be injected
        )
        try:
            page = context.new_page()
            for path in [*admin_pages(site), "/admin/login"]:
                if path == "/admin/login":
                    context.clear_cookies()
                response = page.goto(site["base"] + path)
                assert response.status == 200, f"{path}: {response.status}"
                if width == 375 and (overflow := _overflow(page)) > 0:
                    problems.append(f"{path}: scrolls sideways by {overflow}px at 375 px")
                problems += _serious(page, axe_script, f"{path} at {width} px, {scheme}")
        finally:
            context.close()
    assert problems == []


def test_an_invalid_form_ties_its_error_to_the_field_and_focuses_it(
    browser, site, logged_in, axe_script
) -> None:
    """The add-subscriber form sent with an address the server refuses (the browser's own
    check passes it): the error text is the field's description and the field has focus."""
    context = browser.new_context(
        viewport={"width": 375, "height": 900}, storage_state=logged_in, bypass_csp=True
    )
    try:
        page = context.new_page()
        page.goto(site["base"] + "/admin/subscribers")
        page.fill("#new-email", "pat@example.com")  # a valid address, already subscribed
        page.fill("#new-name", "Pat")
        page.click("form[method=post][action='/admin/subscribers'] button[type=submit]")
        page.wait_for_selector("#new-email-error")
        field = page.locator("#new-email")
        assert field.get_attribute("aria-invalid") == "true"
        described = field.get_attribute("aria-describedby") or ""
        assert "new-email-error" in described.split()
        error_text = page.locator("#new-email-error").inner_text()
        assert "already subscribed" in error_text
        # What a screen reader announces: the field's accessible description is the error.
        description = page.evaluate(
            "() => document.getElementById('new-email').getAttribute('aria-describedby')"
            ".split(' ').map(id => document.getElementById(id).textContent).join(' ')"
        )
        assert "already subscribed" in description
        assert page.evaluate("() => document.activeElement.id") == "new-email"
        assert _overflow(page) <= 0
        assert _serious(page, axe_script, "add-subscriber error at 375 px") == []
        # The login form too, after a wrong password: focus on the password, tied to its error.
        context.clear_cookies()
        page.goto(site["base"] + "/admin/login")
        page.fill("#name", "admin")
        page.fill("#password", "not the password")
        page.click("button[type=submit]")
        page.wait_for_selector("#password-error")
        assert page.locator("#password").get_attribute("aria-describedby") == "password-error"
        assert page.evaluate("() => document.activeElement.id") == "password"
        assert _serious(page, axe_script, "login error at 375 px") == []
    finally:
        context.close()
