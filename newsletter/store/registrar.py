"""The subscriber service, part two: the workflows of the person themselves (the registrar,
as Mailman 3 calls it): subscribe, confirm, a fresh link, come back, save preferences, pause
(in `store.pauses`), choose a frequency, drop a topic. The checks of a signed link → the
subscriber it names are in `store.links`; both are re-exported here.

A request from someone who has not shown the mailbox is theirs changes no record: the choices
of a subscribe request for an address on record travel in the signed confirmation link
(`SubscriptionRequest`) and apply when it is used.

`newsletter.store.subscribers` holds the records and the rules an admin applies to them (add,
status, lists, topics, suppression, forget); this module holds the requests that arrive from
outside — a token in a link or an envelope address, a subscribe form anyone can fill in, a
confirmation link coming back. The web app, the CLI and the inbound-mail scans call these
functions and hold no rules of their own.

Like the rest of the store, functions take a `Session` and never commit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any
from typing import NamedTuple

from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.content.choice import TopicChoice
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import InvalidPreference
from newsletter.errors import LinkProblem
from newsletter.errors import SubscriberError
from newsletter.errors import TokenError
from newsletter.errors import TokenExpired
from newsletter.store.links import DELETED as DELETED
from newsletter.store.links import MAX_CONFIRM_TOKEN_LENGTH as MAX_CONFIRM_TOKEN_LENGTH
from newsletter.store.links import MAX_TOKEN_LENGTH as MAX_TOKEN_LENGTH
from newsletter.store.links import check_found as check_found
from newsletter.store.links import known_id as known_id
from newsletter.store.links import read_link as read_link
from newsletter.store.links import subscriber_by_reference as subscriber_by_reference
from newsletter.store.links import subscriber_for_token as subscriber_for_token
from newsletter.store.models import ACTIVE
from newsletter.store.models import FREQUENCIES
from newsletter.store.models import PENDING
from newsletter.store.models import Subscriber
from newsletter.store.models import utcnow
from newsletter.store.pauses import MAX_PAUSE_MONTHS as MAX_PAUSE_MONTHS
from newsletter.store.pauses import pause as pause
from newsletter.store.pauses import paused_until as paused_until
from newsletter.store.pauses import resume as resume
from newsletter.store.subscribers import add_subscriber
from newsletter.store.subscribers import clean_name
from newsletter.store.subscribers import confirm
from newsletter.store.subscribers import get_subscriber
from newsletter.store.subscribers import is_subscribed
from newsletter.store.subscribers import is_suppressed
from newsletter.store.subscribers import lift_suppression
from newsletter.store.subscribers import require_subscriber
from newsletter.store.subscribers import set_lists
from newsletter.store.subscribers import set_status
from newsletter.store.subscribers import set_topics
from newsletter.store.subscribers import subscribed_lists
from newsletter.store.subscribers import suppression_reason
from newsletter.tokens import CONFIRM
from newsletter.tokens import Signer

if TYPE_CHECKING:
    from newsletter.store.reader_view import ReaderView

# The suppression a person lifts by subscribing again and confirming (explicit new consent);
# a complaint or a hard bounce stays suppressed.
FORGOTTEN = "forgotten"

# --- subscribe, confirm, come back -----------------------------------------------------------

# What to email after a request from outside (the web app's mail kinds).
CONFIRMATION = "confirmation"  # a link to confirm (double opt-in)
ALREADY_SUBSCRIBED = "already_subscribed"  # "you are already subscribed", with their links
NEW_LINK = "new_link"  # a fresh preferences link

STALE_CONFIRMATION = (
    "This confirmation link is older than your last change. Subscribe again to get a new one."
)


@dataclasses.dataclass(frozen=True)
class SubscriptionRequest:
    """The choices of a subscribe request for an address already on record: they travel inside
    the signed confirmation link and apply only when it is used (`confirm_subscription`).

    `topics` None is every topic; `lists` None is the default list; an empty `name` keeps the
    name on record.
    """

    name: str = ""
    topics: frozenset[str] | None = None
    lists: tuple[str, ...] | None = None

    def to_payload(self) -> dict[str, Any]:
        """The JSON object the confirmation token carries."""
        return {
            "name": self.name,
            "topics": None if self.topics is None else sorted(self.topics),
            "lists": None if self.lists is None else list(self.lists),
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> SubscriptionRequest:
        """Back from a token (signed by us, but checked all the same); `LinkProblem` if odd."""
        name, topics, lists = payload.get("name", ""), payload.get("topics"), payload.get("lists")
        if (
            not isinstance(name, str)
            or not (topics is None or _strings(topics))
            or not (lists is None or _strings(lists))
        ):
            raise LinkProblem(
                "invalid", "This link is not valid (it may have been cut or altered)."
            )
        try:
            name = clean_name(name)
        except SubscriberError:
            raise LinkProblem("invalid", "This link is not valid.") from None
        return cls(
            name=name,
            topics=None if topics is None else frozenset(topics),
            lists=None if lists is None else tuple(lists),
        )


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


class Reply(NamedTuple):
    """What to email after a request from outside, to whom, and (for a confirmation link to an
    address already on record) the choices its token must carry."""

    kind: str
    subscriber: Subscriber
    request: SubscriptionRequest | None = None


def request_subscription(
    session: Session,
    settings: Settings,
    taxonomy: Taxonomy,
    email: str,
    *,
    name: str = "",
    topics: frozenset[str] | None = None,
    lists: Iterable[str] | None = None,
    source: str = "web",
    ip: str = "",
) -> Reply | None:
    """A subscribe request from anyone who typed an address: what to email and to whom, or
    None to send nothing. The caller answers the same whatever this returns (no address
    enumeration), and should call it after answering (the timing must not tell either).
    `InvalidAddress` or `SubscriberError` (a name too long) for input a form should catch first.

    - A suppressed address (a complaint, a hard bounce) gets nothing and nothing is stored.
    - A new address, or one forgotten at its owner's request, is added as `pending`, with the
      choices and the consent source and IP, and gets a confirmation link; confirming it is
      new consent and lifts the "forgotten" suppression.
    - An active subscriber is told they are subscribed.
    - A pending, unsubscribed, bounced or complained record gets a confirmation link whose
      token carries the requested name, topics and lists (`Reply.request`). Someone who left
      and asks for "all topics" (the form's default) keeps the topics they had chosen: the
      link carries those.

    Nothing about an existing record changes here: whoever typed the address has not shown
    that the mailbox is theirs. The choices apply, and the status changes, only when the
    emailed link is used (`confirm_subscription`).
    """
    name = clean_name(name)
    suppressed = suppression_reason(session, email)
    if suppressed is not None and suppressed != FORGOTTEN:
        return None  # a complaint or a bounce: never mail them by accident
    subscriber = get_subscriber(session, email)
    if subscriber is None:
        try:
            subscriber = add_subscriber(
                session,
                settings,
                taxonomy,
                email,
                name=name,
                topics=topics,
                lists=lists,
                status=PENDING,
                source=source,
                ip=ip,
                suppressed_ok=True,  # forgotten: a confirmation is their new consent
            )
        except SubscriberError:
            return None  # added by a concurrent request a moment ago
        return Reply(CONFIRMATION, subscriber)
    if subscriber.status == ACTIVE:
        return Reply(ALREADY_SUBSCRIBED, subscriber)
    if suppressed is not None:
        return None  # on record and suppressed: as before, nothing changes
    if topics is None and subscriber.status != PENDING and subscriber.topic_slugs is not None:
        topics = subscriber.topic_slugs  # coming back with "all topics": keep what they chose
    request = SubscriptionRequest(
        name=name,
        topics=None if topics is None else frozenset(topics),
        lists=None if lists is None else tuple(lists),
    )
    return Reply(CONFIRMATION, subscriber, request)


def request_fresh_link(session: Session, email: str) -> Reply | None:
    """A request for a new link: what to email and to whom, or None to send nothing.

    A pending subscriber gets a new confirmation link, anyone else on record a preferences
    link; an unknown or suppressed address nothing (the caller answers the same either way,
    and should call this after answering).
    """
    if is_suppressed(session, email):
        return None
    subscriber = get_subscriber(session, email)
    if subscriber is None:
        return None
    return Reply(CONFIRMATION if subscriber.status == PENDING else NEW_LINK, subscriber)


def pending_for_confirmation(session: Session, email: str) -> Subscriber:
    """The pending subscriber EMAIL, to send a (new) confirmation link to, as an operator asks
    (`subscribers resend-confirmation`). `SubscriberError` for an address that is not on record,
    not pending, or suppressed."""
    subscriber = require_subscriber(session, email)
    if subscriber.status != PENDING:
        raise SubscriberError(
            f"{subscriber.email} is {subscriber.status}, not pending: "
            "only pending subscribers get a confirmation link"
        )
    if is_suppressed(session, subscriber.email):
        raise SubscriberError(f"{subscriber.email} is on the suppression list")
    return subscriber


def read_confirmation(
    session: Session, signer: Signer, token: str
) -> tuple[Subscriber, SubscriptionRequest | None]:
    """The subscriber a confirmation link names and the choices it carries (None: it carries
    none, the record's own apply). `LinkProblem` as `subscriber_for_token`."""
    if not token or len(token) > MAX_CONFIRM_TOKEN_LENGTH:
        raise LinkProblem("invalid", "This link is not valid (it may have been cut or altered).")
    try:
        subscriber_id, digest, extra = signer.read_with_extra(CONFIRM, token)
    except TokenError as error:
        kind = "expired" if isinstance(error, TokenExpired) else "invalid"
        raise LinkProblem(kind, str(error).capitalize() + ".") from None
    subscriber = subscriber_by_reference(session, subscriber_id, digest)
    return subscriber, None if extra is None else SubscriptionRequest.from_payload(extra)


def confirm_subscription(
    session: Session,
    settings: Settings,
    taxonomy: Taxonomy,
    signer: Signer,
    token: str,
    *,
    ip: str = "",
    source: str = "web",
) -> tuple[Subscriber, bool]:
    """Use a confirmation link: (subscriber, whether they became active now).

    An active subscriber stays as is (confirming twice is harmless; the link's choices are not
    applied: the preference center changes them). A pending one takes the choices the link
    carries and becomes active. Someone who left (unsubscribed, bounced, complained) and asked
    to come back becomes active, with the link's choices, only with a link made after their
    last change — an old link from before they left raises `LinkProblem` "stale". The consent
    source (and IP) are recorded. `LinkProblem` for a token that does not work.
    """
    subscriber, request = read_confirmation(session, signer, token)
    if subscriber.status == ACTIVE:
        return subscriber, False
    ip = ip[:64]
    if subscriber.status == PENDING:
        _apply_request(session, settings, taxonomy, subscriber, request)
        confirm(session, subscriber, ip=ip)
        if suppression_reason(session, subscriber.email) == FORGOTTEN:
            lift_suppression(session, subscriber.email)  # new consent, shown with the mailbox
    else:
        issued = signer.issued_at(CONFIRM, token)
        left = subscriber.updated_at.replace(microsecond=0)
        if issued is None or issued < left:
            raise LinkProblem("stale", STALE_CONFIRMATION)
        _apply_request(session, settings, taxonomy, subscriber, request)
        set_status(session, subscriber, ACTIVE)
        subscriber.confirmed_at = utcnow()
        subscriber.consent_ip = ip
    if not subscribed_lists(subscriber):  # someone who left is on no list any more
        set_lists(session, settings, subscriber, [settings.delivery.default_list])
    subscriber.consent_source = source[:50]
    session.flush()
    return subscriber, True


def _apply_request(
    session: Session,
    settings: Settings,
    taxonomy: Taxonomy,
    subscriber: Subscriber,
    request: SubscriptionRequest | None,
) -> None:
    """The choices of a confirmed request. A topic or list removed from the configuration since
    the link was made is left out; when none of the chosen topics is left, the topics on record
    stay (they chose some topics, not every topic)."""
    if request is None:
        return
    if request.name:
        subscriber.name = request.name
    if request.topics is None:
        if subscriber.status == PENDING:  # someone who left keeps "all topics except …"
            set_topics(session, subscriber, None)
    else:
        known = {term.slug for term in taxonomy.topics}
        if kept := request.topics & known:
            set_topics(session, subscriber, kept)
    available = {spec.slug for spec in settings.list_specs()}
    wanted = [slug for slug in request.lists or () if slug in available]
    set_lists(session, settings, subscriber, wanted or [settings.delivery.default_list])


def resubscribe(
    session: Session, settings: Settings, subscriber: Subscriber, *, source: str = "web"
) -> None:
    """Someone holding their own preferences link comes back: active again (the consent source
    recorded), and on the default list if they are on none. `SubscriberError` for a suppressed
    address: they asked never to be mailed again."""
    if is_suppressed(session, subscriber.email):
        raise SubscriberError(f"{subscriber.email} is on the suppression list")
    if subscriber.status != ACTIVE:
        set_status(session, subscriber, ACTIVE)
        subscriber.consent_source = source[:50]
    if not subscribed_lists(subscriber):
        set_lists(session, settings, subscriber, [settings.delivery.default_list])


# --- the preference center ------------------------------------------------------------------


def update_preferences(
    session: Session,
    settings: Settings,
    subscriber: Subscriber,
    *,
    name: str,
    topics: TopicChoice | frozenset[str] | None,
    lists: Iterable[str],
    taxonomy: Taxonomy | None = None,
) -> tuple[str, ...]:
    """The preference center's save: name and topics always; the lists only while they are
    subscribed or still on some list, so saving does not put someone who left back on a list
    (coming back is `resubscribe`).

    Returns the topics of `taxonomy` (in its order) they received before and no longer do:
    dropped through the form, counted like a "stop this topic" link (none without a taxonomy).
    """
    known = [t.slug for t in taxonomy.topics] if taxonomy is not None else []
    before = subscriber.topic_choice.matching(known)
    subscriber.name = clean_name(name)
    set_topics(session, subscriber, topics)
    if is_subscribed(subscriber) or subscribed_lists(subscriber):
        set_lists(session, settings, subscriber, lists)
    after = subscriber.topic_choice
    return tuple(slug for slug in before if not after.receives(slug))


# What `drop_topic` did.
DROPPED = "dropped"
NOT_FOLLOWED = "not_followed"  # they did not receive that topic: nothing changed
ONLY_TOPIC = "only_topic"  # it is their only topic: nothing changed (unsubscribe instead)


def follows_topic(subscriber: Subscriber | ReaderView, slug: str) -> bool:
    """Whether they receive summaries about this topic (all-topics subscribers receive every
    topic they did not stop)."""
    return subscriber.topic_choice.receives(slug)


def drop_topic(session: Session, taxonomy: Taxonomy, subscriber: Subscriber, slug: str) -> str:
    """Stop sending them one topic (the links in the digest): `DROPPED`, or `NOT_FOLLOWED` /
    `ONLY_TOPIC` with nothing changed.

    A subscriber of chosen topics loses one of them. An all-topics subscriber becomes "every
    topic except this one" (and the ones they stopped before): topics added to the taxonomy
    later still reach them, and so does a summary about this topic and one they still receive.
    Stopping the last topic of today's taxonomy that reaches them is `ONLY_TOPIC`.
    """
    current = subscriber.topic_choice
    if not current.receives(slug):
        return NOT_FOLLOWED
    remaining = current.without(slug)
    if not remaining.effective(t.slug for t in taxonomy.topics):
        return ONLY_TOPIC
    set_topics(session, subscriber, remaining)
    return DROPPED


# --- frequency (pause: `store.pauses`) -------------------------------------------------------


def set_frequency(session: Session, subscriber: Subscriber, frequency: str) -> None:
    """Every month's digest (`monthly`) or one round-up a quarter (`quarterly`);
    `SubscriberError` for anything else."""
    if frequency not in FREQUENCIES:
        choose = " or ".join(FREQUENCIES)
        raise InvalidPreference("frequency", f"unknown frequency {frequency!r} (choose {choose})")
    subscriber.frequency = frequency
    session.flush()
