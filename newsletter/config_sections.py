"""The sections of `config.toml` as pydantic models (one class per `[section]`), with the
checks of their values; `newsletter.config.Settings` assembles them and loads the file."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from email_validator import EmailNotValidError
from email_validator import validate_email
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import field_validator
from pydantic import model_validator

from newsletter.errors import ConfigError

DEFAULT_RESEARCH_TYPES = [
    "Meta-analysis",
    "Randomized controlled trial",
    "Qualitative study",
    "Naturalistic/practice-based study",
    "Survey/cross-sectional",
    "Review",
]


# Line breaks and other control characters: never allowed where a value reaches a header.
_UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def _address(value: str) -> str:
    """An email address (no DNS look-up, ASCII only, IDN domains in their IDNA form)."""
    try:
        valid = validate_email(value.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise ValueError(f"{value!r} is not a valid email address: {error}") from None
    return valid.ascii_email or valid.normalized


def _header_text(value: str) -> str:
    """Text that ends up in a header (From name, List-Id): no line breaks or controls."""
    if _UNSAFE_TEXT.search(value):
        raise ValueError("must not contain line breaks or control characters")
    return value.strip()


class _Section(BaseModel):
    # Schemas built when settings are first loaded, not at import (a few ms less start-up).
    model_config = ConfigDict(extra="forbid", validate_assignment=True, defer_build=True)


class NewsletterSection(_Section):
    name: str = "Research Digest"
    from_email: str = "digest@example.org"
    from_name: str = ""
    reply_to: str = ""
    base_url: str = "http://127.0.0.1:8000"
    postal_address: str = ""
    admin_email: str = ""
    language: str = "en"

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        value = value.strip()
        url = urllib.parse.urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname or _UNSAFE_TEXT.search(value):
            raise ValueError(
                f"{value!r} is not an absolute http(s) URL (e.g. https://news.example.org)"
            )
        return value.rstrip("/")

    @field_validator("from_email")
    @classmethod
    def _from_address(cls, value: str) -> str:
        return _address(value)

    @field_validator("reply_to", "admin_email")
    @classmethod
    def _optional_address(cls, value: str) -> str:
        return _address(value) if value.strip() else ""

    @field_validator("name", "from_name", "postal_address")
    @classmethod
    def _plain_text(cls, value: str) -> str:
        return _header_text(value)


class ContentSection(_Section):
    dir: Path = Path("content")
    default_author: str = ""  # the byline of a summary without `author:`; '' = no byline

    @field_validator("default_author")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return _header_text(value)


class TemplatesSection(_Section):
    dir: Path | None = Path("templates")


class DatabaseSection(_Section):
    url: str = "sqlite:///subscribers.db"


class DeliverySection(_Section):
    transport: Literal["maildir", "smtp", "memory"] = "maildir"
    maildir: Path = Path("outbox")
    on_no_match: Literal["skip", "full"] = "skip"
    default_list: str = "digest"
    batch_size: int = Field(default=200, ge=1, le=10_000)
    max_attempts: int = Field(default=5, ge=1, le=100)
    retry_base_seconds: float = Field(default=60.0, ge=0)
    lease_seconds: float = Field(default=300.0, gt=0)
    envelope_from: str = ""
    unsubscribe_mailto: str = ""

    @field_validator("envelope_from", "unsubscribe_mailto")
    @classmethod
    def _optional_address(cls, value: str) -> str:
        return _address(value) if value.strip() else ""

    rate_per_second: float = Field(default=0.0, ge=0)
    rate_per_hour: int = Field(default=0, ge=0)
    rate_per_day: int = Field(default=0, ge=0)
    throttle_backoff_seconds: float = Field(default=30.0, ge=0)
    pause_after_errors: int = Field(default=50, ge=0)
    # Real sends over SMTP need https links (RFC 8058 one-click unsubscribe; Gmail and Yahoo
    # bulk-sender rules); this allows http for a staging relay.
    allow_insecure_links: bool = False


class SmtpSection(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "none"
    username: str = ""
    password_env: str = "NEWSLETTER_SMTP_PASSWORD"
    connections: int = Field(default=2, ge=1, le=64)
    # Sending processes of `newsletter send`, each with `connections` connections of its own
    # (one process cannot use a second core: see sending/processes.py).
    processes: int = Field(default=1, ge=1, le=16)
    timeout: float = Field(default=30.0, gt=0)
    ca_file: Path | None = None
    local_hostname: str = ""


class SmtpServer(SmtpSection):
    """One more relay (`[[smtp_servers]]`): its own connections and its own rate limits."""

    rate_per_second: float = Field(default=0.0, ge=0)
    rate_per_hour: int = Field(default=0, ge=0)
    rate_per_day: int = Field(default=0, ge=0)

    @field_validator("processes")
    @classmethod
    def _one_process_setting(cls, value: int) -> int:
        if value != 1:
            raise ValueError("set processes in [smtp]: it counts the processes of the whole send")
        return value


class SecretsSection(_Section):
    secret_key_env: str = "NEWSLETTER_SECRET_KEY"


class TaxonomySection(_Section):
    topics: list[str] | None = None
    research_types: list[str] = Field(default_factory=lambda: list(DEFAULT_RESEARCH_TYPES))


class ArchiveSection(_Section):
    dir: Path = Path("site")
    base_path: str = "/"
    templates_dir: Path | None = None
    page_size: int = Field(default=12, ge=1, le=1000)
    site_url: str = ""  # absolute URL of the site for feeds/sitemap; default base_url + base_path
    # Rebuild the site after every completed send (CLI, web, scheduler, worker); a failing
    # rebuild is logged and reported, and never marks the send failed.
    rebuild_after_send: bool = True


class TrackingSection(_Section):
    """Aggregate click counts (docs/privacy.md): off unless asked for; never per reader."""

    clicks: bool = False


class WebSection(_Section):
    """The web app (`newsletter serve`). Secrets come from the environment variables named here."""

    admin_password_hash: str = ""  # from `newsletter admin hash-password`; the env var wins
    admin_password_hash_env: str = "NEWSLETTER_ADMIN_PASSWORD_HASH"
    api_token_env: str = "NEWSLETTER_API_TOKEN"
    welcome_latest: bool = True  # after confirming, send the latest sent issue cut to their topics
    subscribe_per_ip_per_hour: int = Field(default=20, ge=1)
    subscribe_per_address_per_hour: int = Field(default=3, ge=1)
    # Login attempts (docs/web.md): `login_max_failures` per address (10x for the account),
    # then waits from `login_failure_delay` seconds, doubling, up to the two ceilings.
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_seconds: float = Field(default=900.0, ge=0)
    login_failure_delay: float = Field(default=1.0, ge=0)
    login_account_max_wait: float = Field(default=60.0, ge=0)
    session_max_age: int = Field(default=8 * 3600, ge=60)
    # Download my data / forget me need a fresh emailed link, working this many seconds.
    privacy_link_max_age: int = Field(default=3600, ge=60, le=7 * 24 * 3600)

    def limits_per_process(self, workers: int) -> tuple[int, int]:
        """(per IP, per address) subscribe limits each of `workers` serve processes enforces.

        The counters live in each process's memory, so each process gets its share of the
        configured limit, rounded down: together they never allow more than configured.
        `ConfigError` naming the setting when a limit is below `workers` (no share left).
        """
        shares = []
        for name in ("subscribe_per_ip_per_hour", "subscribe_per_address_per_hour"):
            limit = getattr(self, name)
            if limit < workers:
                raise ConfigError(
                    f"[web] {name} = {limit} cannot be shared out among {workers} processes "
                    f"(each keeps its own count): use --workers {limit} or fewer, or raise it"
                )
            shares.append(limit // workers)
        return shares[0], shares[1]


class DkimKeySection(_Section):
    """One signing key of `[[dkim.keys]]`: the selector it is published under and its file."""

    selector: str
    key_file: Path  # PEM private key (RSA or Ed25519); relative to the config file's folder

    @field_validator("selector")
    @classmethod
    def _selector_given(cls, value: str) -> str:
        if not value.strip():
            raise ValueError(
                "empty: name the selector (the key is at <selector>._domainkey.<domain>)"
            )
        return value.strip()


class DkimSection(_Section):
    """DKIM signing of outgoing mail (`newsletter.message.dkim`).

    One key is `selector` + `key_file`. Several keys (one DKIM-Signature each, e.g. RSA beside
    Ed25519) are `[[dkim.keys]]` tables instead, all under the one `domain`.
    """

    enabled: bool = False
    selector: str = ""
    domain: str = ""  # the d= domain; default: the domain of newsletter.from_email
    key_file: Path | None = None  # PEM private key (RSA or Ed25519)
    keys: list[DkimKeySection] = Field(default_factory=list)

    @field_validator("keys")
    @classmethod
    def _one_selector_each(cls, keys: list[DkimKeySection]) -> list[DkimKeySection]:
        seen: dict[str, int] = {}
        for index, key in enumerate(keys):
            first = seen.setdefault(key.selector.lower(), index)
            if first != index:
                raise ValueError(
                    f"keys {first} and {index} both have selector {key.selector!r}: each key "
                    "needs its own (one DNS record each)"
                )
        return keys

    @model_validator(mode="after")
    def _one_list_of_keys(self) -> DkimSection:
        if self.keys and (self.selector.strip() or self.key_file is not None):
            raise ValueError(
                "selector/key_file and [[dkim.keys]] both name keys: list every key in "
                "[[dkim.keys]] (selector and key_file in each), or use selector/key_file alone"
            )
        return self


class BouncesSection(_Section):
    """Envelope sender (VERP, `message.envelope`) and the bounce policy (`store.bounces`)."""

    verp: bool = False
    verp_local: str = "bounces"
    verp_domain: str = ""  # default: the domain of delivery.envelope_from, else of from_email
    hard_threshold: int = Field(default=1, ge=1)
    soft_threshold: int = Field(default=3, ge=1)
    soft_window_days: int = Field(default=30, ge=1)


_ORDINALS = {"1st": "1st", "first": "1st", "2nd": "2nd", "second": "2nd", "3rd": "3rd"}
_ORDINALS |= {"third": "3rd", "4th": "4th", "fourth": "4th", "last": "last"}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DURATION_RE = re.compile(r"(\d+)\s*([smhd])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def schedule_day(text: str) -> str:
    """'1st Tuesday' -> '1st tue', '15' -> '15', 'last' -> 'last' (APScheduler's cron `day`)."""
    words = text.lower().split()
    if words == ["last"] or (len(words) == 1 and words[0].isdigit() and 1 <= int(words[0]) <= 28):
        return "last" if words[0] == "last" else str(int(words[0]))
    if len(words) == 2 and words[0] in _ORDINALS and len(words[1]) >= 3:
        for name in _WEEKDAYS:
            if name.startswith(words[1]):
                return f"{_ORDINALS[words[0]]} {name[:3]}"
    # Days 29-31 and a 5th weekday do not exist every month: a monthly send would skip months.
    raise ValueError(
        f"{text!r}: use a weekday of the month ('1st tue' … '4th sun', 'last fri'), "
        "a day of the month from 1 to 28, or 'last'"
    )


def duration_seconds(text: str) -> int:
    """'30m' -> 1800, '6h' -> 21600, '1d' -> 86400, '1h30m' -> 5400 (units s, m, h, d)."""
    compact = text.strip().lower()
    parts = _DURATION_RE.findall(compact)
    total = sum(int(number) * _DURATION_UNITS[unit] for number, unit in parts)
    if not parts or _DURATION_RE.sub("", compact).strip() or total <= 0:
        raise ValueError(f"{text!r}: expected a duration such as '30m', '6h' or '1d'")
    return total


class ScheduleSection(_Section):
    """The monthly send run by `newsletter scheduler` (see docs/scheduler.md)."""

    day: str = "1st tue"  # '1st tue' … '4th sun', 'last fri', a day 1-28, or 'last'
    time: str = "09:00"  # 24-hour clock, local time in `timezone`
    timezone: str = "UTC"  # any IANA zone, e.g. "America/Toronto"; DST is handled
    misfire_grace: str = "6h"  # a run missed (scheduler down) by less than this still goes out
    on_missing: Literal["skip", "alert"] = "alert"  # content missing or failing its checks
    mode: Literal["send", "plan"] = "send"  # "plan": only plan; `newsletter worker` sends

    @field_validator("day")
    @classmethod
    def _day(cls, value: str) -> str:
        return schedule_day(value)

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        match = re.fullmatch(r"\s*([01]?\d|2[0-3]):([0-5]\d)\s*", value)
        if not match:
            raise ValueError(f"{value!r}: expected a 24-hour time such as '09:00'")
        return f"{int(match.group(1)):02d}:{match.group(2)}"

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(
                f"{value!r}: unknown time zone (use an IANA name such as 'America/Toronto')"
            ) from None
        return value

    @field_validator("misfire_grace")
    @classmethod
    def _grace(cls, value: str) -> str:
        duration_seconds(value)
        return value.strip()


class ListSpec(_Section):
    slug: str
    name: str
    public: bool = True
    # One sentence shown under the list in the preference center (stored in lists.description).
    description: str = Field(default="", max_length=500)
