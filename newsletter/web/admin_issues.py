"""Admin: write issues in the browser — create a month, edit issue.md (subject, preheader,
intro, ready), add, edit, reorder, delete and correct summaries, with a Markdown preview.

Every form works without JavaScript (Preview is a submit button that re-renders the form);
`/static/editor.js` only updates the preview as you type, through `/admin/markdown-preview`.
Edits go through `newsletter.web.editing` (the API's path too): files are the one source of
truth, a save names the version it replaces, and a save over a file changed elsewhere is
refused (409) with both versions shown.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Depends
from fastapi import Form
from fastapi import Request
from fastapi.responses import JSONResponse
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from newsletter.content import desk
from newsletter.content.model import MONTH_RE
from newsletter.content.model import markdown_to_html
from newsletter.content.taxonomy import slugify
from newsletter.content.writer import IssueDraft
from newsletter.content.writer import SummaryDraft
from newsletter.content.writer import issue_text
from newsletter.content.writer import summary_text
from newsletter.errors import ContentError
from newsletter.errors import InvalidEdit
from newsletter.errors import ReadOnlyIssue
from newsletter.web import editing
from newsletter.web.admin import Admin
from newsletter.web.admin import actor
from newsletter.web.admin import issue_page
from newsletter.web.admin import require_csrf
from newsletter.web.admin import see_other
from newsletter.web.api_schema import MAX_MARKDOWN
from newsletter.web.app import WebContext
from newsletter.web.app import context
from newsletter.web.pages import render_page
from newsletter.web.pages import topic_groups

router = APIRouter()
Ctx = Annotated[WebContext, Depends(context)]
Line = Annotated[str, Form(max_length=2000)]
Long = Annotated[str, Form(max_length=MAX_MARKDOWN)]
Choices = Annotated[list[str], Form()]
# A form's worst case: every character percent-encoded UTF-8 (up to 12 bytes).
FORM_BODY = 12 * (3 * MAX_MARKDOWN + 4000) + 64 * 1024


def _month(ctx: WebContext, month: str) -> str:
    if not MONTH_RE.match(month) or month not in ctx.sending.months():
        raise StarletteHTTPException(404)
    return month


def _slug(slug: str) -> str:
    if not desk.SLUG_RE.fullmatch(slug):
        raise StarletteHTTPException(404)
    return slug


@router.post("/admin/issues/new", dependencies=[Admin])
def create_month(request: Request, ctx: Ctx, month: Line = "", csrf_token: Line = "") -> Response:
    require_csrf(request, ctx, csrf_token)
    month = month.strip()
    try:
        desk.create_month(ctx.settings.content.dir, month)
    except ContentError as error:
        items = ctx.sending.overviews()
        scheduled = editing.scheduled_sends(ctx)
        states = {item.month: editing.issue_state(ctx, item, scheduled) for item in items}
        return render_page(
            ctx,
            request,
            "admin/issues.html",
            status_code=422,
            items=items,
            states=states,
            month_error=error.detail,
            month_value=month[:7],
        )
    return see_other(f"/admin/issues/{month}")


# --- issue.md ------------------------------------------------------------------------------


@router.post("/admin/issues/{month}/meta", dependencies=[Admin], max_body_size=FORM_BODY)
def save_issue(
    month: str,
    request: Request,
    ctx: Ctx,
    subject: Line = "",
    preheader: Line = "",
    intro: Long = "",
    public: Line = "",
    status: Line = "draft",
    version: Line = "",
    csrf_token: Line = "",
) -> Response:
    require_csrf(request, ctx, csrf_token)
    _month(ctx, month)
    draft = IssueDraft(subject, preheader, intro, public == "yes", status)
    try:
        editing.save_issue(ctx, month, draft, version, actor(request))
    except InvalidEdit as invalid:
        return issue_page(
            ctx, request, month, status_code=422, form=draft, field_errors=invalid.problems
        )
    except desk.ChangedElsewhere as changed:
        return issue_page(
            ctx,
            request,
            month,
            status_code=409,
            form=draft,
            conflict=changed,
            mine=_issue_preview(draft),
        )
    except ReadOnlyIssue as refused:
        return issue_page(ctx, request, month, status_code=409, error=str(refused))
    return see_other(f"/admin/issues/{month}?saved=1")


def _issue_preview(draft: IssueDraft) -> str:
    return issue_text(draft)


# --- summaries -----------------------------------------------------------------------------


def editor_page(
    ctx: WebContext,
    request: Request,
    month: str,
    slug: str,
    draft: SummaryDraft,
    version: str,
    *,
    is_new: bool,
    status_code: int = 200,
    field_errors: dict[str, list[str]] | None = None,
    conflict: desk.ChangedElsewhere | None = None,
    mine: str = "",
    notice: str = "",
    error: str = "",
    reference: str = "",
) -> Response:
    state = editing.state_of(ctx, month)
    article = ""
    if not is_new:
        on_disk = desk.read_summary_file(ctx.settings.content.dir, month, slug)
        article = desk.article_title(on_disk)
    chosen = set()
    for name in draft.topics:
        term = ctx.taxonomy.topics.find(name)
        chosen.add(term.slug if term else name)
    return render_page(
        ctx,
        request,
        "admin/summary_edit.html",
        status_code=status_code,
        month=month,
        slug=slug,
        draft=draft,
        version=version,
        is_new=is_new,
        state=state,
        groups=topic_groups(ctx.taxonomy),
        chosen=chosen,
        research_types=list(ctx.taxonomy.research_types),
        default_author=ctx.settings.content.default_author,
        field_errors=field_errors or {},
        conflict=conflict,
        mine=mine,
        summary_html=markdown_to_html(draft.summary_md),
        implications_html=markdown_to_html(draft.implications_md),
        reference=reference,
        article=article,
        notice=notice,
        error=error,
    )


@router.get("/admin/issues/{month}/new-summary", dependencies=[Admin])
def new_summary(month: str, request: Request, ctx: Ctx) -> Response:
    _month(ctx, month)
    return editor_page(ctx, request, month, "", SummaryDraft("", (), ""), "", is_new=True)


@router.get("/admin/issues/{month}/summaries/{slug}", dependencies=[Admin])
def edit_summary(month: str, slug: str, request: Request, ctx: Ctx) -> Response:
    _month(ctx, month)
    on_disk = desk.read_summary_file(ctx.settings.content.dir, month, _slug(slug))
    draft = desk.load_draft(on_disk)
    if on_disk.text is None:
        raise StarletteHTTPException(404)
    if draft is None:
        error = f"{on_disk.path.name}: its front matter does not read; fix it in a text editor"
        return editor_page(
            ctx, request, month, slug, SummaryDraft("", (), ""), "", is_new=False, error=error
        )
    saved = "Saved." if request.query_params.get("saved") else ""
    return editor_page(
        ctx, request, month, slug, draft, on_disk.version, is_new=False, notice=saved
    )


def _draft_from_form(form: dict[str, str], topics: list[str]) -> tuple[SummaryDraft, str]:
    """(the draft, an error for `order`) from the editor's fields."""
    order_text = form["order"].strip()
    order = None
    problem = ""
    if order_text:
        try:
            order = int(order_text)
        except ValueError:
            problem = "must be a whole number"
    draft = SummaryDraft(
        title=form["title"],
        topics=tuple(t for t in topics if t)[:100],
        research_type=form["research_type"],
        citation=form["citation"],
        doi=form["doi"],
        author=form["author"],
        order=order,
        summary_md=form["summary"],
        implications_md=form["implications"],
    )
    return draft, problem


@router.post("/admin/issues/{month}/summaries", dependencies=[Admin], max_body_size=FORM_BODY)
@router.post(
    "/admin/issues/{month}/summaries/{slug}", dependencies=[Admin], max_body_size=FORM_BODY
)
def save_summary(
    month: str,
    request: Request,
    ctx: Ctx,
    slug: str = "",
    new_slug: Line = "",
    title: Line = "",
    topics: Choices = [],  # noqa: B006 (FastAPI copies defaults)
    research_type: Line = "",
    citation: Line = "",
    doi: Line = "",
    author: Line = "",
    order: Line = "",
    summary: Long = "",
    implications: Long = "",
    reference: Long = "",
    version: Line = "",
    action: Line = "save",
    csrf_token: Line = "",
) -> Response:
    require_csrf(request, ctx, csrf_token)
    _month(ctx, month)
    is_new = not slug
    fields = {
        "title": title,
        "research_type": research_type,
        "citation": citation,
        "doi": doi,
        "author": author,
        "order": order,
        "summary": summary,
        "implications": implications,
    }
    draft, order_problem = _draft_from_form(fields, topics)
    if is_new:
        slug = new_slug.strip() or slugify(title)[:60].strip("-")
    else:
        _slug(slug)

    def again(status_code: int, **extra) -> Response:
        extra.setdefault("reference", reference)
        return editor_page(
            ctx,
            request,
            month,
            slug,
            draft,
            version,
            is_new=is_new,
            status_code=status_code,
            **extra,
        )

    if action == "preview":
        return again(200, notice="Preview below; nothing is saved yet.")
    if order_problem:
        return again(422, field_errors={"order": [order_problem]})
    try:
        correct = action == "correct"
        editing.save_summary(
            ctx, month, slug, draft, version, actor(request), correct=correct, reference=reference
        )
    except InvalidEdit as invalid:
        return again(422, field_errors=invalid.problems)
    except desk.ChangedElsewhere as changed:
        mine = summary_text(draft)
        return again(409, conflict=changed, mine=mine)
    except ReadOnlyIssue as refused:
        return again(409, error=str(refused))
    except ContentError as error:
        return again(422, error=str(error))
    return see_other(f"/admin/issues/{month}/summaries/{slug}?saved=1")


@router.post("/admin/issues/{month}/summaries/{slug}/delete", dependencies=[Admin])
def delete_summary(
    month: str, slug: str, request: Request, ctx: Ctx, version: Line = "", csrf_token: Line = ""
) -> Response:
    require_csrf(request, ctx, csrf_token)
    _month(ctx, month)
    try:
        editing.delete_summary(ctx, month, _slug(slug), version, actor(request))
    except desk.ChangedElsewhere:
        message = f"{slug} changed elsewhere since you opened the page: not deleted. Look again."
        return issue_page(ctx, request, month, status_code=409, error=message)
    except (ReadOnlyIssue, ContentError) as refused:
        return issue_page(ctx, request, month, status_code=409, error=str(refused))
    return see_other(f"/admin/issues/{month}?deleted=1")


@router.post("/admin/issues/{month}/summaries/{slug}/move", dependencies=[Admin])
def move_summary(
    month: str, slug: str, request: Request, ctx: Ctx, step: Line = "", csrf_token: Line = ""
) -> Response:
    require_csrf(request, ctx, csrf_token)
    _month(ctx, month)
    if step not in ("up", "down"):
        raise StarletteHTTPException(400, "step must be up or down")
    try:
        editing.move_summary(ctx, month, _slug(slug), -1 if step == "up" else 1, actor(request))
    except (ReadOnlyIssue, InvalidEdit) as refused:
        return issue_page(ctx, request, month, status_code=409, error=str(refused))
    return see_other(f"/admin/issues/{month}")


@router.post("/admin/markdown-preview", dependencies=[Admin], max_body_size=FORM_BODY)
def markdown_preview(request: Request, ctx: Ctx, text: Long = "", csrf_token: Line = ""):
    """The HTML of Markdown (raw HTML off, as in the digest) for the editor's live preview."""
    require_csrf(request, ctx, csrf_token)
    return JSONResponse({"html": markdown_to_html(text)})
