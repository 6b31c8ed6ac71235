"""The web app factory: `create_app(settings)` returns a FastAPI app.

Subscribers: subscribe (double opt-in), confirm, preference center, one-click unsubscribe.
Admin: issues, preview, test send, real send with progress, subscribers. A JSON API under
`/api/`. Pages are Jinja2 templates in `templates/web/` (the user's templates folder first, then
the built-ins, as for emails); no flow needs JavaScript.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import functools
import http
import os
import re
import urllib.parse
from collections.abc import AsyncIterator
from collections.abc import Callable
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

import jinja2
from fastapi import FastAPI
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.responses import JSONResponse
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.routing import Match
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp
from starlette.types import Message
from starlette.types import Receive
from starlette.types import Scope
from starlette.types import Send

from newsletter.config import Settings
from newsletter.content.taxonomy import Taxonomy
from newsletter.content.taxonomy import taxonomy_from_settings
from newsletter.errors import LinkProblem
from newsletter.render.environment import default_templates_dir
from newsletter.render.environment import make_environment
from newsletter.store.engine import make_engine
from newsletter.store.engine import require_schema
from newsletter.store.models import utcnow
from newsletter.tokens import Signer
from newsletter.transport import make_transport
from newsletter.transport.base import Transport
from newsletter.web.mail import Mailer
from newsletter.web.pages import link_problem
from newsletter.web.pages import render_page
from newsletter.web.security import CSP
from newsletter.web.security import SECURITY_HEADERS
from newsletter.web.security import Csrf
from newsletter.web.security import SlidingWindow
from newsletter.web.security import derive_key
from newsletter.web.sending import Sending

HOUR = 3600.0
# The largest request body a route takes unless it says otherwise (FastAPI's `max_body_size`,
# Starlette's RequestBodyLimitMiddleware: a larger Content-Length is answered 413 before the
# body is read, a longer chunked body once it passes the limit). The forms need a few KB; the
# two CSV imports set their own, larger limits.
MAX_BODY_BYTES = 256 * 1024


def _allow_wasm(csp: str) -> str:
    """`csp` with 'wasm-unsafe-eval' added to script-src (WebAssembly, and nothing else)."""
    directives = [part.strip() for part in csp.split(";") if part.strip()]
    for index, directive in enumerate(directives):
        if directive.split()[0] == "script-src":
            directives[index] = directive + " 'wasm-unsafe-eval'"
            break
    else:
        directives.append("script-src 'self' 'wasm-unsafe-eval'")
    return "; ".join(directives)


# Pagefind (the archive's search) compiles WebAssembly, which `script-src 'self'` forbids; it is
# allowed under /archive/ only, where the static archive is served and nothing else of the app.
ARCHIVE_CSP = _allow_wasm(CSP)
_STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(css|js|png|svg|ico)$")


class ArchiveFiles(StaticFiles):
    """The archive's folder, which may not be built yet: 404s until it is (not a 500)."""

    async def check_config(self) -> None:
        if self.directory is not None and Path(self.directory).exists():
            await super().check_config()


@dataclasses.dataclass
class Limits:
    """The app's in-memory rate limits (per process: see `security`). Login attempts are
    counted in the database (`store.admin_auth`)."""

    subscribe_ip: SlidingWindow
    subscribe_address: SlidingWindow
    link_ip: SlidingWindow


@dataclasses.dataclass
class WebContext:
    """Everything a request handler needs, built once per app."""

    settings: Settings
    engine: Engine
    taxonomy: Taxonomy
    signer: Signer
    secret_key: str
    csrf: Csrf
    pages: jinja2.Environment
    mailer: Mailer
    sending: Sending
    limits: Limits
    transport_factory: Callable[[], Transport]
    archive_mounted: bool = False
    clock: Callable[[], dt.datetime] = (
        utcnow  # sessions, login waits, the monthly slot (tests may stop it)
    )

    @property
    def https(self) -> bool:
        return self.settings.newsletter.base_url.startswith("https://")

    def admin_password_hash(self) -> str:
        web = self.settings.web
        return os.environ.get(web.admin_password_hash_env, "") or web.admin_password_hash

    def archive_url(self) -> str:
        """'/archive/' once the mounted archive has been built, else ''."""
        built = self.archive_mounted and Path(self.settings.archive.dir).is_dir()
        return "/archive/" if built else ""

    def api_token(self) -> str:
        return os.environ.get(self.settings.web.api_token_env, "")

    def public_lists(self) -> list:
        return [spec for spec in self.settings.list_specs() if spec.public]


T = TypeVar("T")
# The threads of the busiest pages (`in_thread`): as many as anyio's default limit for plain
# `def` routes, so requests waiting for SQLite's write lock do not hold up the others.
_THREADS = concurrent.futures.ThreadPoolExecutor(max_workers=40, thread_name_prefix="web")


async def in_thread(function: Callable[..., T], *args: object) -> T:
    """`function(*args)` in a worker thread, awaited: the pages that run hundreds of times a
    second during a send (behind an emailed link, the subscribe form) are `async def` routes
    that call this, because FastAPI's hop through anyio's thread pool for a plain `def` route
    costs about ten times the CPU of an executor's (~0.5 ms a request, as much as reading
    the reader)."""
    return await asyncio.get_running_loop().run_in_executor(
        _THREADS, functools.partial(function, *args)
    )


def get_ctx(request: Request) -> WebContext:
    """The app's context."""
    return request.app.state.ctx


async def context(request: Request) -> WebContext:
    """The app's context, as a FastAPI dependency (`Depends(context)`). Async because FastAPI
    runs a plain function dependency in its thread pool: a hop there and back for every
    request, as much CPU as a short page's database work."""
    return request.app.state.ctx


def _limits(settings: Settings, workers: int = 1) -> Limits:
    # Under `serve --workers N` each process counts alone: it enforces its share.
    per_ip, per_address = settings.web.limits_per_process(workers)
    return Limits(
        subscribe_ip=SlidingWindow(per_ip, HOUR),
        subscribe_address=SlidingWindow(per_address, HOUR),
        link_ip=SlidingWindow(per_ip, HOUR),
    )


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    mailer = app.state.ctx.mailer
    mailer.outbox.start()  # sends what an earlier run left in the outbox, then waits for more
    yield
    # Shutdown (SIGTERM to uvicorn): let background sends drain before the process ends.
    await asyncio.to_thread(app.state.ctx.sending.shutdown)
    await asyncio.to_thread(mailer.outbox.stop)  # what is left stays queued for the next start
    await asyncio.to_thread(mailer.kept.close)


def create_app(
    settings: Settings,
    *,
    transport_factory: Callable[[], Transport] | None = None,
    engine: Engine | None = None,
    workers: int = 1,
) -> FastAPI:
    """The web app for `settings`. The database must be migrated (`newsletter db upgrade`).

    `workers`: how many processes serve the app (`newsletter serve --workers`); each enforces
    its share of the in-memory rate limits."""
    from newsletter.web import admin
    from newsletter.web import admin_audit
    from newsletter.web import admin_issues
    from newsletter.web import admin_reports
    from newsletter.web import admin_schedule
    from newsletter.web import admin_subscriber
    from newsletter.web import admin_subscribers
    from newsletter.web import api
    from newsletter.web import api_issues  # noqa: F401 (its routes join api.router)
    from newsletter.web import api_reports
    from newsletter.web import clicks
    from newsletter.web import preferences
    from newsletter.web import public
    from newsletter.web import reader
    from newsletter.web import unsubscribe

    engine = engine or make_engine(settings.database.url)
    require_schema(engine)
    factory = transport_factory or (lambda: make_transport(settings))
    taxonomy = taxonomy_from_settings(settings)
    secret_key = settings.require_secret_key()  # never the public development key
    signer = Signer(secret_key)
    ctx = WebContext(
        settings=settings,
        engine=engine,
        taxonomy=taxonomy,
        signer=signer,
        secret_key=secret_key,
        csrf=Csrf(secret_key),
        pages=make_environment(settings.templates.dir),
        mailer=Mailer(settings, taxonomy, signer, engine, factory),
        sending=Sending(
            settings, taxonomy, engine, factory, custom_transport=transport_factory is not None
        ),
        limits=_limits(settings, workers),
        transport_factory=factory,
    )
    app = FastAPI(
        title=f"{settings.newsletter.name} admin API",
        version="1",
        description=(
            "JSON API for the newsletter's admin actions. Every endpoint needs "
            "`Authorization: Bearer <token>`, the token being the value of the environment "
            f"variable `{settings.web.api_token_env}`."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=_lifespan,
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.ctx = ctx
    app.add_middleware(
        SessionMiddleware,
        secret_key=derive_key(secret_key, "session"),
        session_cookie="nl_session",
        max_age=settings.web.session_max_age,
        same_site="lax",
        https_only=ctx.https,
    )

    app.add_middleware(SecurityHeaders, base_url=settings.newsletter.base_url)

    _add_error_handlers(app, ctx)
    # admin_subscribers before admin_subscriber: its fixed paths (export.csv, bulk) must win
    # over /admin/subscribers/{subscriber_id}.
    routers = (public, preferences, reader, unsubscribe, admin, admin_issues, admin_reports)
    for module in (
        *routers,
        admin_subscribers,
        admin_subscriber,
        admin_schedule,
        admin_audit,
        clicks,
    ):
        app.include_router(module.router, include_in_schema=False)
    api.install(app, ctx)
    api_reports.install(app)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if _STATIC_NAME.match(name):
            for folder in (settings.templates.dir, default_templates_dir()):
                if folder is None:
                    continue
                # web/static/, then the look shared with the archive (shared/static/)
                for path in (
                    Path(folder) / "web" / "static" / name,
                    Path(folder) / "shared" / "static" / name,
                ):
                    if path.is_file():
                        headers = {"Cache-Control": "public, max-age=3600"}
                        return FileResponse(path, headers=headers)
        raise StarletteHTTPException(404)

    archive_dir = getattr(getattr(settings, "archive", None), "dir", None)
    if archive_dir is not None:
        # Mounted even before the first build: a completed send (or "Rebuild archive") builds
        # it while the app runs, and every request looks the folder up afresh, so a swapped-in
        # build is served at once. Links to it show once it exists (`WebContext.archive_url`).
        directory = ArchiveFiles(directory=archive_dir, html=True, check_dir=False)
        app.mount("/archive", directory, name="archive")
        ctx.archive_mounted = True
    return app


class SecurityHeaders:
    """The security headers on every response, the archive's CSP under /archive/, and every
    redirect kept on `base_url` (`absolute_location`).

    A plain ASGI middleware that edits the response's first message: Starlette's
    `BaseHTTPMiddleware` (`@app.middleware("http")`) runs each request through an extra task
    and a response stream, which cost more than rendering the preference page itself.
    """

    def __init__(self, app: ASGIApp, base_url: str) -> None:
        self.app = app
        self.base_url = base_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers.setdefault(name, value)
                request = Request(scope)
                if request.url.path.startswith("/archive/"):
                    headers["Content-Security-Policy"] = ARCHIVE_CSP
                if "location" in headers:
                    headers["location"] = absolute_location(
                        self.base_url, headers["location"], request
                    )
            await send(message)

        await self.app(scope, receive, send_with_headers)


_STATUS_TITLES = {
    400: "This request could not be handled",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    413: "Too large",
    429: "Too many requests",
}


def absolute_location(base_url: str, location: str, request: Request) -> str:
    """A redirect's `Location` built from `base_url`, never from the request's Host header.

    The app's own redirects name a path; Starlette's (a trailing slash too many or too few, an
    archive folder without its slash) a full URL built from the Host header, so a request with
    `Host: evil.example` would send the browser there. Both become `base_url` + the path.
    """
    url = urllib.parse.urlsplit(location)
    if url.scheme or url.netloc:
        own = urllib.parse.urlsplit(str(request.base_url))
        if (url.scheme, url.netloc) != (own.scheme, own.netloc):
            return location
    elif not location.startswith("/"):
        return location
    return base_url + urllib.parse.urlunsplit(("", "", url.path or "/", url.query, url.fragment))


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(app: FastAPI, request: Request) -> str:
    """The `Allow` header of a 405: every method some route takes at this path.

    Starlette names only the methods of the first route whose path matched, so GET and POST
    declared as two routes would give `Allow: GET, HEAD`. A Mount (the archive) takes GET/HEAD.
    """
    # A fresh scope: routing (a Mount) changed root_path, and FastAPI keeps its match in it.
    scope = request.scope
    top = {
        "type": "http",
        "path": scope["path"],
        "root_path": scope.get("app_root_path", scope.get("root_path", "")),
        "headers": scope.get("headers", []),
    }
    allowed = []
    for method in _METHODS:
        scope = {**top, "method": method}
        if any(
            not isinstance(route, Mount) and route.matches(scope)[0] == Match.FULL
            for route in app.router.routes
        ):
            allowed.append(method)
    return ", ".join(allowed or ["GET", "HEAD"])


def problem(
    status: int, detail: object, headers: Mapping[str, str] | None = None, **extra: object
) -> JSONResponse:
    """An RFC 9457 problem detail (the API's error body: `newsletter.web.api.Problem`)."""
    if isinstance(detail, dict):  # {"message": ..., other members}
        extra = {**{k: v for k, v in detail.items() if k != "message"}, **extra}
        detail = detail.get("message", "")
    body = {
        "type": "about:blank",
        "title": http.HTTPStatus(status).phrase,
        "status": status,
        "detail": str(detail),
        **extra,
    }
    return JSONResponse(
        body, status_code=status, headers=headers, media_type="application/problem+json"
    )


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def _add_error_handlers(app: FastAPI, ctx: WebContext) -> None:
    @app.exception_handler(LinkProblem)
    async def unusable_link(request: Request, error: LinkProblem) -> Response:
        # Every page behind an emailed link reads its token with `subscriber_for_token`, which
        # raises this for an expired, tampered, foreign or stale link: one page says why.
        return link_problem(ctx, request, error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        headers = error.headers
        if error.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(app, request)}
        if _wants_json(request):
            return problem(error.status_code, error.detail, headers)
        title = _STATUS_TITLES.get(error.status_code, "Something went wrong")
        detail = error.detail if isinstance(error.detail, str) else ""
        if error.status_code == 404:
            detail = (
                "There is nothing at this address. Check the link, or start from the home page."
            )
        return render_page(
            ctx,
            request,
            "message.html",
            status_code=error.status_code,
            headers=headers,
            title=title,
            message=detail,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        if _wants_json(request):
            problems = [
                {
                    "loc": [part if isinstance(part, int) else str(part) for part in item["loc"]],
                    "msg": str(item.get("msg", "")),
                    "type": str(item.get("type", "")),
                }
                for item in error.errors()
            ]
            return problem(422, "the request does not match the schema", errors=problems)
        return render_page(
            ctx,
            request,
            "message.html",
            status_code=400,
            title="Something is missing in this form",
            message="The form was incomplete or had a value we could not read. "
            "Go back, check it and try again.",
        )

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception) -> Response:
        if _wants_json(request):
            return problem(500, "internal error")
        return render_page(
            ctx,
            request,
            "message.html",
            status_code=500,
            title="Something went wrong on our side",
            message="Please try again in a few minutes.",
        )
