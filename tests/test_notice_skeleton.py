"""Transactional emails from a skeleton rendered once (`message.notice_skeleton`): each one
must carry what the whole pipeline rendered for that person, hostile names escaped in the HTML
and refused in the headers."""

from __future__ import annotations

import email
import email.policy
import html
import shutil

import pytest
from conftest import REPO
from conftest import make_config
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from newsletter.config import settings_from_dict
from newsletter.content.choice import TopicChoice
from newsletter.errors import UnsafeHeader
from newsletter.message.transactional import Composer
from newsletter.message.transactional import Person
from newsletter.tokens import Signer

SECRET = "notice-skeleton-test-secret-key-0123456789"


@pytest.fixture
def composer(settings, taxonomy) -> Composer:
    return Composer(settings, taxonomy, Signer(SECRET))


def parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def assert_same_email(ours: bytes, direct: bytes) -> None:
    """The same headers (but the per-email Date and Message-ID, and the random boundary),
    the same text part, and the same HTML once character references are resolved (lxml
    writes ' where we write &#x27;)."""
    mine, theirs = parsed(ours), parsed(direct)
    assert sorted(mine.keys()) == sorted(theirs.keys())
    for name in theirs:
        if name.lower() in ("date", "message-id", "content-type"):
            continue
        assert str(mine[name]) == str(theirs[name]), name
    assert not mine.defects
    assert mine["Message-ID"] != theirs["Message-ID"]
    for subtype in ("plain", "html"):
        part, reference = mine.get_body((subtype,)), theirs.get_body((subtype,))
        assert part.get_content_charset() == "utf-8"
        assert not part.defects
        if subtype == "plain":
            assert part.get_content() == reference.get_content()
        else:
            assert html.unescape(part.get_content()) == html.unescape(reference.get_content())


def person(name: str = "Ana", email_address: str = "ana@example.com", topics=None) -> Person:
    return Person(7, email_address, name, TopicChoice.of(topics))


KINDS = [
    ("confirm", {"confirm_url": "https://news.example.org/confirm/abc.def", "expires_days": 7}),
    ("already_subscribed", {"preferences_url": "https://news.example.org/preferences/x.y"}),
    ("new_link", {"preferences_url": "https://news.example.org/preferences/x.y"}),
    ("privacy_link", {"privacy_url": "https://news.example.org/privacy/p.q", "expires": "1 hour"}),
    ("address_change", {"address_url": "https://news.example.org/address/a.b", "expires_days": 7}),
    ("welcome", {"preferences_url": "https://news.example.org/preferences/x.y"}),
]
NAMES = [
    "Ana",
    "",
    "<script>alert(1)</script>",
    'O\'Brien & "Sons" <ob@evil.example>',
    "Zoë Ångström 漢字",
    "Ann, Jr.; (Dr.) [x] @ y",
]


@pytest.mark.parametrize("kind,values", KINDS, ids=[k for k, _ in KINDS])
@pytest.mark.parametrize("name", NAMES)
def test_each_kind_equals_the_whole_pipeline(composer, kind, values, name) -> None:
    for topics in (None, frozenset({"empathy", "anxiety-disorders"})):
        reader = person(name, topics=topics)
        subject = f"Subject of {kind}"
        ours = composer.build(kind, reader, subject, **values)
        assert_same_email(ours, composer.build_direct(kind, reader, subject, **values))


def test_confirmation_links_and_names_are_filled_per_person(composer) -> None:
    first = composer.confirmation(person("Ana", "ana@example.com"))
    second = composer.confirmation(person("<b>Ben</b>", "ben@example.com"))
    assert len(composer.skeletons) == 1  # one rendering served both
    text = parsed(second).get_body(("plain",)).get_content()
    body = parsed(second).get_body(("html",)).get_content()
    assert "Dear <b>Ben</b>," in text  # the text part shows what was typed
    assert "<b>Ben</b>" not in body and "Dear &lt;b&gt;Ben&lt;/b&gt;," in body
    assert "ben@example.com" in body and "ana@example.com" not in body
    assert "XNL" not in body and "XNL" not in text
    links = {
        parsed(m).get_body(("plain",)).get_content().split("/confirm/")[1][:20]
        for m in (first, second)
    }
    assert len(links) == 2  # each link signed for its own person
    assert parsed(second)["To"] == '"<b>Ben</b>" <ben@example.com>'


def test_other_topics_are_another_shape(composer) -> None:
    composer.confirmation(person(topics=None))
    composer.confirmation(person(topics=frozenset({"empathy"})))
    composer.confirmation(person("Other", "o@example.com", topics=frozenset({"empathy"})))
    assert len(composer.skeletons) == 2


@pytest.mark.parametrize(
    "name", ["Ana\r\nBcc: victim@example.com", "Ana\nX-Evil: 1", "Ana\x00", "Ana\u2028Bcc: x"]
)
def test_a_line_break_in_a_name_never_reaches_a_header(composer, name) -> None:
    composer.confirmation(person("Ana"))  # the skeleton exists: the fast path is taken
    with pytest.raises(UnsafeHeader):
        composer.confirmation(person(name))


def test_a_line_break_in_an_address_never_reaches_a_header(composer) -> None:
    with pytest.raises(UnsafeHeader):
        composer.confirmation(person("Ana", "ana@example.com\r\nBcc: victim@example.com"))


def test_a_template_that_transforms_a_value_is_rendered_in_full(tmp_path, taxonomy) -> None:
    """An override filtering the address (`|upper`) would mangle a slot: that kind falls
    back to the whole pipeline per email, and the email says what the template says."""
    overrides = tmp_path / "overrides"
    (overrides / "email").mkdir(parents=True)
    shutil.copy(REPO / "templates/email/confirm.mjml.j2", overrides / "email/confirm.mjml.j2")
    (overrides / "email/confirm.txt.j2").write_text(
        "{{ greeting|upper }}\nConfirm {{ email|upper }}: {{ confirm_url }}\n", encoding="utf-8"
    )
    settings = settings_from_dict(
        make_config(tmp_path, templates={"dir": str(overrides)}), tmp_path
    )
    composer = Composer(settings, taxonomy, Signer(SECRET))
    for reader in (person("Ana", "ana@example.com"), person("Ben", "ben@example.com")):
        text = parsed(composer.confirmation(reader)).get_body(("plain",)).get_content()
        assert text.startswith(f"DEAR {reader.name.upper()},\nConfirm {reader.email.upper()}: ")


# Any printable name a form lets through (no control characters: the subscriber service
# refuses those at entry, and the header test above covers them reaching the builder).
printable_names = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp", "Cf")),
        st.sampled_from("\"'\\,;:<>()[]@.&#=%ÄéØ漢字"),
    ),
    max_size=40,
).map(str.strip)


@hypothesis_settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    name=printable_names.filter(lambda text: "XNL" not in text),
    local=st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}", fullmatch=True),
)
def test_any_printable_name_equals_the_whole_pipeline(settings, taxonomy, name, local) -> None:
    composer = Composer(settings, taxonomy, Signer(SECRET))
    reader = person(name, f"{local}@example.com")
    values = {"preferences_url": "https://news.example.org/preferences/x.y"}
    ours = composer.build("new_link", reader, "Your link", **values)
    assert_same_email(ours, composer.build_direct("new_link", reader, "Your link", **values))
