"""Loading and validating config.toml: defaults, paths, errors that name the key, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REPO

from newsletter.config import DEFAULT_RESEARCH_TYPES
from newsletter.config import DEV_SECRET_KEY
from newsletter.config import find_config
from newsletter.config import load_settings
from newsletter.config import settings_from_dict
from newsletter.errors import ConfigError
from newsletter.transport.smtp import SmtpTransport


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path / "config.toml", ""))
    base = tmp_path.resolve()
    assert settings.newsletter.name == "Research Digest"
    assert settings.content.dir == base / "content"
    assert settings.templates.dir == base / "templates"
    assert settings.database.url == f"sqlite:///{base / 'subscribers.db'}"
    assert settings.delivery.transport == "maildir"
    assert settings.delivery.maildir == base / "outbox"
    assert settings.delivery.on_no_match == "skip"
    assert settings.smtp.port == 25
    assert settings.smtp.security == "none"
    assert settings.smtp.password_env == "NEWSLETTER_SMTP_PASSWORD"
    assert settings.secrets.secret_key_env == "NEWSLETTER_SECRET_KEY"
    assert settings.taxonomy.topics is None
    assert settings.taxonomy.research_types == DEFAULT_RESEARCH_TYPES
    assert settings.base_dir == base


def test_base_url_loses_its_trailing_slash(tmp_path: Path) -> None:
    data = {"newsletter": {"base_url": "https://news.example.org/"}}
    settings = settings_from_dict(data, tmp_path)
    assert settings.newsletter.base_url == "https://news.example.org"


def test_relative_paths_resolve_against_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path / "site" / "config.toml",
        '[content]\ndir = "../shared/content"\n'
        '[delivery]\nmaildir = "mail/outbox"\n'
        '[database]\nurl = "sqlite:///data/subscribers.db"\n',
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(path)
    base = tmp_path.resolve()
    assert settings.content.dir == base / "shared" / "content"
    assert settings.delivery.maildir == base / "site" / "mail" / "outbox"
    assert settings.database.url == f"sqlite:///{base / 'site' / 'data' / 'subscribers.db'}"


def test_absolute_paths_stay_absolute(tmp_path: Path) -> None:
    content = tmp_path / "somewhere" / "content"
    database = tmp_path / "db" / "subscribers.db"
    path = write(
        tmp_path / "conf" / "config.toml",
        f'[content]\ndir = "{content}"\n[database]\nurl = "sqlite:///{database}"\n',
    )
    settings = load_settings(path)
    assert settings.content.dir == content
    assert settings.database.url == f"sqlite:///{database}"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///:memory:",
        "sqlite://",
        "postgresql+psycopg://digest@db.example.org/newsletter",
    ],
)
def test_database_urls_without_a_relative_file_are_untouched(tmp_path: Path, url: str) -> None:
    settings = settings_from_dict({"database": {"url": url}}, tmp_path)
    assert settings.database.url == url


def test_sqlite_url_with_a_driver_resolves_too(tmp_path: Path) -> None:
    data = {"database": {"url": "sqlite+pysqlite:///subscribers.db"}}
    settings = settings_from_dict(data, tmp_path)
    assert settings.database.url == f"sqlite+pysqlite:///{tmp_path.resolve() / 'subscribers.db'}"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('colour = "blue"\n', "'colour'"),
        ('[delivery]\ntransprt = "smtp"\n', "'delivery.transprt'"),
        ('[smtp]\nhost = "mail"\nprot = 25\n', "'smtp.prot'"),
        ('[deliveries]\ntransport = "smtp"\n', "'deliveries'"),
    ],
)
def test_unknown_key_is_an_error_naming_it(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError, match="unknown key") as caught:
        load_settings(path)
    assert key in str(caught.value)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[delivery]\ntransport = "pigeon"\n', "delivery.transport"),
        ('[delivery]\non_no_match = "sometimes"\n', "delivery.on_no_match"),
        ('[smtp]\nport = "x"\n', "smtp.port"),
        ("[smtp]\nport = 70000\n", "smtp.port"),
        ('[smtp]\nsecurity = "tls"\n', "smtp.security"),
        ("[newsletter]\nname = 3\n", "newsletter.name"),
        ('[taxonomy]\ntopics = "Empathy"\n', "taxonomy.topics"),
        ('[newsletter]\nfrom_email = "digest"\n', "newsletter.from_email"),
        ('[newsletter]\nreply_to = "not an address"\n', "newsletter.reply_to"),
        ('[newsletter]\nbase_url = "news.example.org"\n', "newsletter.base_url"),
        ('[newsletter]\nbase_url = "ftp://news.example.org"\n', "newsletter.base_url"),
        ('[newsletter]\nbase_url = "https://x.org/\\r\\nX: y"\n', "newsletter.base_url"),
        ('[newsletter]\nfrom_name = "Digest\\nBcc: x@evil.example"\n', "newsletter.from_name"),
        ('[delivery]\nenvelope_from = "bounces"\n', "delivery.envelope_from"),
    ],
)
def test_wrong_type_or_value_is_an_error_naming_the_key(
    tmp_path: Path, text: str, key: str
) -> None:
    path = write(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert f"{key}:" in str(caught.value)


def test_every_invalid_key_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", '[delivery]\ntransport = "pigeon"\n[smtp]\nport = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "delivery.transport" in str(caught.value)
    assert "smtp.port" in str(caught.value)


def test_bad_toml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "digest.toml", '[newsletter]\nname = "Digest\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert "digest.toml" in str(caught.value)
    assert "line 2" in str(caught.value)


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes('[newsletter]\nname = "Digest é"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"config\.toml"):
        load_settings(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="not found") as caught:
        load_settings(path)
    assert str(path) in str(caught.value)


def test_find_config_prefers_the_explicit_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_CONFIG", str(tmp_path / "from-env.toml"))
    assert find_config(tmp_path / "explicit.toml") == tmp_path / "explicit.toml"


def test_find_config_then_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSLETTER_CONFIG", str(tmp_path / "from-env.toml"))
    assert find_config() == tmp_path / "from-env.toml"


def test_find_config_then_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_config() == Path("config.toml")
    write(tmp_path / "config.toml", '[newsletter]\nname = "Here"\n')
    settings = load_settings()
    assert settings.newsletter.name == "Here"
    assert settings.content.dir == tmp_path.resolve() / "content"


def test_load_settings_reads_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "conf" / "digest.toml", '[newsletter]\nname = "From env"\n')
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "config.toml", '[newsletter]\nname = "Local"\n')
    monkeypatch.setenv("NEWSLETTER_CONFIG", str(path))
    assert load_settings().newsletter.name == "From env"


def test_secret_key_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_dict({"secrets": {"secret_key_env": "DIGEST_KEY"}}, tmp_path)
    monkeypatch.setenv("DIGEST_KEY", "s3cret")
    assert settings.secret_key() == "s3cret"


def test_secret_key_falls_back_to_the_dev_key_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEWSLETTER_SECRET_KEY")
    settings = settings_from_dict({}, tmp_path)
    with pytest.warns(UserWarning, match=r"NEWSLETTER_SECRET_KEY is not set"):
        key = settings.secret_key()
    assert key == DEV_SECRET_KEY


def test_smtp_password_from_the_variable_named_in_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_from_dict({"smtp": {"password_env": "DIGEST_SMTP_PW"}}, tmp_path)
    assert SmtpTransport.from_settings(settings).password == ""
    monkeypatch.setenv("DIGEST_SMTP_PW", "hunter2")
    monkeypatch.setenv("NEWSLETTER_SMTP_PASSWORD", "not this one")
    assert SmtpTransport.from_settings(settings).password == "hunter2"


def test_list_specs_include_the_default_list(tmp_path: Path) -> None:
    settings = settings_from_dict({"newsletter": {"name": "Digest"}}, tmp_path)
    assert [(s.slug, s.name) for s in settings.list_specs()] == [("digest", "Digest")]


def test_list_specs_add_the_default_list_before_configured_ones(tmp_path: Path) -> None:
    data = {"lists": [{"slug": "events", "name": "Events", "public": False}]}
    specs = settings_from_dict(data, tmp_path).list_specs()
    assert [s.slug for s in specs] == ["digest", "events"]
    assert specs[1].public is False


def test_list_specs_do_not_repeat_a_configured_default_list(tmp_path: Path) -> None:
    data = {
        "delivery": {"default_list": "monthly"},
        "lists": [{"slug": "events", "name": "Events"}, {"slug": "monthly", "name": "Monthly"}],
    }
    specs = settings_from_dict(data, tmp_path).list_specs()
    assert [s.slug for s in specs] == ["events", "monthly"]


def test_lists_from_toml_array_of_tables(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.toml",
        '[[lists]]\nslug = "events"\nname = "Events"\n[[lists]]\nslug = "x"\nnme = "X"\n',
    )
    with pytest.raises(ConfigError, match=r"unknown key 'lists\.1\.nme'"):
        load_settings(path)


def test_the_repository_config_loads() -> None:
    settings = load_settings(REPO / "config.toml")
    assert settings.content.dir == REPO / "content"
    assert settings.content.dir.is_dir()
    assert settings.delivery.transport == "maildir"
    assert settings.delivery.maildir == REPO / "outbox"
    assert settings.database.url == f"sqlite:///{REPO / 'subscribers.db'}"
    assert settings.newsletter.postal_address


def test_dkim_key_files_resolve_against_the_config_folder(tmp_path: Path) -> None:
    data = {
        "dkim": {
            "key_file": "keys/one.pem",
            "keys": [],
        }
    }
    assert settings_from_dict(data, tmp_path).dkim.key_file == tmp_path / "keys/one.pem"
    data = {"dkim": {"keys": [{"selector": "a", "key_file": "keys/a.pem"}]}}
    assert settings_from_dict(data, tmp_path).dkim.keys[0].key_file == tmp_path / "keys/a.pem"
