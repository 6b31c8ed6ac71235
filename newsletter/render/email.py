"""Render one variant of an issue: Jinja2 → MJML → mjml-python → premailer → HTML, plus text.

Pure: takes an Issue and the summaries of one variant, returns strings. Per-subscriber values
are left as slots (`XNL…X` markers, see `personalize`) so one rendering serves every subscriber
who gets the same variant.
"""

from __future__ import annotations

import logging
import sys
import threading
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import cast

import jinja2
from markupsafe import Markup
from markupsafe import escape
from mjml import mjml2html

from newsletter.config import Settings
from newsletter.content.model import Issue
from newsletter.content.model import Summary
from newsletter.content.model import markdown_to_html
from newsletter.errors import RenderError
from newsletter.render.citation import apa_html
from newsletter.render.citation import apa_text
from newsletter.render.environment import make_environment
from newsletter.render.environment import where_it_failed
from newsletter.render.text import markdown_to_text
from newsletter.render.text import tidy_text

if TYPE_CHECKING:
    import premailer

# (url, summary slug or "") -> the address the link goes through (the click redirect).
LinkTracker = Callable[[str, str], str]


@dataclass(frozen=True)
class RenderedVariant:
    """The HTML and text of one variant, with per-subscriber slots still in place."""

    month: str
    key: str
    subject: str
    html: str
    text: str
    summary_slugs: tuple[str, ...]


class _RequestsWhenUsed(types.ModuleType):
    """What premailer's `import requests` finds: the real module, imported on first use."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get("requests") is self:
            del sys.modules["requests"]
        import requests

        return getattr(requests, name)


_premailer_lock = threading.Lock()


def _premailer() -> types.ModuleType:
    """premailer, imported at the first rendering, without importing requests.

    premailer imports requests (with urllib3, charset_normalizer, chardet and idna: ~11 MB of
    a sending process, bench/memory.py) only to fetch external stylesheets, which it is never
    allowed to here (`allow_network=False`). While premailer is imported, `requests` is a
    stand-in that imports the real module if premailer ever uses it; then it is taken out of
    `sys.modules`, so any other `import requests` gets the real module.
    """
    with _premailer_lock:
        if "premailer" not in sys.modules and "requests" not in sys.modules:
            sys.modules["requests"] = _RequestsWhenUsed("requests")
            try:
                import premailer
            finally:
                if isinstance(sys.modules.get("requests"), _RequestsWhenUsed):
                    del sys.modules["requests"]
        import premailer

    return cast(types.ModuleType, premailer)  # untyped: mypy sees Any


def make_premailer(html: str) -> premailer.Premailer:
    """One Premailer configuration for email: no network, keep <style> for media queries."""
    # Imported at the first rendering: commands and pages that render nothing do not load
    # premailer, cssutils and lxml's CSS selectors.
    return _premailer().Premailer(
        html,
        keep_style_tags=True,
        remove_classes=False,
        strip_important=False,
        allow_network=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
    )


class Renderer:
    """Renders variants of issues with the configured templates. Safe to reuse; no I/O."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.env = make_environment(settings.templates.dir)

    def context(
        self,
        issue: Issue,
        summaries: tuple[Summary, ...],
        personal: bool,
        lead_in_md: str = "",
        track: LinkTracker | None = None,
    ) -> dict[str, Any]:
        """The template context of one variant; `lead_in_md` stands in place of the intro.

        `track(url, summary_slug)` gives the address a link of the variant goes through (the
        click redirect, `[tracking] clicks`): the DOI and "read on the web" links, and the
        http(s) links written in the summaries' and the intro's Markdown (the intro's with
        summary ""), in the HTML and the text part alike. Per variant, never per reader.
        """
        settings = self.settings
        archive_url = settings.archive_url().rstrip("/")

        def link(url: str, slug: str = "") -> str:
            return track(url, slug) if track is not None and url else url

        own_site = tuple(u for u in (settings.newsletter.base_url.rstrip("/"), archive_url) if u)

        def written(slug: str) -> Callable[[str], str] | None:
            """The tracker of the links written in Markdown (of a summary, or the intro's
            with ""): http(s) only (`track` leaves mailto: and the like alone); links into
            our own site (the archive, the preference pages) stay as they are."""
            if track is None:
                return None

            def href(url: str) -> str:
                if own_site and url.startswith(tuple(f"{u}/" for u in own_site)):
                    return url
                return track(url, slug)

            return href

        def html_of(markdown: str, slug: str) -> Markup:
            return Markup(markdown_to_html(markdown, written(slug)))

        def text_of(markdown: str, slug: str) -> str:
            return markdown_to_text(markdown, href=written(slug))

        items = [
            {
                "title": s.title,
                "slug": s.slug,
                "author": s.author or settings.content.default_author,
                # The APA reference of a structured `article:` ('' for a free-text citation,
                # which `citation` holds; for an article it holds the APA text, for overrides).
                "apa_html": _tracked_href(apa_html(s.article), s.doi_url, link(s.doi_url, s.slug))
                if s.article is not None
                else "",
                "apa_text": apa_text(s.article) if s.article is not None else "",
                "citation": apa_text(s.article) if s.article is not None else s.citation,
                "doi": s.doi,
                "doi_url": link(s.doi_url, s.slug),
                "research_type": s.research_type,
                "topics": s.topics,
                # Their links through the click redirect too, the same in both parts.
                "summary_html": html_of(s.summary_md, s.slug),
                "implications_html": html_of(s.implications_md, s.slug),
                "summary_text": text_of(s.summary_md, s.slug),
                "implications_text": text_of(s.implications_md, s.slug),
                "summary_md": s.summary_md,
                "implications_md": s.implications_md,
                "web_url": link(f"{archive_url}/{s.month}/{s.slug}/", s.slug)
                if archive_url
                else "",
            }
            for s in summaries
        ]
        titles = "; ".join(s.title for s in summaries)
        # The common part of the intro and the parts of this variant's summaries only.
        intro_md = lead_in_md.strip() or issue.intro_for(s.slug for s in summaries)
        return {
            "lang": settings.newsletter.language,
            "subject": issue.subject,
            "preheader": issue.preheader or titles,
            "newsletter_name": settings.newsletter.name,
            "issue_label": issue.label,
            "month": issue.month,
            "base_url": settings.newsletter.base_url,
            "web_url": link(f"{archive_url}/{issue.archive_path}") if archive_url else "",
            "postal_address": settings.newsletter.postal_address,
            "intro_html": html_of(intro_md, ""),
            "intro_text": text_of(intro_md, "") if intro_md else "",
            "summaries": items,
            "personal": personal,
        }

    def render(
        self,
        issue: Issue,
        summaries: tuple[Summary, ...],
        *,
        personal: bool,
        key: str = "",
        lead_in_md: str = "",
        track: LinkTracker | None = None,
    ) -> RenderedVariant:
        """HTML and text for the given summaries of `issue`.

        `lead_in_md` (Markdown) replaces the issue's intro: the welcome email's own opening.
        `track` sends the variant's links through the click redirect (see `context`).
        """
        context = self.context(issue, summaries, personal, lead_in_md, track)
        try:
            mjml_source = self.env.get_template("email/digest.mjml.j2").render(context)
            text = self.env.get_template("email/digest.txt.j2").render(context)
        except jinja2.TemplateError as error:
            raise RenderError(f"email template: {where_it_failed(error)}{error}") from None
        html = mjml_to_html(mjml_source)
        return RenderedVariant(
            month=issue.month,
            key=key,
            subject=issue.subject,
            html=html,
            text=tidy_text(text),
            summary_slugs=tuple(s.slug for s in summaries),
        )


def _tracked_href(html: str, url: str, tracked: str) -> str:
    """`html` with its links to `url` pointing at `tracked` instead (the APA reference's DOI
    link; its text still shows the DOI)."""
    if not url or tracked == url:
        return html
    # On plain strings: Markup.replace would escape its arguments, quotes included.
    replaced = str(html).replace(f'href="{escape(url)}"', f'href="{escape(tracked)}"')
    return Markup(replaced)  # the reference's own HTML, one escaped URL swapped


def mjml_to_html(source: str) -> str:
    """Compile MJML (no web fonts) and inline the CSS with premailer."""
    try:
        html = mjml2html(source, disable_comments=True, fonts={})
    except Exception as error:  # mjml-python raises plain exceptions with the parser message
        raise RenderError(f"MJML: {error}") from None
    inlined = make_premailer(html).transform()
    # premailer drops MJML's doctype; without it clients render in quirks mode.
    inlined = str(inlined)
    if not inlined.lstrip().lower().startswith("<!doctype"):
        inlined = "<!doctype html>\n" + inlined
    return inlined
