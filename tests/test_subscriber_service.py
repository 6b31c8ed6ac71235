"""The subscriber service's rules, called directly (real SQLite), and the clients that share them.

The web routes, the CLI and the inbound-mail scans only translate to and from these functions;
the tests here pin each rule down where it lives (`newsletter.store.subscribers` and
`newsletter.store.registrar`).
"""

from __future__ import annotations

import time
from pathlib import Path

import itsdangerous.timed
import pytest
from test_bounces import maildir
from test_inbound import request as unsubscribe_request

from newsletter.errors import LinkProblem
from newsletter.errors import NewsletterError
from newsletter.errors import TokenError
from newsletter.errors import TokenExpired
from newsletter.returns.unsubscribe import scan as scan_unsubscribes
from newsletter.store import engine as db
from newsletter.store import registrar
from newsletter.store import subscribers as api
from newsletter.store.models import ACTIVE
from newsletter.store.models import PENDING
from newsletter.store.models import UNSUBSCRIBED
from newsletter.store.models import Subscriber
from newsletter.tokens import CONFIRM
from newsletter.tokens import PREFERENCES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer
from newsletter.tokens import address_hash

pytest_plugins = ["test_web_support"]


@pytest.fixture
def signer(settings) -> Signer:
    return Signer(settings.secret_key())


def add(session, settings, taxonomy, address: str, **options) -> Subscriber:
    return api.add_subscriber(session, settings, taxonomy, address, **options)


def aged_token(monkeypatch, signer: Signer, purpose: str, subscriber: Subscriber, age: float):
    """A token for `subscriber` signed `age` seconds ago."""
    with monkeypatch.context() as patch:
        patch.setattr(
            itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: int(time.time() - age)
        )
        return signer.make(purpose, subscriber.id, subscriber.email)


# --- errors ----------------------------------------------------------------------------------


def test_link_and_form_problems_belong_to_the_exception_tree() -> None:
    from newsletter.errors import FormProblem

    problem = LinkProblem("gone", "This link no longer matches.")
    assert isinstance(problem, NewsletterError)
    assert (problem.kind, str(problem)) == ("gone", "This link no longer matches.")
    assert issubclass(FormProblem, NewsletterError)
    assert issubclass(FormProblem, ValueError)
    assert issubclass(TokenExpired, TokenError)


def test_an_expired_token_raises_token_expired(monkeypatch, signer, session, settings, taxonomy):
    ana = add(session, settings, taxonomy, "ana@example.com", status=PENDING)
    expired = aged_token(monkeypatch, signer, CONFIRM, ana, 8 * 86400)
    with pytest.raises(TokenExpired):
        signer.read(CONFIRM, expired)
    tampered = signer.make(CONFIRM, ana.id, ana.email)[:-3] + "AAA"
    with pytest.raises(TokenError) as caught:
        signer.read(CONFIRM, tampered)
    assert not isinstance(caught.value, TokenExpired)


# --- token → subscriber ----------------------------------------------------------------------


def test_a_valid_token_names_its_subscriber(signer, session, settings, taxonomy):
    ana = add(session, settings, taxonomy, "Ana@Example.com")
    for purpose in (UNSUBSCRIBE, PREFERENCES, CONFIRM):
        token = signer.make(purpose, ana.id, ana.email)
        assert registrar.subscriber_for_token(session, signer, purpose, token) is ana


def kind_of(session, signer, purpose: str, token: str) -> str:
    with pytest.raises(LinkProblem) as caught:
        registrar.subscriber_for_token(session, signer, purpose, token)
    return caught.value.kind


def test_refused_tokens_say_why(monkeypatch, signer, session, settings, taxonomy):
    ana = add(session, settings, taxonomy, "ana@example.com", status=PENDING)
    good = signer.make(PREFERENCES, ana.id, ana.email)
    assert kind_of(session, signer, PREFERENCES, "") == "invalid"
    assert kind_of(session, signer, PREFERENCES, "a" * 401) == "invalid"
    assert kind_of(session, signer, PREFERENCES, good[:-4] + "AAAA") == "invalid"
    assert kind_of(session, signer, UNSUBSCRIBE, good) == "invalid"  # another purpose
    expired = aged_token(monkeypatch, signer, CONFIRM, ana, 8 * 86400)
    assert kind_of(session, signer, CONFIRM, expired) == "expired"
    assert kind_of(session, signer, PREFERENCES, signer.make(PREFERENCES, 0, "t@x.org")) == "test"
    other = signer.make(PREFERENCES, ana.id, "someone-else@example.com")
    assert kind_of(session, signer, PREFERENCES, other) == "gone"
    assert kind_of(session, signer, PREFERENCES, signer.make(PREFERENCES, 10**12, "a@b.org")) == (
        "gone"
    )
    api.remove_subscriber(session, ana.email)
    assert kind_of(session, signer, PREFERENCES, good) == "gone"


def test_reference_checks_the_hash_length_it_is_given(session, settings, taxonomy):
    ana = add(session, settings, taxonomy, "ana@example.com")
    short = address_hash(ana.email, 6)
    assert registrar.subscriber_by_reference(session, ana.id, short, hash_length=6) is ana
    with pytest.raises(LinkProblem) as caught:
        registrar.subscriber_by_reference(session, ana.id, short)  # a 10-digit hash expected
    assert caught.value.kind == "gone"
    with pytest.raises(LinkProblem) as caught:
        registrar.subscriber_by_reference(session, ana.id, "", hash_length=6)
    assert caught.value.kind == "gone"


def test_mail_and_web_unsubscribes_apply_the_same_token_check(
    tmp_path: Path, settings, web_settings, engine, client, taxonomy
) -> None:
    """A token made for an address the subscriber no longer has is refused by the one-click link
    and by the mailto request alike; a current token works in both."""
    signer = Signer(settings.secret_key())
    with db.transaction(engine) as session:
        ana = add(session, settings, taxonomy, "ana@example.net")
        ben = add(session, settings, taxonomy, "ben@example.net")
        cleo = add(session, settings, taxonomy, "cleo@example.net")
        ids = {"ana": ana.id, "ben": ben.id, "cleo": cleo.id}
    stale = signer.make(UNSUBSCRIBE, ids["ana"], "ana.old@example.net")

    web = client.post(f"/u/{stale}", data={"List-Unsubscribe": "One-Click"})
    assert web.status_code == 400
    assert "no longer matches" in web.text
    path = maildir(tmp_path, unsubscribe_request("stranger@example.com", f"unsubscribe {stale}"))
    report = scan_unsubscribes(path, settings, engine)
    assert report.unsubscribed == []
    assert "no longer matches" in report.ignored[0][1]

    by_web = signer.make(UNSUBSCRIBE, ids["ben"], "ben@example.net")
    assert client.post(f"/u/{by_web}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    by_mail = signer.make(UNSUBSCRIBE, ids["cleo"], "cleo@example.net")
    path = maildir(
        tmp_path,
        unsubscribe_request("stranger@example.com", f"unsubscribe {by_mail}"),
        name="Maildir2",
    )
    report = scan_unsubscribes(path, settings, engine)
    assert [(a, how) for _, a, how in report.unsubscribed] == [("cleo@example.net", "token")]
    with db.transaction(engine) as session:
        statuses = {
            name: api.require_subscriber(session, f"{name}@example.net").status
            for name in ("ana", "ben", "cleo")
        }
    assert statuses == {"ana": ACTIVE, "ben": UNSUBSCRIBED, "cleo": UNSUBSCRIBED}
