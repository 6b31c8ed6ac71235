"""The reader's pages in Chromium (Playwright) against uvicorn: the topic picker at 375 and
1280 px (the Subscribe button's position measured, the filter, chips, keyboard-only use, no
sideways scrolling, no JavaScript), focus on the first error, and axe-core on every subscriber
page at both widths, light and dark.

One server and one browser for the whole module (a shared, migrated SQLite file; mail goes
to a memory transport). axe-core comes from npm once per machine, as in
tests/test_archive_browser.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import chromium
from conftest import TEST_SECRET
from conftest import make_config
from outside_tools import require_tool
from smtp_sink import get_free_port
from web_server import uvicorn_in_thread

from newsletter.config import settings_from_dict
from newsletter.content.taxonomy import default_taxonomy
from newsletter.store import engine as db
from newsletter.store import subscribers as api
from newsletter.store.models import PENDING
from newsletter.tokens import ADDRESS
from newsletter.tokens import CONFIRM
from newsletter.tokens import PREFERENCES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer
from newsletter.transport.memory import MemoryTransport
from newsletter.web import create_app

pytestmark = [pytest.mark.browser]

# The issue's target: at 375 px with "All topics", the Subscribe button within the first 1,000 px.
BUTTON_LIMIT = 1000
WIDTHS = (375, 1280)
MEASURED: dict[str, float] = {}  # written to the module's temp folder for the report


class Site:
    def __init__(self, base: str, tokens: dict[str, str], folder: Path) -> None:
        self.base, self.tokens, self.folder = base, tokens, folder


@pytest.fixture(scope="module")
def site(tmp_path_factory, migrated_sqlite) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("reader-site")
    shutil.copyfile(migrated_sqlite, folder / "subscribers.db")
    port = get_free_port()
    base = f"http://127.0.0.1:{port}"
    config = make_config(folder, newsletter={"base_url": base})
    config["database"]["url"] = f"sqlite:///{folder / 'subscribers.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEWSLETTER_SECRET_KEY", TEST_SECRET)
        settings = settings_from_dict(config, folder)
        engine = db.make_engine(settings.database.url)
        taxonomy = default_taxonomy()
        signer = Signer(TEST_SECRET)
        with db.transaction(engine) as session:
            ana = api.add_subscriber(
                session, settings, taxonomy, "ana@example.com", topics="empathy"
            )
            ben = api.add_subscriber(session, settings, taxonomy, "ben@example.com", status=PENDING)
            gone = api.add_subscriber(session, settings, taxonomy, "gone@example.com")
            api.add_subscriber(session, settings, taxonomy, "last@example.com")  # keeps ids
            tokens = {
                "preferences": signer.make(PREFERENCES, ana.id, ana.email),
                "unsubscribe": signer.make(UNSUBSCRIBE, ana.id, ana.email),
                "confirm": signer.make(CONFIRM, ben.id, ben.email),
                "address": signer.make(ADDRESS, ana.id, ana.email, {"email": "ana@work.example"}),
                "deleted": signer.make(PREFERENCES, gone.id, gone.email),
            }
            api.forget_subscriber(session, gone)
        app = create_app(settings, transport_factory=MemoryTransport, engine=engine)
        try:
            with uvicorn_in_thread(app, port):
                yield Site(base, tokens, folder)
        finally:
            (folder / "measured.json").write_text(json.dumps(MEASURED, indent=2))
            engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page_at(browser):
    contexts = []

    def open_page(width: int, scheme: str = "light", javascript: bool = True, axe: bool = False):
        height = 800 if width < 600 else 900
        context = browser.new_context(
            viewport={"width": width, "height": height},
            color_scheme=scheme,
            java_script_enabled=javascript,
            bypass_csp=axe,  # axe-core is injected as an inline script
        )
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


def sideways(page) -> int:
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def visible_topics(page) -> list[str]:
    return page.eval_on_selector_all(
        ".topic-groups .choice",
        "els => els.filter(e => e.offsetParent !== null).map(e => e.textContent.trim())",
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_the_subscribe_button_is_near_the_top_with_all_topics(site, page_at, width):
    page = page_at(width)
    page.goto(f"{site.base}/subscribe")
    assert page.is_checked("input[name=topic_mode][value=all]")
    assert visible_topics(page) == []  # collapsed while "All topics" is chosen
    box = page.get_by_role("button", name="Subscribe").bounding_box()
    bottom = box["y"] + box["height"] + page.evaluate("window.scrollY")
    MEASURED[f"subscribe_button_bottom_{width}px"] = round(bottom)
    MEASURED[f"subscribe_page_height_{width}px"] = page.evaluate(
        "document.documentElement.scrollHeight"
    )
    print(f"Subscribe button at {width}px: top {box['y']:.0f}px, bottom {bottom:.0f}px")  # -s
    assert bottom <= BUTTON_LIMIT, f"the Subscribe button ends {bottom:.0f}px down at {width}px"
    assert sideways(page) <= 0
    page.screenshot(path=str(site.folder / f"subscribe-all-{width}.png"), full_page=True)


def test_without_javascript_the_list_is_simply_open(site, page_at):
    page = page_at(375, javascript=False)
    page.goto(f"{site.base}/subscribe")
    assert len(visible_topics(page)) == len(default_taxonomy().topics)
    assert not page.is_visible("#topic-search")  # the filter needs JavaScript
    assert sideways(page) <= 0


@pytest.mark.parametrize("width", WIDTHS)
def test_find_a_topic_shows_only_matching_topics_and_chips_stay(site, page_at, width):
    page = page_at(width)
    page.goto(f"{site.base}/subscribe")
    page.check("input[name=topic_mode][value=some]")
    assert len(visible_topics(page)) == len(default_taxonomy().topics)
    page.fill("#topic-search", "depress")
    assert visible_topics(page) == ["Depression and Depressive Symptoms"]
    assert page.inner_text("#topic-count") == "1 topic matches."
    assert (
        page.eval_on_selector_all(  # the other groups are hidden, their legends too
            ".topic-group", "els => els.filter(e => e.offsetParent !== null).length"
        )
        == 1
    )
    page.check("input[name=topics][value=depression-and-depressive-symptoms]")
    page.fill("#topic-search", "alliance")
    assert visible_topics(page) == ["Alliance and Therapeutic Relationship"]
    page.check("input[name=topics][value=alliance-and-therapeutic-relationship]")
    # Both ticked topics are chips, though the filter hides one of them.
    chips = page.locator(".chip")
    assert chips.all_inner_texts() == [
        "Depression and Depressive Symptoms\n×",
        "Alliance and Therapeutic Relationship\n×",
    ] or [t.replace("\n", "") for t in chips.all_inner_texts()] == [
        "Depression and Depressive Symptoms×",
        "Alliance and Therapeutic Relationship×",
    ]
    page.fill("#topic-search", "zzzqqq")
    assert visible_topics(page) == [] and page.inner_text("#topic-count") == "No topic matches."
    assert chips.count() == 2
    assert sideways(page) <= 0
    page.get_by_role("button", name="Remove Depression and Depressive Symptoms").click()
    assert not page.is_checked("input[name=topics][value=depression-and-depressive-symptoms]")
    assert chips.count() == 1
    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == "Remove Alliance and Therapeutic Relationship"  # focus stays on the chips
    page.fill("#topic-search", "")
    page.screenshot(path=str(site.folder / f"subscribe-chips-{width}.png"), full_page=True)


def test_keyboard_only(site, page_at):
    page = page_at(375)
    page.goto(f"{site.base}/subscribe")
    page.locator("#email").focus()
    page.keyboard.type("kim@example.com")
    page.keyboard.press("Tab")  # the name
    page.keyboard.press("Tab")  # the checked radio: All topics
    assert page.evaluate("document.activeElement.value") == "all"
    page.keyboard.press("ArrowDown")  # "Only the topics I tick"
    assert page.is_checked("input[name=topic_mode][value=some]")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "topic-search"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # visible focus
    page.keyboard.type("empathy")
    page.keyboard.press("Enter")  # does not send the form from the search box
    assert page.url.endswith("/subscribe")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.value") == "empathy"
    page.keyboard.press("Space")
    assert page.is_checked("input[name=topics][value=empathy]")
    # Back to the chip (before the search box), remove it with Enter, tick again with Space.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Remove Empathy"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")
    assert not page.is_checked("input[name=topics][value=empathy]")
    assert page.evaluate("document.activeElement.id") == "topic-search"  # not lost
    page.keyboard.press("Tab")
    page.keyboard.press("Space")
    assert page.is_checked("input[name=topics][value=empathy]")
    # No trap: Tab leads on to the Subscribe button, and Enter sends the form.
    for _ in range(60):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Subscribe":
            break
    else:
        raise AssertionError("Tab never reached the Subscribe button")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=Check your inbox")


@pytest.mark.parametrize("width", WIDTHS)
def test_focus_moves_to_the_first_error(site, page_at, width):
    page = page_at(width)
    page.goto(f"{site.base}/subscribe")
    page.fill("#email", "not an address")
    page.check("input[name=topic_mode][value=some]")
    page.get_by_role("button", name="Subscribe").click()
    page.wait_for_selector("#email-error")
    assert page.evaluate("document.activeElement.id") == "email"
    described = page.get_attribute("#email", "aria-describedby").split()
    assert "email-error" in described
    assert page.inner_text("#email-error").startswith("Please check your email address")
    assert page.inner_text("#topics-error").startswith("Choose at least one topic")
    assert sideways(page) <= 0


def test_the_preferences_page_at_both_widths(site, page_at):
    for width in WIDTHS:
        page = page_at(width)
        page.goto(f"{site.base}/preferences/{site.tokens['preferences']}")
        assert "summaries on 1 topic: Empathy." in page.inner_text("#what-you-receive")
        assert page.is_visible("#months") and page.is_visible("#new_email")
        assert sideways(page) <= 0
        page.screenshot(path=str(site.folder / f"preferences-{width}.png"), full_page=True)


# --- axe-core ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def axe_script(pytestconfig, tmp_path_factory) -> Path:
    if getattr(pytestconfig, "cache", None) is not None:
        cache = pytestconfig.cache.mkdir("axe-core")
    else:  # -p no:cacheprovider
        cache = tmp_path_factory.mktemp("axe-core")
    script = cache / "node_modules" / "axe-core" / "axe.min.js"
    if not script.exists():
        npm = shutil.which("npm")
        require_tool(npm, "npm is not installed: cannot fetch axe-core")
        done = subprocess.run(
            [npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund", "axe-core@4"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        require_tool(
            done.returncode == 0 and script.exists(),
            f"npm could not install axe-core: {done.stderr.strip()[-300:]}",
        )
    return script


def subscriber_pages(site: Site) -> list[tuple[str, str, dict | None]]:
    """(name, path, form to post first or None): every subscriber page."""
    tokens = site.tokens
    return [
        ("subscribe", "/subscribe", None),
        ("subscribe with errors", "/subscribe", {"email": "nope", "topic_mode": "some"}),
        ("confirm", f"/confirm/{tokens['confirm']}", None),
        ("preferences", f"/preferences/{tokens['preferences']}", None),
        ("unsubscribe", f"/u/{tokens['unsubscribe']}", None),
        ("address change", f"/address/{tokens['address']}", None),
        ("link", "/link", None),
        ("bad link", "/preferences/not-a-token", None),
        ("deleted link", f"/preferences/{tokens['deleted']}", None),
    ]


def axe_problems(page, name: str) -> list[str]:
    # Only violations are collected (passes and incomplete results cost most of the time).
    violations = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        f"{name}: {v['id']}: {json.dumps([n['target'] for n in v['nodes']][:3])}"
        for v in violations
        if v["impact"] in ("serious", "critical")
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_no_serious_or_critical_issue(site, page_at, axe_script, scheme):
    problems: list[str] = []
    for width in WIDTHS:
        page = page_at(width, scheme, axe=True)
        page.context.add_init_script(path=str(axe_script))  # in every page it opens
        for name, path, form in subscriber_pages(site):
            page.goto(site.base + path)
            if form is not None:
                for field, value in form.items():
                    if field == "topic_mode":
                        page.check(f"input[name=topic_mode][value={value}]")
                    else:
                        page.fill(f"#{field}", value)
                page.get_by_role("button", name="Subscribe").click()
                page.wait_for_selector(".field-error")
            problems += axe_problems(page, f"{name} at {width}px, {scheme}")
            assert sideways(page) <= 0, f"{name} scrolls sideways at {width}px"
        # The page after unsubscribing, with its optional question.
        page.goto(f"{site.base}/u/{site.tokens['unsubscribe']}")
        if page.get_by_role("button", name="Unsubscribe").count():
            page.get_by_role("button", name="Unsubscribe").click()
            page.wait_for_selector("text=why did you unsubscribe?")
            problems += axe_problems(page, f"unsubscribed at {width}px, {scheme}")
    assert problems == []
