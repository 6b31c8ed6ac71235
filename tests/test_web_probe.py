"""The attacker's probe of issue 11's "Done when": the running app (uvicorn in its own process
on 127.0.0.1, mail into a Maildir) against missing, foreign, stale and tampered CSRF and link
tokens, forged admin sessions, concurrent logins, the Host and X-Forwarded-* headers, huge ids
and numbers, 10 MB bodies, CR/LF in form fields, reflected HTML and paths out of /archive/.

One server for the module (it starts in about a second): every test leaves the records it did
not mean to change as they were, and checks so. Each check names the exact status and what the
body must (not) say, so a regression fails here rather than passing as "not a 500".
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.client
import json
import mailbox
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import itsdangerous
import pytest
from conftest import ADMIN_PASSWORD
from conftest import make_config
from conftest import write_config
from smtp_sink import get_free_port
from sqlalchemy import select

from newsletter.config import DEV_SECRET_KEY
from newsletter.config import settings_from_dict
from newsletter.content.taxonomy import default_taxonomy
from newsletter.passwords import hash_password
from newsletter.store import subscribers as api
from newsletter.store.engine import make_engine
from newsletter.store.engine import session_factory
from newsletter.store.engine import transaction
from newsletter.store.models import ACTIVE
from newsletter.store.models import PENDING
from newsletter.store.models import UNSUBSCRIBED
from newsletter.store.models import AdminSession
from newsletter.store.models import Subscriber
from newsletter.store.models import utcnow
from newsletter.tokens import CONFIRM
from newsletter.tokens import PREFERENCES
from newsletter.tokens import PRIVACY
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer
from newsletter.web.security import Csrf
from newsletter.web.security import derive_key
from newsletter.web.security import password_tag

BASE = "http://news.example.org"  # base_url: not the address the server listens on
SECRET = "probe-secret-key-0123456789-abcdefghijklmnop"
API_TOKEN = "probe-api-token-0123456789"
MONTH = "2025-02"
HUGE = "9" * 30  # past every integer column
MB10 = 10 * 1024 * 1024
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

# --- the server ------------------------------------------------------------------------------


class Site:
    """The running app: its address, its database and its outbox."""

    def __init__(self, root: Path, port: int, process: subprocess.Popen) -> None:
        self.root = root
        self.url = f"http://127.0.0.1:{port}"
        self.process = process
        settings = settings_from_dict(make_config(root), root)
        self.engine = make_engine(settings.database.url)
        self.signer = Signer(SECRET)
        self.ids: dict[str, int] = {}
        self.password_hash = ""
        self.clients: list[httpx.Client] = []

    def client(self, **kwargs) -> httpx.Client:
        """A browser (kept until the module ends, which closes it)."""
        client = httpx.Client(base_url=self.url, follow_redirects=False, timeout=60, **kwargs)
        self.clients.append(client)
        return client

    def record(self, address: str) -> dict:
        with session_factory(self.engine)() as session:
            subscriber = api.get_subscriber(session, address)
            if subscriber is None:
                return {}
            return {
                "status": subscriber.status,
                "name": subscriber.name,
                "topics": subscriber.topic_slugs,
                "lists": api.subscribed_lists(subscriber),
            }

    def token(self, purpose: str, address: str, extra: dict | None = None) -> str:
        return self.signer.make(purpose, self.ids[address], address, extra)

    def mail(self) -> list[bytes]:
        folder = self.root / "outbox" / "new"
        return [path.read_bytes() for path in sorted(folder.glob("*"))]

    def peak_memory_kb(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE).group(1))


def _wait_for(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        try:
            if httpx.get(url + "/subscribe", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)


@pytest.fixture(scope="module")
def site(tmp_path_factory, migrated_sqlite: Path, admin_password_hash: str) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("probe")
    shutil.copyfile(migrated_sqlite, root / "subscribers.db")
    archive = root / "site"
    (archive / "search").mkdir(parents=True)
    (archive / "index.html").write_text("<!doctype html><title>Archive</title>", "utf-8")
    (archive / "search" / "index.html").write_text("<!doctype html><title>S</title>", "utf-8")
    (root / "secret.txt").write_text("TOP-SECRET-OUTSIDE-THE-ARCHIVE", "utf-8")
    mailbox.Maildir(root / "outbox", create=True)
    port = get_free_port()
    config = write_config(
        root,
        newsletter={"base_url": BASE},
        delivery={"transport": "maildir", "maildir": "outbox"},
        archive={"dir": str(archive)},
        web={
            "admin_password_hash": admin_password_hash,
            "subscribe_per_ip_per_hour": 100_000,
            "subscribe_per_address_per_hour": 100_000,
            "login_failure_delay": 0,
            "welcome_latest": False,
        },
    )
    env = {k: v for k, v in os.environ.items() if k != "NEWSLETTER_ADMIN_PASSWORD_HASH"}
    env |= {
        "NEWSLETTER_CONFIG": str(config),
        "NEWSLETTER_SECRET_KEY": SECRET,
        "NEWSLETTER_API_TOKEN": API_TOKEN,
    }
    command = [sys.executable, "-m", "uvicorn", "newsletter.web:app_from_environment"]
    command += ["--factory", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=root, env=env)
    try:
        _wait_for(f"http://127.0.0.1:{port}", process)
        probe = Site(root, port, process)
        probe.password_hash = admin_password_hash
        taxonomy = default_taxonomy()
        with transaction(probe.engine) as session:
            for address, status in (
                ("ana@example.com", ACTIVE),
                ("bob@example.com", ACTIVE),
                ("pat@example.com", PENDING),
                ("uma@example.com", UNSUBSCRIBED),
            ):
                subscriber = api.add_subscriber(
                    session, probe_settings(root), taxonomy, address, name="Orig", status=status
                )
                session.flush()
                probe.ids[address] = subscriber.id
        yield probe
        for client in probe.clients:
            client.close()
        probe.engine.dispose()
    finally:
        process.terminate()
        process.wait(15)


def probe_settings(root: Path):
    return settings_from_dict(make_config(root), root)


# --- browsers ----------------------------------------------------------------------------------


def form_token(client: httpx.Client, path: str) -> str:
    """The CSRF token of the form at `path` (the client keeps the session cookie)."""
    page = client.get(path)
    match = _CSRF.search(page.text)
    assert match, f"no CSRF field on {path} ({page.status_code})"
    return match.group(1)


def logged_in(site: Site, address: str = "127.0.0.1") -> httpx.Client:
    client = site.client(headers={"X-Forwarded-For": address})
    answer = client.post(
        "/admin/login",
        data={"password": ADMIN_PASSWORD, "csrf_token": form_token(client, "/admin/login")},
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == BASE + "/admin/issues"
    return client


def is_admin(client: httpx.Client) -> bool:
    answer = client.get("/admin/issues")
    assert answer.status_code in (200, 303), answer.status_code
    if answer.status_code == 303:
        assert answer.headers["location"] == BASE + "/admin/login"
    return answer.status_code == 200


def session_cookie(key: str, data: dict) -> str:
    """A Starlette session cookie for `data`, signed with the session key derived from `key`."""
    signer = itsdangerous.TimestampSigner(derive_key(key, "session"))
    return signer.sign(base64.b64encode(json.dumps(data).encode())).decode()


def old_csrf(value: str, age: int) -> str:
    """A CSRF token for the session value `value`, made `age` seconds ago."""
    csrf = Csrf(SECRET)
    made = int(time.time()) - age
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda self: made)
        return csrf._serializer.dumps(value)


def old_token(site: Site, purpose: str, address: str, age: int, extra=None) -> str:
    made = int(time.time()) - age
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda self: made)
        return site.token(purpose, address, extra)


def tamper(token: str) -> str:
    """The token with one character of its signature changed (not the last: base64's last
    character has bits the decoder ignores, so changing it may change nothing)."""
    at = len(token) - 5
    return token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]


# --- CSRF: missing, tampered, foreign, stale ---------------------------------------------------

BAD_CSRF = ["missing", "tampered", "foreign", "stale", "other purpose", "huge"]


def bad_csrf(site: Site, kind: str, own: str, client: httpx.Client) -> str:
    if kind == "missing":
        return ""
    if kind == "tampered":
        return tamper(own)
    if kind == "foreign":  # a valid token, but of another browser's session
        with site.client() as other:
            return form_token(other, "/subscribe")
    if kind == "stale":  # this browser's value, signed 13 hours ago (the limit is 12)
        cookie = client.cookies["nl_session"]
        payload = itsdangerous.TimestampSigner(derive_key(SECRET, "session")).unsign(cookie)
        value = json.loads(base64.b64decode(payload))["csrf"]
        return old_csrf(value, 13 * 3600)
    if kind == "other purpose":  # a signed token of the same key, but a link's
        return site.token(PREFERENCES, "ana@example.com")
    return own + "x" * 100_000


def refused(answer: httpx.Response, kind: str, says: str) -> None:
    """403 saying `says`; a token too long for the form's field is 400 (the form is unread)."""
    if kind == "huge":
        assert answer.status_code == 400, answer.text
        assert "Something is missing in this form" in answer.text
    else:
        assert answer.status_code == 403, answer.text
        assert says in answer.text


def _public_form(site: Site, path: str) -> tuple[str, dict, str]:
    """(form page, fields, address whose record the POST would change)."""
    ana = "ana@example.com"
    if path == "/subscribe":
        return "/subscribe", {"email": ana, "name": "Changed", "topic_mode": "all"}, ana
    if path == "/link":
        return "/link", {"email": ana}, ana
    if path == "/preferences":
        token = site.token(PREFERENCES, ana)
        return f"/preferences/{token}", {"action": "save", "name": "Changed"}, ana
    if path == "/preferences/unsubscribe":
        token = site.token(PREFERENCES, ana)
        return f"/preferences/{token}", {"action": "unsubscribe"}, ana
    token = site.token(PRIVACY, ana)
    return f"/privacy/{token}/forget", {}, ana


@pytest.mark.parametrize("kind", BAD_CSRF)
@pytest.mark.parametrize(
    "form", ["/subscribe", "/link", "/preferences", "/preferences/unsubscribe", "/privacy/forget"]
)
def test_public_forms_refuse_a_bad_csrf_token(site, form, kind) -> None:
    page, fields, address = _public_form(site, form)
    before, mails = site.record(address), len(site.mail())
    with site.client() as client:
        own = form_token(client, page)
        answer = client.post(page, data={**fields, "csrf_token": bad_csrf(site, kind, own, client)})
    refused(answer, kind, "expired")
    time.sleep(0.05)  # background mail, if any were (wrongly) started
    assert site.record(address) == before
    assert len(site.mail()) == mails


ADMIN_FORMS = {
    "logout": ("/admin/logout", {}),
    "add": ("/admin/subscribers", {"email": "new-by-csrf@example.com"}),
    "status": ("/admin/subscribers/{bob}/status", {"status": UNSUBSCRIBED}),
    "test send": (f"/admin/issues/{MONTH}/test", {"addresses": "editor@example.org"}),
    "send": (f"/admin/issues/{MONTH}/send", {}),
    "schedule": ("/admin/schedule/add", {"month": MONTH, "at": "2099-01-01 10:00"}),
    "unschedule": ("/admin/schedule/remove", {"job_id": "x"}),
}


@pytest.mark.parametrize("kind", BAD_CSRF)
@pytest.mark.parametrize("name", [*ADMIN_FORMS, "import"])
def test_admin_forms_refuse_a_bad_csrf_token(site, name, kind) -> None:
    client = logged_in(site)
    own = form_token(client, "/admin/subscribers")
    token = bad_csrf(site, kind, own, client)
    before, mails = site.record("bob@example.com"), len(site.mail())
    if name == "import":
        answer = client.post(
            "/admin/import",
            data={"csrf_token": token},
            files={"file": ("x.csv", b"email\nnew-by-import@example.com\n", "text/csv")},
        )
    else:
        path, fields = ADMIN_FORMS[name]
        path = path.format(bob=site.ids["bob@example.com"])
        answer = client.post(path, data={**fields, "csrf_token": token})
    refused(answer, kind, "This form had expired")
    assert is_admin(client)  # not even logout happened
    assert site.record("bob@example.com") == before
    assert site.record("new-by-csrf@example.com") == {}
    assert site.record("new-by-import@example.com") == {}
    assert len(site.mail()) == mails


@pytest.mark.parametrize("kind", BAD_CSRF)
def test_the_login_form_refuses_a_bad_csrf_token(site, kind) -> None:
    with site.client(headers={"X-Forwarded-For": "192.0.2.50"}) as client:
        own = form_token(client, "/admin/login")
        token = bad_csrf(site, kind, own, client)
        answer = client.post("/admin/login", data={"password": ADMIN_PASSWORD, "csrf_token": token})
        refused(answer, kind, "This form had expired")
        assert not is_admin(client)


# --- link tokens: tampered, another purpose's, another subscriber's, stale, huge ----------------

LINK_ROUTES = [
    ("GET", "/confirm/{t}", CONFIRM),
    ("POST", "/confirm/{t}", CONFIRM),
    ("GET", "/preferences/{t}", PREFERENCES),
    ("POST", "/preferences/{t}", PREFERENCES),
    ("GET", "/preferences/{t}/data", PREFERENCES),
    ("GET", "/preferences/{t}/forget", PREFERENCES),
    ("POST", "/preferences/{t}/forget", PREFERENCES),
    ("GET", "/privacy/{t}", PRIVACY),
    ("GET", "/privacy/{t}/data", PRIVACY),
    ("GET", "/privacy/{t}/forget", PRIVACY),
    ("POST", "/privacy/{t}/forget", PRIVACY),
    ("GET", "/u/{t}", UNSUBSCRIBE),
    ("POST", "/u/{t}", UNSUBSCRIBE),
]
NOT_VALID = "This link is not valid"
GONE = "This link no longer matches a subscription"
EXPIRED = "This link has expired"


def bad_link(site: Site, kind: str, purpose: str, address: str) -> tuple[str, str]:
    """(token, what the page must say)."""
    other = {CONFIRM: PREFERENCES, PREFERENCES: UNSUBSCRIBE}.get(purpose, PREFERENCES)
    if kind == "tampered":
        return tamper(site.token(purpose, address)), NOT_VALID
    if kind == "other purpose":
        return site.token(other, address), NOT_VALID
    if kind == "another's id":  # signed, but naming Bob's id with Ana's address
        return site.signer.make(purpose, site.ids["bob@example.com"], address), GONE
    if kind == "huge id":
        return site.signer.make(purpose, int(HUGE), address), GONE
    if kind == "negative id":
        return site.signer.make(purpose, -1, address), GONE
    if kind == "dev key":
        return Signer(DEV_SECRET_KEY).make(purpose, site.ids[address], address), NOT_VALID
    if kind == "huge":
        return "A" * 20_000, NOT_VALID
    # stale: 8 days for a confirmation link (7 allowed), 2 hours for a privacy link (1 hour)
    return old_token(site, purpose, address, 8 * 24 * 3600), EXPIRED


LINK_KINDS = ["tampered", "other purpose", "another's id", "huge id", "negative id", "dev key"]
LINK_KINDS += ["huge"]


def _link_cases():
    for method, path, purpose in LINK_ROUTES:
        for kind in LINK_KINDS:
            yield method, path, purpose, kind
        if purpose in (CONFIRM, PRIVACY):
            yield method, path, purpose, "stale"


@pytest.mark.parametrize(("method", "path", "purpose", "kind"), list(_link_cases()))
def test_bad_link_tokens_change_nothing(site, method, path, purpose, kind) -> None:
    address = "pat@example.com" if purpose == CONFIRM else "ana@example.com"
    token, says = bad_link(site, kind, purpose, address)
    before = {a: site.record(a) for a in ("ana@example.com", "bob@example.com", address)}
    with site.client() as client:
        url = path.format(t=token)
        if method == "GET":
            answer = client.get(url)
        else:
            fields = {"List-Unsubscribe": "One-Click"} if path.startswith("/u/") else {}
            fields |= {"action": "unsubscribe", "csrf_token": form_token(client, "/subscribe")}
            answer = client.post(url, data=fields)
    assert answer.status_code == 400, (answer.status_code, answer.text[:300])
    assert says in answer.text
    assert "This link does not work" in answer.text
    assert {a: site.record(a) for a in before} == before


def test_a_link_from_before_a_change_of_address_names_nobody(site) -> None:
    """Another subscriber's link (here: one made for an address the id no longer has)."""
    token = site.signer.make(PREFERENCES, site.ids["ana@example.com"], "old-ana@example.com")
    with site.client() as client:
        answer = client.get(f"/preferences/{token}")
    assert answer.status_code == 400 and GONE in answer.text


def test_a_good_link_works(site) -> None:
    """The control of the two tests above: the same routes with good tokens."""
    with site.client() as client:
        page = client.get(f"/preferences/{site.token(PREFERENCES, 'ana@example.com')}")
        assert page.status_code == 200 and "ana@example.com" in page.text
        privacy = client.get(f"/privacy/{site.token(PRIVACY, 'ana@example.com')}")
        assert privacy.status_code == 200
        unsubscribe = client.get(f"/u/{site.token(UNSUBSCRIBE, 'ana@example.com')}")
        assert unsubscribe.status_code == 200 and "Unsubscribe" in unsubscribe.text


@pytest.mark.parametrize("path", ["/confirm/", "/preferences/", "/privacy/", "/u/"])
def test_a_missing_link_token_is_not_found(site, path) -> None:
    with site.client() as client:
        for answer in (client.get(path), client.post(path, data={"x": "1"})):
            assert answer.status_code == 404, (path, answer.status_code)
            assert "There is nothing at this address" in answer.text


# --- forged sessions, concurrent logins ---------------------------------------------------------


def _forged(site: Site, kind: str) -> str:
    if kind == "dev key":
        return session_cookie(DEV_SECRET_KEY, {"admin_session": "x" * 43, "admin": True})
    if kind == "flag only":  # the cookie of old versions: a flag, no session id
        return session_cookie(SECRET, {"admin": True})
    if kind == "no row":
        return session_cookie(SECRET, {"admin_session": "y" * 43, "admin": True})
    if kind == "huge id":
        return session_cookie(SECRET, {"admin_session": "z" * 5_000, "admin": True})
    if kind == "wrong type":
        return session_cookie(SECRET, {"admin_session": ["a"], "admin": True})
    # A real session row, of a password the admin has since changed (or has expired).
    now = utcnow()
    tag = password_tag(SECRET, hash_password("the old password"))
    lifetime = dt.timedelta(hours=8)
    if kind == "expired":
        tag = password_tag(SECRET, site.password_hash)
        now -= dt.timedelta(hours=9)
    with transaction(site.engine) as session:
        row_token = _insert_session(session, tag, lifetime, now)
    return session_cookie(SECRET, {"admin_session": row_token, "admin": True})


def _insert_session(session, tag: str, lifetime: dt.timedelta, now: dt.datetime) -> str:
    # start_session deletes the rows of other passwords: add ours without it.

    token = secrets.token_urlsafe(32)
    session.add(
        AdminSession(
            id_hash=hashlib.sha256(token.encode()).hexdigest(),
            password_tag=tag,
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return token


@pytest.mark.parametrize(
    "kind", ["dev key", "flag only", "no row", "huge id", "wrong type", "old password", "expired"]
)
def test_a_forged_session_gets_nothing(site, kind) -> None:
    cookie = _forged(site, kind)
    with site.client(cookies={"nl_session": cookie}) as client:
        assert not is_admin(client)
        for path in ("/admin/subscribers", f"/admin/issues/{MONTH}", "/admin/schedule"):
            answer = client.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == BASE + "/admin/login"
        bob = site.ids["bob@example.com"]
        changed = client.post(f"/admin/subscribers/{bob}/status", data={"status": UNSUBSCRIBED})
        assert changed.status_code == 303
        assert site.record("bob@example.com")["status"] == ACTIVE


def test_concurrent_logins_each_get_a_session_and_logout_ends_them_all(site) -> None:
    count = 6
    start = threading.Barrier(count)
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def log_in(n: int) -> None:
        client = site.client(headers={"X-Forwarded-For": f"198.51.100.{n + 1}"})
        token = form_token(client, "/admin/login")
        start.wait(30)
        answer = client.post("/admin/login", data={"password": ADMIN_PASSWORD, "csrf_token": token})
        assert answer.status_code == 303, answer.text
        with lock:
            clients.append(client)

    threads = [threading.Thread(target=log_in, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(clients) == count
    copied = site.client(cookies={"nl_session": clients[0].cookies["nl_session"]})
    assert all(is_admin(client) for client in clients) and is_admin(copied)
    first = clients[0]
    assert first.post(
        "/admin/logout", data={"csrf_token": form_token(first, "/admin/issues")}
    ).headers["location"] == (BASE + "/admin/login")
    assert not any(is_admin(client) for client in [*clients, copied])
    with session_factory(site.engine)() as session:
        assert session.scalars(select(AdminSession)).all() == []


# --- Host and X-Forwarded-* headers -------------------------------------------------------------

EVIL = {
    "Host": "evil.example",
    "X-Forwarded-Host": "evil2.example",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Prefix": "/evil3",
    "Forwarded": "host=evil4.example;proto=https",
}


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/admin", "/admin/login"),
        ("/admin/issues", "/admin/login"),
        ("/admin/issues/", "/admin/issues"),
        ("/subscribe/", "/subscribe"),
        ("/api/issues/", "/api/issues"),
        ("/archive", "/archive/"),
        ("/archive/search", "/archive/search/"),
    ],
)
def test_redirects_come_from_base_url(site, path, target) -> None:
    with site.client(headers=EVIL) as client:
        answer = client.get(path)
    assert answer.status_code in (303, 307), answer.status_code
    assert answer.headers["location"] == BASE + target


def test_pages_and_emails_name_base_url_whatever_the_headers(site) -> None:
    before = len(site.mail())
    address = "hosts@example.com"
    with site.client(headers=EVIL) as client:
        pages = [client.get(path) for path in ("/subscribe", "/link", "/admin/login")]
        token = form_token(client, "/subscribe")
        pages.append(client.post("/subscribe", data={"email": address, "csrf_token": token}))
        pages.append(client.get(f"/preferences/{site.token(PREFERENCES, 'ana@example.com')}"))
    for page in pages:
        assert page.status_code == 200
        assert "evil" not in page.text.lower(), page.url
    mails = _wait_for_mail(site, before + 1)
    confirm = [m for m in mails[before:] if address.encode() in m]
    assert len(confirm) == 1
    text = confirm[0].decode("utf-8", "replace")
    assert "evil" not in text.lower()
    assert f"{BASE}/confirm/" in text


def _wait_for_mail(site: Site, count: int) -> list[bytes]:
    deadline = time.monotonic() + 10
    while len(site.mail()) < count:
        assert time.monotonic() < deadline, "no mail arrived"
        time.sleep(0.05)
    return site.mail()


# --- huge ids and numbers in paths and queries ----------------------------------------------------


def _huge_cases():
    prefs = "{prefs}"
    return [
        ("admin", f"/admin/subscribers/{HUGE}", 404),
        ("admin", "/admin/subscribers/-1", 404),
        ("admin", "/admin/subscribers/0", 404),
        ("admin", "/admin/subscribers/1e999", 400),
        ("admin", f"/admin/subscribers?page={HUGE}", 200),
        ("admin", "/admin/subscribers?page=-5", 200),
        ("admin", f"/admin/subscribers?status={HUGE}&topic={HUGE}&list={HUGE}", 200),
        ("admin", f"/admin/issues/{HUGE}", 404),
        ("admin", "/admin/issues/2025-99", 404),
        ("admin", f"/admin/issues/{HUGE}/preview", 404),
        ("admin", f"/admin/issues/{MONTH}/preview?topic_mode=some&topics={HUGE}", 200),
        ("admin", f"/admin/issues/{MONTH}/preview?subscriber={HUGE}", 200),
        ("admin", f"/admin/issues/{MONTH}/send?lists={HUGE}", 200),
        ("admin", f"/admin/issues/{HUGE}/send", 404),
        ("public", f"/subscribe?topics={HUGE}&email={HUGE}", 200),
        ("public", f"{prefs}?drop={HUGE}", 404),
        ("public", f"/static/{HUGE}.css", 404),
        ("public", f"/archive/{HUGE}", 404),
        ("api", f"/api/subscribers/{HUGE}", 404),
        ("api", "/api/subscribers/-1", 404),
        ("api", f"/api/subscribers?limit={HUGE}", 422),
        ("api", f"/api/subscribers?offset={HUGE}", 422),
        ("api", "/api/subscribers?limit=-1", 422),
        ("api", f"/api/issues/{HUGE}", 404),
        ("api", f"/api/issues/{HUGE}/plan", 404),
        ("api", f"/api/issues/{HUGE}/progress", 404),
        ("api", f"/api/issues/{MONTH}/plan?lists={HUGE}", 400),
    ]


@pytest.fixture(scope="module")
def admin(site) -> httpx.Client:
    return logged_in(site, "192.0.2.1")


def _client_for(site, who: str, admin_client) -> httpx.Client:
    if who == "admin":
        if not is_admin(admin_client):  # a test logged every session out
            admin_client.cookies = logged_in(site, "192.0.2.1").cookies
        return admin_client
    headers = {"Authorization": f"Bearer {API_TOKEN}"} if who == "api" else {}
    return site.client(headers=headers)


@pytest.mark.parametrize(("who", "path", "status"), _huge_cases())
def test_huge_and_odd_numbers_are_answered_not_crashed_on(site, admin, who, path, status) -> None:
    client = _client_for(site, who, admin)
    path = path.replace("{prefs}", f"/preferences/{site.token(PREFERENCES, 'ana@example.com')}")
    answer = client.get(path)
    assert answer.status_code == status, (path, answer.status_code, answer.text[:300])
    if who == "api":
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["status"] == status


def test_huge_ids_in_admin_and_api_writes(site, admin) -> None:
    client = _client_for(site, "admin", admin)
    token = form_token(client, "/admin/subscribers")
    answer = client.post(
        f"/admin/subscribers/{HUGE}/status", data={"status": ACTIVE, "csrf_token": token}
    )
    assert answer.status_code == 404
    with _client_for(site, "api", admin) as api_client:
        patched = api_client.patch(f"/api/subscribers/{HUGE}", json={"name": "x"})
        assert patched.status_code == 404 and patched.json()["detail"] == "no such subscriber"


# --- 10 MB bodies --------------------------------------------------------------------------------


def _post_routes(site: Site) -> list[tuple[str, str, str]]:
    """(who, method, path) of every route that takes a body."""
    prefs = site.token(PREFERENCES, "ana@example.com")
    privacy = site.token(PRIVACY, "ana@example.com")
    confirm = site.token(CONFIRM, "pat@example.com")
    unsubscribe = site.token(UNSUBSCRIBE, "ana@example.com")
    bob = site.ids["bob@example.com"]
    public = [
        "/subscribe",
        "/link",
        f"/confirm/{confirm}",
        f"/preferences/{prefs}",
        f"/preferences/{prefs}/forget",
        f"/privacy/{privacy}/forget",
        f"/u/{unsubscribe}",
        "/admin/login",
    ]
    admin = [
        "/admin/logout",
        "/admin/subscribers",
        f"/admin/subscribers/{bob}/status",
        "/admin/import",
        f"/admin/issues/{MONTH}/test",
        f"/admin/issues/{MONTH}/send",
        "/admin/schedule/add",
        "/admin/schedule/remove",
    ]
    api_routes = [
        ("POST", f"/api/issues/{MONTH}/preview"),
        ("POST", f"/api/issues/{MONTH}/test"),
        ("POST", f"/api/issues/{MONTH}/send"),
        ("POST", "/api/subscribers"),
        ("PATCH", f"/api/subscribers/{bob}"),
        ("POST", "/api/subscribers/import"),
    ]
    return (
        [("public", "POST", p) for p in public]
        + [("admin", "POST", p) for p in admin]
        + [("api", m, p) for m, p in api_routes]
    )


def _big_body(kind: str) -> tuple[dict[str, str], bytes]:
    filler = b"x" * MB10
    if kind == "form":
        return {"Content-Type": "application/x-www-form-urlencoded"}, b"name=" + filler
    if kind == "form fields":  # many small fields: no single field is large
        return {"Content-Type": "application/x-www-form-urlencoded"}, b"&".join(
            [b"topics=" + b"y" * 10_000] * (MB10 // 10_007)
        )
    if kind == "multipart":
        boundary = "probeboundary"
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n'
            f"Content-Type: text/csv\r\n\r\n".encode()
            + filler
            + f"\r\n--{boundary}--\r\n".encode()
        )
        return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, body
    return {"Content-Type": "application/json"}, b'{"csv": "' + filler + b'"}'


def _send_big(site, client: httpx.Client, method: str, path: str, kind: str, chunked: bool):
    headers, body = _big_body(kind)
    if chunked:
        content = (body[i : i + 65536] for i in range(0, len(body), 65536))
        return client.request(method, path, headers=headers, content=content)
    return client.request(method, path, headers=headers, content=body)


BODY_KINDS = ["form", "form fields", "multipart", "json"]
IMPORTS = ("/admin/import", "/api/subscribers/import")


@pytest.fixture(scope="module")
def warmed(site, admin) -> int:
    """The server's peak memory after one small request to every route (imports, templates)."""
    for who, method, path in _post_routes(site):
        client = _client_for(site, who, admin)
        client.request(method, path, data={"x": "1"} if who != "api" else None)
    return site.peak_memory_kb()


@pytest.mark.parametrize(
    ("kind", "chunked"),
    [(kind, False) for kind in BODY_KINDS] + [("form", True), ("json", True)],
    ids=[*BODY_KINDS, "form-chunked", "json-chunked"],
)
def test_ten_megabyte_bodies_are_refused(site, admin, warmed, kind, chunked) -> None:
    """Every route that takes a body answers 413 to 10 MB, without holding it in memory.

    With a Content-Length the answer comes before the body is read (Starlette's plain
    "Content Too Large"). A chunked body is refused once the limit is read, by the routes that
    read one: a form route sent JSON reads none (no form: the CSRF check refuses, 403), and
    `POST /confirm/{token}` reads none (the token is the whole request: it confirms).
    """
    seen, expected = {}, {}
    for who, method, path in _post_routes(site):
        if path in IMPORTS:
            continue
        client = _client_for(site, who, admin)
        answer = _send_big(site, client, method, path, kind, chunked)
        seen[path] = answer.status_code
        expected[path] = 413
        if not chunked:
            assert answer.text == "Content Too Large"
        elif who == "api":
            assert answer.json()["status"] == 413
        elif path.startswith("/confirm/"):
            expected[path] = 200
        elif path.startswith("/preferences/") and path.endswith("/forget"):
            expected[path] = 403  # reads none either: it only points at the privacy link
        elif path.startswith("/u/"):
            expected[path] = 400  # no readable form: "nothing was changed"
        elif kind == "json":
            expected[path] = 403
        else:
            assert "Too large" in answer.text
    assert seen == expected
    grown = site.peak_memory_kb() - warmed
    # Reading one body whole keeps it twice at least (the bytes and the parsed text): 20 MB.
    assert grown < 16 * 1024, f"the server's peak memory grew by {grown} kB"
    assert site.record("bob@example.com")["status"] == ACTIVE
    assert site.record("ana@example.com")["status"] == ACTIVE


@pytest.mark.parametrize(
    ("path", "kind", "status"),
    [
        # Read (the file to disk), within the 20 MB: no CSRF token in these forms.
        ("/admin/import", "multipart", 403),
        ("/admin/import", "form", 400),  # a field past Starlette's 1 MB
        ("/admin/import", "json", 403),
        ("/api/subscribers/import", "json", 400),
        ("/api/subscribers/import", "form", 422),
    ],
)
def test_ten_megabytes_to_an_import_are_read_within_its_limit(site, admin, path, kind, status):
    who = "api" if path.startswith("/api/") else "admin"
    client = _client_for(site, who, admin)
    answer = _send_big(site, client, "POST", path, kind, False)
    assert answer.status_code == status, answer.text[:500]


def test_an_import_larger_than_its_limit_is_refused(site, admin) -> None:
    client = _client_for(site, "api", admin)
    body = b'{"csv": "' + b"x" * (41 * 1024 * 1024) + b'"}'
    answer = client.post(
        "/api/subscribers/import", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413 and answer.text == "Content Too Large"


# --- CR/LF in form fields -------------------------------------------------------------------------

INJECTIONS = [
    "Ana\r\nBcc: victim@example.net",
    "Ana\nBcc: victim@example.net",
    "Ana\rBcc: victim@example.net",
    "Ana\u2028Bcc: victim@example.net",
    "Ana\x85Bcc: victim@example.net",
    "Ana\x00",
]


@pytest.mark.parametrize("value", INJECTIONS, ids=range(len(INJECTIONS)))
def test_line_breaks_in_names_and_addresses_are_refused(site, admin, value) -> None:
    mails = len(site.mail())
    with site.client() as client:
        token = form_token(client, "/subscribe")
        named = client.post(
            "/subscribe", data={"email": "crlf@example.com", "name": value, "csrf_token": token}
        )
        assert named.status_code == 400 and "Please check your name" in named.text
        addressed = client.post(
            "/subscribe", data={"email": "crlf@example.com" + value[3:], "csrf_token": token}
        )
        assert addressed.status_code == 400
        assert "Please check your email address" in addressed.text
        linked = client.post(
            "/link", data={"email": "ana@example.com" + value[3:], "csrf_token": token}
        )
        assert linked.status_code == 400
        prefs = f"/preferences/{site.token(PREFERENCES, 'ana@example.com')}"
        saved = client.post(
            prefs, data={"action": "save", "name": value, "csrf_token": form_token(client, prefs)}
        )
        assert saved.status_code == 400 and "Please check your name" in saved.text
    client = _client_for(site, "admin", admin)
    added = client.post(
        "/admin/subscribers",
        data={
            "email": "crlf@example.com",
            "name": value,
            "csrf_token": form_token(client, "/admin/subscribers"),
        },
    )
    assert added.status_code == 400 and "Not added" in added.text
    tested = client.post(
        f"/admin/issues/{MONTH}/test",
        data={
            "addresses": "crlf@example.com" + value[3:],
            "csrf_token": form_token(client, "/admin/subscribers"),
        },
    )
    assert tested.status_code == 200 and "Test not sent" in tested.text
    with _client_for(site, "api", admin) as api_client:
        posted = api_client.post(
            "/api/subscribers", json={"email": "crlf@example.com", "name": value}
        )
        assert posted.status_code == 422
        patched = api_client.patch(
            f"/api/subscribers/{site.ids['bob@example.com']}", json={"name": value}
        )
        assert patched.status_code == 422
    time.sleep(0.05)
    assert site.record("crlf@example.com") == {}
    assert site.record("ana@example.com")["name"] == "Orig"
    assert site.record("bob@example.com")["name"] == "Orig"
    new = site.mail()[mails:]
    assert not any(b"victim@example.net" in message for message in new)


# --- reflected and stored HTML ------------------------------------------------------------------

XSS = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def _reflecting(site: Site) -> list[tuple[str, str, str, dict | None]]:
    """(who, method, path, form) of requests that show a value back."""
    q = httpx.QueryParams
    prefs = f"/preferences/{site.token(PREFERENCES, 'ana@example.com')}"
    return [
        ("public", "GET", "/subscribe?" + str(q({"email": XSS, "name": XSS})), None),
        ("public", "POST", "/subscribe", {"email": XSS, "name": XSS}),
        (
            "public",
            "POST",
            "/subscribe",
            {"email": "x@example.com", "name": XSS[:60], "topic_mode": "some", "topics": XSS},
        ),
        ("public", "POST", "/subscribe", {"email": "x@example.com", "lists": XSS}),
        ("public", "POST", "/link", {"email": XSS}),
        ("public", "POST", prefs, {"action": "save", "name": XSS}),
        ("public", "POST", prefs, {"action": "save", "topic_mode": "some", "topics": XSS}),
        ("public", "POST", prefs, {"action": XSS}),
        (
            "admin",
            "GET",
            "/admin/subscribers?" + str(q({"q": XSS, "status": XSS, "topic": XSS, "list": XSS})),
            None,
        ),
        ("admin", "GET", f"/admin/issues/{MONTH}/preview?" + str(q({"subscriber": XSS})), None),
        (
            "admin",
            "GET",
            f"/admin/issues/{MONTH}/preview?" + str(q({"topic_mode": "some", "topics": XSS})),
            None,
        ),
        ("admin", "GET", f"/admin/issues/{MONTH}/send?" + str(q({"lists": XSS})), None),
        ("admin", "POST", "/admin/subscribers", {"email": XSS, "name": XSS}),
        ("admin", "POST", f"/admin/issues/{MONTH}/test", {"addresses": XSS}),
        ("admin", "POST", "/admin/schedule/add", {"month": XSS, "at": XSS}),
        ("admin", "POST", "/admin/schedule/remove", {"job_id": XSS}),
    ]


# The link form, an unknown preferences action ("Unknown action.") and the test send do not
# show the value back. (Whether 7's page shows a name set by 5 depends on the order the tests
# run in, which pytest-xdist changes: no test may lean on another's leftovers.)
NOT_SHOWN = {4, 7, 13}


@pytest.mark.parametrize("index", range(16))
def test_reflected_values_are_escaped(site, admin, index) -> None:
    who, _, path, form = _reflecting(site)[index]
    client = _client_for(site, who, admin) if who == "admin" else site.client()
    if form is not None:
        token_page = "/admin/subscribers" if who == "admin" else "/subscribe"
        page = path if path.startswith("/preferences/") else token_page
        form = {**form, "csrf_token": form_token(client, page)}
        answer = client.post(path, data=form)
    else:
        answer = client.get(path)
    assert answer.status_code in (200, 400), (answer.status_code, answer.text[:300])
    assert "<script>alert(1)" not in answer.text
    assert "<img src=x" not in answer.text
    if index not in NOT_SHOWN:
        assert "&lt;img src=x" in answer.text  # shown back, escaped


def test_a_stored_name_is_escaped_wherever_it_is_shown(site, admin) -> None:
    address = "stored-xss@example.com"
    name = "<script>alert(1)</script>"
    with site.client() as client:
        token = form_token(client, "/subscribe")
        assert (
            client.post(
                "/subscribe", data={"email": address, "name": name, "csrf_token": token}
            ).status_code
            == 200
        )
    deadline = time.monotonic() + 10
    while not site.record(address):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    with session_factory(site.engine)() as session:
        subscriber = session.scalars(select(Subscriber).where(Subscriber.email == address)).one()
        site.ids[address] = subscriber.id
    assert site.record(address)["name"] == name
    client = _client_for(site, "admin", admin)
    pages = [
        client.get("/admin/subscribers?" + str(httpx.QueryParams({"q": "stored-xss"}))),
        client.get(f"/admin/subscribers/{site.ids[address]}"),
    ]
    with site.client() as public:
        pages.append(public.get(f"/preferences/{site.token(PREFERENCES, address)}"))
        pages.append(public.get(f"/confirm/{site.token(CONFIRM, address)}"))
    for page in pages:
        assert page.status_code == 200, page.url
        assert "<script>alert(1)" not in page.text
    assert ESCAPED in pages[0].text and ESCAPED in pages[1].text and ESCAPED in pages[2].text


# --- paths out of /archive/ and /static/ ---------------------------------------------------

TRAVERSALS = [
    "/archive/../secret.txt",
    "/archive/..%2fsecret.txt",
    "/archive/%2e%2e/secret.txt",
    "/archive/%2e%2e%2fsecret.txt",
    "/archive/..%5csecret.txt",
    "/archive/....//secret.txt",
    "/archive/search/../../secret.txt",
    "/archive//" + "{root}/secret.txt",
    "/archive/%2f{root}/secret.txt",
    "/archive/secret.txt%00.html",
    "/archive/..%00/secret.txt",
    "/archive/%252e%252e/secret.txt",
    "/static/..%2f..%2fsecret.txt",
    "/static/%2e%2e/config.toml",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_no_path_leaves_the_archive(site, path) -> None:
    path = path.replace("{root}", str(site.root).lstrip("/"))
    host, port = site.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path)  # sent as written: no client normalizes the dots
        response = connection.getresponse()
        body = response.read().decode("utf-8", "replace")
    finally:
        connection.close()
    assert response.status in (400, 404), (path, response.status)
    assert "TOP-SECRET" not in body and "[newsletter]" not in body
