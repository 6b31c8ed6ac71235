"""Transactional emails: confirmation, "already subscribed", a fresh link, and the welcome.

They are rendered like the digest (Jinja2 → MJML → mjml-python → premailer, plus a text part,
templates overridable in the user's templates folder) and sent with the configured transport.
They carry no List-Unsubscribe header: they are answers to something the person just did.
The welcome is the latest sent issue cut to the new subscriber's topics, built by
`message.preview.preview_parts` exactly like a real send, but outside the ledger. Its opening is
its own (`email/welcome_lead_in.md.j2`: welcome, this is the latest issue, the archive holds the
rest) in place of the digest's intro, which was written for that month's readers.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import jinja2
from sqlalchemy import Engine

from newsletter.config import Settings
from newsletter.content.choice import TopicChoice
from newsletter.content.model import Issue
from newsletter.content.reader import list_months
from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import NewsletterError
from newsletter.errors import NoMatchingVariant
from newsletter.message.notice import notice_message
from newsletter.message.preview import preview_parts
from newsletter.personalize import greeting
from newsletter.personalize import make_recipient
from newsletter.render.email import mjml_to_html
from newsletter.render.environment import make_environment
from newsletter.sending.single import send_single
from newsletter.store import ledger
from newsletter.store.engine import session_factory
from newsletter.store.models import DONE
from newsletter.store.models import RUNNING
from newsletter.tokens import CONFIRM
from newsletter.tokens import PREFERENCES
from newsletter.tokens import Signer
from newsletter.transport import make_transport
from newsletter.transport.base import Transport

log = logging.getLogger("newsletter.web")

TransportFactory = Callable[[], Transport]


@dataclasses.dataclass(frozen=True)
class Person:
    """What a transactional email needs to know about its recipient (safe to pass to a thread)."""

    id: int
    email: str
    name: str
    topics: TopicChoice


class Mailer:
    """Renders and sends the web app's transactional emails."""

    def __init__(
        self,
        settings: Settings,
        taxonomy: Taxonomy,
        signer: Signer,
        engine: Engine,
        transport_factory: TransportFactory | None = None,
    ) -> None:
        self.settings = settings
        self.taxonomy = taxonomy
        self.signer = signer
        self.engine = engine
        self.transport_factory = transport_factory or (lambda: make_transport(settings))
        self.env = make_environment(settings.templates.dir)

    # --- building -------------------------------------------------------------------------

    def _context(self, person: Person, **values: object) -> dict:
        settings = self.settings
        topics = person.topics
        labels = [t.label for t in self.taxonomy.topics if topics.receives(t.slug)]
        stopped = [t.label for t in self.taxonomy.topics if t.slug in topics.excluded]
        context = {
            "lang": settings.newsletter.language,
            "newsletter_name": settings.newsletter.name,
            "base_url": settings.newsletter.base_url,
            "postal_address": settings.newsletter.postal_address,
            "admin_email": settings.newsletter.admin_email,
            "greeting": greeting(person.name),
            "email": person.email,
            "all_topics": topics.all_topics,
            "topic_labels": labels,  # what they receive of today's topics
            "stopped_labels": stopped,  # the topics an all-topics reader stopped
        }
        context.update(values)
        return context

    def build(self, template: str, person: Person, subject: str, **values: object) -> bytes:
        """The message bytes for `templates/email/<template>.{mjml,txt}.j2`."""
        context = self._context(person, subject=subject, **values)
        try:
            source = self.env.get_template(f"email/{template}.mjml.j2").render(context)
            text = self.env.get_template(f"email/{template}.txt.j2").render(context)
        except jinja2.TemplateError as error:
            raise NewsletterError(f"email template {template}: {error}") from None
        return notice_message(
            self.settings,
            to_email=person.email,
            to_name=person.name,
            subject=subject,
            text=text,
            html=mjml_to_html(source),
        )

    def preferences_url(self, person: Person) -> str:
        token = self.signer.make(PREFERENCES, person.id, person.email)
        return f"{self.settings.newsletter.base_url}/preferences/{token}"

    def confirmation(self, person: Person) -> bytes:
        token = self.signer.make(CONFIRM, person.id, person.email)
        name = self.settings.newsletter.name
        return self.build(
            "confirm",
            person,
            f"Please confirm your subscription to {name}",
            confirm_url=f"{self.settings.newsletter.base_url}/confirm/{token}",
            expires_days=7,
        )

    def already_subscribed(self, person: Person) -> bytes:
        return self.build(
            "already_subscribed",
            person,
            f"You are already subscribed to {self.settings.newsletter.name}",
            preferences_url=self.preferences_url(person),
        )

    def new_link(self, person: Person) -> bytes:
        return self.build(
            "new_link",
            person,
            f"Your link to manage {self.settings.newsletter.name}",
            preferences_url=self.preferences_url(person),
        )

    def welcome(self, person: Person) -> bytes:
        """The latest sent issue cut to their topics; a short welcome note if there is none."""
        settings = self.settings
        issue = self.latest_sent_issue()
        if issue is not None:
            welcome_issue = dataclasses.replace(
                issue, subject=f"Welcome to {settings.newsletter.name}: {issue.subject}"
            )
            recipient = make_recipient(
                settings, person.email, person.name, person.topics, person.id
            )
            lead_in = self.welcome_lead_in(person, issue)
            try:
                return preview_parts(
                    settings, welcome_issue, recipient, person.id, lead_in_md=lead_in
                ).eml
            except NoMatchingVariant:
                pass  # none of their topics is in that issue: fall back to the note
        return self.build(
            "welcome",
            person,
            f"Welcome to {settings.newsletter.name}",
            preferences_url=self.preferences_url(person),
        )

    def welcome_lead_in(self, person: Person, issue: Issue) -> str:
        """The welcome's opening (Markdown) in place of the issue's intro."""
        context = self._context(
            person,
            issue_label=issue.label,
            archive_url=self.settings.archive_url(),
        )
        try:
            return self.env.get_template("email/welcome_lead_in.md.j2").render(context)
        except jinja2.TemplateError as error:
            raise NewsletterError(f"email template welcome_lead_in: {error}") from None

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

    def send(self, kind: str, person: Person) -> bool:
        """Build and send one email; errors are logged, never raised (runs after the response)."""
        try:
            message = getattr(self, kind)(person)
            with self.transport_factory() as transport:
                send_single(self.settings, transport, person.email, message)
        except Exception:  # a background task: log it, the page has already been answered
            log.exception("could not send the %s email to %s", kind, person.email)
            return False
        return True
