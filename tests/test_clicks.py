"""Aggregate click counts: signed redirects per variant (never per reader), counted per link."""

from __future__ import annotations

import dataclasses
import re
import shutil

import pytest
from conftest import TEST_SECRET
from conftest import make_config
from sqlalchemy import Engine
from sqlalchemy import inspect
from test_web_support import BASE
from test_web_support import PASSWORD
from test_web_support import TestClient
from test_web_support import csrf
from test_web_support import parse

from newsletter.config import Settings
from newsletter.config import settings_from_dict
from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import default_taxonomy
from newsletter.errors import TokenError
from newsletter.sending.campaign import send_month
from newsletter.store import clicks
from newsletter.store import engine as db
from newsletter.store.models import Campaign
from newsletter.store.models import LinkClick
from newsletter.store.subscribers import add_subscriber
from newsletter.tokens import ClickTarget
from newsletter.tokens import LinkSigner
from newsletter.transport.memory import MemoryTransport
from newsletter.web import create_app

pytest_plugins = ["test_web_support"]
AUTH = {"Authorization": "Bearer test-api-token"}
REDIRECT = re.compile(re.escape(BASE) + r"/r/[A-Za-z0-9_.\-]+")
READERS = ("ana@example.net", "ben@example.net")  # both get every topic: one variant


def send(engine, settings, taxonomy) -> MemoryTransport:
    settings.archive.rebuild_after_send = False  # tested in test_publish.py
    with db.transaction(engine) as session:
        for address in READERS:
            add_subscriber(session, settings, taxonomy, address)
    issue = load_issue(settings.content.dir, "2025-01", taxonomy, settings.newsletter.name)
    outbox = MemoryTransport()
    result = send_month(engine, settings, issue, outbox)
    assert result.report is not None and result.report.variants_rendered == 1
    return outbox


def redirects(message: bytes) -> dict[str, list[str]]:
    """The redirect links of each part (html, text) of a message."""
    parsed = parse(message)
    return {
        kind: REDIRECT.findall(parsed.get_body((kind,)).get_content()) for kind in ("html", "plain")
    }


@dataclasses.dataclass
class Site:
    client: TestClient  # logged in as admin
    engine: Engine
    settings: Settings
    outbox: MemoryTransport


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, migrated_sqlite, admin_password_hash):
    """One app for the module, with tracking on and 2025-01 sent to READERS."""
    tmp = tmp_path_factory.mktemp("clicks")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEWSLETTER_SECRET_KEY", TEST_SECRET)
        patch.setenv("NEWSLETTER_ADMIN_PASSWORD_HASH", admin_password_hash)
        patch.setenv("NEWSLETTER_API_TOKEN", "test-api-token")
        settings = settings_from_dict(make_config(tmp, tracking={"clicks": True}), tmp)
        shutil.copyfile(migrated_sqlite, tmp / "subscribers.db")
        engine = db.make_engine(settings.database.url)
        outbox = send(engine, settings, default_taxonomy())
        app = create_app(settings, engine=engine)
        with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
            login = {"password": PASSWORD, "csrf_token": csrf(client, "/admin/login")}
            assert client.post("/admin/login", data=login).status_code == 303
            yield Site(client, engine, settings, outbox)
        engine.dispose()


def clicks_on(site: Site, url: str) -> int:
    report = site.client.get("/api/issues/2025-01/report", headers=AUTH).json()
    return sum(link["clicks"] for link in report["clicks_per_link"] if link["url"] == url)


def test_links_go_through_one_redirect_per_variant_naming_no_reader(tracked):
    web_settings = tracked.settings
    first, second = (redirects(m.message) for m in tracked.outbox.outbox)
    assert first["html"] and first["plain"]  # both parts
    assert first == second  # the same for every reader of the variant: rendered once
    signer = LinkSigner(web_settings.secret_key())
    targets = {signer.read(url.rsplit("/", 1)[1]) for url in first["html"]}
    assert {t.month for t in targets} == {"2025-01"}
    assert any(t.url.startswith("https://doi.org/") for t in targets)
    assert any(t.summary == "" for t in targets)  # "read on the web" for the whole issue
    for message in tracked.outbox.outbox:
        text = message.message.decode("utf-8", "replace")
        for target in targets:
            assert message.recipient not in repr(target)
        # the per-reader links (unsubscribe, preferences) are never redirected
        assert f"{BASE}/u/" in text


def test_no_redirect_unless_asked_for(engine, settings, taxonomy):
    outbox = send(engine, settings, taxonomy)
    assert redirects(outbox.outbox[0].message) == {"html": [], "plain": []}


def test_a_click_is_counted_and_the_reader_sent_on(tracked):
    client = tracked.client
    url = redirects(tracked.outbox.outbox[0].message)["html"][0]
    target = LinkSigner(tracked.settings.secret_key()).read(url.rsplit("/", 1)[1])
    before = clicks_on(tracked, target.url)
    for _ in range(2):
        response = client.get(url.removeprefix(BASE))
        assert response.status_code == 302
        assert response.headers["location"] == target.url
        assert response.headers["cache-control"] == "no-store"
        assert "set-cookie" not in response.headers  # nothing kept about the reader
    assert clicks_on(tracked, target.url) == before + 2
    report = client.get("/api/issues/2025-01/report", headers=AUTH).json()
    assert report["clicks_per_summary"][target.summary] >= 2


def test_the_report_page_shows_clicks(tracked):
    admin = tracked.client
    url = redirects(tracked.outbox.outbox[0].message)["html"][-1]
    assert admin.get(url.removeprefix(BASE)).status_code == 302
    page = admin.get("/admin/issues/2025-01/report")
    assert "<h2>Clicks</h2>" in page.text and "never per reader" in page.text


@pytest.mark.parametrize(
    "path",
    [
        "/r/not-a-token",
        "/r/" + "A" * 5000,
        "/r/"
        + LinkSigner("another-key-another-key-another-key").make(
            ClickTarget("2025-01", "a", "", "https://evil.example/")
        ),
    ],
)
def test_only_links_we_signed_redirect(tracked, path):
    response = tracked.client.get(path)
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "not valid" in response.text


def test_an_altered_token_does_not_redirect(tracked):
    client = tracked.client
    url = redirects(tracked.outbox.outbox[0].message)["html"][0].removeprefix(BASE)
    altered = url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb")
    assert client.get(altered).status_code == 400


def test_an_old_link_still_works_once_tracking_is_off(tracked):
    url = redirects(tracked.outbox.outbox[0].message)["html"][0]
    target = LinkSigner(tracked.settings.secret_key()).read(url.rsplit("/", 1)[1])
    before = clicks_on(tracked, target.url)
    tracked.settings.tracking.clicks = False
    try:
        assert tracked.client.get(url.removeprefix(BASE)).status_code == 302
    finally:
        tracked.settings.tracking.clicks = True
    assert clicks_on(tracked, target.url) == before  # not counted


def test_the_signer_refuses_what_it_must_never_redirect_to():
    signer = LinkSigner("k" * 40)
    for url in (
        "javascript:alert(1)",
        "//evil.example/",
        "mailto:a@b.org",
        "https://x/" + "a" * 2001,
    ):
        with pytest.raises(ValueError):
            signer.make(ClickTarget("2025-01", "a", "", url))
    with pytest.raises(TokenError):
        signer.read("e30.garbage")


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, engine):
    return engine if request.param == "sqlite" else request.getfixturevalue("pg_engine")


def test_counts_are_kept_per_link_and_variant_and_nothing_else(store):
    with db.transaction(store) as session:
        session.add(Campaign(month="2025-01", subject="January"))
    doi = ClickTarget("2025-01", "a,b", "a", "https://doi.org/10.1/x")
    other_variant = ClickTarget("2025-01", "a", "a", "https://doi.org/10.1/x")
    never_sent = ClickTarget("1999-01", "a", "a", "https://doi.org/10.1/x")
    with db.transaction(store) as session:
        for target in (doi, doi, other_variant):
            assert clicks.count_click(session, target)
        assert not clicks.count_click(session, never_sent)
    with db.session_factory(store)() as session:
        links = clicks.clicks_for(session, "2025-01")
        assert session.query(LinkClick).count() == 2  # one row per (variant, link)
    assert [(k.summary, k.url, k.clicks) for k in links] == [("a", doi.url, 3)]
    assert clicks.clicks_per_summary(links) == {"a": 3}
    columns = {c["name"] for c in inspect(store).get_columns("link_clicks")}
    assert columns == {
        "id",
        "campaign_id",
        "link_key",
        "variant",
        "summary",
        "url",
        "clicks",
        "first_at",
        "last_at",
    }  # no reader, address, IP or user agent


def _write_links(settings) -> None:
    """Links written in the Markdown of one summary (both sections) and the intro."""
    folder = settings.content.dir / "2025-01"
    path = folder / "02-cbt-for-anxiety.md"
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        "## Practice Implications",
        "See [the trial registry](https://example.org/trials?id=7&x=(1)) and "
        "<https://example.org/auto>, or [write to us](mailto:editor@example.org), or "
        f"[last month]({settings.archive_url()}2024-12/).\n\n## Practice Implications",
        1,
    )
    path.write_text(text + "\nA [manual](http://example.com/manual) helps.\n", encoding="utf-8")
    intro = folder / "issue.md"
    intro.write_text(
        intro.read_text(encoding="utf-8").replace(
            "A small test issue", "A small [test](https://example.net/intro) issue"
        ),
        encoding="utf-8",
    )


def test_links_written_in_the_markdown_go_through_the_redirect(client, engine, web_settings):
    _write_links(web_settings)
    web_settings.tracking.clicks = True
    outbox = send(engine, web_settings, default_taxonomy())  # one variant, rendered once
    first, second = (redirects(m.message) for m in outbox.outbox)
    assert first == second  # every reader of the variant: the same links
    signer = LinkSigner(web_settings.secret_key())
    targets = {signer.read(url.rsplit("/", 1)[1]): url for url in first["html"]}
    in_text = {signer.read(url.rsplit("/", 1)[1]): url for url in first["plain"]}
    written = {
        ("cbt-for-anxiety", "https://example.org/trials?id=7&x=(1)"),
        ("cbt-for-anxiety", "https://example.org/auto"),
        ("cbt-for-anxiety", "http://example.com/manual"),
        ("", "https://example.net/intro"),
    }
    assert written <= {(t.summary, t.url) for t in targets}
    # The text part carries the very same (tracked) links as the HTML part.
    assert {t: u for t, u in in_text.items() if (t.summary, t.url) in written} == {
        t: u for t, u in targets.items() if (t.summary, t.url) in written
    }
    message = parse(outbox.outbox[0].message)
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "https://example.org/trials" not in html and "example.net/intro" not in text
    # mailto: and links into our own site stay as they are, in both parts.
    assert 'href="mailto:editor@example.org"' in html and "<mailto:editor@example.org>" in text
    own = f"{web_settings.archive_url()}2024-12/"
    assert f'href="{own}"' in html and f"<{own}>" in text
    assert all(t.url != own for t in targets)
    # A click on one counts for its summary; the intro's for none.
    trial = next(t for t in targets if t.url.startswith("https://example.org/trials"))
    response = client.get(targets[trial].removeprefix(BASE))
    assert response.status_code == 302 and response.headers["location"] == trial.url
    intro = next(t for t in targets if t.url == "https://example.net/intro")
    assert client.get(targets[intro].removeprefix(BASE)).status_code == 302
    with db.session_factory(engine)() as session:
        links = clicks.clicks_for(session, "2025-01")
    assert clicks.clicks_per_summary(links) == {"": 1, "cbt-for-anxiety": 1}


def test_links_in_the_markdown_stay_as_written_without_tracking(engine, settings, taxonomy):
    _write_links(settings)
    outbox = send(engine, settings, taxonomy)
    message = parse(outbox.outbox[0].message)
    html = message.get_body(("html",)).get_content()
    assert 'href="https://example.org/trials?id=7&amp;x=(1)"' in html
    assert "<https://example.org/trials?id=7&x=(1)>" in message.get_body(("plain",)).get_content()
