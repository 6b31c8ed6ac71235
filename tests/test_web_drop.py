"""The "stop sending me <topic>" links of a reader of every topic: from a real digest (both
parts) to "every topic except X" in the preference center, which keeps it when they save."""

from __future__ import annotations

import json
import re

from test_web_support import BASE
from test_web_support import csrf
from test_web_support import link_to
from test_web_support import parse

from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import default_taxonomy
from newsletter.sending.campaign import send_month
from newsletter.store import subscribers as api
from newsletter.store.engine import session_factory
from newsletter.store.engine import transaction
from newsletter.tokens import PREFERENCES
from newsletter.tokens import Signer
from newsletter.transport.memory import MemoryTransport

pytest_plugins = ["test_web_support"]
TAXONOMY = default_taxonomy()


def add(engine, settings, address: str, topics=None) -> tuple[int, str]:
    with transaction(engine) as session:
        subscriber = api.add_subscriber(session, settings, TAXONOMY, address, topics=topics)
        subscriber_id = subscriber.id
    return subscriber_id, Signer(settings.secret_key()).make(PREFERENCES, subscriber_id, address)


def load(engine, address: str):
    with session_factory(engine)() as session:
        return api.get_subscriber(session, address)


def post(client, prefs: str, **fields):
    path = f"/preferences/{prefs}"
    return client.post(path, data={"csrf_token": csrf(client, path), **fields})


def test_an_all_topics_reader_stops_a_topic_from_either_part(client, engine, web_settings):
    add(engine, web_settings, "bo@example.com")
    issue = load_issue(web_settings.content.dir, "2025-01", TAXONOMY, "Test Digest")
    transport = MemoryTransport()
    send_month(engine, web_settings, issue, transport)
    [sent] = transport.outbox
    message = parse(sent.message)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert text.count("You receive all topics") == 3
    pattern = re.escape(BASE) + r"(/preferences/[^\s\"]+\?drop=[a-z-]+)"
    from_text = re.findall(pattern, text)
    assert from_text == re.findall(pattern, html)  # the same links in both parts
    assert len(from_text) == sum(len(s.topics) for s in issue.summaries)
    drop = next(link for link in from_text if link.endswith("?drop=anxiety-disorders"))
    page = client.get(drop)  # a GET only asks: link scanners change nothing
    assert "Stop sending me Anxiety Disorders?" in page.text
    assert "and so do topics we add later" in page.text
    assert load(engine, "bo@example.com").excluded_slugs == frozenset()
    prefs = drop.split("/")[2].split("?")[0]
    done = post(client, prefs, action="drop", topic="anxiety-disorders")
    assert "no longer receive summaries about Anxiety Disorders" in done.text
    bo = load(engine, "bo@example.com")
    assert bo.all_topics and bo.excluded_slugs == {"anxiety-disorders"}


def test_the_preference_center_shows_and_keeps_all_but_the_stopped(
    client, engine, web_settings, outbox
):
    _id, prefs = add(engine, web_settings, "bo@example.com")
    post(client, prefs, action="drop", topic="empathy")
    page = client.get(f"/preferences/{prefs}").text
    assert "every summary except those only about Empathy, and topics we add later." in page
    assert re.search(r'name="topic_mode" value="except" checked', page)
    assert "All topics except Empathy" in page
    assert not re.search(r'name="topic_mode" value="all" checked', page)
    # Ticked: what they receive, should they switch to "only the topics I tick".
    assert re.search(r'value="training" checked', page)
    assert not re.search(r'value="empathy" checked', page)
    saved = post(client, prefs, action="save", name="Bo", topic_mode="except", lists="digest")
    assert saved.status_code == 200 and "preferences are saved" in saved.text
    bo = load(engine, "bo@example.com")
    assert (bo.name, bo.all_topics, bo.excluded_slugs) == ("Bo", True, {"empathy"})
    post(client, prefs, action="privacy")  # the data comes through the emailed link
    privacy = link_to(outbox.outbox[-1].message, "/privacy/")
    data = json.loads(client.get(f"{privacy}/data").text)
    assert (data["topics"], data["excluded_topics"]) == ("*", ["empathy"])
    post(client, prefs, action="save", topic_mode="all", lists="digest")
    assert load(engine, "bo@example.com").excluded_slugs == frozenset()  # every topic again
    assert 'value="except"' not in client.get(f"/preferences/{prefs}").text


def test_a_reader_of_chosen_topics_is_offered_no_except_choice(client, engine, web_settings):
    _id, prefs = add(engine, web_settings, "cy@example.com", topics="empathy;training")
    post(client, prefs, action="drop", topic="empathy")
    page = client.get(f"/preferences/{prefs}").text
    assert 'value="except"' not in page
    assert load(engine, "cy@example.com").topic_slugs == {"training"}
