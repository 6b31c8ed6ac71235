"""The JSON API's issue editing: PUT issue.md, PUT and DELETE a summary file.

The same path as the admin's editor (`newsletter.web.editing`): a write names the `version`
it replaces (from `GET /api/issues/{month}`), 409 with the file as it is now when it changed
elsewhere, 422 with the fields when the content does not pass `issues check`'s rules, 409 for
a sending or sent issue (a sent summary takes `"correct": true`). Its routes join
`newsletter.web.api.router`, so the bearer token is checked before the body is read.
"""

from __future__ import annotations

import shutil
from typing import Annotated

from fastapi import HTTPException
from fastapi import Path as PathParam
from fastapi import Query
from fastapi import Response

from newsletter.content import desk
from newsletter.content.model import MONTH_RE
from newsletter.content.writer import IssueDraft
from newsletter.content.writer import SummaryDraft
from newsletter.errors import ContentError
from newsletter.errors import InvalidEdit
from newsletter.errors import ReadOnlyIssue
from newsletter.web import editing
from newsletter.web.api import Ctx
from newsletter.web.api import _issue_out
from newsletter.web.api import router
from newsletter.web.api_schema import MAX_EDIT_BODY
from newsletter.web.api_schema import IssueIn
from newsletter.web.api_schema import IssueOut
from newsletter.web.api_schema import SummaryFileOut
from newsletter.web.api_schema import SummaryIn
from newsletter.web.api_schema import problems
from newsletter.web.app import WebContext

ACTOR = "api"
Slug = Annotated[str, PathParam(pattern=f"^{desk.SLUG_RE.pattern}$", max_length=80)]


def _month(ctx: WebContext, month: str) -> str:
    if not MONTH_RE.match(month) or month not in ctx.sending.months():
        raise HTTPException(404, "no such month")
    return month


def _invalid(invalid: InvalidEdit) -> HTTPException:
    errors = [
        {"loc": ["body", field], "msg": message, "type": "content"}
        for field, messages in invalid.problems.items()
        for message in messages
    ]
    return HTTPException(422, {"message": str(invalid), "errors": errors})


def _changed(changed: desk.ChangedElsewhere) -> HTTPException:
    detail = {"message": str(changed), "current": changed.current}
    return HTTPException(409, {**detail, "current_version": changed.version})


@router.put(
    "/issues/{month}",
    response_model=IssueOut,
    responses={
        201: {"model": IssueOut, "description": "The month was created with this issue.md."},
        **problems(400, 404, 409, 413),
    },
    max_body_size=MAX_EDIT_BODY,
)
def put_issue(month: str, body: IssueIn, ctx: Ctx, response: Response) -> IssueOut:
    """Write issue.md: subject, preheader, intro (Markdown), public, status (draft/ready).

    A month not in content/ yet is created (201; 404 for what is not a YYYY-MM month), and
    removed again when its issue.md is refused. 409 when issue.md is no longer `version`, or
    the issue is being sent or was sent.
    """
    created = None
    if MONTH_RE.match(month) and month not in ctx.sending.months():
        try:
            created = desk.create_month(ctx.settings.content.dir, month)
        except ContentError as error:
            raise HTTPException(409, str(error)) from None
    _month(ctx, month)
    draft = IssueDraft(body.subject, body.preheader, body.intro, body.public, body.status)
    try:
        editing.save_issue(ctx, month, draft, body.version, ACTOR)
    except (InvalidEdit, desk.ChangedElsewhere, ReadOnlyIssue) as problem:
        if created is not None:  # nothing half-made: the new month goes again
            shutil.rmtree(created, ignore_errors=True)
        if isinstance(problem, InvalidEdit):
            raise _invalid(problem) from None
        if isinstance(problem, desk.ChangedElsewhere):
            raise _changed(problem) from None
        raise HTTPException(409, str(problem)) from None
    if created is not None:
        response.status_code = 201
    return _issue_out(ctx, month)


@router.put(
    "/issues/{month}/summaries/{slug}",
    response_model=SummaryFileOut,
    responses={
        201: {"model": SummaryFileOut, "description": "The summary file was created."},
        **problems(400, 404, 409, 413),
    },
    max_body_size=MAX_EDIT_BODY,
)
def put_summary(
    month: str, slug: Slug, body: SummaryIn, ctx: Ctx, response: Response
) -> SummaryFileOut:
    """Create (201) or replace (200) the summary `slug`; topics by label or slug.

    422 with each field's problem (the rules of `newsletter issues check`); 409 when the file
    is no longer `version` (the body has the file as it is now), or the issue is read-only.
    """
    _month(ctx, month)
    draft = SummaryDraft(
        title=body.title,
        topics=tuple(body.topics),
        research_type=body.research_type,
        citation=body.citation,
        doi=body.doi,
        author=body.author,
        order=body.order,
        summary_md=body.summary,
        implications_md=body.implications,
    )
    try:
        written, created = editing.save_summary(
            ctx,
            month,
            slug,
            draft,
            body.version,
            ACTOR,
            correct=body.correct,
            reference=body.reference,
        )
    except InvalidEdit as invalid:
        raise _invalid(invalid) from None
    except desk.ChangedElsewhere as changed:
        raise _changed(changed) from None
    except (ReadOnlyIssue, ContentError) as refused:
        raise HTTPException(409, str(refused)) from None
    response.status_code = 201 if created else 200
    return _file_out(written, slug)


def _file_out(on_disk: desk.OnDisk, slug: str) -> SummaryFileOut:
    draft = desk.load_draft(on_disk) or SummaryDraft("", (), "")
    return SummaryFileOut(
        slug=slug,
        file=on_disk.path.name,
        version=on_disk.version,
        title=draft.title,
        topics=list(draft.topics),
        research_type=draft.research_type,
        citation=draft.citation,
        doi=draft.doi,
        author=draft.author,
        order=draft.order,
        summary=draft.summary_md,
        implications=draft.implications_md,
        corrected=draft.corrected.isoformat() if draft.corrected else None,
    )


@router.delete(
    "/issues/{month}/summaries/{slug}",
    status_code=204,
    response_class=Response,
    responses={**problems(404, 409), 204: {"description": "Deleted."}},
)
def delete_summary(
    month: str,
    slug: Slug,
    ctx: Ctx,
    version: Annotated[str, Query(max_length=64, description="The version read.")],
) -> Response:
    """Delete the summary file `slug` if it is still `version` (409 if not, or read-only)."""
    _month(ctx, month)
    on_disk = desk.read_summary_file(ctx.settings.content.dir, month, slug)
    if on_disk.text is None:
        raise HTTPException(404, "no such summary")
    try:
        editing.delete_summary(ctx, month, slug, version, ACTOR)
    except desk.ChangedElsewhere as changed:
        raise _changed(changed) from None
    except (ReadOnlyIssue, ContentError) as refused:
        raise HTTPException(409, str(refused)) from None
    return Response(status_code=204)
