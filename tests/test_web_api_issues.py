"""The JSON API's issue editing: GET an issue with its files and versions, PUT issue.md, PUT
and DELETE summaries (201/200/422/409/404), read-only sent issues and corrections."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import default_taxonomy
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory

pytest_plugins = ["test_web_support"]
AUTH = {"Authorization": "Bearer test-api-token"}
TAXONOMY = default_taxonomy()
BODY = {
    "title": "Empathy Predicts Outcome",
    "topics": ["Empathy", "common-factors"],
    "research_type": "Meta-analysis",
    "doi": "https://doi.org/10.1037/pst0000175",
    "summary": "Across 82 studies, *empathy* related to outcome.",
    "implications": "Listen, and check you understood.",
    "order": 0,
}


@pytest.fixture
def api_client(client):
    client.headers.update(AUTH)
    return client


def test_get_an_issue_lists_its_files_with_versions(api_client):
    body = api_client.get("/api/issues/2025-01").json()
    assert body["state"] == "draft" and body["issue_version"]
    assert [f["slug"] for f in body["files"]] == [s["slug"] for s in body["summaries"]]
    first = body["files"][0]
    assert first["file"] == "01-alliance-in-depression.md" and len(first["version"]) == 20
    assert first["implications"] and first["topics"]


def test_put_a_summary_creates_then_replaces(api_client, web_settings):
    url = "/api/issues/2025-02/summaries/empathy"
    created = api_client.put(url, json=BODY)
    assert created.status_code == 201, created.text
    out = created.json()
    assert out["file"] == "03-empathy.md" and out["doi"] == "10.1037/pst0000175"
    assert out["topics"] == ["Empathy", "Common Factors"]
    again = api_client.put(url, json=BODY)  # no version: the file exists now
    assert again.status_code == 409 and again.json()["current_version"] == out["version"]
    replaced = api_client.put(
        url, json={**BODY, "title": "Empathy Matters", **{"version": out["version"]}}
    )
    assert replaced.status_code == 200 and replaced.json()["title"] == "Empathy Matters"
    issue = load_issue(Path(web_settings.content.dir), "2025-02", TAXONOMY, "Test Digest")
    assert issue.summaries[0].slug == "empathy"  # order 0 comes first


def test_put_a_summary_names_each_bad_field(api_client, web_settings):
    response = api_client.put(
        "/api/issues/2025-02/summaries/empathy",
        json={**BODY, "doi": "doi-ish", "implications": ""},
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["status"] == 422
    fields = {tuple(e["loc"]) for e in problem["errors"]}
    assert fields == {("body", "doi"), ("body", "implications")}
    assert not (Path(web_settings.content.dir) / "2025-02" / "03-empathy.md").exists()
    crlf = api_client.put(
        "/api/issues/2025-02/summaries/empathy", json={**BODY, "title": "A\r\nBcc: x@y.z"}
    )
    assert crlf.status_code == 422 and crlf.json()["errors"][0]["loc"] == ["body", "title"]


def test_hostile_slugs_and_months(api_client):
    for slug in ("%2E%2E", "UPPER", "-x", "a.md", "x" * 81):
        response = api_client.put(f"/api/issues/2025-02/summaries/{slug}", json=BODY)
        assert response.status_code in (404, 422), slug  # 404: the path names no route
        if response.status_code == 422:
            assert response.json()["errors"][0]["loc"] == ["path", "slug"]
    assert api_client.put("/api/issues/2031-01/summaries/x", json=BODY).status_code == 404
    assert api_client.put("/api/issues/2031-13", json={}).status_code == 404
    assert api_client.put("/api/issues/../summaries/x", json=BODY).status_code == 404


def test_put_issue_and_stale_version(api_client, web_settings):
    current = api_client.get("/api/issues/2025-01").json()["issue_version"]
    body = {"subject": "New subject", "preheader": "Pre", "intro": "Hello.", "status": "ready"}
    stale = api_client.put("/api/issues/2025-01", json={**body, "version": "0" * 20})
    assert stale.status_code == 409
    assert "changed elsewhere" in stale.json()["detail"]
    assert stale.json()["current_version"] == current
    saved = api_client.put("/api/issues/2025-01", json={**body, "version": current})
    assert saved.status_code == 200 and saved.json()["state"] == "ready"
    assert saved.json()["subject"] == "New subject" and saved.json()["preheader"] == "Pre"
    bad = api_client.put("/api/issues/2025-01", json={**body, "subject": "a\nb", "version": ""})
    assert bad.status_code == 422


def test_delete_a_summary(api_client, web_settings):
    files = api_client.get("/api/issues/2025-01").json()["files"]
    version = files[1]["version"]
    url = "/api/issues/2025-01/summaries/" + files[1]["slug"]
    assert api_client.delete(url, params={"version": "x"}).status_code == 409
    assert api_client.delete(url, params={"version": version}).status_code == 204
    assert api_client.delete(url, params={"version": version}).status_code == 404
    remaining = api_client.get("/api/issues/2025-01").json()["files"]
    assert len(remaining) == len(files) - 1


def test_a_sent_issue_is_read_only_through_the_api(api_client, app, engine, web_settings, outbox):
    with session_factory(engine)() as session:
        api.add_subscriber(session, web_settings, TAXONOMY, "reader@example.com")
        session.commit()
    sending = app.state.ctx.sending
    sending.start(sending.load("2025-02"))
    sending.wait("2025-02", 60)
    body = api_client.get("/api/issues/2025-02").json()
    assert body["state"] == "sent"
    file = body["files"][0]
    url = f"/api/issues/2025-02/summaries/{file['slug']}"
    fix = {**BODY, "topics": file["topics"], "version": file["version"]}
    assert api_client.put(url, json=fix).status_code == 409
    assert api_client.delete(url, params={"version": file["version"]}).status_code == 409
    assert api_client.put("/api/issues/2025-02", json={"subject": "x"}).status_code == 409
    new = api_client.put("/api/issues/2025-02/summaries/brand-new", json={**BODY, "correct": True})
    assert new.status_code == 409
    corrected = api_client.put(url, json={**fix, "correct": True})
    assert corrected.status_code == 200 and corrected.json()["corrected"]
    assert len(outbox.outbox) == 1  # the send; the correction mailed nothing


def test_the_editing_endpoints_need_the_token(client):
    assert client.put("/api/issues/2025-01", json={}).status_code == 401
    assert client.put("/api/issues/2025-01/summaries/x", content=b"{").status_code == 401
    assert client.delete("/api/issues/2025-01/summaries/x?version=").status_code == 401


def test_put_a_summary_with_a_pasted_ris_reference(api_client, web_settings):
    ris = (
        "TY  - JOUR\nAU  - Elliott, Robert\nTI  - Therapist empathy and client outcome\n"
        "T2  - Psychotherapy\nPY  - 2018\nVL  - 55\nIS  - 4\nSP  - 399\nEP  - 410\n"
        "DO  - 10.1037/pst0000175\nER  - \n"
    )
    body = {**BODY, "doi": "", "reference": ris}
    created = api_client.put("/api/issues/2025-02/summaries/empathy", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["doi"] == "" and created.json()["citation"] == ""
    text = (Path(web_settings.content.dir) / "2025-02" / "03-empathy.md").read_text()
    assert (
        "article:\n  type: article-journal\n  title: Therapist empathy and client outcome" in text
    )
    issue = load_issue(Path(web_settings.content.dir), "2025-02", TAXONOMY, "Test Digest")
    assert issue.summary("empathy").doi == "10.1037/pst0000175"  # the article's DOI
    bad = api_client.put(
        "/api/issues/2025-02/summaries/other", json={**body, "reference": "@misc{x,"}
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "reference"]


def test_put_issue_creates_a_new_month_or_leaves_nothing(api_client, web_settings):
    folder = Path(web_settings.content.dir) / "2031-01"
    refused = api_client.put("/api/issues/2031-01", json={"subject": "a\nb"})
    assert refused.status_code == 422 and not folder.exists()  # nothing half-made
    body = {"subject": "January", "preheader": "Two studies", "intro": "Hello."}
    created = api_client.put("/api/issues/2031-01", json=body)
    assert created.status_code == 201, created.text
    assert "subject: January" in (folder / "issue.md").read_text()
    assert created.json()["preheader"] == "Two studies"  # subject: once it has summaries
    again = api_client.put(
        "/api/issues/2031-01", json={**body, "version": created.json()["issue_version"]}
    )
    assert again.status_code == 200
    assert api_client.get("/api/issues/2031-01").json()["preheader"] == "Two studies"


def test_put_a_summary_with_a_byline(api_client, web_settings):
    url = "/api/issues/2025-02/summaries/empathy"
    created = api_client.put(url, json={**BODY, "author": "Dana Reyes"})
    assert created.status_code == 201, created.text
    assert created.json()["author"] == "Dana Reyes"
    text = (Path(web_settings.content.dir) / "2025-02" / "03-empathy.md").read_text()
    assert "\nauthor: Dana Reyes\n" in text
    files = api_client.get("/api/issues/2025-02").json()["files"]
    assert [f["author"] for f in files if f["slug"] == "empathy"] == ["Dana Reyes"]
    version = created.json()["version"]
    same = api_client.put(url, json={**BODY, "author": "Dana Reyes", "version": version})
    assert same.status_code == 200 and same.json()["version"] == version  # untouched
    bad = api_client.put(url, json={**BODY, "author": "a\nb", "version": version})
    assert bad.status_code == 422
    cleared = api_client.put(url, json={**BODY, "version": version})
    assert cleared.status_code == 200 and cleared.json()["author"] == ""
    file = Path(web_settings.content.dir) / "2025-02" / "03-empathy.md"
    assert "author:" not in file.read_text()


def test_a_hand_written_byline_survives_an_unchanged_put_byte_for_byte(api_client, web_settings):
    file = Path(web_settings.content.dir) / "2025-01" / "01-alliance-in-depression.md"
    text = file.read_text(encoding="utf-8")
    file.write_text(text.replace("\ntopics:", "\nauthor: 'Dr.  A. Writer'  # by hand\ntopics:", 1))
    before = file.read_bytes()
    [found] = [
        f
        for f in api_client.get("/api/issues/2025-01").json()["files"]
        if f["slug"] == "alliance-in-depression"
    ]
    assert found["author"] == "Dr. A. Writer"
    body = {k: found[k] for k in ("title", "topics", "research_type", "citation", "doi")}
    body |= {k: found[k] for k in ("author", "summary", "implications", "order", "version")}
    again = api_client.put("/api/issues/2025-01/summaries/alliance-in-depression", json=body)
    assert again.status_code == 200, again.text
    assert file.read_bytes() == before
