"""Fixtures and helpers shared by the web tests (imported by tests/test_web*.py)."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator

import pytest
from conftest import ADMIN_PASSWORD
from fastapi.testclient import TestClient as StarletteClient

from newsletter.config import Settings
from newsletter.transport.memory import MemoryTransport
from newsletter.web import create_app

BASE = "https://news.example.org"
PASSWORD = ADMIN_PASSWORD
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class TestClient(StarletteClient):
    """A test client that, after each request, waits until the app has sent the emails the
    request queued (the outbox thread sends them after the answer; `flush` is the
    deterministic wait, no sleeping)."""

    __test__ = False  # not a test class, despite its name

    def request(self, *args, **kwargs):  # type: ignore[override]
        response = super().request(*args, **kwargs)
        self.app.state.ctx.mailer.flush(only_if_queued=True)  # no query otherwise
        return response


@pytest.fixture
def outbox() -> MemoryTransport:
    return MemoryTransport()


@pytest.fixture
def web_settings(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, admin_password_hash: str
) -> Settings:
    monkeypatch.setenv("NEWSLETTER_ADMIN_PASSWORD_HASH", admin_password_hash)
    monkeypatch.setenv("NEWSLETTER_API_TOKEN", "test-api-token")
    return settings


@pytest.fixture
def app(web_settings: Settings, engine, outbox: MemoryTransport):
    return create_app(web_settings, transport_factory=lambda: outbox, engine=engine)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    # https, like base_url: the session cookie is Secure.
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def admin(client: TestClient) -> TestClient:
    """The client, logged in as admin."""
    response = client.post(
        "/admin/login", data={"password": PASSWORD, "csrf_token": csrf(client, "/admin/login")}
    )
    assert response.status_code == 303, response.text
    return client


def csrf(client: TestClient, url: str) -> str:
    """The CSRF token of the form on the page at `url`."""
    response = client.get(url)
    match = _CSRF.search(response.text)
    assert match, f"no CSRF field on {url} ({response.status_code})"
    return match.group(1)


def parse(message: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(message, policy=email.policy.default)


def text_of(message: bytes) -> str:
    return parse(message).get_body(("plain",)).get_content()


def links(message: bytes) -> list[str]:
    """Paths (without the base URL) of the links in a message's text part."""
    return [url[len(BASE) :] for url in re.findall(re.escape(BASE) + r"/[^\s>]+", text_of(message))]


def link_to(message: bytes, prefix: str) -> str:
    found = [path for path in links(message) if path.startswith(prefix)]
    assert found, f"no {prefix} link in:\n{text_of(message)}"
    return found[0]


def subscribe(client: TestClient, address: str = "ana@example.com", **fields):
    data = {"email": address, "csrf_token": csrf(client, "/subscribe"), **fields}
    return client.post("/subscribe", data=data)
