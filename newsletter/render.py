"""Render one variant of an issue: Jinja2 → MJML → mjml-python → premailer → HTML, plus text.

Pure: takes an Issue and the summaries of one variant, returns strings. Per-subscriber values
are left as slots (`XNL…X` markers, see `personalize`) so one rendering serves every subscriber
who gets the same variant.
"""

from __future__ import annotations

import logging
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import jinja2
import premailer
from mjml import mjml2html

from newsletter.config import Settings
from newsletter.content import Issue
from newsletter.content import Summary
from newsletter.db import data_path
from newsletter.errors import RenderError

GMAIL_CLIP_BYTES = 102 * 1024
GMAIL_WARN_BYTES = 90 * 1024
TEXT_WIDTH = 72


@dataclass(frozen=True)
class RenderedVariant:
    """The HTML and text of one variant, with per-subscriber slots still in place."""

    month: str
    key: str
    subject: str
    html: str
    text: str
    summary_slugs: tuple[str, ...]


def default_templates_dir() -> Path:
    """The built-in templates folder."""
    return data_path("templates")


def make_environment(override_dir: Path | None, *, html: bool = True) -> jinja2.Environment:
    """A Jinja2 environment: the override folder first, then the built-ins.

    Built-ins are also reachable as "default/<name>", so an override can extend the original.
    """
    defaults = jinja2.FileSystemLoader(str(default_templates_dir()))
    loaders: list[jinja2.BaseLoader] = []
    if override_dir is not None and Path(override_dir).is_dir():
        loaders.append(jinja2.FileSystemLoader(str(override_dir)))
    loaders += [jinja2.PrefixLoader({"default": defaults}), defaults]
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "mjml", "mjml.j2", "html.j2"),
            disabled_extensions=("txt", "txt.j2"),
            default_for_string=html,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["wrap"] = wrap_text
    env.filters["textblock"] = markdown_to_text
    return env


def wrap_text(text: str, width: int = TEXT_WIDTH) -> str:
    """Wrap one paragraph to `width` columns."""
    return textwrap.fill(" ".join(text.split()), width=width, break_on_hyphens=False)


_LIST_ITEM = re.compile(r"^(\s*)([-*+]|\d+[.)])\s+")


def markdown_to_text(markdown: str, width: int = TEXT_WIDTH) -> str:
    """Markdown is already readable as text: unwrap, drop emphasis markers, re-wrap paragraphs."""
    blocks = re.split(r"\n\s*\n", markdown.strip())
    out = []
    for block in blocks:
        lines = block.splitlines()
        if any(_LIST_ITEM.match(line) for line in lines):
            items: list[str] = []
            for line in lines:
                match = _LIST_ITEM.match(line)
                if match or not items:
                    items.append(line.strip())
                else:
                    items[-1] += " " + line.strip()
            out.append("\n".join(_wrap_item(_plain(item), width) for item in items))
        elif block.lstrip().startswith("#"):
            out.append(_plain(block.lstrip("# ").strip()).upper())
        else:
            out.append(wrap_text(_plain(block), width))
    return "\n\n".join(out)


def _wrap_item(item: str, width: int) -> str:
    match = _LIST_ITEM.match(item)
    bullet = (match.group(2) if match else "-") + " "
    body = item[match.end() :] if match else item
    bullet = "  * " if bullet.strip() in "-*+" else "  " + bullet
    return textwrap.fill(
        " ".join(body.split()),
        width=width,
        initial_indent=bullet,
        subsequent_indent=" " * len(bullet),
        break_on_hyphens=False,
    )


def _plain(text: str) -> str:
    text = re.sub(r"\[([^\]]+)\]\(([^)]+)\)", r"\1 <\2>", text)  # [label](url) -> label <url>
    text = re.sub(r"(\*\*|__)(.+?)\1", r"\2", text)
    text = re.sub(r"(?<![\w*])([*_])(?!\s)(.+?)(?<!\s)\1(?![\w*])", r"\2", text)
    return text.replace("`", "")


def make_premailer(html: str) -> premailer.Premailer:
    """One Premailer configuration for email: no network, keep <style> for media queries."""
    return premailer.Premailer(
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

    def context(self, issue: Issue, summaries: tuple[Summary, ...], personal: bool) -> dict:
        """The template context of one variant."""
        settings = self.settings
        archive_url = archive_base_url(settings)
        items = [
            {
                "title": s.title,
                "slug": s.slug,
                "citation": s.citation,
                "doi": s.doi,
                "doi_url": s.doi_url,
                "research_type": s.research_type,
                "topics": s.topics,
                "summary_html": jinja2.utils.markupsafe.Markup(s.summary_html),
                "implications_html": jinja2.utils.markupsafe.Markup(s.implications_html),
                "summary_md": s.summary_md,
                "implications_md": s.implications_md,
                "web_url": f"{archive_url}/{s.month}/{s.slug}/" if archive_url else "",
            }
            for s in summaries
        ]
        titles = "; ".join(s.title for s in summaries)
        return {
            "lang": settings.newsletter.language,
            "subject": issue.subject,
            "preheader": issue.preheader or titles,
            "newsletter_name": settings.newsletter.name,
            "issue_label": issue.label,
            "month": issue.month,
            "base_url": settings.newsletter.base_url,
            "web_url": f"{archive_url}/{issue.month}/" if archive_url else "",
            "postal_address": settings.newsletter.postal_address,
            "intro_html": jinja2.utils.markupsafe.Markup(issue.intro_html),
            "intro_text": markdown_to_text(issue.intro_md) if issue.intro_md else "",
            "summaries": items,
            "personal": personal,
        }

    def render(
        self, issue: Issue, summaries: tuple[Summary, ...], *, personal: bool, key: str = ""
    ) -> RenderedVariant:
        """HTML and text for the given summaries of `issue`."""
        context = self.context(issue, summaries, personal)
        try:
            mjml_source = self.env.get_template("email/digest.mjml.j2").render(context)
            text = self.env.get_template("email/digest.txt.j2").render(context)
        except jinja2.TemplateError as error:
            where = f"{error.filename}:{error.lineno}: " if hasattr(error, "lineno") else ""
            raise RenderError(f"email template: {where}{error}") from None
        html = mjml_to_html(mjml_source)
        return RenderedVariant(
            month=issue.month,
            key=key,
            subject=issue.subject,
            html=html,
            text=_tidy_text(text),
            summary_slugs=tuple(s.slug for s in summaries),
        )


def archive_base_url(settings: Settings) -> str:
    """The public URL of the web archive ('' when none is configured)."""
    archive = getattr(settings, "archive", None)
    site_url = getattr(archive, "site_url", "") if archive is not None else ""
    return site_url.rstrip("/")


def mjml_to_html(source: str) -> str:
    """Compile MJML (no web fonts) and inline the CSS with premailer."""
    try:
        html = mjml2html(source, disable_comments=True, fonts={})
    except Exception as error:  # mjml-python raises plain exceptions with the parser message
        raise RenderError(f"MJML: {error}") from None
    inlined = make_premailer(html).transform()
    # premailer drops MJML's doctype; without it clients render in quirks mode.
    if not inlined.lstrip().lower().startswith("<!doctype"):
        inlined = "<!doctype html>\n" + inlined
    return inlined


def _tidy_text(text: str) -> str:
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"


def encoded_html_size(html: str) -> int:
    """Bytes of the HTML part as sent (quoted-printable), to compare with Gmail's clip."""
    import binascii

    return len(binascii.b2a_qp(html.encode("utf-8"), istext=True))
