"""Admin sessions that end, and logins counted before they are checked (issue 11, items 3-4).

Sessions through TestClient as the other admin tests; the lock-out through a real uvicorn
server on loopback, with real threads sending simultaneous logins (uvicorn takes the client
address from X-Forwarded-For, as behind the reverse proxy of docs/web.md). The app's clock is
stopped so that waits are counted, not timed.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
from collections.abc import Iterator

import httpx2 as httpx
import pytest
from itsdangerous import TimestampSigner
from smtp_sink import get_free_port
from test_web_support import PASSWORD
from test_web_support import TestClient
from test_web_support import csrf
from web_server import uvicorn_in_thread

from newsletter.passwords import hash_password
from newsletter.store.engine import session_factory
from newsletter.store.models import AdminSession
from newsletter.web import create_app
from newsletter.web.security import derive_key

pytest_plugins = ["test_web_support"]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Clock:
    """A stopped clock for the app (`WebContext.clock`): time moves only when told."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(app) -> Clock:
    app.state.ctx.clock = stopped = Clock()
    return stopped


def log_in(client: TestClient, password: str = PASSWORD) -> httpx.Response:
    return client.post(
        "/admin/login", data={"password": password, "csrf_token": csrf(client, "/admin/login")}
    )


def log_out(client: TestClient) -> None:
    response = client.post("/admin/logout", data={"csrf_token": csrf(client, "/admin/issues")})
    assert response.status_code == 303


def browser(app, cookie: str | None = None) -> TestClient:
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    if cookie is not None:
        client.cookies.set("nl_session", cookie)
    return client


def is_admin(client: TestClient) -> bool:
    response = client.get("/admin/issues")
    assert response.status_code in (200, 303)
    return response.status_code == 200


# --- item 3: sessions that end -------------------------------------------------------------


def test_a_cookie_copied_before_logout_no_longer_works(admin, app) -> None:
    copied = browser(app, admin.cookies["nl_session"])
    assert is_admin(copied)
    log_out(admin)
    assert not is_admin(copied)
    assert not is_admin(admin)


def test_logout_ends_every_session_of_the_admin(app) -> None:
    laptop, phone = browser(app), browser(app)
    assert log_in(laptop).status_code == 303 and log_in(phone).status_code == 303
    assert is_admin(laptop) and is_admin(phone)
    log_out(phone)
    assert not is_admin(laptop)
    with session_factory(app.state.ctx.engine)() as session:
        assert session.query(AdminSession).count() == 0


def test_a_password_change_ends_every_session(admin, app, monkeypatch) -> None:
    assert is_admin(admin)
    new_password = "a brand new admin password"
    monkeypatch.setenv("NEWSLETTER_ADMIN_PASSWORD_HASH", hash_password(new_password))
    assert not is_admin(admin)
    assert log_in(admin, PASSWORD).status_code == 401
    assert log_in(admin, new_password).status_code == 303
    assert is_admin(admin)


def test_a_session_ends_on_the_server_after_its_lifetime(clock, app) -> None:
    admin = browser(app)
    assert log_in(admin).status_code == 303 and is_admin(admin)
    clock.advance(app.state.ctx.settings.web.session_max_age - 1)
    assert is_admin(admin)
    clock.advance(2)
    assert not is_admin(admin)


def test_a_cookie_forged_with_the_key_but_no_live_session_is_refused(client, app) -> None:
    """The old session was the cookie: anyone with the key signed `{"admin": true}`."""
    payload = base64.b64encode(json.dumps({"admin": True, "since": 0}).encode())
    signer = TimestampSigner(derive_key(app.state.ctx.secret_key, "session"))
    forged = browser(app, signer.sign(payload).decode())
    assert not is_admin(forged)
    guessed = {"admin": True, "admin_session": "x" * 43}
    payload = base64.b64encode(json.dumps(guessed).encode())
    assert not is_admin(browser(app, signer.sign(payload).decode()))


def test_sessions_hold_across_processes(app, web_settings, engine, outbox) -> None:
    """Two apps on one database stand for two `newsletter serve` processes."""
    other = create_app(web_settings, transport_factory=lambda: outbox, engine=engine)
    here = browser(app)
    assert log_in(here).status_code == 303
    there = browser(other, here.cookies["nl_session"])
    assert is_admin(there)
    log_out(there)
    assert not is_admin(here)


# --- item 4: login attempts ----------------------------------------------------------------


class Site:
    """The app under uvicorn on a free port; requests come "from" any client address."""

    def __init__(self, base: str, app) -> None:
        self.base = base
        self.app = app

    def login_form(self, address: str) -> tuple[str, str]:
        """(session cookie, CSRF token) of the login page, as seen from `address`."""
        response = httpx.get(
            f"{self.base}/admin/login", headers={"X-Forwarded-For": address}, timeout=30
        )
        cookie = response.cookies["nl_session"]
        return cookie, _CSRF.search(response.text).group(1)

    def log_in(self, address: str, password: str, form: tuple[str, str] | None = None):
        cookie, token = form or self.login_form(address)
        return httpx.post(
            f"{self.base}/admin/login",
            data={"password": password, "csrf_token": token},
            headers={"X-Forwarded-For": address, "Cookie": f"nl_session={cookie}"},
            timeout=60,
        )


@pytest.fixture
def site_engine(request, engine):
    """SQLite, or PostgreSQL for a test parametrized `site_engine="postgresql"` (indirect)."""
    kind = getattr(request, "param", "sqlite")
    return engine if kind == "sqlite" else request.getfixturevalue("pg_engine")


@pytest.fixture
def site(web_settings, site_engine, outbox) -> Iterator[Site]:
    app = create_app(web_settings, transport_factory=lambda: outbox, engine=site_engine)
    app.state.ctx.clock = Clock()
    port = get_free_port()
    with uvicorn_in_thread(app, port, proxy_headers=True, forwarded_allow_ips="127.0.0.1"):
        yield Site(f"http://127.0.0.1:{port}", app)


@pytest.mark.parametrize("site_engine", ["sqlite", "postgresql"], indirect=True)
def test_simultaneous_wrong_passwords_are_counted_before_they_are_checked(site) -> None:
    address = "203.0.113.7"
    form = site.login_form(address)
    attempts = 12
    start = threading.Barrier(attempts)
    answers: list[int] = []
    lock = threading.Lock()

    def guess(n: int) -> None:
        start.wait(30)
        status = site.log_in(address, f"guess number {n}", form).status_code
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(answers) == [401] * 5 + [429] * 7  # limit 5: only 5 passwords checked
    assert site.log_in(address, PASSWORD).status_code == 429  # the right one waits too


def test_failures_from_many_addresses_do_not_lock_the_admin_out(site) -> None:
    clock = site.app.state.ctx.clock
    home = "198.51.100.1"
    assert site.log_in(home, PASSWORD).status_code == 303  # the admin's usual address
    for n in range(50):
        assert site.log_in(f"203.0.113.{n + 10}", "a stranger's guess").status_code == 401
    # The admin, from the address the right password came from before: in at once.
    assert site.log_in(home, PASSWORD).status_code == 303
    # From a new address the account's wait applies, but it is short (not 15 minutes) ...
    held = site.log_in("192.0.2.99", PASSWORD)
    assert held.status_code == 429
    assert 0 < int(held.headers["retry-after"]) <= 60
    # ... and once it is over the right password gets in.
    clock.advance(int(held.headers["retry-after"]))
    assert site.log_in("192.0.2.99", PASSWORD).status_code == 303


def test_waits_grow_with_each_failure_and_a_success_restarts_the_count(client, clock) -> None:
    for _ in range(5):
        assert log_in(client, "wrong").status_code == 401
    waits = []
    for _ in range(4):
        refused = log_in(client, "wrong")
        assert refused.status_code == 429
        assert "Too many failed attempts" in refused.text
        waits.append(int(refused.headers["retry-after"]))
        clock.advance(waits[-1])
        assert log_in(client, "wrong").status_code == 401
    assert waits == [1, 2, 4, 8]
    refused = log_in(client, PASSWORD)  # even the right password waits its turn
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) == 16
    clock.advance(16)
    assert log_in(client, PASSWORD).status_code == 303
    log_out(client)
    for _ in range(5):  # a fresh count after the right password
        assert log_in(client, "wrong").status_code == 401
    assert log_in(client, "wrong").status_code == 429


def test_the_wait_of_an_address_stops_at_its_ceiling(client, clock, web_settings) -> None:
    web_settings.web.login_lockout_seconds = 30
    for _ in range(5):
        assert log_in(client, "wrong").status_code == 401
    waits = []
    for _ in range(8):
        refused = log_in(client, "wrong")
        waits.append(int(refused.headers["retry-after"]))
        clock.advance(waits[-1])
        assert log_in(client, "wrong").status_code == 401
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]


def test_attempts_are_counted_across_processes(app, web_settings, engine, outbox, clock) -> None:
    other = create_app(web_settings, transport_factory=lambda: outbox, engine=engine)
    other.state.ctx.clock = clock
    here, there = browser(app), browser(other)
    for client in (here, there, here, there, here):
        assert log_in(client, "wrong").status_code == 401
    assert log_in(there, PASSWORD).status_code == 429
