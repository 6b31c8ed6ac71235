"""Load and validate `config.toml` into one `Settings` object that is passed explicitly.

The file is found by `--config PATH`, else `$NEWSLETTER_CONFIG`, else `./config.toml`.
Relative paths inside it resolve against the folder that holds it. Unknown keys and wrong
types are errors naming the key. Secrets never live in the file: it names environment
variables that hold them.
"""

from __future__ import annotations

import os
import re
import tomllib
import urllib.parse
import warnings
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic import PrivateAttr
from pydantic import ValidationError
from pydantic import model_validator

from newsletter.config_sections import DEFAULT_RESEARCH_TYPES as DEFAULT_RESEARCH_TYPES
from newsletter.config_sections import ArchiveSection as ArchiveSection
from newsletter.config_sections import BouncesSection as BouncesSection
from newsletter.config_sections import ContentSection as ContentSection
from newsletter.config_sections import DatabaseSection as DatabaseSection
from newsletter.config_sections import DeliverySection as DeliverySection
from newsletter.config_sections import DkimKeySection as DkimKeySection
from newsletter.config_sections import DkimSection as DkimSection
from newsletter.config_sections import ListSpec as ListSpec
from newsletter.config_sections import NewsletterSection as NewsletterSection
from newsletter.config_sections import ScheduleSection as ScheduleSection
from newsletter.config_sections import SecretsSection as SecretsSection
from newsletter.config_sections import SmtpSection as SmtpSection
from newsletter.config_sections import SmtpServer as SmtpServer
from newsletter.config_sections import TaxonomySection as TaxonomySection
from newsletter.config_sections import TemplatesSection as TemplatesSection
from newsletter.config_sections import TrackingSection as TrackingSection
from newsletter.config_sections import WebSection as WebSection
from newsletter.config_sections import _Section
from newsletter.config_sections import duration_seconds as duration_seconds
from newsletter.config_sections import schedule_day as schedule_day
from newsletter.errors import ConfigError

DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"
# The placeholder of deploy/newsletter.env.example (a test keeps the two the same).
PLACEHOLDER_SECRET_KEY = "change-me-to-a-long-random-string"
MIN_SECRET_KEY_BYTES = 32
MAKE_SECRET_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
SECRET_KEY_FILE_SUFFIX = ".secret-key"


class Settings(_Section):
    """The whole configuration. Paths are absolute once loaded through `load_settings`."""

    newsletter: NewsletterSection = Field(default_factory=NewsletterSection)
    content: ContentSection = Field(default_factory=ContentSection)
    templates: TemplatesSection = Field(default_factory=TemplatesSection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    delivery: DeliverySection = Field(default_factory=DeliverySection)
    smtp: SmtpSection = Field(default_factory=SmtpSection)
    smtp_servers: list[SmtpServer] = Field(default_factory=list)
    secrets: SecretsSection = Field(default_factory=SecretsSection)
    taxonomy: TaxonomySection = Field(default_factory=TaxonomySection)
    archive: ArchiveSection = Field(default_factory=ArchiveSection)
    web: WebSection = Field(default_factory=WebSection)
    schedule: ScheduleSection = Field(default_factory=ScheduleSection)
    dkim: DkimSection = Field(default_factory=DkimSection)
    bounces: BouncesSection = Field(default_factory=BouncesSection)
    tracking: TrackingSection = Field(default_factory=TrackingSection)
    lists: list[ListSpec] = Field(default_factory=list)
    # The folder holding the config file, and the file (not keys of the file itself).
    _base_dir: Path = PrivateAttr(default=Path("."))
    _config_path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _processes_without_rate_limits(self) -> Settings:
        # Each process would allow the whole rate: the limits are kept per process.
        delivery = self.delivery
        limited = delivery.rate_per_second or delivery.rate_per_hour or delivery.rate_per_day
        if self.smtp.processes > 1 and (
            limited
            or any(
                s.rate_per_second or s.rate_per_hour or s.rate_per_day for s in self.smtp_servers
            )
        ):
            raise ValueError(
                "smtp.processes: more than one sending process cannot keep rate limits "
                "(each would allow the whole rate); set processes = 1 or remove the rate_per_* "
                "settings"
            )
        return self

    @property
    def config_path(self) -> Path | None:
        """The absolute path of the file these settings came from (None if built in code)."""
        return self._config_path

    @property
    def base_dir(self) -> Path:
        """The folder that relative paths in the configuration resolve against."""
        return self._base_dir

    def secret_key_file(self) -> Path | None:
        """The key file beside a SQLite database file (`<database>.secret-key`), else None.

        `newsletter demo` writes a generated key there; every command reads it when the
        environment variable is unset, so `make demo` then `make serve` share one real key.
        """
        match = _SQLITE_FILE_URL.match(self.database.url)
        if not match or match.group(2).startswith(":memory:"):
            return None
        database = Path(urllib.parse.unquote(match.group(2).split("?", 1)[0]))
        return database.with_name(database.name + SECRET_KEY_FILE_SUFFIX)

    def _configured_secret_key(self) -> tuple[str, str]:
        """(key, where it came from): the environment variable, else the key file; ('', '')."""
        env = self.secrets.secret_key_env
        value = os.environ.get(env, "")
        if value:
            return value, f"${env}"
        path = self.secret_key_file()
        if path is not None and path.is_file():
            return path.read_text(encoding="utf-8").strip(), str(path)
        return "", ""

    def secret_key(self) -> str:
        """The signing key (see `require_secret_key`); the development key, with a warning,
        when none is configured. For commands that mail nobody and serve nothing."""
        value, _ = self._configured_secret_key()
        if value:
            return value
        warnings.warn(
            f"${self.secrets.secret_key_env} is not set: using the insecure development key. "
            "Set it before sending real mail.",
            stacklevel=2,
        )
        return DEV_SECRET_KEY

    def mail_signing_key(self) -> str:
        """The key for links in mail this site sends: over SMTP (real readers) it must be a
        real one (`require_secret_key`); into a Maildir or memory the development key will do."""
        if self.delivery.transport == "smtp":
            return self.require_secret_key()
        return self.secret_key()

    def require_secret_key(self) -> str:
        """The signing key, or a one-line ConfigError saying how to make one.

        The rule for everything that faces strangers (`serve`, `scheduler`, `worker`, `send`
        over SMTP, the web app): the development key and the placeholder of
        deploy/newsletter.env.example are public, so links and session cookies signed with
        them can be forged; a key shorter than 32 bytes is refused too.
        """
        env = self.secrets.secret_key_env
        value, source = self._configured_secret_key()
        make = f"make one with {MAKE_SECRET_KEY} and put it in ${env}"
        if not value:
            raise ConfigError(f"${env} is not set: a real signing key is needed; {make}")
        if value in (DEV_SECRET_KEY, PLACEHOLDER_SECRET_KEY):
            raise ConfigError(f"{source} holds a published example key, not a secret; {make}")
        if len(value.encode("utf-8")) < MIN_SECRET_KEY_BYTES:
            raise ConfigError(
                f"{source} is shorter than {MIN_SECRET_KEY_BYTES} bytes: too easy to guess; {make}"
            )
        if source != f"${env}" and Path(source).stat().st_mode & 0o077:
            raise ConfigError(f"{source} can be read by other users: chmod 600 {source}")
        return value

    def create_secret_key_file(self) -> Path:
        """Write a new random key to `secret_key_file()` (mode 0600), never over an old one."""
        path = self.secret_key_file()
        if path is None:
            raise ConfigError(
                f"[database] url is not a SQLite file, so there is no place beside it for a key: "
                f"make one with {MAKE_SECRET_KEY} and put it in ${self.secrets.secret_key_env}"
            )
        import secrets  # here: hashlib and hmac are a few ms of every command's start

        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(secrets.token_urlsafe(32) + "\n")
        return path

    def archive_url(self) -> str:
        """The absolute URL of the web archive, ending in '/'.

        `[archive] site_url`, else `[newsletter] base_url` + `[archive] base_path` (where
        `newsletter serve` publishes it). Digests link to it and the archive's feeds, sitemap
        and canonical links are built on it: one computation for both.
        """
        site_url = self.archive.site_url.strip()
        if not site_url:
            site_url = self.newsletter.base_url.rstrip("/") + normalize_base_path(
                self.archive.base_path
            )
        return site_url if site_url.endswith("/") else site_url + "/"

    def sender_domain(self) -> str:
        """The domain of the From address, used in Message-ID and List-Id."""
        return self.newsletter.from_email.rpartition("@")[2] or "localhost"

    def list_specs(self) -> list[ListSpec]:
        """The configured lists; the default list always exists."""
        specs = list(self.lists)
        if not any(s.slug == self.delivery.default_list for s in specs):
            specs.insert(0, ListSpec(slug=self.delivery.default_list, name=self.newsletter.name))
        return specs


def normalize_base_path(value: str) -> str:
    """'archive', '/archive', '/archive/' -> '/archive/'; '' or '/' -> '/'."""
    parts = [part for part in value.strip().split("/") if part]
    return "/" + "".join(part + "/" for part in parts)


def _format_validation_error(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key '{key}'")
        else:
            lines.append(f"{source}: {key}: {item['msg']}")
    return "\n".join(lines)


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    def absolute(path: Path) -> Path:
        return path if path.is_absolute() else (base / path).resolve()

    settings._base_dir = base
    settings.content.dir = absolute(settings.content.dir)
    if settings.templates.dir is not None:
        settings.templates.dir = absolute(settings.templates.dir)
    settings.delivery.maildir = absolute(settings.delivery.maildir)
    settings.archive.dir = absolute(settings.archive.dir)
    if settings.archive.templates_dir is not None:
        settings.archive.templates_dir = absolute(settings.archive.templates_dir)
    for server in (settings.smtp, *settings.smtp_servers):
        if server.ca_file is not None:
            server.ca_file = absolute(server.ca_file)
    if settings.dkim.key_file is not None:
        settings.dkim.key_file = absolute(settings.dkim.key_file)
    for key in settings.dkim.keys:
        key.key_file = absolute(key.key_file)
    settings.database.url = resolve_sqlite_url(settings.database.url, base)
    return settings


# sqlite:///relative.db, also with a driver (sqlite+pysqlite:///...); four slashes are absolute.
_RELATIVE_SQLITE_URL = re.compile(r"^(sqlite(?:\+\w+)?:///)(?!/)(.+)$")
_SQLITE_FILE_URL = re.compile(r"^(sqlite(?:\+\w+)?:///)(.+)$")


def resolve_sqlite_url(url: str, base: Path) -> str:
    """Make a relative `sqlite:///file.db` URL absolute against `base`."""
    match = _RELATIVE_SQLITE_URL.match(url)
    if match and not match.group(2).startswith(":memory:"):
        return match.group(1) + str((base / match.group(2)).resolve())
    return url


def settings_from_dict(data: dict[str, Any], base_dir: Path, source: str = "<config>") -> Settings:
    """Validate a parsed configuration mapping; relative paths resolve against `base_dir`."""
    try:
        settings = Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(error, source)) from None
    return _resolve_paths(settings, base_dir.resolve())


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The configuration path: explicit, else $NEWSLETTER_CONFIG, else ./config.toml."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("NEWSLETTER_CONFIG")
    if env:
        return Path(env)
    return Path("config.toml")


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate the configuration file (see `find_config`)."""
    config_path = find_config(path)
    try:
        raw = config_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{config_path}: configuration file not found") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{config_path}: {error}") from None
    settings = settings_from_dict(data, config_path.resolve().parent, str(config_path))
    settings._config_path = config_path.resolve()
    return settings
