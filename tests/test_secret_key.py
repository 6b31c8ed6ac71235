"""The signing key rule (issue 11, item 1): what faces strangers never runs on a public key."""

from __future__ import annotations

import mailbox
import os
import re
import shutil
import stat
from pathlib import Path

import pytest
from conftest import REPO
from conftest import write_config

from newsletter.cli import main
from newsletter.config import DEV_SECRET_KEY
from newsletter.config import MAKE_SECRET_KEY
from newsletter.config import PLACEHOLDER_SECRET_KEY
from newsletter.config import Settings
from newsletter.config import settings_from_dict
from newsletter.errors import ConfigError
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer
from newsletter.web import create_app

ENV = "NEWSLETTER_SECRET_KEY"
REAL_KEY = "k" * 32


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV)


def invoke(runner, config: Path, *args: str):
    return runner.invoke(main, ["--config", str(config), *args])


def one_line_with_the_recipe(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert MAKE_SECRET_KEY in lines[0], output
    return lines[0]


@pytest.mark.usefixtures("no_key")
def test_no_key_is_refused_with_the_recipe_for_one(settings: Settings) -> None:
    with pytest.raises(ConfigError, match=rf"\${ENV} is not set") as refused:
        settings.require_secret_key()
    assert MAKE_SECRET_KEY in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (DEV_SECRET_KEY, "published example key"),
        (PLACEHOLDER_SECRET_KEY, "published example key"),
        ("test-secret-key", "shorter than 32 bytes"),
        ("k" * 31, "shorter than 32 bytes"),
    ],
)
def test_public_and_short_keys_are_refused(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, value: str, why: str
) -> None:
    monkeypatch.setenv(ENV, value)
    with pytest.raises(ConfigError, match=why):
        settings.require_secret_key()


def test_a_key_of_32_bytes_is_accepted(settings: Settings, monkeypatch) -> None:
    monkeypatch.setenv(ENV, REAL_KEY)
    assert settings.require_secret_key() == REAL_KEY


def test_the_refused_placeholder_is_the_one_in_the_deploy_example() -> None:
    example = (REPO / "deploy" / "newsletter.env.example").read_text(encoding="utf-8")
    [value] = re.findall(rf"^{ENV}=(.*)$", example, re.M)
    assert value == PLACEHOLDER_SECRET_KEY


@pytest.mark.usefixtures("no_key")
def test_the_key_file_beside_the_database(settings: Settings) -> None:
    path = settings.create_secret_key_file()
    assert path == Path(settings.database.url.removeprefix("sqlite:///") + ".secret-key")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = settings.require_secret_key()
    assert len(key) >= 32 and key == settings.secret_key()
    with pytest.raises(FileExistsError):  # never over an old key: old links keep working
        settings.create_secret_key_file()
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        settings.require_secret_key()


@pytest.mark.usefixtures("no_key")
def test_the_web_app_refuses_to_start_without_a_real_key(settings: Settings, engine) -> None:
    with pytest.raises(ConfigError, match="is not set"):
        create_app(settings, engine=engine)


@pytest.mark.usefixtures("no_key")
@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--port", "1"],
        ["scheduler"],
        ["worker", "--once"],
        ["send", "2025-01", "--yes"],
    ],
)
def test_the_serving_and_sending_commands_refuse_to_start(runner, tmp_path, command) -> None:
    config = write_config(tmp_path, delivery={"transport": "smtp"})
    assert invoke(runner, config, "db", "upgrade").exit_code == 0
    result = invoke(runner, config, *command)
    assert result.exit_code == 1
    assert "is not set" in one_line_with_the_recipe(result.output)


@pytest.mark.parametrize("command", [["serve", "--port", "1"], ["scheduler"], ["worker"]])
def test_the_placeholder_is_refused_by_the_commands(runner, tmp_path, monkeypatch, command):
    monkeypatch.setenv(ENV, PLACEHOLDER_SECRET_KEY)
    config = write_config(tmp_path)
    result = invoke(runner, config, *command)
    assert result.exit_code == 1
    assert "published example key" in one_line_with_the_recipe(result.output)


@pytest.mark.usefixtures("no_key")
def test_the_demo_makes_a_key_once_uses_it_and_says_so(runner, tmp_path) -> None:
    for name in ("content", "demo"):
        shutil.copytree(REPO / name, tmp_path / name)
    shutil.copy(REPO / "config.toml", tmp_path / "config.toml")
    config = tmp_path / "config.toml"
    key_file = tmp_path / "subscribers.db.secret-key"
    first = invoke(runner, config, "demo")
    assert first.exit_code == 0, first.output
    assert f"generated a signing key in {key_file}" in first.output.replace("\n", "")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text(encoding="utf-8").strip()
    assert len(key) >= 32
    # The demo's links are signed with that key (not the development key) ...
    [message] = list(mailbox.Maildir(tmp_path / "outbox", create=False))[:1]
    token = re.search(r"/u/([\w.-]+)", str(message["List-Unsubscribe"])).group(1)
    Signer(key).read(UNSUBSCRIBE, token)
    # ... and the next run, and `serve`, use the same key.
    again = invoke(runner, config, "demo")
    assert again.exit_code == 0, again.output
    assert f"signing key: {key_file}" in again.output.replace("\n", "")
    assert key_file.read_text(encoding="utf-8").strip() == key
    settings = settings_from_dict({"database": {"url": "sqlite:///subscribers.db"}}, tmp_path)
    assert settings.require_secret_key() == key
    assert os.environ.get(ENV) is None
