"""The web app's contract outside the API: no server error for a huge id, redirects built from
base_url (never from the Host header), complete `Allow` headers, the archive's CSP."""

from __future__ import annotations

import pytest
from test_web_support import BASE
from test_web_support import TestClient
from test_web_support import csrf

from newsletter.web import create_app
from newsletter.web.security import CSP

pytest_plugins = ["test_web_support"]
HUGE = "99999999999999999999"  # past SQLite's and PostgreSQL's 64-bit integers


def test_a_huge_subscriber_id_is_not_found(admin):
    assert admin.get(f"/admin/subscribers/{HUGE}").status_code == 404
    token = csrf(admin, "/admin/subscribers")
    changed = admin.post(
        f"/admin/subscribers/{HUGE}/status", data={"status": "active", "csrf_token": token}
    )
    assert changed.status_code == 404
    # POST edits the subscriber: no such subscriber either.
    posted = admin.post(f"/admin/subscribers/{HUGE}", data={"csrf_token": token})
    assert posted.status_code == 404
    # No PUT route at this path: 405, and it says which methods there are.
    put = admin.put(f"/admin/subscribers/{HUGE}", data={"csrf_token": token})
    assert put.status_code == 405 and put.headers["allow"] == "GET, POST"


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/admin", "/admin/login"),  # the app's own redirect (see_other)
        ("/admin/issues", "/admin/login"),  # the login dependency
        ("/admin/issues/", "/admin/issues"),  # Starlette's trailing-slash redirect
        ("/subscribe/", "/subscribe"),
        ("/api/issues/", "/api/issues"),
    ],
)
def test_redirects_come_from_base_url_not_from_the_host_header(client, path, target):
    response = client.get(path, headers={"Host": "evil.example"})
    assert response.status_code in (303, 307)
    assert response.headers["location"] == BASE + target


def test_the_admins_redirects_after_login_use_base_url(admin):
    response = admin.get("/admin/login", headers={"Host": "evil.example"})
    assert response.headers["location"] == BASE + "/admin/issues"


@pytest.fixture
def archive_client(web_settings, engine, outbox, tmp_path):
    site = tmp_path / "site"
    (site / "search").mkdir(parents=True)
    (site / "index.html").write_text("<!doctype html><title>Archive</title>", encoding="utf-8")
    (site / "search" / "index.html").write_text("<!doctype html><title>S</title>", "utf-8")
    web_settings.archive.dir = site
    app = create_app(web_settings, transport_factory=lambda: outbox, engine=engine)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


def test_only_the_archive_may_run_webassembly(archive_client):
    page = archive_client.get("/archive/search/")
    assert page.status_code == 200
    policy = page.headers["content-security-policy"]
    assert "script-src 'self' 'wasm-unsafe-eval';" in policy
    assert policy.replace(" 'wasm-unsafe-eval'", "") == CSP
    for path in ("/subscribe", "/admin/login", "/api/openapi.json"):
        assert archive_client.get(path).headers["content-security-policy"] == CSP, path
    # The archive's folder redirect (StaticFiles) is built from base_url too.
    folder = archive_client.get("/archive/search", headers={"Host": "evil.example"})
    assert folder.headers["location"] == BASE + "/archive/search/"
    assert archive_client.post("/archive/").headers["allow"] == "GET, HEAD"
