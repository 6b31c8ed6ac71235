"""Readers of "every topic except X": what stopping a topic does to an all-topics reader, in the
store, the audience, a send, a topic added to the taxonomy later, and import/export."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from newsletter.content.choice import TopicChoice
from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import DEFAULT_ALIASES
from newsletter.content.taxonomy import DEFAULT_TOPICS
from newsletter.content.taxonomy import Taxonomy
from newsletter.content.taxonomy import Vocabulary
from newsletter.sending.campaign import send_month
from newsletter.store import audience
from newsletter.store import engine as db
from newsletter.store import import_export
from newsletter.store import ledger
from newsletter.store import registrar
from newsletter.store import subscribers as api
from newsletter.store.models import ExcludedTopic
from newsletter.store.models import Subscriber
from newsletter.transport.memory import MemoryTransport

NEW_TOPIC = "Moral Injury"  # not in the default taxonomy: "added later"
SUMMARY = (
    "---\ntitle: {title}\ntopics: [{topics}]\nresearch_type: Review\n---\n"
    "About {title}.\n\n## Practice Implications\n\nDo well.\n"
)


def later_taxonomy(taxonomy: Taxonomy) -> Taxonomy:
    """The default taxonomy with one topic more, as after editing [taxonomy] topics."""
    return Taxonomy(
        Vocabulary("topic", [*DEFAULT_TOPICS, NEW_TOPIC], DEFAULT_ALIASES), taxonomy.research_types
    )


def stopped(session, settings, taxonomy, address: str, *slugs: str) -> Subscriber:
    """An all-topics subscriber who followed the stop links of `slugs`."""
    subscriber = api.add_subscriber(session, settings, taxonomy, address)
    for slug in slugs:
        assert registrar.drop_topic(session, taxonomy, subscriber, slug) == registrar.DROPPED
    return subscriber


def test_an_all_topics_reader_who_stops_a_topic_is_all_except_it(session, settings, taxonomy):
    ben = stopped(session, settings, taxonomy, "ben@example.org", "empathy", "training")
    rows = session.scalars(select(ExcludedTopic.topic).where(ExcludedTopic.subscriber_id == ben.id))
    assert sorted(rows) == ["empathy", "training"]
    assert ben.all_topics and ben.topic_slugs is None and ben.topics == []
    assert ben.topic_choice == TopicChoice.every({"empathy", "training"})


def test_choosing_topics_again_clears_the_stopped_ones(session, settings, taxonomy) -> None:
    ben = stopped(session, settings, taxonomy, "ben@example.org", "empathy")
    registrar.update_preferences(session, settings, ben, name="", topics=None, lists=["digest"])
    assert ben.topic_choice == TopicChoice.every()
    session.flush()
    assert session.scalars(select(ExcludedTopic)).all() == []
    stopped_again = stopped(session, settings, taxonomy, "cy@example.org", "empathy")
    api.set_topics(session, stopped_again, frozenset({"training"}))
    assert stopped_again.topic_choice == TopicChoice.only({"training"})


def test_stopping_the_last_topic_that_reaches_them_is_refused(session, settings, taxonomy):
    slugs = [t.slug for t in taxonomy.topics]
    last = stopped(session, settings, taxonomy, "last@example.org", *slugs[:-1])
    assert registrar.drop_topic(session, taxonomy, last, slugs[-1]) == registrar.ONLY_TOPIC
    assert last.topic_choice == TopicChoice.every(slugs[:-1])


def test_a_topic_added_to_the_taxonomy_later_still_reaches_them(session, settings, taxonomy):
    ben = stopped(session, settings, taxonomy, "ben@example.org", "empathy")
    newer = later_taxonomy(taxonomy)
    new_slug = newer.topics.get(NEW_TOPIC).slug
    assert new_slug not in {t.slug for t in taxonomy.topics}
    assert ben.topic_choice.receives(new_slug)
    assert registrar.follows_topic(ben, new_slug)
    session.flush()
    [member] = audience.iter_audience(session, ["digest"])
    assert member.topics.receives(new_slug) and not member.topics.receives("empathy")


def test_a_send_after_the_taxonomy_grew(engine, settings, taxonomy, tmp_path) -> None:
    """Summaries about the new topic reach all-except readers; one only about the stopped topic
    does not; one about the stopped topic and another reaches them."""
    month = tmp_path / "content" / "2030-01"
    month.mkdir(parents=True)
    for number, (title, topics) in enumerate(
        [("New", NEW_TOPIC), ("Empathy only", "Empathy"), ("Both", "Empathy, Training")], 1
    ):
        text = SUMMARY.format(title=title, topics=topics)
        (month / f"0{number}-{title.lower().replace(' ', '-')}.md").write_text(text, "utf-8")
    with db.transaction(engine) as session:
        stopped(session, settings, taxonomy, "ben@example.org", "empathy")
        api.add_subscriber(session, settings, taxonomy, "old@example.org", topics="empathy")
    newer = later_taxonomy(taxonomy)
    issue = load_issue(tmp_path / "content", "2030-01", newer, "Test Digest")
    transport = MemoryTransport()
    report = send_month(engine, settings, issue, transport).report
    assert report is not None and report.sent == 2
    with db.session_factory(engine)() as session:
        variants = {d.email: d.variant for d in session.scalars(select(ledger.Delivery))}
    assert variants["ben@example.org"] == "new,both;topics"
    assert variants["old@example.org"] == "empathy-only,both;topics"


def test_the_admin_filter_by_topic_leaves_out_readers_who_stopped_it(session, settings, taxonomy):
    stopped(session, settings, taxonomy, "ben@example.org", "empathy")
    api.add_subscriber(session, settings, taxonomy, "all@example.org")
    found = api.query_subscribers(session, topic="empathy")
    assert [s.email for s in found] == ["all@example.org"]
    assert len(api.query_subscribers(session, topic="training")) == 2


def test_export_and_import_keep_the_stopped_topics(session, settings, taxonomy) -> None:
    stopped(session, settings, taxonomy, "ben@example.org", "empathy", "training")
    out = io.StringIO()
    import_export.export_csv(session, out)
    assert "ben@example.org,,*;-empathy;-training,digest,active" in out.getvalue()
    [record] = import_export.export_json(session)
    assert (record["topics"], record["excluded_topics"]) == ("*", ["empathy", "training"])
    api.remove_subscriber(session, "ben@example.org")  # the rows about their topics go too
    assert session.scalars(select(ExcludedTopic)).all() == []
    report = import_export.import_csv(session, settings, taxonomy, out.getvalue())
    assert report.added == 1
    again = api.require_subscriber(session, "ben@example.org")
    assert again.topic_choice == TopicChoice.every({"empathy", "training"})


def test_import_updates_the_stopped_topics(session, settings, taxonomy) -> None:
    stopped(session, settings, taxonomy, "ben@example.org", "empathy")
    csv = "email,topics\nben@example.org,*;-Training\n"
    import_export.import_csv(session, settings, taxonomy, csv, update_existing=True)
    ben = api.require_subscriber(session, "ben@example.org")
    assert ben.topic_choice == TopicChoice.every({"training"})


@pytest.mark.parametrize("cell", ["empathy;-training", "-training", "*;-no-such-topic"])
def test_a_stopped_topic_needs_all_topics_and_a_known_topic(session, settings, taxonomy, cell):
    csv = f"email,topics\nnew@example.org,{cell}\n"
    report = import_export.import_csv(session, settings, taxonomy, csv, skip_invalid=True)
    [(line, reason)] = report.rejected
    assert line == 2 and ("goes only after '*'" in reason or "no-such-topic" in reason)
