"""`newsletter serve` as a user runs it: a real uvicorn process answering on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

from click.testing import CliRunner
from conftest import write_config

from newsletter.cli import main
from newsletter.errors import ConfigError


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_runs_the_web_app_of_the_given_config(tmp_path) -> None:
    config = write_config(tmp_path, newsletter={"name": "Serve Test Digest"})
    assert CliRunner().invoke(main, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    port = free_port()
    command = [sys.executable, "-m", "newsletter", "--config", str(config), "serve"]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd="/",  # the config is found through --config, not the working folder
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        page = ""
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/subscribe", timeout=2) as r:
                    page = r.read().decode("utf-8")
                break
            except OSError:
                time.sleep(0.2)
        assert "Serve Test Digest" in page, server.stdout.read1().decode() if server.stdout else ""
    finally:
        server.terminate()
        server.wait(10)
        said = server.stdout.read().decode() if server.stdout is not None else ""
        if server.stdout is not None:
            server.stdout.close()
    # This config builds the archive for "/", which serve's /archive/ would show unstyled.
    assert 'built for [archive] base_path = "/"; set base_path = "/archive/"' in said


def test_serve_refuses_an_unmigrated_database(tmp_path) -> None:
    config = write_config(tmp_path)
    result = CliRunner().invoke(main, ["--config", str(config), "serve", "--port", "1"])
    assert result.exit_code != 0
    assert "newsletter db upgrade" in result.output


# --- serve --workers N (issue 16: the web app during a send) ---------------------------------


def test_rate_limits_are_shared_out_among_workers() -> None:
    from newsletter.config import WebSection

    web = WebSection(subscribe_per_ip_per_hour=20, subscribe_per_address_per_hour=3)
    assert web.limits_per_process(1) == (20, 3)
    assert web.limits_per_process(2) == (10, 1)
    assert web.limits_per_process(3) == (6, 1)
    try:
        web.limits_per_process(4)
    except ConfigError as error:
        assert "[web] subscribe_per_address_per_hour = 3" in str(error)
        assert "--workers 3 or fewer" in str(error)
    else:
        raise AssertionError("4 processes shared out a limit of 3")


def test_serve_refuses_more_workers_than_a_limit_allows(tmp_path) -> None:
    config = write_config(tmp_path)
    assert CliRunner().invoke(main, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    result = CliRunner().invoke(
        main, ["--config", str(config), "serve", "--port", "1", "--workers", "4"]
    )
    assert result.exit_code == 1
    assert "subscribe_per_address_per_hour = 3 cannot be shared out among 4" in result.output


def test_the_cli_and_the_app_name_the_same_workers_variable() -> None:
    from newsletter.cli import web_commands
    from newsletter.web import WORKERS_ENV

    assert web_commands.WORKERS_ENV == WORKERS_ENV


def test_two_workers_serve_and_together_keep_the_subscribe_limit(tmp_path) -> None:
    # Two processes, each allowing 1 of the 2 subscribe requests an IP may make an hour: of
    # five requests, together they allow at most the configured 2 (each process counting 2
    # alone would let up to 4 through).
    import httpx2 as httpx

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = write_config(
        tmp_path,
        newsletter={"base_url": base},  # http: the session cookie is not marked Secure
        web={"subscribe_per_ip_per_hour": 2, "subscribe_per_address_per_hour": 2},
    )
    assert CliRunner().invoke(main, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    command = [sys.executable, "-m", "newsletter", "--config", str(config), "serve"]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "2"],
        cwd="/",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        statuses: list[int] = []
        while time.monotonic() < deadline and server.poll() is None:
            try:
                # A new connection for each request: the kernel hands them to either process.
                fresh = httpx.Limits(max_keepalive_connections=0)
                with httpx.Client(base_url=base, timeout=10, limits=fresh) as client:
                    page = client.get("/subscribe")
                    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                    for n in range(5):
                        answer = client.post(
                            "/subscribe", data={"email": f"w{n}@example.org", "csrf_token": token}
                        )
                        statuses.append(answer.status_code)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        output = "" if server.poll() is None else server.stdout.read().decode()  # type: ignore[union-attr]
        assert len(statuses) == 5, output
        assert 1 <= statuses.count(200) <= 2 and statuses.count(429) >= 3, statuses
        assert set(statuses) <= {200, 429}, statuses
    finally:
        server.terminate()
        server.wait(30)
        if server.stdout is not None:
            server.stdout.close()
