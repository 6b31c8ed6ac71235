"""Admin: login, issues, preview, test send, and the real send with its progress.

Admins log in by name and password: those added with `newsletter admin add NAME`
(`store.admins`), and the admin named "admin" whose password hash comes from
$NEWSLETTER_ADMIN_PASSWORD_HASH or `[web] admin_password_hash` (`newsletter admin
hash-password` makes one). The signed session cookie (HttpOnly, SameSite=Lax, Secure when
base_url is https) carries only a random session id; the session is the database row it names
(`store.admin_auth`), checked on every request, so logout, a password change and removing the
admin end that admin's sessions, copies of the cookie included. Every form carries a CSRF
token. Each login attempt is counted before its password is checked; past
`[web] login_max_failures` an address (and past ten times that, the account) must wait, the
wait doubling with each attempt (docs/web.md, "Admin sessions and lock-out").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter
from fastapi import Depends
from fastapi import Form
from fastapi import Request
from fastapi.responses import RedirectResponse
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from newsletter.content import desk
from newsletter.content.model import MONTH_RE
from newsletter.content.model import Issue
from newsletter.content.roundup import is_quarter
from newsletter.errors import FormProblem
from newsletter.errors import NewsletterError
from newsletter.passwords import hash_password
from newsletter.passwords import verify_password
from newsletter.store import admins
from newsletter.store import audit
from newsletter.store import feedback
from newsletter.store.admin_auth import LoginPolicy
from newsletter.store.admin_auth import claim_login_attempt
from newsletter.store.admin_auth import end_sessions_of
from newsletter.store.admin_auth import login_succeeded
from newsletter.store.admin_auth import session_owner
from newsletter.store.admin_auth import start_session
from newsletter.store.engine import session_factory
from newsletter.store.engine import transaction
from newsletter.store.models import LEGACY_ADMIN
from newsletter.store.subscribers import get_subscriber
from newsletter.web import editing
from newsletter.web.app import WebContext
from newsletter.web.app import context
from newsletter.web.app import get_ctx
from newsletter.web.forms import topic_choice
from newsletter.web.pages import render_page
from newsletter.web.pages import topic_groups
from newsletter.web.security import client_ip
from newsletter.web.security import password_tag

router = APIRouter()
Ctx = Annotated[WebContext, Depends(context)]
Text = Annotated[str, Form(max_length=5000)]
Choices = Annotated[list[str], Form()]


_SESSION_ID = "admin_session"
# Checked against when the name is unknown, so a wrong name costs the same time as a wrong password.
_NO_ADMIN_HASH = hash_password("no admin has this password", salt=b"\0" * 16)


def _tag_of(ctx: WebContext, session) -> Callable[[str], str]:
    def tag(name: str) -> str:
        stored = admins.password_hash_of(session, name, ctx.admin_password_hash())
        return password_tag(ctx.secret_key, stored) if stored else ""

    return tag


def current_admin(request: Request) -> str | None:
    """The name of the admin whose live session the request carries, or None.

    The session row must exist, be unexpired and name that admin's current password.
    """
    if hasattr(request.state, "admin_name"):
        return request.state.admin_name
    token = request.session.get(_SESSION_ID)
    name = None
    if isinstance(token, str) and len(token) <= 100:
        ctx = get_ctx(request)
        with transaction(ctx.engine) as session:
            name = session_owner(session, token, _tag_of(ctx, session), ctx.clock())
    if name is None and (_SESSION_ID in request.session or "admin" in request.session):
        # Ended (or never real): drop it, so pages stop showing the admin menu.
        request.session.pop(_SESSION_ID, None)
        request.session.pop("admin", None)
    request.state.admin_name = name
    return name


def logged_in(request: Request) -> bool:
    """Whether the request carries a live admin session."""
    return current_admin(request) is not None


def actor(request: Request) -> str:
    """Who the audit log says did what this request does (an admin route: never None)."""
    return current_admin(request) or "unknown"


def require_admin(request: Request) -> None:
    """Dependency: the admin session, else a redirect to the login page."""
    if not logged_in(request):
        raise StarletteHTTPException(303, headers={"Location": "/admin/login"})


Admin = Depends(require_admin)


def require_csrf(request: Request, ctx: WebContext, token: str) -> None:
    if not ctx.csrf.valid(request, token):
        raise StarletteHTTPException(
            403, "This form had expired (or cookies are blocked). Go back, reload, try again."
        )


def see_other(path: str) -> RedirectResponse:
    """A 303 to `path`, a path of this app ("/admin/issues"), never a URL from input.

    The app's middleware writes the `Location` as `[newsletter] base_url` + `path`
    (`newsletter.web.app.absolute_location`), never from the request's Host header.
    """
    if not path.startswith("/") or path.startswith("//"):
        raise ValueError(f"see_other takes a path of this app, not {path!r}")
    return RedirectResponse(path, status_code=303)


# --- login ---------------------------------------------------------------------------------


@router.get("/admin")
def admin_home(request: Request) -> Response:
    return see_other("/admin/dashboard" if logged_in(request) else "/admin/login")


def _enabled(ctx: WebContext) -> bool:
    with session_factory(ctx.engine)() as session:
        return admins.any_admin(session, ctx.admin_password_hash())


def login_page(
    ctx: WebContext,
    request: Request,
    status_code: int = 200,
    error: str = "",
    name: str = LEGACY_ADMIN,
    headers: dict[str, str] | None = None,
    field_errors: dict[str, list[str]] | None = None,
):
    """The login form; `field_errors` ties a refused login to the password field."""
    return render_page(
        ctx,
        request,
        "admin/login.html",
        status_code=status_code,
        headers=headers,
        error=error,
        name=name,
        field_errors=field_errors or {},
        enabled=status_code == 429 or _enabled(ctx),
        hash_env=ctx.settings.web.admin_password_hash_env,
    )


@router.get("/admin/login")
def show_login(request: Request, ctx: Ctx) -> Response:
    if logged_in(request):
        return see_other("/admin/issues")
    return login_page(ctx, request)


def _policy(ctx: WebContext) -> LoginPolicy:
    web = ctx.settings.web
    return LoginPolicy(
        free_per_address=web.login_max_failures,
        free_per_account=web.login_max_failures * 10,
        first_wait=web.login_failure_delay,
        max_wait_address=web.login_lockout_seconds,
        max_wait_account=web.login_account_max_wait,
    )


@router.post("/admin/login")
def login(
    request: Request,
    ctx: Ctx,
    name: Annotated[str, Form(max_length=200)] = LEGACY_ADMIN,
    password: Text = "",
    csrf_token: Text = "",
) -> Response:
    """Name and password (an empty name is the legacy admin "admin")."""
    name = name.strip().lower() or LEGACY_ADMIN
    shown = name[:64]
    if not ctx.csrf.valid(request, csrf_token):
        return login_page(ctx, request, 403, "This form had expired. Please try again.", shown)
    ip = client_ip(request)
    # Counted before the (slow) check, atomically: simultaneous guesses cannot all be checked.
    policy = _policy(ctx)
    claim = claim_login_attempt(ctx.engine, ip, policy, ctx.clock())
    if not claim.allowed:
        wait = claim.retry_after
        when = f"{wait} seconds" if wait < 120 else f"about {wait // 60} minutes"
        return login_page(
            ctx,
            request,
            429,
            f"Too many failed attempts. Try again in {when}.",
            shown,
            headers={"Retry-After": str(wait)},
        )
    with session_factory(ctx.engine)() as session:
        stored = admins.password_hash_of(session, name, ctx.admin_password_hash())
    # An unknown name is checked against a dummy hash: the answer takes as long as for a known one.
    if not verify_password(password, stored or _NO_ADMIN_HASH) or not stored:
        wrong = {"password": ["Wrong name or password."]}
        return login_page(ctx, request, 401, "", shown, field_errors=wrong)
    now = ctx.clock()
    login_succeeded(ctx.engine, ip, claim, policy, now)
    lifetime = dt.timedelta(seconds=ctx.settings.web.session_max_age)
    with transaction(ctx.engine) as session:
        tag = password_tag(ctx.secret_key, stored)
        token = start_session(session, tag, lifetime, now, admin_name=name)
        admins.logged_in(session, name, now)
    request.session.clear()  # a new session: nothing from before the login survives
    request.session[_SESSION_ID] = token
    request.session["admin"] = True  # only shows the admin menu; the row is the session
    return see_other("/admin/issues")


@router.post("/admin/logout")
def logout(request: Request, ctx: Ctx, csrf_token: Text = "") -> Response:
    """End every session of this admin: every browser's, and every copy of this cookie."""
    require_csrf(request, ctx, csrf_token)
    name = current_admin(request)
    if name is not None:
        with transaction(ctx.engine) as session:
            end_sessions_of(session, name)
    request.session.clear()
    return see_other("/admin/login")


# --- issues --------------------------------------------------------------------------------


def _issue(ctx: WebContext, month: str) -> Issue:
    """The month's issue, or a quarter's round-up (previews and test sends take both)."""
    if not (MONTH_RE.match(month) or is_quarter(month)):
        raise StarletteHTTPException(404)
    try:
        return ctx.sending.load(month)
    except NewsletterError as error:
        raise StarletteHTTPException(404, str(error)) from None


@router.get("/admin/issues", dependencies=[Admin])
def issues(request: Request, ctx: Ctx) -> Response:
    items = ctx.sending.overviews()
    scheduled = editing.scheduled_sends(ctx)
    states = {item.month: editing.issue_state(ctx, item, scheduled) for item in items}
    with transaction(ctx.engine) as session:
        reasons = feedback.unsubscribe_reason_counts(session)
    return render_page(
        ctx,
        request,
        "admin/issues.html",
        items=items,
        states=states,
        reasons=[(feedback.REASON_LABELS[key], count) for key, count in reasons.items()],
    )


def issue_page(
    ctx: WebContext,
    request: Request,
    month: str,
    *,
    notice: str = "",
    error: str = "",
    status_code: int = 200,
    **extra,
) -> Response:
    """The issue's page: its state, its issue.md form, its summaries, preview and tests.
    `extra` may carry the issue.md form as submitted (`form`) with its `field_errors` or
    `conflict` (`newsletter.web.admin_issues`). A quarter ("2026-Q4") gets its round-up's
    page: what it holds, its preview and its test send."""
    if is_quarter(month):
        return _round_up_page(ctx, request, month, notice, error, status_code)
    if not MONTH_RE.match(month) or month not in ctx.sending.months():
        raise StarletteHTTPException(404)
    item = ctx.sending.overview(month)
    on_disk, meta = desk.read_issue_file(ctx.settings.content.dir, month)
    extra.setdefault("form", meta)
    extra.setdefault("field_errors", {})
    extra.setdefault("conflict", None)
    extra.setdefault("mine", "")

    extra.setdefault("version", on_disk.version)
    if extra["conflict"] is not None:  # the form names what is on disk: saving again replaces it
        extra["version"] = extra["conflict"].version
    return render_page(
        ctx,
        request,
        "admin/issue.html",
        status_code=status_code,
        item=item,
        state=ctx.sending.state(month),
        desk_state=editing.issue_state(ctx, item),
        summaries=editing.ordered_summaries(ctx, month),
        groups=topic_groups(ctx.taxonomy),
        notice=notice,
        error=error,
        **extra,
    )


def _round_up_page(
    ctx: WebContext, request: Request, quarter: str, notice: str, error: str, status_code: int
) -> Response:
    round_up = _issue(ctx, quarter)  # 404 for a quarter with nothing published in it
    return render_page(
        ctx,
        request,
        "admin/round_up.html",
        status_code=status_code,
        round_up=round_up,
        groups=topic_groups(ctx.taxonomy),
        notice=notice,
        error=error,
    )


@router.get("/admin/round-up", dependencies=[Admin])
def find_round_up(request: Request, quarter: str = "") -> Response:
    """The issues page's "Quarterly round-up" form: to the quarter's page."""
    quarter = quarter.strip().upper()
    if not is_quarter(quarter):
        raise StarletteHTTPException(404, "a quarter is written YYYY-Qn, e.g. 2026-Q4")
    return see_other(f"/admin/issues/{quarter}")


@router.get("/admin/issues/{month}", dependencies=[Admin])
def issue(month: str, request: Request, ctx: Ctx) -> Response:
    query = request.query_params
    notice = "Saved." if query.get("saved") else "Deleted." if query.get("deleted") else ""
    return issue_page(ctx, request, month, notice=notice)


@router.get("/admin/issues/{month}/preview", dependencies=[Admin])
def preview(
    month: str,
    request: Request,
    ctx: Ctx,
    topic_mode: str = "all",
    subscriber: str = "",
) -> Response:
    issue_ = _issue(ctx, month)
    chosen = request.query_params.getlist("topics")
    try:
        selected = topic_choice(ctx.taxonomy, topic_mode, chosen)
    except FormProblem as problem:
        wrong = {"preview-topics": [str(problem)]}
        return issue_page(ctx, request, month, error=str(problem), field_errors=wrong)
    person = None
    if subscriber.strip():
        with session_factory(ctx.engine)() as session:
            person = get_subscriber(session, subscriber[:320])
        if person is None:
            message = f"No subscriber {subscriber[:320]!r}."
            wrong = {"subscriber": [message]}
            return issue_page(ctx, request, month, error=message, field_errors=wrong)
    try:
        result = ctx.sending.preview(issue_, selected, person)
    except NewsletterError as error:
        return issue_page(ctx, request, month, error=str(error))
    who = (
        f"as {person.email}"
        if person
        else "as a subscriber of all topics"
        if selected is None
        else "for the topics: "
        + ", ".join(t.label for t in ctx.taxonomy.topics if t.slug in selected)
    )
    return render_page(ctx, request, "admin/preview.html", month=month, preview=result, who=who)


@router.post("/admin/issues/{month}/test", dependencies=[Admin])
def test_send(
    month: str,
    request: Request,
    ctx: Ctx,
    addresses: Text = "",
    topic_mode: Text = "all",
    topics: Choices = [],  # noqa: B006 (FastAPI copies defaults)
    csrf_token: Text = "",
) -> Response:
    require_csrf(request, ctx, csrf_token)
    issue_ = _issue(ctx, month)
    wanted = [a for a in addresses.replace(",", " ").replace(";", " ").split() if a]
    try:
        selected = topic_choice(ctx.taxonomy, topic_mode, topics)
        lines = ctx.sending.test_send(issue_, wanted[:20], selected)
    except (FormProblem, NewsletterError) as error:
        # A topic problem at the topics, anything else (addresses, sending) at the addresses.
        topical = isinstance(error, FormProblem) and error.field == "topics"
        wrong = {"test-topics" if topical else "addresses": [str(error)]}
        return issue_page(ctx, request, month, error=f"Test not sent: {error}", field_errors=wrong)
    with transaction(ctx.engine) as session:
        audit.record(session, actor(request), "test-send", month, ", ".join(wanted[:20]))
    return issue_page(ctx, request, month, notice="; ".join(lines))


@router.get("/admin/issues/{month}/send", dependencies=[Admin])
def confirm_send(month: str, request: Request, ctx: Ctx) -> Response:
    issue_ = _issue(ctx, month)
    lists = request.query_params.getlist("lists") or None
    try:
        plan = ctx.sending.plan(issue_, lists)
    except NewsletterError as error:
        return issue_page(ctx, request, month, error=str(error))
    return render_page(
        ctx,
        request,
        "admin/send.html",
        issue=issue_,
        plan=plan,
        lists=ctx.settings.list_specs(),
        chosen_lists=set(lists or [ctx.settings.delivery.default_list]),
        running=ctx.sending.is_running(month),
    )


@router.post("/admin/issues/{month}/send", dependencies=[Admin])
def start_send(
    month: str,
    request: Request,
    ctx: Ctx,
    lists: Choices = [],  # noqa: B006 (FastAPI copies defaults)
    csrf_token: Text = "",
) -> Response:
    require_csrf(request, ctx, csrf_token)
    issue_ = _issue(ctx, month)
    try:
        ctx.sending.start(issue_, lists or None, actor=actor(request))
    except NewsletterError as error:
        return issue_page(ctx, request, month, error=str(error))
    with transaction(ctx.engine) as session:
        detail = "lists: " + ", ".join(lists or [ctx.settings.delivery.default_list])
        audit.record(session, actor(request), "send", month, detail)
    return see_other(f"/admin/issues/{month}")
