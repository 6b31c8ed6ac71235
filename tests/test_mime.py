"""Messages built from skeletons parse back to exactly what the stdlib builder produces."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import urllib.parse

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from newsletter.content.choice import TopicChoice
from newsletter.content.reader import load_issue
from newsletter.errors import UnsafeHeader
from newsletter.message.skeleton import MessageSkeleton
from newsletter.message.skeleton import Sender
from newsletter.message.skeleton import list_unsubscribe
from newsletter.message.skeleton import message_id
from newsletter.message.skeleton import stdlib_message
from newsletter.message.skeleton import to_header
from newsletter.message.wire import smtp_data
from newsletter.personalize import Recipient
from newsletter.personalize import SlotTemplate
from newsletter.personalize import choose_variant
from newsletter.personalize import slot_values
from newsletter.personalize import variant_summaries
from newsletter.render.email import Renderer

UNSAFE = re.compile("[\\x00-\\x1f\\x7f\\x85\\u2028\\u2029]")
DATE = dt.datetime(2025, 1, 15, 9, 30, tzinfo=dt.UTC)
TOPIC_SETS = [
    TopicChoice.every(),
    TopicChoice.only({"anxiety-disorders"}),
    TopicChoice.only({"therapist-factors", "empathy"}),
    TopicChoice.every(excluding={"anxiety-disorders", "therapist-factors"}),
]


class Variants(tuple):
    """(sender, built) with a short repr: hypothesis prints fixture values on failure."""

    def __repr__(self) -> str:
        return "<variants of 2025-01>"


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    """Every variant of the fixture issue, rendered once for the module."""
    from conftest import make_config

    from newsletter.config import settings_from_dict
    from newsletter.content.taxonomy import default_taxonomy

    folder = tmp_path_factory.mktemp("mime")
    settings = settings_from_dict(make_config(folder), folder)
    issue = load_issue(settings.content.dir, "2025-01", default_taxonomy(), "Test Digest")
    sender = Sender.from_settings(settings)
    renderer = Renderer(settings)
    built = {}
    for topics in TOPIC_SETS:
        key = choose_variant(issue, topics)
        summaries = variant_summaries(issue, key)
        rendered = renderer.render(issue, summaries, personal=key.personal)
        built[topics] = (MessageSkeleton(sender, rendered, DATE), summaries, rendered)
    return Variants((sender, built))


def reference(sender, rendered, summaries, recipient, mid) -> email.message.EmailMessage:
    """The same message built the slow way, with the stdlib only."""
    base = sender.base_url
    html = SlotTemplate(rendered.html).fill(
        slot_values(recipient, summaries, for_html=True, base_url=base)
    )
    text = SlotTemplate(rendered.text).fill(
        slot_values(recipient, summaries, for_html=False, base_url=base)
    )
    headers = {
        "To": to_header(recipient),
        "Message-ID": mid,
        "List-Unsubscribe": list_unsubscribe(sender, recipient.unsubscribe_token),
    }
    return stdlib_message(sender, rendered.subject, DATE, html, text, headers)


def parsed(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def assert_same_message(ours: bytes, theirs: email.message.EmailMessage) -> None:
    mine = parsed(ours)
    stdlib = parsed(theirs.as_bytes())
    assert sorted(mine.keys()) == sorted(stdlib.keys())
    for name in stdlib:
        if name.lower() == "content-type":
            continue  # the multipart boundary is random
        if name.lower() == "to":
            # Checked against the recipient instead: re-serializing an encoded display name
            # with specials (": ¡") the stdlib drops the quotes and turns it into a group.
            continue
        # Folding whitespace is not part of these values (RFC 5322 2.2.3); the stdlib's own
        # folding of a long List-Unsubscribe even drops the space after the comma.
        assert "".join(str(mine[name]).split()) == "".join(str(stdlib[name]).split()), name
    assert not mine.defects
    for subtype in ("plain", "html"):
        mine_part = mine.get_body((subtype,))
        stdlib_part = stdlib.get_body((subtype,))
        assert mine_part.get_content() == stdlib_part.get_content()
        assert mine_part.get_content_charset() == "utf-8"
        assert not mine_part.defects


# Names as hostile as a stranger can type them: any character (control characters, line
# breaks, quotes, commas, angle brackets, non-ASCII), with the specials made likely.
SPECIALS = "\r\n\t\x00\x0b\x85\u2028\"'\\,;:<>()[]@.Bcc: x@evil.example ÄéØ漢字"
names = st.text(
    alphabet=st.one_of(st.characters(blacklist_categories=("Cs",)), st.sampled_from(SPECIALS)),
    max_size=40,
).map(str.strip)
local_parts = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}", fullmatch=True)
tokens = st.from_regex(
    r"[A-Za-z0-9_-]{10,40}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{20,30}", fullmatch=True
)
# Values are never scanned for slots again, but "no marker left" is only checkable without them.
names = names.filter(lambda text: "XNL" not in text)
tokens = tokens.filter(lambda text: "XNL" not in text)


@hypothesis_settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=names,
    local=local_parts,
    unsub=tokens,
    prefs=tokens,
    subscriber_id=st.integers(min_value=1, max_value=10**9),
    which=st.sampled_from(range(len(TOPIC_SETS))),
)
def test_filled_message_parses_like_the_stdlib_message(
    variants, name, local, unsub, prefs, subscriber_id, which
) -> None:
    sender, built = variants
    topics = TOPIC_SETS[which]
    skeleton, summaries, rendered = built[topics]
    recipient = Recipient(f"{local}@example.net", name, topics, unsub, prefs)
    if UNSAFE.search(name):
        # The builder never writes a header value with a line break or control character.
        with pytest.raises(UnsafeHeader):
            skeleton.build(recipient, "2025-01", subscriber_id, summaries)
        return
    ours, mid = skeleton.build(recipient, "2025-01", subscriber_id, summaries)
    assert mid == message_id("2025-01", subscriber_id, recipient.email, sender.domain)
    (to,) = parsed(ours)["To"].addresses
    assert (to.display_name, to.addr_spec) == (name, recipient.email)
    assert all(len(line) <= 998 for line in ours.split(b"\n"))
    assert b"XNL" not in ours  # every slot was filled
    assert_same_message(ours, reference(sender, rendered, summaries, recipient, mid))
    # The SMTP DATA form built from per-variant pieces is the whole message converted.
    assert skeleton.build(recipient, "2025-01", subscriber_id, summaries, wire=True) == (
        smtp_data(ours),
        mid,
    )


@pytest.mark.parametrize("name", [".", ".Dot", "..", "A. .B", "Dot."])
def test_the_smtp_data_form_stuffs_dots_wherever_a_value_starts_a_line(variants, name) -> None:
    _sender, built = variants
    for topics in TOPIC_SETS:
        skeleton, summaries, _ = built[topics]
        recipient = Recipient("ana@example.net", name, topics, ".unsub.tok", ".prefs.tok")
        plain, _ = skeleton.build(recipient, "2025-01", 7, summaries)
        wire, _ = skeleton.build(recipient, "2025-01", 7, summaries, wire=True)
        assert wire == smtp_data(plain)
        assert wire.endswith(b"\r\n.\r\n") and b"\n" not in wire.replace(b"\r\n", b"")
        # Undone as a server undoes it, the message is the plain one, line for line.
        lines = wire[: -len(b".\r\n")].split(b"\r\n")
        undone = [line[1:] if line.startswith(b".") else line for line in lines]
        assert b"\n".join(undone) == plain + (b"" if plain.endswith(b"\n") else b"\n")


def test_smtp_data_of_a_message_without_a_final_line_break() -> None:
    assert smtp_data(b".a\n.b") == b"..a\r\n..b\r\n.\r\n"
    assert smtp_data(b"x\r\n.y\r\n") == b"x\r\n..y\r\n.\r\n"


def test_message_headers_for_one_click_unsubscribe(variants) -> None:
    _sender, built = variants
    skeleton, summaries, _ = built[TopicChoice.every()]
    recipient = Recipient(
        "ana@example.net", "Ána", TopicChoice.every(), "unsub.tok.en", "prefs.tok.en"
    )
    data, mid = skeleton.build(recipient, "2025-01", 42, summaries)
    message = parsed(data)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = str(message["List-Unsubscribe"])
    assert unsubscribe.startswith("<https://news.example.org/u/unsub.tok.en>")
    assert "<mailto:digest@example.org?subject=unsubscribe%20unsub.tok.en>" in unsubscribe
    assert message["List-Id"] == '"Test Digest" <digest.example.org>'
    assert message["Message-ID"] == mid
    assert mid == message_id("2025-01", 42, "ana@example.net", "example.org")
    assert message["To"].addresses[0].display_name == "Ána"
    assert message["Subject"] == "Fixture issue: alliance and anxiety"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    assert "Dear Ána," in text
    assert "https://news.example.org/preferences/prefs.tok.en" in text


def test_message_id_is_stable_per_issue_and_subscriber() -> None:
    first = message_id("2025-01", 7, "A@Example.org", "example.org")
    assert first == message_id("2025-01", 7, "a@example.org", "example.org")
    assert first != message_id("2025-02", 7, "a@example.org", "example.org")
    assert first != message_id("2025-01", 8, "a@example.org", "example.org")


def test_values_that_look_like_slots_are_not_filled_again(variants) -> None:
    _sender, built = variants
    skeleton, summaries, _ = built[TopicChoice.every()]
    recipient = Recipient(
        "a@example.net", "XNLEMAILX", TopicChoice.every(), "XNLPREFSX.a.b", "p.q.r"
    )
    data, _ = skeleton.build(recipient, "2025-01", 3, summaries)
    text = parsed(data).get_body(("plain",)).get_content()
    assert "Dear XNLEMAILX," in text
    assert "/u/XNLPREFSX.a.b" in text


@pytest.mark.parametrize(
    "name",
    ["Bob\nBcc: evil@example.net", "Bob\r\nX-Injected: 1", "Bob\rSubject: hi", "Eve\u2028X: y"],
)
def test_a_name_with_a_line_break_never_reaches_a_header(variants, name) -> None:
    _sender, built = variants
    skeleton, summaries, _ = built[TopicChoice.every()]
    recipient = Recipient(
        "bob@example.net", name, TopicChoice.every(), "unsub.tok.en", "prefs.tok.en"
    )
    with pytest.raises(UnsafeHeader, match="To: refusing a header value"):
        skeleton.build(recipient, "2025-01", 5, summaries)


def test_a_non_ascii_address_is_refused_by_the_builder(variants) -> None:
    _sender, built = variants
    skeleton, summaries, _ = built[TopicChoice.every()]
    recipient = Recipient(
        "anä@example.org", "", TopicChoice.every(), "unsub.tok.en", "prefs.tok.en"
    )
    with pytest.raises(UnsafeHeader, match="not an ASCII address"):
        skeleton.build(recipient, "2025-01", 5, summaries)


@pytest.mark.parametrize(
    "token", ["abc.DEF-123_x~y", "WzEsImFiIl0.aB-c.dE_f", "with space", "a/b?c=d&e", "é+%"]
)
def test_list_unsubscribe_quotes_the_subject_as_urllib_does(token) -> None:
    sender = Sender(
        "d@example.org", "D", "", "example.org", "<x.example.org>", "https://e.org", "u@e.org"
    )
    mailto = list_unsubscribe(sender, token).split(", ", 1)[1]
    assert mailto.endswith("?subject=" + urllib.parse.quote(f"unsubscribe {token}") + ">")
