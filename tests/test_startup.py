"""Start-up: the root command imports a command's module only when that command runs.

A contract, not a timing (the figures are in bench/startup.py): `newsletter --help` must not
import the web stack, the email renderer, SQLAlchemy or the settings, and the table the help
is printed from must say what the modules themselves say.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys

import click
from click.testing import CliRunner
from conftest import REPO
from sqlalchemy import text

import newsletter.cli
from newsletter.cli.app import COMMANDS
from newsletter.cli.app import main
from newsletter.config import load_settings
from newsletter.content.reader import list_months
from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import default_taxonomy
from newsletter.errors import ConfigError
from newsletter.paths import data_path
from newsletter.sending.plan import plan_campaign
from newsletter.store import engine as db
from newsletter.store import ledger
from newsletter.store import quick
from newsletter.store.subscribers import add_subscriber

# Imported by any of these, `--help` is back to a second (the web stack, rendering, the ORM,
# pydantic settings, the scheduler, citations).
HEAVY = (
    "fastapi",
    "starlette",
    "premailer",
    "mjml",
    "sqlalchemy",
    "alembic",
    "pydantic",
    "apscheduler",
    "citeproc",
    "jinja2",
    "newsletter.config",
)

_PROBE = """
import json, sys
from newsletter.cli import main
try:
    main(sys.argv[1:], prog_name="newsletter")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def _modules_after(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr and "Error" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    return set(json.loads(last))


def plan_month(engine, config_file) -> None:
    """Plan a fixture month for two subscribers, one of them then sent."""
    settings = load_settings(config_file)
    with db.transaction(engine) as session:
        for address in ("ana@example.net", "ben@example.net"):
            add_subscriber(session, settings, default_taxonomy(), address)
    month = list_months(settings.content.dir)[0]
    issue = load_issue(settings.content.dir, month, default_taxonomy(), settings.newsletter.name)
    plan_campaign(engine, settings, issue)
    with engine.begin() as connection:
        connection.execute(text("UPDATE deliveries SET status = 'sent' WHERE id = 1"))


def _heavy(modules: set[str], heavy: tuple[str, ...] = HEAVY) -> list[str]:
    """The modules of `modules` that are, or are inside, one of `heavy`."""
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy))


def _modules_of(probe: str) -> set[str]:
    """The modules a Python `probe` had imported: it prints `sorted(sys.modules)` as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


def test_help_imports_no_heavy_module() -> None:
    modules = _modules_after("--help")
    assert "click" in modules  # the probe did run the command
    assert _heavy(modules) == []
    assert not [m for m in modules if m.startswith("newsletter.cli.") and m != "newsletter.cli.app"]


# `issues list` reads settings and content (pydantic, markdown), but not the ledger's stack.
NOT_FOR_ISSUES_LIST = tuple(h for h in HEAVY if h not in ("pydantic", "newsletter.config"))


def test_issues_list_on_sqlite_imports_no_sqlalchemy(engine, config_file) -> None:
    plan_month(engine, config_file)  # a campaign with rows: the state column reads them
    modules = _modules_after("--config", str(config_file), "issues", "list")
    assert "newsletter.cli.issue_commands" in modules and "newsletter.store.quick" in modules
    assert (
        sorted(
            m for m in modules if any(m == h or m.startswith(h + ".") for h in NOT_FOR_ISSUES_LIST)
        )
        == []
    )
    # Its table is drawn without rich (`cli.app.box_table`): rich's console alone cost more
    # than the rest of the listing.
    assert not [m for m in modules if m == "rich" or m.startswith("rich.")]


def test_a_group_help_imports_its_module_only() -> None:
    modules = _modules_after("issues", "--help")
    assert "newsletter.cli.issue_commands" in modules
    assert "newsletter.cli.send_commands" not in modules
    assert "fastapi" not in modules and "premailer" not in modules


def test_help_lists_every_command_with_its_own_help() -> None:
    ctx = click.Context(main)
    for name, (module, help_text) in COMMANDS.items():
        importlib.import_module(f"newsletter.cli.{module}")
        command = main.commands.get(name)
        assert command is not None, f"{name}: not defined in newsletter.cli.{module}"
        assert command.callback is None or command.callback.__module__.endswith(module), name
        assert help_text == command.get_short_help_str(limit=1000), f"{name}: help text differs"
    # Every command of every module of newsletter.cli is in the table (a new command, or a new
    # module of commands, must be added to it, or `newsletter` would not know it).
    for module in pkgutil.iter_modules(newsletter.cli.__path__):
        importlib.import_module(f"newsletter.cli.{module.name}")
    assert set(main.commands) == set(COMMANDS)
    assert main.list_commands(ctx) == sorted(COMMANDS)


def test_help_text_is_the_same_lazy_or_loaded() -> None:
    probe = "from newsletter.cli import main; main(['--help'], prog_name='newsletter')"
    lazy = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=False
    )
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib; from newsletter.cli.app import COMMANDS\n"
            "for module, _ in COMMANDS.values():\n"
            "    importlib.import_module('newsletter.cli.' + module)\n" + probe,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert lazy.returncode == loaded.returncode == 0, lazy.stderr + loaded.stderr
    assert "worker " in lazy.stdout and "subscribers " in lazy.stdout
    assert lazy.stdout == loaded.stdout


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command 'no-such-command'" in result.output


# --- the schema check without Alembic (it alone cost more than `issues list`'s whole run) ------


def test_declared_head_is_alembics_head(tmp_path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert db._declared_head(data_path("migrations") / "versions") == db.head_revision(engine)


def test_declared_head_is_none_for_two_heads(tmp_path) -> None:
    for name, revision, parent in (("a", "1", None), ("b", "2", "1"), ("c", "3", "1")):
        (tmp_path / f"{name}.py").write_text(
            f"revision = {revision!r}\ndown_revision = {parent!r}\n", encoding="utf-8"
        )
    assert db._declared_head(tmp_path) is None
    (tmp_path / "c.py").write_text('revision = "3"\ndown_revision = "2"\n', encoding="utf-8")
    db._declared_head.cache_clear()
    assert db._declared_head(tmp_path) == "3"


def test_a_missing_sqlite_file_is_refused_and_not_created(tmp_path) -> None:
    # A read-only command before `db upgrade` must not leave an empty database file behind,
    # which every later command would find and refuse.
    path = tmp_path / "none.db"
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        db.require_schema(engine)
    except ConfigError as error:
        assert f"there is no database at {path} yet: run `newsletter db upgrade`" in str(error)
    else:
        raise AssertionError("a missing database passed require_schema")
    assert not path.exists()
    engine.dispose()


def test_require_schema_still_refuses_an_older_revision(tmp_path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    db.upgrade(engine)
    db.require_schema(engine)  # at head: passes
    db.downgrade(engine, "0006")
    try:
        db.require_schema(engine)
    except ConfigError as error:
        assert "run `newsletter db upgrade`" in str(error)
    else:
        raise AssertionError("a database at 0006 passed require_schema")
    db.upgrade(engine)
    with engine.begin() as connection:  # a revision this code does not know
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    try:
        db.require_schema(engine)
    except ConfigError as error:
        assert "not up to date" in str(error)
    else:
        raise AssertionError("an unknown revision passed require_schema")
    engine.dispose()


# --- `issues list`'s stdlib read of a SQLite file (`store.quick`) ------------------------------


def test_the_quick_read_is_the_ledgers(engine, config_file) -> None:
    plan_month(engine, config_file)
    url = load_settings(config_file).database.url
    with db.session_factory(engine)() as session:
        expected = ledger.campaign_states(session)
    assert len(expected) == 1 and next(iter(expected.values()))[1] == {"queued": 1, "sent": 1}
    assert quick.campaign_states(url) == expected


def test_the_quick_read_steps_aside_for_anything_unusual(engine, config_file, tmp_path) -> None:
    url = load_settings(config_file).database.url
    assert quick.campaign_states(url) == {}  # at head, no campaign yet
    assert quick.campaign_states(url + "?timeout=5") is None  # options: SQLAlchemy reads them
    assert quick.campaign_states("sqlite://") is None
    assert quick.campaign_states(f"sqlite:///{tmp_path / 'missing.db'}") is None
    assert quick.campaign_states("postgresql+psycopg://user@localhost/db") is None
    (tmp_path / "junk.db").write_text("not a database", encoding="utf-8")
    assert quick.campaign_states(f"sqlite:///{tmp_path / 'junk.db'}") is None
    db.downgrade(engine, "0006")  # an older schema: the usual path says what to run
    assert quick.campaign_states(url) is None
    result = CliRunner().invoke(main, ["--config", str(config_file), "issues", "list"])
    assert result.exit_code != 0 and "run `newsletter db upgrade`" in result.output


# --- memory: what a sending process does not use, it does not import ----------------------------


def test_the_send_path_imports_no_dkim_stack_while_signing_is_off() -> None:
    """dkimpy, dnspython and cryptography are ~14 MB of a sending process (bench/memory.py)."""
    probe = (
        "import json, sys\n"
        "from newsletter.sending.runner import CampaignRunner\n"
        "from newsletter.sending.build import dkim_signer\n"
        "from newsletter.config import settings_from_dict\n"
        "assert dkim_signer(settings_from_dict({}, __import__('pathlib').Path('.'))) is None\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    modules = _modules_of(probe)
    assert "newsletter.sending.runner" in modules
    assert _heavy(modules, ("dkim", "dns", "nacl", "cryptography", "newsletter.message.dkim")) == []


def test_rendering_imports_premailer_without_requests() -> None:
    """premailer imports requests only to fetch external stylesheets (never allowed here):
    requests, urllib3, charset_normalizer and chardet are ~11 MB of a sending process."""
    probe = (
        "import json, sys\n"
        "import newsletter.render.email as email\n"
        "assert 'premailer' not in sys.modules\n"
        "html = '<html><head><style>p {color: red}</style></head><body><p>x</p></body></html>'\n"
        "inlined = email.make_premailer(html).transform()\n"
        "assert 'style=\"color:red\"' in inlined, inlined\n"
        "before = sorted(sys.modules)\n"
        "import premailer.premailer\n"
        "get = premailer.premailer.requests.get  # premailer's stand-in: the real module on use\n"
        "import requests\n"
        "assert get is requests.get and sys.modules['requests'] is requests\n"
        "print(json.dumps(before))\n"
    )
    modules = _modules_of(probe)
    assert "premailer" in modules and "cssutils" in modules
    assert (
        _heavy(modules, ("requests", "urllib3", "chardet", "charset_normalizer", "certifi")) == []
    )
