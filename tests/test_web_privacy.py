"""Download my data and forget me need a fresh emailed link (issue 11, item 8).

The preferences link travels in every digest and never expires, so a forwarded digest hands it
on: alone it cannot read or delete anyone's data. The preferences page emails a short-lived
link (`[web] privacy_link_max_age`) to the address on record; the mail goes through a real SMTP
server (aiosmtpd) here, and the link from it downloads and forgets.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import itsdangerous.timed
import pytest
from smtp_sink import SmtpSink
from smtp_sink import running_sink
from test_web_support import TestClient
from test_web_support import csrf
from test_web_support import link_to
from test_web_support import parse
from test_web_support import text_of

from newsletter.content.taxonomy import default_taxonomy
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory
from newsletter.tokens import PREFERENCES
from newsletter.tokens import PRIVACY
from newsletter.tokens import Signer
from newsletter.web import create_app

pytest_plugins = ["test_web_support"]


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    with running_sink() as server:
        yield server


@pytest.fixture
def smtp_client(web_settings, engine, sink) -> Iterator[TestClient]:
    """The app sending its mail over SMTP to the aiosmtpd sink."""
    web_settings.delivery.transport = "smtp"
    web_settings.smtp.host, web_settings.smtp.port = sink.host, sink.port
    app = create_app(web_settings, engine=engine)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


@pytest.fixture
def ana(engine, web_settings) -> tuple[int, str]:
    """(id, preferences token) of an active subscriber with a consent IP on record."""
    with session_factory(engine)() as session:
        subscriber = api.add_subscriber(
            session, web_settings, default_taxonomy(), "ana@example.com", ip="198.51.100.4"
        )
        session.commit()
        subscriber_id = subscriber.id
    signer = Signer(web_settings.secret_key())
    return subscriber_id, signer.make(PREFERENCES, subscriber_id, "ana@example.com")


def exists(engine, address: str) -> bool:
    with session_factory(engine)() as session:
        return api.get_subscriber(session, address) is not None


def wait_for_messages(sink: SmtpSink, count: int, timeout: float = 15.0) -> list:
    deadline = time.monotonic() + timeout
    while len(sink.messages) < count:
        assert time.monotonic() < deadline, f"expected {count} messages, got {len(sink.messages)}"
        time.sleep(0.02)
    return list(sink.messages)


def ask_for_link(client: TestClient, prefs: str):
    path = f"/preferences/{prefs}"
    return client.post(path, data={"action": "privacy", "csrf_token": csrf(client, path)})


def test_the_preferences_link_alone_cannot_download_or_forget(smtp_client, engine, ana, sink):
    _, prefs = ana
    download = smtp_client.get(f"/preferences/{prefs}/data")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/html")
    assert "content-disposition" not in download.headers
    assert "198.51.100.4" not in download.text and "consent_ip" not in download.text
    assert "we first email a separate link" in download.text
    page = smtp_client.get(f"/preferences/{prefs}/forget")
    assert "Delete my data" not in page.text
    forget_path = f"/preferences/{prefs}/forget"
    refused = smtp_client.post(forget_path, data={"csrf_token": csrf(smtp_client, forget_path)})
    assert refused.status_code == 403
    assert exists(engine, "ana@example.com")
    # The preferences token is no privacy token, whatever the path.
    for path in (f"/privacy/{prefs}", f"/privacy/{prefs}/data", f"/privacy/{prefs}/forget"):
        assert smtp_client.get(path).status_code == 400, path
    no_csrf = smtp_client.post(
        f"/privacy/{prefs}/forget", data={"csrf_token": csrf(smtp_client, f"/preferences/{prefs}")}
    )
    assert no_csrf.status_code == 400
    assert exists(engine, "ana@example.com")
    assert sink.messages == []  # nothing asked for, nothing sent


def test_the_emailed_link_arrives_over_smtp_and_downloads_then_forgets(
    smtp_client, engine, ana, sink
):
    _, prefs = ana
    response = ask_for_link(smtp_client, prefs)
    assert response.status_code == 200
    assert "We have emailed a link to ana@example.com" in response.text
    assert "within 1 hour" in response.text
    [mail] = wait_for_messages(sink, 1)
    assert mail.recipients == ("ana@example.com",)
    message = parse(mail.content)
    assert message["Subject"].startswith("Your link to download or delete your data")
    assert message["List-Unsubscribe"] is None
    assert "The link works for 1 hour." in " ".join(text_of(mail.content).split())
    privacy = link_to(mail.content.replace(b"\r\n", b"\n"), "/privacy/")
    html = message.get_body(("html",)).get_content()
    assert privacy in html
    page = smtp_client.get(privacy)
    assert page.status_code == 200 and "Download my data" in page.text
    data = smtp_client.get(f"{privacy}/data")
    assert data.status_code == 200
    assert "attachment" in data.headers["content-disposition"]
    record = json.loads(data.text)
    assert (record["email"], record["consent_ip"]) == ("ana@example.com", "198.51.100.4")
    forget_path = f"{privacy}/forget"
    done = smtp_client.post(forget_path, data={"csrf_token": csrf(smtp_client, forget_path)})
    assert done.status_code == 200 and "Your data is deleted" in done.text
    assert not exists(engine, "ana@example.com")
    assert smtp_client.get(privacy).status_code == 400  # names nobody now


def aged(monkeypatch, web_settings, purpose: str, subscriber_id: int, age: float) -> str:
    """A token for ana signed `age` seconds ago."""
    with monkeypatch.context() as patch:
        patch.setattr(
            itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: int(time.time() - age)
        )
        return Signer(web_settings.secret_key()).make(purpose, subscriber_id, "ana@example.com")


def test_the_emailed_link_expires_after_the_setting(monkeypatch, web_settings, engine, outbox, ana):
    subscriber_id, _ = ana
    web_settings.web.privacy_link_max_age = 600
    app = create_app(web_settings, transport_factory=lambda: outbox, engine=engine)
    with TestClient(app, base_url="https://testserver") as client:
        recent = aged(monkeypatch, web_settings, PRIVACY, subscriber_id, 500)
        assert client.get(f"/privacy/{recent}/data").status_code == 200
        old = aged(monkeypatch, web_settings, PRIVACY, subscriber_id, 700)
        for path in (f"/privacy/{old}", f"/privacy/{old}/data", f"/privacy/{old}/forget"):
            response = client.get(path)
            assert response.status_code == 400 and "expired" in response.text, path
        forget = client.post(f"/privacy/{old}/forget", data={"csrf_token": csrf(client, "/link")})
        assert forget.status_code == 400
        # The preferences page says how long the link it emails works.
        prefs = Signer(web_settings.secret_key()).make(
            PREFERENCES, subscriber_id, "ana@example.com"
        )
        assert "within 10 minutes" in ask_for_link(client, prefs).text
    assert exists(engine, "ana@example.com")


def test_asking_for_links_is_rate_limited_per_address(client, outbox, ana):
    _, prefs = ana
    for _ in range(5):
        assert ask_for_link(client, prefs).status_code == 200
    assert len(outbox.outbox) == 3  # subscribe_per_address_per_hour
    assert {sent.recipient for sent in outbox.outbox} == {"ana@example.com"}
