"""The JSON API's models and the parts of its OpenAPI schema FastAPI cannot write alone.

The models are shared by every app, the taxonomy and lists are not: fields carry a marker
(`x-newsletter-choices`) that `build_openapi` replaces with the enum of this newsletter's
topics or lists; `newsletter.web.api` accepts exactly those values. Errors are RFC 9457
problem details (`Problem`), served as `application/problem+json`.
"""

from __future__ import annotations

from typing import Annotated
from typing import Any
from typing import Literal

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic import Field

from newsletter.store import subscribers as api
from newsletter.web.app import WebContext

Short = Annotated[str, Field(max_length=320)]
# Enums filled in from the taxonomy and the lists when the schema is built (`openapi`): the
# models are shared by every app, the choices are not.
CHOICES = "x-newsletter-choices"
TopicName = Annotated[str, Field(json_schema_extra={CHOICES: "topics"})]
ListSlug = Annotated[str, Field(json_schema_extra={CHOICES: "lists"})]
Address = Annotated[str, Field(max_length=320, json_schema_extra={"format": "email"})]
# What `clean_name` refuses (Unicode Cc, Cf, Zl, Zp), as a pattern for the schema and pydantic.
Name = Annotated[str, Field(max_length=200, pattern=api.name_pattern())]
Status = Literal["active", "pending", "unsubscribed", "bounced", "complained"]
ALL_TOPICS = "*"


# --- models --------------------------------------------------------------------------------


class FieldProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem detail: every error the API answers has this body."""

    type: str = Field(description='"about:blank": the status code says what went wrong.')
    title: str = Field(description="The status code's reason phrase.")
    status: int
    detail: str = Field(description="What was wrong with this request.")
    errors: list[FieldProblem] | None = Field(
        default=None, description="422: the fields that do not match the schema."
    )
    rejected: list[Rejected] | None = Field(
        default=None, description="Import: the rejected CSV rows (line numbers count the header)."
    )
    current: str | None = Field(
        default=None, description="409 changed elsewhere: the file's text on disk now."
    )
    current_version: str | None = Field(
        default=None, description="409 changed elsewhere: its version ('' when it is gone)."
    )


class SummaryOut(BaseModel):
    slug: str
    title: str
    topics: list[str]
    research_type: str


class SummaryFileOut(BaseModel):
    """A summary file as the editor reads it (it may not pass the checks yet)."""

    slug: str
    file: str
    version: str = Field(description="Send it back to replace or delete this file.")
    title: str
    topics: list[str]
    research_type: str
    citation: str
    doi: str
    author: str = Field(default="", description="The byline; '' = [content] default_author.")
    order: int | None
    summary: str
    implications: str
    corrected: str | None = Field(description="YYYY-MM-DD of a correction after sending.")


class IssueOut(BaseModel):
    month: str
    subject: str | None = None
    summaries: list[SummaryOut] = []
    error: str = ""
    campaign_status: str
    counts: dict[str, int]
    running: bool
    state: Literal["draft", "ready", "scheduled", "sending", "sent"] = "draft"
    scheduled_at: str | None = Field(
        default=None,
        description="ISO time of a queued send, or of the monthly slot's next run when that "
        "run sends this (ready) month.",
    )
    issue_version: str = Field(default="", description="issue.md's version ('' for none).")
    preheader: str = ""
    intro: str = ""
    public: bool = False
    files: list[SummaryFileOut] = Field(default=[], description="Every summary file, in order.")


# One line: no CR, LF or other control characters (they would end up in a mail header).
OneLine = Annotated[str, Field(max_length=300, pattern=r"^[^\x00-\x1f\x7f]*$")]
SummaryTopic = Annotated[str, Field(json_schema_extra={CHOICES: "summary_topics"})]
ResearchType = Annotated[str, Field(json_schema_extra={CHOICES: "research_types"})]
MAX_MARKDOWN = 50_000  # characters of one Markdown field (a long summary is ~6,000)
# A JSON body's worst case: every character escaped as a surrogate pair (12 bytes).
MAX_EDIT_BODY = 12 * (3 * MAX_MARKDOWN + 4000) + 64 * 1024
VERSION_NOTE = "The version read (GET); empty to create a file that does not exist yet."


class IssueIn(BaseModel):
    subject: OneLine = Field(default="", description="Empty: the default subject.")
    preheader: OneLine = ""
    intro: str = Field(default="", max_length=MAX_MARKDOWN, description="Markdown.")
    public: bool = False
    status: Literal["draft", "ready"] = "draft"
    version: str = Field(default="", max_length=64, description=VERSION_NOTE)


class SummaryIn(BaseModel):
    title: OneLine
    topics: list[SummaryTopic] = Field(min_length=1, max_length=50)
    research_type: ResearchType
    citation: str = Field(default="", max_length=2000, pattern=r"^[^\x00-\x1f\x7f]*$")
    doi: str = Field(default="", max_length=300, pattern=r"^[^\x00-\x1f\x7f]*$")
    author: str = Field(
        default="",
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="The byline; empty: [content] default_author.",
    )
    summary: str = Field(max_length=MAX_MARKDOWN, description="Markdown.")
    implications: str = Field(
        max_length=MAX_MARKDOWN, description="Practice Implications, Markdown."
    )
    order: int | None = Field(default=None, ge=-100_000, le=100_000)
    reference: str = Field(
        default="",
        max_length=MAX_MARKDOWN,
        description="A BibTeX, RIS or CSL-JSON entry: becomes the file's `article:`.",
    )
    version: str = Field(default="", max_length=64, description=VERSION_NOTE)
    correct: bool = Field(
        default=False, description="A sent issue: correct this summary (nothing is mailed)."
    )


TOPICS_NOTE = 'Topic slugs or labels; "*" (or an empty list) for all topics.'


class PreviewIn(BaseModel):
    topics: list[TopicName] | None = Field(
        default=None, max_length=200, description=TOPICS_NOTE + " Null for all topics."
    )
    subscriber: Address | None = Field(default=None, description="Preview as this subscriber.")


class PreviewOut(BaseModel):
    month: str
    variant: str
    html: str
    text: str
    size: int = Field(description="Encoded HTML bytes (quoted-printable), against Gmail's clip.")
    size_level: str
    size_message: str


class TestIn(BaseModel):
    to: list[Address] = Field(min_length=1, max_length=20)
    topics: list[TopicName] | None = Field(default=None, max_length=200, description=TOPICS_NOTE)


class TestOut(BaseModel):
    results: list[str]


class PlanOut(BaseModel):
    month: str
    audience: int
    variant_count: int
    variants: dict[str, int]
    skipped_no_match: int
    existing: dict[str, int]
    to_send: int


class SendIn(BaseModel):
    confirm: Literal[True] = Field(description="Must be true: this sends to real subscribers.")
    lists: list[ListSlug] | None = Field(default=None, max_length=50)


class ProgressOut(BaseModel):
    month: str
    campaign_status: str
    counts: dict[str, int]
    running: bool
    error: str = ""


class SubscriberOut(BaseModel):
    id: int
    email: str
    name: str
    status: str
    topics: str | list[str] = Field(description='"*" for all topics, else topic slugs.')
    excluded_topics: list[str] = Field(
        default=[], description='With "*": the topics they stopped (every topic but these).'
    )
    lists: list[str]
    created_at: str | None
    confirmed_at: str | None
    unsubscribed_at: str | None
    consent_source: str


class DeliveryOut(BaseModel):
    month: str
    status: str
    attempts: int
    sent_at: str | None
    error: str


class SubscriberDetail(SubscriberOut):
    deliveries: list[DeliveryOut]


class SubscriberIn(BaseModel):
    email: Address
    name: Name = ""
    topics: list[TopicName] | None = Field(
        default=None, max_length=200, description=TOPICS_NOTE + " Null for all topics."
    )
    lists: list[ListSlug] | None = Field(
        default=None, max_length=50, description="Null for the default list."
    )
    status: Literal["active", "pending"] = "active"


class SubscriberPatch(BaseModel):
    name: Name | None = None
    status: Status | None = None
    topics: list[TopicName] | None = Field(default=None, max_length=200, description=TOPICS_NOTE)
    lists: list[ListSlug] | None = Field(default=None, max_length=50)


MAX_CSV_CHARS = 20 * 1024 * 1024


class ImportIn(BaseModel):
    csv: str = Field(max_length=MAX_CSV_CHARS, description="UTF-8 CSV text with a header.")
    skip_invalid: bool = False
    update_existing: bool = False
    dry_run: bool = False


class Rejected(BaseModel):
    line: int
    reason: str


class ImportOut(BaseModel):
    added: int
    updated: int
    skipped_existing: int
    rows: int
    dry_run: bool
    rejected: list[Rejected]


Problem.model_rebuild()

_REASONS = {
    400: "The request is well formed but cannot be done (the detail says why).",
    401: "Missing or wrong bearer token.",
    404: "No such month, summary or subscriber.",
    409: "It conflicts with the current state (already subscribed, a send running, a file "
    "changed elsewhere since it was read, a sent issue is read-only, ...).",
    413: "The body is larger than this operation takes.",
    422: "The request does not match this schema (`errors` lists the fields).",
    503: "The API is off: the token environment variable is not set.",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of an operation: these problem statuses, plus 401, 422 and 503."""
    return {
        code: {"model": Problem, "description": _REASONS[code]}
        for code in sorted({*codes, 401, 422, 503})
    }


# --- the schema ----------------------------------------------------------------------------


def build_openapi(app: FastAPI, ctx: WebContext) -> dict[str, Any]:
    """The app's OpenAPI schema with this newsletter's topics and lists as enums."""
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    terms = list(ctx.taxonomy.topics)
    kinds = list(ctx.taxonomy.research_types)
    choices = {
        "topics": topic_choices(ctx),
        "lists": list_choices(ctx),
        "summary_topics": list(dict.fromkeys([t.slug for t in terms] + [t.label for t in terms])),
        "research_types": list(dict.fromkeys([t.label for t in kinds] + [t.slug for t in kinds])),
    }
    _fill_choices(schema, choices)
    _problem_media_type(schema)
    return schema


def _problem_media_type(schema: dict[str, Any]) -> None:
    """Error responses are `application/problem+json` (FastAPI documents `application/json`)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for code, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if code >= "400" and "application/json" in content:
                    content["application/problem+json"] = content.pop("application/json")


def topic_choices(ctx: WebContext) -> list[str]:
    """What the API takes for a topic: slugs, labels and "*"."""
    terms = list(ctx.taxonomy.topics)
    return list(dict.fromkeys([ALL_TOPICS, *(t.slug for t in terms), *(t.label for t in terms)]))


def list_choices(ctx: WebContext) -> list[str]:
    return [spec.slug for spec in ctx.settings.list_specs()]


def _fill_choices(node: Any, choices: dict[str, list[str]]) -> None:
    """Replace each `x-newsletter-choices` marker with the enum it names."""
    if isinstance(node, list):
        for item in node:
            _fill_choices(item, choices)
    elif isinstance(node, dict):
        name = node.pop(CHOICES, None)
        if name is not None:
            _set_enum(node, choices[name])
        for value in node.values():
            _fill_choices(value, choices)


def _set_enum(schema: dict[str, Any], values: list[str]) -> None:
    for branch in schema.get("anyOf", ()):
        _set_enum(branch, values)
    if schema.get("type") == "array":
        _set_enum(schema["items"], values)
    elif schema.get("type") == "string":
        schema.pop("maxLength", None)
        schema["enum"] = values
