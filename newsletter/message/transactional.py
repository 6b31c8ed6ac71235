"""Composing the transactional emails (pure): confirmation, "already subscribed", a fresh
preferences link, a privacy link (download my data, forget me), the link confirming a change
of address (sent to the new one) and the welcome.

They are rendered like the digest (Jinja2 → MJML → mjml-python → premailer, plus a text part,
templates `templates/email/<kind>.{mjml,txt}.j2`, overridable in the user's templates folder)
and built by `message.notice.notice_message`: no List-Unsubscribe header, they answer something
the person just did. The welcome is the latest sent issue cut to the new subscriber's topics,
built by `message.preview.preview_parts` exactly like a real send, but outside the ledger. Its
opening is its own (`email/welcome_lead_in.md.j2`) in place of the digest's intro, which was
written for that month's readers. Sending them is `newsletter.sending.notices`; the web app and
the CLI both go through it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from email.utils import formataddr
from typing import Any

import jinja2

from newsletter.config import Settings
from newsletter.content.choice import TopicChoice
from newsletter.content.model import Issue
from newsletter.content.taxonomy import Taxonomy
from newsletter.errors import NewsletterError
from newsletter.errors import NoMatchingVariant
from newsletter.message.notice import notice_message
from newsletter.message.notice_skeleton import NoticeHeaders
from newsletter.message.notice_skeleton import NoticeTemplates
from newsletter.message.notice_skeleton import recipient_header
from newsletter.message.preview import preview_parts
from newsletter.personalize import greeting
from newsletter.personalize import make_recipient
from newsletter.render.email import mjml_to_html
from newsletter.render.environment import make_environment
from newsletter.tokens import ADDRESS
from newsletter.tokens import CONFIRM
from newsletter.tokens import CONFIRM_MAX_AGE
from newsletter.tokens import PREFERENCES
from newsletter.tokens import PRIVACY
from newsletter.tokens import Signer

CONFIRMATION = "confirmation"
ALREADY_SUBSCRIBED = "already_subscribed"
NEW_LINK = "new_link"
PRIVACY_LINK = "privacy_link"
WELCOME = "welcome"
ADDRESS_CHANGE = "address_change"
KINDS = (CONFIRMATION, ALREADY_SUBSCRIBED, NEW_LINK, PRIVACY_LINK, WELCOME, ADDRESS_CHANGE)


@dataclasses.dataclass(frozen=True)
class Person:
    """What a transactional email needs to know about its recipient (safe to pass to a thread).

    `topics` are the topics the email talks about: for a confirmation link that carries the
    choices of a request, those choices (what confirming will give them).
    """

    id: int
    email: str
    name: str
    topics: TopicChoice


class Composer:
    """Builds the transactional emails' bytes for one configuration (no I/O but templates)."""

    def __init__(self, settings: Settings, taxonomy: Taxonomy, signer: Signer) -> None:
        self.settings = settings
        self.taxonomy = taxonomy
        self.signer = signer
        self.env = make_environment(settings.templates.dir)
        self.skeletons = NoticeTemplates()

    def _context(self, person: Person, **values: object) -> dict[str, object]:
        settings = self.settings
        topics = person.topics
        labels = [t.label for t in self.taxonomy.topics if topics.receives(t.slug)]
        stopped = [t.label for t in self.taxonomy.topics if t.slug in topics.excluded]
        context: dict[str, object] = {
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
        """The message bytes for `templates/email/<template>.{mjml,txt}.j2`.

        From the kind's skeleton (`message.notice_skeleton`): rendered once per shape, the
        person's greeting, address and links filled in; `build_direct` is the old path.
        """
        recipient_header(person.email, person.name)  # refused before anything is rendered
        context = self._context(person, subject=subject, **values)
        try:
            mjml = self.env.get_template(f"email/{template}.mjml.j2")
            txt = self.env.get_template(f"email/{template}.txt.j2")
        except jinja2.TemplateError as error:
            raise NewsletterError(f"email template {template}: {error}") from None

        def render(values: Mapping[str, object]) -> tuple[str, str]:
            try:
                return mjml_to_html(mjml.render(values)), txt.render(values)
            except jinja2.TemplateError as error:
                raise NewsletterError(f"email template {template}: {error}") from None

        newsletter = self.settings.newsletter
        headers = NoticeHeaders(
            from_header=formataddr(
                (newsletter.from_name or newsletter.name, newsletter.from_email)
            ),
            reply_to=newsletter.reply_to,
            subject=subject,
            domain=self.settings.sender_domain(),
        )
        personal = ("greeting", "email", *values)
        message, rendered = self.skeletons.message(
            (template, mjml, txt), context, personal, headers, render, (person.email, person.name)
        )
        if message is not None:
            return message
        assert rendered is not None
        return self._message(person, subject, *rendered)

    def build_direct(self, template: str, person: Person, subject: str, **values: object) -> bytes:
        """`build` the old way: the whole pipeline and the stdlib builder for this one email
        (the reference the skeletons are checked against)."""
        context = self._context(person, subject=subject, **values)
        try:
            source = self.env.get_template(f"email/{template}.mjml.j2").render(context)
            text = self.env.get_template(f"email/{template}.txt.j2").render(context)
        except jinja2.TemplateError as error:
            raise NewsletterError(f"email template {template}: {error}") from None
        return self._message(person, subject, mjml_to_html(source), text)

    def _message(self, person: Person, subject: str, html: str, text: str) -> bytes:
        return notice_message(
            self.settings,
            to_email=person.email,
            to_name=person.name,
            subject=subject,
            text=text,
            html=html,
        )

    def _url(self, path: str) -> str:
        return f"{self.settings.newsletter.base_url}{path}"

    def preferences_url(self, person: Person) -> str:
        return self._url(f"/preferences/{self.signer.make(PREFERENCES, person.id, person.email)}")

    def confirmation(self, person: Person, request: Mapping[str, Any] | None = None) -> bytes:
        """A link to confirm; `request` is the choices its token carries (see
        `store.registrar.SubscriptionRequest`), applied when it is used."""
        token = self.signer.make(CONFIRM, person.id, person.email, request)
        name = self.settings.newsletter.name
        return self.build(
            "confirm",
            person,
            f"Please confirm your subscription to {name}",
            confirm_url=self._url(f"/confirm/{token}"),
            expires_days=CONFIRM_MAX_AGE // 86400,
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

    def privacy_link(self, person: Person) -> bytes:
        """A short-lived link to download or delete their data ([web] privacy_link_max_age)."""
        token = self.signer.make(PRIVACY, person.id, person.email)
        seconds = self.settings.web.privacy_link_max_age
        return self.build(
            "privacy_link",
            person,
            f"Your link to download or delete your data at {self.settings.newsletter.name}",
            privacy_url=self._url(f"/privacy/{token}"),
            expires=duration_text(seconds),
        )

    def address_change(self, person: Person, old_email: str) -> bytes:
        """To the new address (`person.email`): a link, signed for `old_email` and carrying the
        new address, that changes the subscription's address when used."""
        token = self.signer.make(ADDRESS, person.id, old_email, {"email": person.email})
        return self.build(
            "address_change",
            person,
            f"Confirm your new address for {self.settings.newsletter.name}",
            address_url=self._url(f"/address/{token}"),
            expires_days=CONFIRM_MAX_AGE // 86400,
        )

    def welcome(self, person: Person, latest: Issue | None = None) -> bytes:
        """The latest sent issue cut to their topics; a short welcome note if there is none."""
        settings = self.settings
        if latest is not None:
            welcome_issue = dataclasses.replace(
                latest, subject=f"Welcome to {settings.newsletter.name}: {latest.subject}"
            )
            recipient = make_recipient(
                settings, person.email, person.name, person.topics, person.id
            )
            lead_in = self.welcome_lead_in(person, latest)
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


def duration_text(seconds: int) -> str:
    """ "1 hour", "90 minutes", "2 hours": how long a link works, in words."""
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return f"{hours} hour{'s' if hours != 1 else ''}"
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
