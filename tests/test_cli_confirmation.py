"""A confirmation mail for pending subscribers added from the CLI (issue 12, item 14).

`subscribers add --status pending` and `subscribers resend-confirmation` send the web's own
confirmation (`sending.notices`), here into a Maildir; the link in it confirms through the
real web app.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from click.testing import Result
from conftest import write_config
from smtp_sink import get_free_port
from test_web_support import TestClient

from newsletter.cli import main
from newsletter.config import load_settings
from newsletter.store import subscribers as api
from newsletter.store.engine import make_engine
from newsletter.store.engine import session_factory
from newsletter.store.models import ACTIVE
from newsletter.store.models import PENDING
from newsletter.web import create_app

Invoke = Callable[..., Result]
BASE = "https://news.example.org"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, delivery={"transport": "maildir", "maildir": "outbox"})


@pytest.fixture
def cli(runner: CliRunner, config: Path) -> Invoke:
    def invoke(*args: str) -> Result:
        return runner.invoke(main, ["--config", str(config), *args])

    result = invoke("db", "upgrade")
    assert result.exit_code == 0, result.output
    return invoke


def messages(tmp_path: Path) -> list[email.message.EmailMessage]:
    folder = tmp_path / "outbox"
    if not folder.exists():
        return []
    return [
        email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        for message in mailbox.Maildir(folder, create=False)
    ]


def confirm_link(message: email.message.EmailMessage) -> str:
    text = message.get_body(("plain",)).get_content()
    return re.search(re.escape(BASE) + r"(/confirm/\S+)", text).group(1)


def status(config: Path, address: str) -> str:
    settings = load_settings(config)
    engine = make_engine(settings.database.url)
    try:
        with session_factory(engine)() as session:
            return api.require_subscriber(session, address).status
    finally:
        engine.dispose()


def confirm_on_the_web(config: Path, path: str) -> None:
    settings = load_settings(config)
    app = create_app(settings)
    with TestClient(app, base_url="https://testserver") as client:
        assert "Yes, subscribe me" in client.get(path).text
        assert "You are subscribed" in client.post(path).text
    app.state.ctx.engine.dispose()


def test_add_pending_sends_the_webs_confirmation(cli, config, tmp_path):
    result = cli(
        "subscribers", "add", "--status", "pending", "--topics", "Empathy", "Ana@Example.com"
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "added Ana@example.com (pending; topics: empathy; lists: digest)",
        "sent a confirmation link to Ana@example.com",
    ]
    [message] = messages(tmp_path)
    assert message["To"] == "Ana@example.com"
    assert message["Subject"] == "Please confirm your subscription to Test Digest"
    assert "these topics: Empathy" in message.get_body(("plain",)).get_content()
    assert status(config, "ana@example.com") == PENDING
    confirm_on_the_web(config, confirm_link(message))
    assert status(config, "ana@example.com") == ACTIVE


def test_add_active_sends_nothing(cli, tmp_path):
    result = cli("subscribers", "add", "bo@example.com")
    assert result.exit_code == 0, result.output
    assert "confirmation" not in result.output
    assert messages(tmp_path) == []


def test_resend_confirmation_sends_a_fresh_link(cli, config, tmp_path):
    assert cli("subscribers", "add", "--status", "pending", "ana@example.com").exit_code == 0
    result = cli("subscribers", "resend-confirmation", "ANA@example.com")
    assert result.exit_code == 0, result.output
    assert result.output == "sent a confirmation link to ana@example.com\n"
    sent = messages(tmp_path)
    assert [m["To"] for m in sent] == ["ana@example.com", "ana@example.com"]
    assert {m["Subject"] for m in sent} == {"Please confirm your subscription to Test Digest"}
    confirm_on_the_web(config, confirm_link(sent[-1]))
    assert status(config, "ana@example.com") == ACTIVE


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("bo@example.com", "bo@example.com is active, not pending"),
        ("nobody@example.com", "no subscriber nobody@example.com"),
    ],
)
def test_resend_confirmation_refuses_an_address_that_is_not_pending(
    cli, tmp_path, address, message
):
    assert cli("subscribers", "add", "bo@example.com").exit_code == 0
    result = cli("subscribers", "resend-confirmation", address)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.splitlines()) == 1
    assert messages(tmp_path) == []


def test_a_failed_send_keeps_the_subscriber_and_says_how_to_retry(runner, tmp_path):
    closed = get_free_port()  # nothing listens there
    config = write_config(
        tmp_path,
        delivery={"transport": "smtp"},
        smtp={"host": "127.0.0.1", "port": closed, "timeout": 5},
    )
    assert runner.invoke(main, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    args = ["--config", str(config), "subscribers", "add", "--status", "pending", "a@example.com"]
    result = runner.invoke(main, args)
    assert result.exit_code == 1
    assert result.output.startswith("added a@example.com (pending;")
    assert "could not send the confirmation link to a@example.com" in result.output
    assert "newsletter subscribers resend-confirmation a@example.com" in result.output
    assert "Traceback" not in result.output
    assert status(config, "a@example.com") == PENDING


def test_over_smtp_the_confirmation_needs_a_real_key(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A confirmation link signed with the public development key could be forged: over SMTP
    # the command refuses before the record is written, so nothing is left half-added.
    config = write_config(
        tmp_path,
        delivery={"transport": "smtp"},
        smtp={"host": "127.0.0.1", "port": get_free_port()},
    )
    assert runner.invoke(main, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    monkeypatch.delenv("NEWSLETTER_SECRET_KEY")
    for args in (
        ["add", "new@example.org", "--status", "pending"],
        ["resend-confirmation", "x@example.org"],
    ):
        result = runner.invoke(main, ["--config", str(config), "subscribers", *args])
        assert result.exit_code == 1, result.output
        assert "NEWSLETTER_SECRET_KEY is not set: a real signing key is needed" in result.output
    with session_factory(make_engine(load_settings(config).database.url))() as session:
        assert api.get_subscriber(session, "new@example.org") is None
