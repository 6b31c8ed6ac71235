"""The web app factory: `create_app(settings)` returns a FastAPI app.

Subscribers: subscribe (double opt-in), confirm, preference center, one-click unsubscribe.
Admin: issues, preview, test send, real send with progress, subscribers. A JSON API under
`/api/`. Pages are Jinja2 templates in `templates/web/` (the user's templates folder first, then
the built-ins, as for emails); no flow needs JavaScript.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import os
import re
from collections.abc import AsyncIterator
from collections.abc import Callable
from pathlib import Path

import jinja2
from fastapi import FastAPI
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from fastapi.responses import JSONResponse
from fastapi.responses import Response
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from newsletter.config import Settings
from newsletter.content.taxonomy import Taxonomy
from newsletter.content.taxonomy import taxonomy_from_settings
from newsletter.render.environment import default_templates_dir
from newsletter.render.environment import make_environment
from newsletter.store.engine import make_engine
from newsletter.store.engine import require_schema
from newsletter.store.models import utcnow
from newsletter.tokens import Signer
from newsletter.transport import make_transport
from newsletter.transport.base import Transport
from newsletter.web.mail import Mailer
from newsletter.web.pages import render_page
from newsletter.web.security import SECURITY_HEADERS
from newsletter.web.security import Csrf
from newsletter.web.security import SlidingWindow
from newsletter.web.security import derive_key
from newsletter.web.sending import Sending

HOUR = 3600.0
_STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(css|js|png|svg|ico)$")


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
    clock: Callable[[], dt.datetime] = utcnow  # sessions and login waits (tests may stop it)

    @property
    def https(self) -> bool:
        return self.settings.newsletter.base_url.startswith("https://")

    def admin_password_hash(self) -> str:
        web = self.settings.web
        return os.environ.get(web.admin_password_hash_env, "") or web.admin_password_hash

    def api_token(self) -> str:
        return os.environ.get(self.settings.web.api_token_env, "")

    def public_lists(self) -> list:
        return [spec for spec in self.settings.list_specs() if spec.public]


def get_ctx(request: Request) -> WebContext:
    """The app's context (a FastAPI dependency)."""
    return request.app.state.ctx


def _limits(settings: Settings) -> Limits:
    web = settings.web
    return Limits(
        subscribe_ip=SlidingWindow(web.subscribe_per_ip_per_hour, HOUR),
        subscribe_address=SlidingWindow(web.subscribe_per_address_per_hour, HOUR),
        link_ip=SlidingWindow(web.subscribe_per_ip_per_hour, HOUR),
    )


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    # Shutdown (SIGTERM to uvicorn): let background sends drain before the process ends.
    await asyncio.to_thread(app.state.ctx.sending.shutdown)


def create_app(
    settings: Settings,
    *,
    transport_factory: Callable[[], Transport] | None = None,
    engine: Engine | None = None,
) -> FastAPI:
    """The web app for `settings`. The database must be migrated (`newsletter db upgrade`)."""
    from newsletter.web import admin
    from newsletter.web import admin_schedule
    from newsletter.web import admin_subscribers
    from newsletter.web import api
    from newsletter.web import preferences
    from newsletter.web import public
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
        limits=_limits(settings),
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

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    _add_error_handlers(app, ctx)
    for module in (public, preferences, unsubscribe, admin, admin_subscribers, admin_schedule):
        app.include_router(module.router, include_in_schema=False)
    app.include_router(api.router, prefix="/api")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if _STATIC_NAME.match(name):
            for folder in (settings.templates.dir, default_templates_dir()):
                if folder is None:
                    continue
                path = Path(folder) / "web" / "static" / name
                if path.is_file():
                    return FileResponse(path, headers={"Cache-Control": "public, max-age=3600"})
        raise StarletteHTTPException(404)

    archive_dir = getattr(getattr(settings, "archive", None), "dir", None)
    if archive_dir is not None and Path(archive_dir).is_dir():
        app.mount("/archive", StaticFiles(directory=archive_dir, html=True), name="archive")
        ctx.archive_mounted = True
    return app


_STATUS_TITLES = {
    400: "This request could not be handled",
    403: "Not allowed",
    404: "Page not found",
    405: "Not allowed here",
    413: "Too large",
    429: "Too many requests",
}


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path == "/api"


def _add_error_handlers(app: FastAPI, ctx: WebContext) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if _wants_json(request):
            return JSONResponse(
                {"detail": error.detail}, status_code=error.status_code, headers=error.headers
            )
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
            headers=error.headers,
            title=title,
            message=detail,
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> Response:
        if _wants_json(request):
            problems = [
                {"loc": list(item.get("loc", ())), "msg": str(item.get("msg", ""))}
                for item in error.errors()
            ]
            return JSONResponse({"detail": problems}, status_code=422)
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
            return JSONResponse({"detail": "internal error"}, status_code=500)
        return render_page(
            ctx,
            request,
            "message.html",
            status_code=500,
            title="Something went wrong on our side",
            message="Please try again in a few minutes.",
        )
