"""Route tests of the issue editor in the admin: create a month, issue.md, summaries (add,
edit, reorder, delete, correct), validation next to the fields, stale versions, read-only sent
issues, hostile slugs and CR/LF; the audit log records each edit."""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path

import pytest
from test_web_support import csrf

from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import default_taxonomy
from newsletter.store import audit
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory

pytest_plugins = ["test_web_support"]
TAXONOMY = default_taxonomy()

SUMMARY = {
    "title": "Feedback Helps Clients Who Are Not on Track",
    "topics": ["feedback-and-progress-monitoring", "Outcomes and Deterioration"],
    "research_type": "Meta-analysis",
    "citation": "Lambert, M. J. (2018). Feedback. Psychotherapy, 55(4), 520-537.",
    "doi": "10.1037/pst0000167",
    "order": "",
    "summary": "Clients *not on track* did better\r\nwhen therapists saw alerts.",
    "implications": "- Measure every session.\r\n- Talk about alerts.",
}


def content(settings) -> Path:
    return Path(settings.content.dir)


def version_on(page: str, action: str) -> str:
    """The hidden version of the form posting to `action`."""
    form = page[page.index(f'action="{action}"') :]
    return re.search(r'name="version" value="([^"]*)"', form).group(1)


_TOKENS: dict[int, str] = {}


def token(admin) -> str:
    """The session's CSRF token (one per session: read once from the smallest admin page)."""
    if id(admin) not in _TOKENS:
        _TOKENS[id(admin)] = csrf(admin, "/admin/schedule")
    return _TOKENS[id(admin)]


@pytest.fixture(autouse=True)
def _fresh_tokens():
    _TOKENS.clear()


def new_summary(admin, month: str, **fields):
    data = {**SUMMARY, **fields, "version": "", "csrf_token": token(admin)}
    return admin.post(f"/admin/issues/{month}/summaries", data=data)


@pytest.fixture
def month(admin) -> str:
    """A new, empty month created through the admin."""
    token = csrf(admin, "/admin/issues")
    response = admin.post("/admin/issues/new", data={"month": "2025-03", "csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"].endswith("/admin/issues/2025-03")
    return "2025-03"


def test_create_a_month_and_refuse_bad_ones(admin, month, web_settings):
    assert (content(web_settings) / month).is_dir()
    page = admin.get("/admin/issues")
    assert month in page.text and "draft" in page.text
    token = csrf(admin, "/admin/issues")
    for bad, message in (("2025-3", "YYYY-MM"), ("2025-03", "exists already"), ("../x", "YYYY-MM")):
        refused = admin.post("/admin/issues/new", data={"month": bad, "csrf_token": token})
        assert refused.status_code == 422 and message in refused.text
    assert admin.post("/admin/issues/new", data={"month": "2025-04"}).status_code == 403
    assert not (content(web_settings) / "2025-04").exists()


def test_write_a_summary_from_an_empty_month(admin, month, web_settings):
    page = admin.get(f"/admin/issues/{month}")
    assert "No summaries yet" in page.text and "Add a summary" in page.text
    editor = admin.get(f"/admin/issues/{month}/new-summary")
    assert editor.status_code == 200
    assert 'name="topics" value="feedback-and-progress-monitoring"' in editor.text
    assert 'id="topic-search"' in editor.text and "/static/editor.js" in editor.text
    saved = new_summary(admin, month)
    assert saved.status_code == 303
    slug = "feedback-helps-clients-who-are-not-on-track"
    assert saved.headers["location"].endswith(f"/admin/issues/{month}/summaries/{slug}?saved=1")
    path = content(web_settings) / month / f"01-{slug}.md"
    text = path.read_text()
    assert "\r" not in text
    assert "topics:\n- Feedback and Progress Monitoring\n- Outcomes and Deterioration\n" in text
    assert "\n## Practice Implications\n\n- Measure every session.\n- Talk about alerts.\n" in text
    issue = load_issue(content(web_settings), month, TAXONOMY, "Test Digest")
    [summary] = issue.summaries
    assert summary.slug == slug and summary.doi == "10.1037/pst0000167"
    assert "<em>not on track</em>" in summary.summary_html
    edit = admin.get(f"/admin/issues/{month}/summaries/{slug}?saved=1")
    assert "Saved." in edit.text and "<em>not on track</em>" in edit.text  # the preview
    with session_factory(admin.app.state.ctx.engine)() as session:
        entries, _ = audit.recent(session)
    assert [(e.action, e.target) for e in entries] == [("edit-summary", f"{month}/{path.name}")]


def test_invalid_fields_are_shown_next_to_them_and_nothing_is_written(admin, month, web_settings):
    response = new_summary(
        admin,
        month,
        title="",
        topics=["astrology"],
        research_type="Horoscope",
        doi="not-a-doi",
        implications="",
        order="first",
    )
    assert response.status_code == 422
    assert 'id="order-error"' in response.text
    response = new_summary(
        admin, month, title="", topics=["astrology"], research_type="Horoscope", doi="nope"
    )
    assert response.status_code == 422
    for field in ("title", "topics", "research_type", "doi"):
        assert f'id="{field}-error"' in response.text, field
    assert "Unknown topic" in response.text or "astrology" in response.text
    assert 'aria-invalid="true"' in response.text
    assert list((content(web_settings) / month).iterdir()) == []


def test_cr_lf_in_one_line_fields_is_refused(admin, month, web_settings):
    response = new_summary(admin, month, title="Fine\r\nBcc: victim@example.com")
    assert response.status_code == 422 and 'id="title-error"' in response.text
    assert "must be one line" in response.text
    path = f"/admin/issues/{month}"
    token = csrf(admin, path)
    meta = admin.post(
        f"{path}/meta",
        data={"subject": "Hi\nBcc: x@example.com", "version": "", "csrf_token": token},
    )
    assert meta.status_code == 422 and 'id="subject-error"' in meta.text
    assert not (content(web_settings) / month / "issue.md").exists()


def test_hostile_slugs_name_no_file(admin, month, web_settings):
    for slug in ("..", "../2025-01/01-alliance-in-depression", "UPPER", "a b", "-x"):
        response = new_summary(admin, month, new_slug=slug)
        assert response.status_code == 422, slug
        assert 'id="slug-error"' in response.text
    for path in ("..%2F..%2Fconfig", "%2e%2e", "A"):
        assert admin.get(f"/admin/issues/{month}/summaries/{path}").status_code == 404
    assert list((content(web_settings) / month).iterdir()) == []
    assert not any(p.suffix == ".md" for p in content(web_settings).iterdir())


def test_edit_issue_md_with_intro_and_ready_state(admin, web_settings):
    path = "/admin/issues/2025-02"
    page = admin.get(path)
    assert "draft" in page.text
    data = {
        "subject": "Feedback and dropout",
        "preheader": "Two summaries",
        "intro": "Hello.\r\n\r\n- {summary=dropout-rates} About dropout.",
        "status": "ready",
        "version": version_on(page.text, f"{path}/meta"),
        "csrf_token": token(admin),
    }
    assert admin.post(f"{path}/meta", data=data).status_code == 303
    text = (content(web_settings) / "2025-02" / "issue.md").read_text()
    assert text.startswith("---\nsubject: Feedback and dropout\npreheader: Two summaries\n")
    assert "status: ready\n---\nHello.\n\n- {summary=dropout-rates} About dropout.\n" in text
    page = admin.get(path)
    assert 'id="issue-state">ready<' in page.text
    issue = load_issue(content(web_settings), "2025-02", TAXONOMY, "Test Digest")
    assert issue.subject == "Feedback and dropout" and issue.preheader == "Two summaries"
    # An intro naming no summary of the month is refused at its field.
    data["version"] = version_on(page.text, f"{path}/meta")
    data["intro"] = "- {summary=nope} Nothing."
    refused = admin.post(f"{path}/meta", data=data)
    assert refused.status_code == 422 and 'id="intro-error"' in refused.text
    assert "{summary=nope} names no summary of this month" in refused.text
    assert "About dropout" in (content(web_settings) / "2025-02" / "issue.md").read_text()


def test_a_file_changed_elsewhere_is_not_overwritten(admin, web_settings):
    slug = "feedback-not-on-track"
    url = f"/admin/issues/2025-02/summaries/{slug}"
    page = admin.get(url)
    version = version_on(page.text, url)
    file = content(web_settings) / "2025-02" / "01-feedback-not-on-track.md"
    original = file.read_text()
    elsewhere = original.replace("Progress Feedback Helps", "Progress Feedback Really Helps")
    file.write_text(elsewhere)
    data = {
        **SUMMARY,
        "title": "My title",
        "version": version,
        "action": "save",
        "csrf_token": token(admin),
    }
    refused = admin.post(url, data=data)
    assert refused.status_code == 409
    assert "changed elsewhere" in refused.text
    assert "Progress Feedback Really Helps" in refused.text  # on disk now
    assert "title: My title" in refused.text  # yours
    assert file.read_text() == elsewhere
    # The form now carries the version on disk: saving again is a deliberate replace.
    data["version"] = version_on(refused.text, url)
    assert admin.post(url, data=data).status_code == 303
    assert "title: My title" in file.read_text()


def test_resaving_a_hand_written_file_keeps_it_byte_for_byte(admin, web_settings):
    file = content(web_settings) / "2025-01" / "01-alliance-in-depression.md"
    before = file.read_bytes()
    url = "/admin/issues/2025-01/summaries/alliance-in-depression"
    page = admin.get(url).text
    data = {
        name: html.unescape(re.search(rf'id="{name}" name="{name}"[^>]*value="([^"]*)"', page)[1])
        for name in ("title", "author", "citation", "doi", "order")
    }
    data["topics"] = re.findall(r'name="topics" value="([^"]+)" checked', page)
    data["research_type"] = html.unescape(re.search(r'<option value="([^"]+)" selected', page)[1])
    for name in ("summary", "implications"):
        found = re.search(rf'name="{name}"[^>]*>(.*?)</textarea>', page, re.S)
        data[name] = html.unescape(found.group(1)).replace("\n", "\r\n")
    data.update(version=version_on(page, url), action="save", csrf_token=token(admin))
    assert admin.post(url, data=data).status_code == 303
    assert file.read_bytes() == before


def test_reorder_and_delete(admin, web_settings):
    path = "/admin/issues/2025-01"
    token = csrf(admin, path)
    move = admin.post(
        f"{path}/summaries/cbt-for-anxiety/move", data={"step": "up", "csrf_token": token}
    )
    assert move.status_code == 303
    issue = load_issue(content(web_settings), "2025-01", TAXONOMY, "Test Digest")
    assert [s.slug for s in issue.summaries][:2] == ["cbt-for-anxiety", "alliance-in-depression"]
    assert (
        admin.post(
            f"{path}/summaries/cbt-for-anxiety/move", data={"step": "sideways", "csrf_token": token}
        ).status_code
        == 400
    )
    page = admin.get(path).text
    delete_url = f"{path}/summaries/cbt-for-anxiety/delete"
    stale = admin.post(delete_url, data={"version": "0" * 20, "csrf_token": token})
    assert stale.status_code == 409 and "changed elsewhere" in stale.text
    version = version_on(page, delete_url)
    assert admin.post(delete_url, data={"version": version, "csrf_token": token}).status_code == 303
    assert not (content(web_settings) / "2025-01" / "02-cbt-for-anxiety.md").exists()
    with session_factory(admin.app.state.ctx.engine)() as session:
        actions = [e.action for e in audit.recent(session)[0]]
    assert actions.count("delete-summary") == 1 and "edit-summary" in actions


def _send(app, engine, web_settings, month: str) -> None:
    with session_factory(engine)() as session:
        api.add_subscriber(session, web_settings, TAXONOMY, "reader@example.com")
        session.commit()
    sending = app.state.ctx.sending
    sending.start(sending.load(month))
    sending.wait(month, 60)


def test_a_sent_issue_is_read_only_but_takes_a_correction(admin, app, engine, web_settings, outbox):
    _send(app, engine, web_settings, "2025-02")
    mailed = len(outbox.outbox)
    assert mailed == 1
    path = "/admin/issues/2025-02"
    page = admin.get(path)
    assert 'id="issue-state">sent<' in page.text and "read-only" in page.text
    assert "Add a summary" not in page.text and "/delete" not in page.text
    assert admin.get("/admin/issues").text.count("state-sent") == 1
    token = csrf(admin, f"{path}/summaries/dropout-rates")
    meta = admin.post(f"{path}/meta", data={"subject": "New", "version": "", "csrf_token": token})
    assert meta.status_code == 409 and "read-only" in meta.text
    refused = new_summary(admin, "2025-02")
    assert refused.status_code == 409 and "read-only" in refused.text
    url = f"{path}/summaries/dropout-rates"
    editor = admin.get(url).text
    assert "Correct this summary" in editor and "Save summary" not in editor
    file = content(web_settings) / "2025-02" / "02-dropout-rates.md"
    data = {
        **SUMMARY,
        "title": "Dropout Rates, Corrected",
        "topics": ["attendance-attrition-and-drop-out"],
        "version": version_on(editor, url),
        "action": "save",
        "csrf_token": token,
    }
    assert admin.post(url, data=data).status_code == 409  # a plain save is refused
    data["action"] = "correct"
    assert admin.post(url, data=data).status_code == 303
    text = file.read_text()
    assert "title: Dropout Rates, Corrected" in text
    assert re.search(r"^corrected: \d{4}-\d{2}-\d{2}$", text, re.M)
    assert len(outbox.outbox) == mailed  # nothing mailed
    issue = load_issue(content(web_settings), "2025-02", TAXONOMY, "Test Digest")
    assert issue.summary("dropout-rates").corrected is not None
    # The archive is republished at once: the summary's page says it was corrected.
    pages = list(web_settings.archive.dir.glob("2025-02/*dropout*/index.html"))
    assert pages and "Corrected on" in pages[0].read_text()


def test_markdown_preview_endpoint(admin, month):
    token = csrf(admin, f"/admin/issues/{month}/new-summary")
    response = admin.post(
        "/admin/markdown-preview", data={"text": "*hi* <script>x</script>", "csrf_token": token}
    )
    assert response.status_code == 200
    assert response.json()["html"] == "<p><em>hi</em> &lt;script&gt;x&lt;/script&gt;</p>"
    assert admin.post("/admin/markdown-preview", data={"text": "x"}).status_code == 403


def test_preview_button_renders_without_saving(admin, month, web_settings):
    data = {**SUMMARY, "action": "preview", "version": ""}
    data["csrf_token"] = token(admin)
    response = admin.post(f"/admin/issues/{month}/summaries", data=data)
    assert response.status_code == 200 and "nothing is saved yet" in response.text
    assert "<em>not on track</em>" in response.text
    assert list((content(web_settings) / month).iterdir()) == []


def test_editor_pages_need_a_login(client):
    for url in ("/admin/issues/2025-01/new-summary", "/admin/issues/2025-01/summaries/x"):
        assert client.get(url).status_code == 303
    assert client.post("/admin/issues/new", data={"month": "2025-05"}).status_code == 303
    assert client.post("/admin/markdown-preview", data={"text": "x"}).status_code == 303


BIBTEX = """@article{norcross2018,
  author = {Norcross, John C. and Lambert, Michael J.},
  title = {Psychotherapy relationships that work {III}},
  journal = {Psychotherapy},
  year = {2018},
  volume = {55},
  number = {4},
  pages = {303--315},
  doi = {10.1037/pst0000193}
}"""


def test_a_pasted_bibtex_entry_becomes_the_article(admin, month, web_settings):
    response = new_summary(admin, month, citation="", doi="", reference=BIBTEX)
    assert response.status_code == 303, response.text
    [path] = (content(web_settings) / month).iterdir()
    text = path.read_text()
    assert (
        "article:\n  type: article-journal\n  title: Psychotherapy relationships that work III"
        in text
    )
    assert "citation:" not in text
    issue = load_issue(content(web_settings), month, TAXONOMY, "Test Digest")
    assert issue.summaries[0].doi == "10.1037/pst0000193"
    slug = issue.summaries[0].slug
    editor = admin.get(f"/admin/issues/{month}/summaries/{slug}").text
    assert 'id="article-note"' in editor and "Psychotherapy relationships that work III" in editor


def test_a_pasted_entry_that_does_not_read_is_shown_at_its_field(admin, month, web_settings):
    response = new_summary(admin, month, reference="@article{broken, title = {x}")
    assert response.status_code == 422 and 'id="reference-error"' in response.text
    assert "(read as BIB)" in response.text
    incomplete = new_summary(
        admin, month, citation="", doi="", reference="TY  - JOUR\nTI  - Only a title\nER  - \n"
    )
    assert incomplete.status_code == 422 and 'id="article-error"' in incomplete.text
    assert "article.author" in incomplete.text
    assert list((content(web_settings) / month).iterdir()) == []


def test_states_scheduled_and_sending(admin, engine, web_settings, tmp_path):
    from newsletter.store.models import RUNNING
    from newsletter.store.models import Campaign

    web_settings._config_path = tmp_path / "config.toml"  # a queued job names the config
    token = csrf(admin, "/admin/schedule")
    queued = admin.post(
        "/admin/schedule/add",
        data={"month": "2025-01", "at": "2099-01-05T09:30", "csrf_token": token},
    )
    assert queued.status_code == 303
    listing = admin.get("/admin/issues").text
    assert "scheduled for 2099-01-05 09:30" in listing
    api_state = admin.get(
        "/api/issues/2025-01", headers={"Authorization": "Bearer test-api-token"}
    ).json()
    assert api_state["state"] == "scheduled" and api_state["scheduled_at"].startswith("2099-01-05")
    # A campaign started and not done: sending, and read-only (a send in another process).
    with session_factory(engine)() as session:
        session.add(Campaign(month="2025-02", subject="x", status=RUNNING, lists="main"))
        session.commit()
    page = admin.get("/admin/issues/2025-02").text
    assert 'id="issue-state">sending<' in page and "read-only" in page
    refused = new_summary(admin, "2025-02")
    assert refused.status_code == 409 and "2025-02 is sending" in refused.text
    editor = admin.get("/admin/issues/2025-02/summaries/dropout-rates").text
    assert "Save summary" not in editor and "Correct this summary" not in editor


def test_the_byline_round_trips_through_the_form(admin, month, web_settings):
    editor = admin.get(f"/admin/issues/{month}/new-summary").text
    assert 'id="author" name="author"' in editor and 'for="author"' in editor
    assert new_summary(admin, month, author="  Dana   Reyes ").status_code == 303
    slug = "feedback-helps-clients-who-are-not-on-track"
    path = content(web_settings) / month / f"01-{slug}.md"
    text = path.read_text()
    assert "\nauthor: Dana Reyes\n" in text
    issue = load_issue(content(web_settings), month, TAXONOMY, "Test Digest")
    assert issue.summaries[0].author == "Dana Reyes"
    url = f"/admin/issues/{month}/summaries/{slug}"
    page = admin.get(url).text
    assert re.search(r'id="author" name="author"[^>]*value="Dana Reyes"', page)
    # Blank: the default byline again, and no `author:` key left in the file.
    data = {**SUMMARY, "author": "", "version": version_on(page, url), "csrf_token": token(admin)}
    assert admin.post(url, data=data).status_code == 303
    assert "author:" not in path.read_text()
    bad = {**data, "author": "a\nb", "version": version_on(admin.get(url).text, url)}
    refused = admin.post(url, data=bad)
    assert refused.status_code == 422 and 'aria-describedby="author-error"' in refused.text


def test_a_ready_month_on_the_monthly_slot_is_scheduled(admin, app, web_settings):
    # [schedule] is the default: the 1st Tuesday at 09:00 UTC. On 2025-01-02 the next run is
    # 2025-01-07, which sends 2025-01.
    app.state.ctx.clock = lambda: dt.datetime(2025, 1, 2, 12, 0, tzinfo=dt.UTC)
    api_headers = {"Authorization": "Bearer test-api-token"}
    before = admin.get("/api/issues/2025-01", headers=api_headers).json()
    assert before["state"] == "draft" and before["scheduled_at"] is None
    url = "/admin/issues/2025-01/meta"
    page = admin.get("/admin/issues/2025-01").text
    data = {
        "subject": "January",
        "preheader": "",
        "intro": "",
        "status": "ready",
        "version": version_on(page, url),
        "csrf_token": token(admin),
    }
    assert admin.post(url, data=data).status_code == 303
    label = "scheduled for 2025-01-07 09:00 UTC (the monthly slot)"
    assert label in admin.get("/admin/issues").text
    page = admin.get("/admin/issues/2025-01").text
    assert f'id="issue-state">{label}<' in page
    state = admin.get("/api/issues/2025-01", headers=api_headers).json()
    assert state["state"] == "scheduled" and state["scheduled_at"] == "2025-01-07T09:00:00+00:00"
    # Another ready month is not the one the next run sends: ready, not scheduled.
    other = admin.get("/api/issues/2025-02", headers=api_headers).json()
    assert other["state"] in ("draft", "ready") and other["scheduled_at"] is None
    # After the slot has passed, the next run sends 2025-02: January is only ready.
    app.state.ctx.clock = lambda: dt.datetime(2025, 1, 8, tzinfo=dt.UTC)
    assert admin.get("/api/issues/2025-01", headers=api_headers).json()["state"] == "ready"
    assert 'id="issue-state">ready<' in admin.get("/admin/issues/2025-01").text
