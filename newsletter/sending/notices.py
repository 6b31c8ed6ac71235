"""Sending the transactional emails, and answering the requests that lead to them.

`Notices` composes (`message.transactional.Composer`: from skeletons rendered once) and sends
one email at a time outside the ledger (`sending.single.send_single`, DKIM-signed like the
digest). The web app's public pages only `queue` their request in the outbox (`store.outbox`,
one insert whatever the address, committed before the page is answered); the outbox thread
(`sending.outbox`) then looks the address up, applies the subscriber service's rule, composes
the email and sends it over one kept connection. So neither the page nor its timing tells
whether the address is known, and a crash loses nothing. The admin's pages,
`subscribers add --status pending` and `subscribers resend-confirmation` send at once and say
what happened (`answer_address_change`, `send_confirmation`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from collections.abc import Iterable
from typing import cast

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from newsletter.config import Settings
from newsletter.content.choice import TopicChoice
from newsletter.content.model import Issue
from newsletter.content.reader import list_months
from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import NewsletterError
from newsletter.message.transactional import ADDRESS_CHANGE
from newsletter.message.transactional import CONFIRMATION
from newsletter.message.transactional import PRIVACY_LINK
from newsletter.message.transactional import WELCOME
from newsletter.message.transactional import Composer
from newsletter.message.transactional import Person
from newsletter.sending.outbox import OutboxDrainer
from newsletter.sending.single import send_single
from newsletter.store import address_change
from newsletter.store import ledger
from newsletter.store import outbox
from newsletter.store import registrar
from newsletter.store.engine import session_factory
from newsletter.store.engine import transaction
from newsletter.store.models import DONE
from newsletter.store.models import RUNNING
from newsletter.store.models import Subscriber
from newsletter.tokens import Signer
from newsletter.transport import make_transport
from newsletter.transport.base import Transport
from newsletter.transport.kept import KeptTransport

log = logging.getLogger("newsletter.notices")

TransportFactory = Callable[[], Transport]

# The outbox's requests (`Notices.queue`); PRIVACY_LINK and WELCOME are emails' kinds too.
SUBSCRIBE = "subscribe"
LINK_REQUEST = "link_request"
ADDRESS_CHANGE_REQUEST = "address_change_request"

__all__ = ["Notices", "Person", "person_of"]


def person_of(subscriber: Subscriber, topics: TopicChoice | None = None) -> Person:
    """The recipient of a transactional email (plain data, safe to pass to a thread)."""
    return Person(
        subscriber.id,
        subscriber.email,
        subscriber.name,
        subscriber.topic_choice if topics is None else topics,
    )


class Notices(Composer):
    """Composes and sends the transactional emails with the configured transport."""

    def __init__(
        self,
        settings: Settings,
        taxonomy: Taxonomy,
        signer: Signer,
        engine: Engine,
        transport_factory: TransportFactory | None = None,
        *,
        background: bool = True,
    ) -> None:
        """`background`: send the outbox from a thread of this process (the web app); without
        it queued emails wait for `flush` (or for the next process that drains the outbox)."""
        super().__init__(settings, taxonomy, signer)
        self.engine = engine
        self.transport_factory = transport_factory or (lambda: make_transport(settings))
        # The outbox's emails go over one connection kept open (`transport.kept`).
        self.kept = KeptTransport(self.transport_factory)
        self.outbox = OutboxDrainer(
            engine,
            self.prepare,
            lambda recipient, message: send_single(settings, self.kept, recipient, message),
            on_idle=self.kept.close_if_idle,
            background=background,
        )

    # --- composing ------------------------------------------------------------------------

    def welcome(self, person: Person, latest: Issue | None = None) -> bytes:
        """The welcome with the latest sent issue (looked up when not given)."""
        return super().welcome(person, latest or self.latest_sent_issue())

    def latest_sent_issue(self) -> Issue | None:
        """The newest month whose campaign has been sent (or is sending), if any."""
        settings = self.settings
        try:
            months = list_months(settings.content.dir)
        except NewsletterError:
            return None
        with session_factory(self.engine)() as session:
            for month in reversed(months):
                campaign = ledger.find_campaign(session, month)
                if campaign is not None and campaign.status in (DONE, RUNNING):
                    try:
                        return load_issue(
                            settings.content.dir, month, self.taxonomy, settings.newsletter.name
                        )
                    except NewsletterError:
                        return None
        return None

    # --- sending --------------------------------------------------------------------------

    def deliver(self, kind: str, person: Person, **values: object) -> str:
        """Build and send one email of `kind` (`message.transactional.KINDS`): the transport's
        reply. Errors are raised (`NewsletterError` subclasses)."""
        message = getattr(self, kind)(person, **values)
        with self.transport_factory() as transport:
            return send_single(self.settings, transport, person.email, message)

    def send(self, kind: str, person: Person, **values: object) -> bool:
        """`deliver`, with errors logged, never raised (for work after the page is answered)."""
        try:
            self.deliver(kind, person, **values)
        except Exception:  # a background task: log it, the page has already been answered
            log.exception("could not send the %s email to %s", kind, person.email)
            return False
        return True

    def _send(self, action: tuple[str, Person, dict[str, object]] | None) -> bool:
        return False if action is None else self.send(action[0], action[1], **action[2])

    # --- the outbox (the web's public pages: answered before anything is sent) ----------

    def queue(self, kind: str, payload: dict[str, object], session: Session | None = None) -> None:
        """Add `kind` (`SUBSCRIBE`, `LINK_REQUEST`, `ADDRESS_CHANGE_REQUEST`, `PRIVACY_LINK`,
        `WELCOME`) with its inputs to the outbox: in `session`'s transaction (then `wake` after
        its commit), or committed now and the outbox thread woken."""
        if session is not None:
            outbox.add(session, kind, payload)
            self.outbox.note_queued()
            return
        with transaction(self.engine) as own:
            outbox.add(own, kind, payload)
        self.outbox.note_queued()
        self.wake()

    def queue_subscribe(
        self,
        email: str,
        *,
        name: str = "",
        topics: frozenset[str] | None = None,
        lists: Iterable[str] | None = None,
        source: str = "web",
        ip: str = "",
    ) -> None:
        """A subscribe request, kept until handled: the same one insert whatever the address
        (what we know about it is looked up by the outbox thread, after the page)."""
        self.queue(
            SUBSCRIBE,
            {
                "email": email,
                "name": name,
                "topics": None if topics is None else sorted(topics),
                "lists": None if lists is None else list(lists),
                "source": source,
                "ip": ip,
            },
        )

    def wake(self) -> None:
        """Have the outbox thread send what was queued (after the commit)."""
        self.outbox.wake()

    def flush(self, *, only_if_queued: bool = False) -> int:
        """Handle and send every due outbox row now, in this thread (tests, the CLI); see
        `OutboxDrainer.flush`."""
        return self.outbox.flush(only_if_queued=only_if_queued)

    def prepare(
        self, session: Session, kind: str, payload: dict[str, object]
    ) -> tuple[str, bytes] | None:
        """An outbox request: apply the subscriber service's rule in `session` and compose
        the email it calls for: (recipient, message), or None when nothing goes out."""
        action: tuple[str, Person, dict[str, object]] | None
        if kind == SUBSCRIBE:
            topics = cast("list[str] | None", payload["topics"])
            lists = cast("list[str] | None", payload["lists"])
            reply = registrar.request_subscription(
                session,
                self.settings,
                self.taxonomy,
                str(payload["email"]),
                name=str(payload["name"]),
                topics=None if topics is None else frozenset(topics),
                lists=lists,
                source=str(payload["source"]),
                ip=str(payload["ip"]),
            )
            action = _action(reply)
        elif kind == LINK_REQUEST:
            action = _action(registrar.request_fresh_link(session, str(payload["email"])))
        elif kind == ADDRESS_CHANGE_REQUEST:
            action = self._address_change(session, payload["subscriber_id"], payload["email"])
        elif kind in (PRIVACY_LINK, WELCOME):
            subscriber = session.get(Subscriber, payload["subscriber_id"])
            action = None if subscriber is None else (kind, person_of(subscriber), {})
        else:
            raise NewsletterError(f"outbox: unknown kind {kind!r}")
        if action is None:
            return None
        kind, person, values = action
        return person.email, getattr(self, kind)(person, **values)

    def _address_change(
        self, session: Session, subscriber_id: object, new_email: object
    ) -> tuple[str, Person, dict[str, object]] | None:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None:
            return None
        address = address_change.request_address_change(session, subscriber, str(new_email))
        if address is None:
            return None
        person = dataclasses.replace(person_of(subscriber), email=address)
        return ADDRESS_CHANGE, person, {"old_email": subscriber.email}

    # --- answered at once (the admin's pages and the CLI report what happened) -----------

    def send_privacy_link(self, person: Person) -> bool:
        """The short-lived link to download or delete their data (asked for on the
        preferences page); errors are logged."""
        return self.send(PRIVACY_LINK, person)

    def answer_address_change(self, subscriber_id: int, new_email: str) -> bool:
        """A change of address asked on the preferences page, after the page was answered:
        email the new address a link to confirm it, unless the subscriber service says the
        address is not free (then nothing goes out: the page said the same). Errors logged."""
        try:
            with transaction(self.engine) as session:
                action = self._address_change(session, subscriber_id, new_email)
        except Exception:
            log.exception("could not handle the change of address of subscriber %s", subscriber_id)
            return False
        return self._send(action)

    def send_welcome(self, person: Person) -> bool:
        return self.send(WELCOME, person)

    def send_confirmation(self, email: str) -> str:
        """Email the pending subscriber EMAIL a new confirmation link, as the web's subscribe
        form does; a line saying so. `SubscriberError` when EMAIL is not pending, transport
        errors as raised."""
        with transaction(self.engine) as session:
            subscriber = registrar.pending_for_confirmation(session, email)
            person = person_of(subscriber)
        self.deliver(CONFIRMATION, person)
        return f"sent a confirmation link to {person.email}"


def _action(reply: registrar.Reply | None) -> tuple[str, Person, dict[str, object]] | None:
    """What to send for a reply of the subscriber service: (kind, recipient, values), read
    while the record is still in its session."""
    if reply is None:
        return None
    subscriber, request = reply.subscriber, reply.request
    if request is None:
        return reply.kind, person_of(subscriber), {}
    # The email speaks of the choices the link carries (what confirming will give them); the
    # name and address stay those on record: the request is not theirs until confirmed.
    person = person_of(subscriber, TopicChoice.of(request.topics))
    return CONFIRMATION, person, {"request": request.to_payload()}


def send_confirmation(
    settings: Settings,
    taxonomy: Taxonomy,
    engine: Engine,
    email: str,
    transport_factory: TransportFactory | None = None,
) -> str:
    """`Notices.send_confirmation` for one address (the CLI's entry point); over SMTP only with
    a real signing key."""
    signer = Signer(settings.mail_signing_key())
    return Notices(settings, taxonomy, signer, engine, transport_factory).send_confirmation(email)


def send_outbox(
    settings: Settings,
    taxonomy: Taxonomy,
    engine: Engine,
    *,
    retry_failed: bool = False,
    transport_factory: TransportFactory | None = None,
) -> str:
    """Handle and send every due row of the outbox now (the CLI's `subscribers send-notices`);
    a line with what was done and what is left. Over SMTP only with a real signing key."""
    signer = Signer(settings.mail_signing_key())
    mailer = Notices(settings, taxonomy, signer, engine, transport_factory, background=False)
    if retry_failed:
        with transaction(engine) as session:
            outbox.requeue_failed(session)
    try:
        handled = mailer.flush()
    finally:
        mailer.kept.close()
    left = outbox.counts(engine)
    return (
        f"handled {handled} outbox emails; waiting for a retry: {left['queued']}, "
        f"given up on: {left['failed']}"
    )
