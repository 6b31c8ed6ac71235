"""`newsletter serve`: the web app under uvicorn."""

from __future__ import annotations

import os

import click

from newsletter.cli.app import App
from newsletter.cli.app import main
from newsletter.cli.app import pass_app
from newsletter.config import normalize_base_path
from newsletter.listen import bind_listener

# The variable the app factory reads (newsletter.web.WORKERS_ENV; the CLI never imports the web
# app, so it is named twice and tests/test_serve_command.py checks that they agree).
WORKERS_ENV = "NEWSLETTER_SERVE_WORKERS"


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--forwarded-allow-ips",
    default="127.0.0.1",
    show_default=True,
    help="Reverse proxies whose X-Forwarded-For/-Proto headers are trusted.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Processes answering requests (one per core); the subscribe rate limits are shared "
    "out among them.",
)
@pass_app
def serve(app: App, host: str, port: int, forwarded_allow_ips: str, workers: int) -> None:
    """Run the web app: subscribe, preferences, unsubscribe, admin and API."""
    import uvicorn

    app.settings.require_secret_key()  # no public key: sessions and links could be forged
    app.db()  # refuse to start on a database that is not migrated, with the usual message
    # Sessions, login throttling and send progress live in the database; the subscribe rate
    # limits in each process's memory: every process enforces its share (refused if none).
    app.settings.web.limits_per_process(workers)
    os.environ[WORKERS_ENV] = str(workers)
    # The app is built by its own factory from the same configuration file: the CLI and the
    # web app are two shells over the same core and never import each other.
    if app.settings.config_path is not None:
        os.environ["NEWSLETTER_CONFIG"] = str(app.settings.config_path)
    listener = bind_listener(host, port)
    click.echo(f"serving {app.settings.newsletter.name} on http://{host}:{port}/")
    click.echo(f"public links in emails point at {app.settings.newsletter.base_url}")
    built_for = normalize_base_path(app.settings.archive.base_path)
    if built_for != "/archive/":
        # The site's links and stylesheets are absolute paths under base_path: served at
        # /archive/, a site built for "/" shows unstyled with broken links.
        click.echo(
            f"note: the archive is served here at /archive/ but is built for [archive] "
            f'base_path = "{built_for}"; set base_path = "/archive/" to browse it here',
            err=True,
        )
    config = uvicorn.Config(
        "newsletter.web:app_from_environment",
        factory=True,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        log_level="info",
        workers=workers,
    )
    with listener:
        if workers == 1:
            uvicorn.Server(config).run(sockets=[listener])
        else:
            from uvicorn.supervisors import Multiprocess

            click.echo(f"{workers} worker processes")
            Multiprocess(config, sockets=[listener]).run()
