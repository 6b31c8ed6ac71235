"""Several admins: `newsletter admin add|list|remove|set-password`, login by name and password,
the legacy "admin" of `[web] admin_password_hash`, sessions tied to one admin, the audit log."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from test_web_support import PASSWORD
from test_web_support import TestClient
from test_web_support import csrf

from newsletter.cli import main
from newsletter.store import admins
from newsletter.store import audit
from newsletter.store.engine import session_factory
from newsletter.store.engine import transaction

pytest_plugins = ["test_web_support"]
ANA_PASSWORD = "ana's long password"
BEN_PASSWORD = "ben's long password"


def login(client: TestClient, name: str | None, password: str):
    data = {"password": password, "csrf_token": csrf(client, "/admin/login")}
    if name is not None:
        data["name"] = name
    return client.post("/admin/login", data=data)


def cli(runner: CliRunner, config_file: Path, *args: str, input: str | None = None):
    return runner.invoke(main, ["--config", str(config_file), *args], input=input)


@pytest.fixture
def team(engine):
    """Two admins, ana and ben, in the app's database (the service `admin add` calls)."""
    with transaction(engine) as session:
        admins.add_admin(session, "ana", ANA_PASSWORD)
        admins.add_admin(session, "ben", BEN_PASSWORD)
    return engine


def test_admin_commands_add_list_remove(engine, runner, config_file, monkeypatch) -> None:
    for name, password in (("ana", ANA_PASSWORD), ("Ben", BEN_PASSWORD)):
        result = cli(runner, config_file, "admin", "add", name, input=f"{password}\n{password}\n")
        assert result.exit_code == 0, result.output
        assert "added the admin" in result.output and password not in result.output
    listed = cli(runner, config_file, "admin", "list")
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0].split("\t") == ["name", "added", "last login"]
    assert [line.split("\t")[0] for line in lines[1:3]] == ["ana", "ben"]  # names lowercased
    assert "never" in lines[1] and lines[-1] == "2 admin(s)"
    monkeypatch.setenv("NEWSLETTER_ADMIN_PASSWORD_HASH", "scrypt$x")
    with_legacy = cli(runner, config_file, "admin", "list").output
    assert "admin\t[web] admin_password_hash" in with_legacy
    again = cli(runner, config_file, "admin", "add", "ana", input="x" * 12 + "\n" + "x" * 12 + "\n")
    assert again.exit_code != 0 and "already an admin named 'ana'" in again.output
    removed = cli(runner, config_file, "admin", "remove", "ana", "--yes")
    assert removed.exit_code == 0 and "removed the admin ana" in removed.output
    missing = cli(runner, config_file, "admin", "remove", "ana", "--yes")
    assert missing.exit_code != 0 and "no admin named 'ana' (admins added: ben)" in missing.output
    with session_factory(engine)() as session:
        entries, _ = audit.recent(session)
    assert [(e.actor, e.action, e.target) for e in entries] == [
        ("cli", "admin-remove", "ana"),
        ("cli", "admin-add", "ben"),
        ("cli", "admin-add", "ana"),
    ]


def test_admin_add_refuses_bad_names_and_short_passwords(engine, runner, config_file) -> None:
    bad = cli(runner, config_file, "admin", "add", "Ana Smith!", input="")
    assert bad.exit_code == 2 and "Ana Smith!" in bad.output
    short = cli(runner, config_file, "admin", "add", "ana", input="short\nshort\n")
    assert short.exit_code == 2 and "at least 10 characters" in short.output
    mismatch = cli(
        runner, config_file, "admin", "add", "ana", input="a" * 12 + "\n" + "b" * 12 + "\n"
    )
    assert mismatch.exit_code != 0
    empty = cli(runner, config_file, "admin", "add", "ana", "--password-stdin", input="")
    assert empty.exit_code == 2 and "standard input is empty" in empty.output
    piped = cli(
        runner, config_file, "admin", "add", "ana", "--password-stdin", input="p" * 12 + "\n"
    )
    assert piped.exit_code == 0, piped.output
    with session_factory(engine)() as session:
        assert [info.name for info in admins.list_admins(session)] == ["ana"]


def test_the_password_is_never_an_argument(runner) -> None:
    help_text = runner.invoke(main, ["admin", "add", "--help"]).output
    assert "--password-stdin" in help_text
    refused = runner.invoke(main, ["admin", "add", "ana", "--password", "secret-long"])
    assert refused.exit_code == 2 and "--password" in refused.output


def test_each_admin_logs_in_with_their_own_password(team, client) -> None:
    assert login(client, "ana", BEN_PASSWORD).status_code == 401
    assert login(client, "nobody", ANA_PASSWORD).status_code == 401
    wrong = login(client, "ana", "wrong password")
    assert wrong.status_code == 401 and "Wrong name or password." in wrong.text
    assert 'value="ana"' in wrong.text  # the name stays in the form
    assert login(client, "ANA ", ANA_PASSWORD).status_code == 303  # names are case-insensitive
    page = client.get("/admin/issues")
    assert page.status_code == 200 and "Log out ana" in page.text
    with session_factory(team)() as session:
        found = {info.name: info for info in admins.list_admins(session)}
    assert found["ana"].last_login_at is not None and found["ben"].last_login_at is None


def test_the_configured_hash_is_the_legacy_admin(team, client) -> None:
    assert login(client, None, PASSWORD).status_code == 303  # no name: "admin"
    assert "Log out admin" in client.get("/admin/issues").text
    client.cookies.clear()
    assert login(client, "admin", PASSWORD).status_code == 303
    client.cookies.clear()
    assert login(client, "ana", PASSWORD).status_code == 401  # not ana's password


def test_login_works_with_only_added_admins(team, client, monkeypatch) -> None:
    monkeypatch.delenv("NEWSLETTER_ADMIN_PASSWORD_HASH")
    page = client.get("/admin/login")
    assert "Admin login is off" not in page.text and 'name="name"' in page.text
    assert login(client, "admin", PASSWORD).status_code == 401  # no legacy admin now
    assert login(client, "ben", BEN_PASSWORD).status_code == 303


def test_removing_an_admin_ends_their_sessions_only(team, app, runner, config_file) -> None:
    with (
        TestClient(app, base_url="https://testserver", follow_redirects=False) as ana,
        TestClient(app, base_url="https://testserver", follow_redirects=False) as ben,
    ):
        assert login(ana, "ana", ANA_PASSWORD).status_code == 303
        assert login(ben, "ben", BEN_PASSWORD).status_code == 303
        assert cli(runner, config_file, "admin", "remove", "ana", "--yes").exit_code == 0
        assert ana.get("/admin/issues").status_code == 303  # ended at once
        assert ben.get("/admin/issues").status_code == 200


def test_a_new_password_ends_that_admins_sessions(team, app, runner, config_file) -> None:
    with (
        TestClient(app, base_url="https://testserver", follow_redirects=False) as ana,
        TestClient(app, base_url="https://testserver", follow_redirects=False) as ben,
    ):
        assert login(ana, "ana", ANA_PASSWORD).status_code == 303
        assert login(ben, "ben", BEN_PASSWORD).status_code == 303
        new = "ana's new long password"
        changed = cli(runner, config_file, "admin", "set-password", "ana", input=f"{new}\n{new}\n")
        assert changed.exit_code == 0, changed.output
        assert ana.get("/admin/issues").status_code == 303
        assert ben.get("/admin/issues").status_code == 200
        assert login(ana, "ana", ANA_PASSWORD).status_code == 401
        assert login(ana, "ana", new).status_code == 303
    missing = cli(runner, config_file, "admin", "set-password", "zoe", input="")
    assert missing.exit_code != 0 and "no admin named 'zoe'" in missing.output


def test_logout_ends_only_that_admins_sessions(team, app) -> None:
    with (
        TestClient(app, base_url="https://testserver", follow_redirects=False) as ana,
        TestClient(app, base_url="https://testserver", follow_redirects=False) as ben,
    ):
        assert login(ana, "ana", ANA_PASSWORD).status_code == 303
        assert login(ben, "ben", BEN_PASSWORD).status_code == 303
        token = csrf(ana, "/admin/issues")
        assert ana.post("/admin/logout", data={"csrf_token": token}).status_code == 303
        assert ana.get("/admin/issues").status_code == 303
        assert ben.get("/admin/issues").status_code == 200


def test_lock_out_still_counts_wrong_names(team, client, app) -> None:
    import datetime as dt

    app.state.ctx.clock = lambda: dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    for name in ("x1", "x2", "ana", "x4", "x5"):
        assert login(client, name, "wrong password").status_code == 401
    locked = login(client, "ana", ANA_PASSWORD)
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert 'value="ana"' in locked.text


def test_admin_actions_are_logged_with_the_admins_name(team, client) -> None:
    assert login(client, "ben", BEN_PASSWORD).status_code == 303
    added = client.post(
        "/admin/subscribers",
        data={
            "email": "new@example.com",
            "status": "active",
            "csrf_token": csrf(client, "/admin/subscribers"),
        },
    )
    assert added.status_code == 303
    sent = client.post(
        "/admin/issues/2025-01/test",
        data={"addresses": "qa@example.org", "csrf_token": csrf(client, "/admin/issues/2025-01")},
    )
    assert sent.status_code == 200
    page = client.get("/admin/audit")
    assert page.status_code == 200
    assert "2 events" in page.text
    assert page.text.index("test-send") < page.text.index("add-subscriber")  # newest first
    assert "<td>ben</td>" in page.text and "qa@example.org" in page.text
    only = client.get("/admin/audit?action=test-send")
    assert "1 event<" in only.text and "add-subscriber</td>" not in only.text
    bad = client.get("/admin/audit?action=hack")
    assert bad.status_code == 400 and "Unknown action &#39;hack&#39;" in bad.text


def test_the_audit_log_pages(team, client) -> None:
    with transaction(team) as session:
        for number in range(60):
            audit.record(session, "ana", "send", f"2025-{number:02d}")
    assert login(client, "ana", ANA_PASSWORD).status_code == 303
    first = client.get("/admin/audit")
    assert "60 events" in first.text and "Page 1 of 2" in first.text
    assert "2025-59" in first.text and "2025-09" not in first.text
    second = client.get("/admin/audit?page=2")
    assert "2025-09" in second.text and "2025-59" not in second.text
    assert client.get("/admin/audit?page=abc").status_code == 200  # page 1
    client.cookies.clear()
    assert client.get("/admin/audit").status_code == 303  # admins only


def test_api_actions_are_logged_as_the_api(client, engine) -> None:
    headers = {"Authorization": "Bearer test-api-token"}
    added = client.post("/api/subscribers", json={"email": "api@example.com"}, headers=headers)
    assert added.status_code == 201, added.text
    sid = added.json()["id"]
    changed = client.patch(f"/api/subscribers/{sid}", json={"name": "Api"}, headers=headers)
    assert changed.status_code == 200
    tested = client.post(
        "/api/issues/2025-01/test", json={"to": ["qa@example.org"]}, headers=headers
    )
    assert tested.status_code == 200, tested.text
    with session_factory(engine)() as session:
        entries, _ = audit.recent(session)
    assert [(e.actor, e.action, e.target, e.detail) for e in entries] == [
        ("api", "test-send", "2025-01", "qa@example.org"),
        ("api", "edit-subscriber", f"subscriber {sid}", "set name"),
        ("api", "add-subscriber", f"subscriber {sid}", ""),
    ]
