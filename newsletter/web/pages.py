"""Rendering web pages: the Jinja2 environment, the shared page context and topic groups."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from typing import TYPE_CHECKING
from typing import Any

from markupsafe import Markup
from markupsafe import escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from newsletter.content.taxonomy import TOPIC_GROUPS  # noqa: F401  (re-exported)
from newsletter.content.taxonomy import Taxonomy
from newsletter.content.taxonomy import TopicGroup  # noqa: F401  (re-exported)
from newsletter.content.taxonomy import topic_groups  # noqa: F401  (re-exported)
from newsletter.errors import LinkProblem

if TYPE_CHECKING:
    from newsletter.web.app import WebContext


def topic_labels(taxonomy: Taxonomy, slugs: Iterable[str] | None) -> list[str]:
    """Labels of topic slugs in taxonomy order; unknown slugs (removed topics) are left out."""
    if slugs is None:
        return []
    chosen = set(slugs)
    return [t.label for t in taxonomy.topics if t.slug in chosen]


def render_page(
    ctx: WebContext,
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    """Render `templates/web/<template>` with the shared context."""
    settings = ctx.settings

    field: list[Markup] = []  # one signed token per page, however many forms it has

    def csrf_field() -> Markup:
        if not field:
            token = ctx.csrf.token(request)
            field.append(Markup(f'<input type="hidden" name="csrf_token" value="{escape(token)}">'))
        return field[0]

    context = {
        "request": request,
        "newsletter_name": settings.newsletter.name,
        "base_url": settings.newsletter.base_url,
        "admin_email": settings.newsletter.admin_email,
        "postal_address": settings.newsletter.postal_address,
        "lang": settings.newsletter.language,
        "csrf_field": csrf_field,
        "is_admin": bool(request.session.get("admin")) if "session" in request.scope else False,
        "archive_url": ctx.archive_url(),
        "notice": "",
        "error": "",
    }
    context.update(values)
    html = ctx.pages.get_template(f"web/{template}").render(context)
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def link_problem(
    ctx: WebContext, request: Request, problem: LinkProblem, status_code: int = 400
) -> HTMLResponse:
    """The page for a link that cannot be used (`LinkProblem`: its kind says why); the app's
    exception handler shows it for every route behind an emailed link."""
    return render_page(
        ctx,
        request,
        "link_problem.html",
        status_code=status_code,
        problem=str(problem),
        kind=problem.kind,
    )
