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
        if server.stdout is not None:
            server.stdout.close()


def test_serve_refuses_an_unmigrated_database(tmp_path) -> None:
    config = write_config(tmp_path)
    result = CliRunner().invoke(main, ["--config", str(config), "serve", "--port", "1"])
    assert result.exit_code != 0
    assert "newsletter db upgrade" in result.output
