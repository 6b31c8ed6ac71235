"""`newsletter subscribers ...` through click's CliRunner on a migrated temporary SQLite file."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from click.testing import Result

from newsletter.cli import main
from newsletter.store.import_export import CSV_COLUMNS

Invoke = Callable[..., Result]

LISTS = """
[[lists]]
slug = "events"
name = "Events"
"""


@pytest.fixture
def cli(runner: CliRunner, config_file: Path) -> Invoke:
    """Run `newsletter --config <file> ...` against a migrated database (with an extra list)."""
    config_file.write_text(config_file.read_text(encoding="utf-8") + LISTS, encoding="utf-8")

    def invoke(*args: str, input: str | None = None) -> Result:
        return runner.invoke(main, ["--config", str(config_file), *args], input=input)

    result = invoke("db", "upgrade")
    assert result.exit_code == 0, result.output
    return invoke


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def records(cli: Invoke, *filters: str) -> list[dict]:
    return json.loads(ok(cli("subscribers", "list", "--format", "json", *filters)))


def test_commands_need_a_migrated_database(runner: CliRunner, config_file: Path) -> None:
    result = runner.invoke(main, ["--config", str(config_file), "subscribers", "list"])
    assert result.exit_code == 1
    assert "run `newsletter db upgrade`" in result.output


def test_every_command_has_help(runner: CliRunner) -> None:
    for command in ("add", "remove", "list", "import", "export"):
        result = runner.invoke(main, ["subscribers", command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output


def test_add(cli: Invoke) -> None:
    output = ok(
        cli(
            "subscribers",
            "add",
            "Ann@Example.org",
            "--name",
            "Ann",
            "--topics",
            "Empathy;training",
            "--list",
            "digest",
            "--list",
            "events",
        )
    )
    assert output == (
        "added Ann@example.org (active; topics: empathy, training; lists: digest, events)\n"
    )
    output = ok(cli("subscribers", "add", "pen@example.org", "--status", "pending"))
    assert output == (
        "added pen@example.org (pending; topics: all; lists: digest)\n"
        "sent a confirmation link to pen@example.org\n"  # (the memory transport keeps it)
    )
    [ann, pen] = records(cli)
    assert ann["confirmed_at"] is not None
    assert ann["consent_source"] == "cli"
    assert pen["confirmed_at"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ANN@example.org"], "Error: ANN@example.org is already subscribed"),
        (["bad@x"], "Error: invalid email address 'bad@x'"),
        (["new@example.org", "--topics", "empaty"], "did you mean 'Empathy'?"),
        (
            ["new@example.org", "--list", "nope"],
            "unknown list 'nope' (known lists: digest, events)",
        ),
        (["new@example.org", "--status", "bounced"], "Invalid value for '--status'"),
    ],
)
def test_add_errors(cli: Invoke, args: list[str], message: str) -> None:
    ok(cli("subscribers", "add", "ann@example.org"))
    result = cli("subscribers", "add", *args)
    assert result.exit_code != 0
    assert message in result.output
    assert len(records(cli)) == 1


def test_remove(cli: Invoke) -> None:
    ok(cli("subscribers", "add", "r@example.org"))
    result = cli("subscribers", "remove", "R@example.org", input="n\n")
    assert result.exit_code == 1
    assert "Aborted" in result.output
    assert len(records(cli)) == 1
    assert ok(cli("subscribers", "remove", "r@example.org", input="y\n")).endswith(
        "removed r@example.org\n"
    )
    assert records(cli) == []
    ok(cli("subscribers", "add", "s@example.org"))
    assert ok(cli("subscribers", "remove", "s@example.org", "--yes")) == "removed s@example.org\n"
    result = cli("subscribers", "remove", "s@example.org", "--yes")
    assert result.exit_code == 1
    assert "Error: no subscriber s@example.org" in result.output


def test_list_filters_and_formats(cli: Invoke) -> None:
    ok(cli("subscribers", "add", "eve@example.org", "--name", "Eve Everything"))
    ok(cli("subscribers", "add", "emp@example.org", "--topics", "empathy", "--list", "events"))
    ok(cli("subscribers", "add", "tra@example.org", "--topics", "training", "--status", "pending"))

    table = ok(cli("subscribers", "list"))
    for text in ("eve@example.org", "Eve Everything", "pending", "3 subscribers", "Email"):
        assert text in table

    def emails(*filters: str) -> list[str]:
        return [r["email"] for r in records(cli, *filters)]

    assert emails("--status", "pending") == ["tra@example.org"]
    assert emails("--list", "events") == ["emp@example.org"]
    assert emails("--topic", "Empathy") == ["eve@example.org", "emp@example.org"]
    assert emails("--search", "EVERY") == ["eve@example.org"]
    assert emails("--limit", "1") == ["eve@example.org"]

    rows = list(csv.reader(io.StringIO(ok(cli("subscribers", "list", "--format", "csv")))))
    assert rows[0] == list(CSV_COLUMNS)
    assert rows[2][:5] == ["emp@example.org", "", "empathy", "events", "active"]
    assert rows[2][-2:] == ["cli", ""]  # consent source and IP

    result = cli("subscribers", "list", "--topic", "empaty")
    assert result.exit_code == 1
    assert "did you mean 'Empathy'?" in result.output


GOOD = "email,name,topics,lists\none@example.org,One,empathy,\ntwo@example.org,Two,*,events\n"
BAD = (
    "email,name,topics\n"
    "fine@example.org,Fine,\n"
    "nope,,\n"
    'quoted@example.org,"Two, Lines",unknown-topic\n'
)


def write(tmp_path: Path, name: str, data: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return str(path)


def test_import(cli: Invoke, tmp_path: Path) -> None:
    path = write(tmp_path, "good.csv", GOOD)
    assert ok(cli("subscribers", "import", path)) == (
        "added 2, updated 0, skipped 0 existing, rejected 0\n"
    )
    assert ok(cli("subscribers", "import", path)) == (
        "added 0, updated 0, skipped 2 existing, rejected 0\n"
    )
    changed = write(tmp_path, "changed.csv", GOOD.replace("One", "Uno"))
    assert ok(cli("subscribers", "import", changed, "--update-existing")) == (
        "added 0, updated 2, skipped 0 existing, rejected 0\n"
    )
    assert [r["name"] for r in records(cli)] == ["Uno", "Two"]


def test_import_with_rejected_rows_writes_nothing(cli: Invoke, tmp_path: Path) -> None:
    result = cli("subscribers", "import", write(tmp_path, "bad.csv", BAD))
    assert result.exit_code == 1
    assert "line 3: invalid email address 'nope'" in result.stderr
    assert "line 4: unknown topic 'unknown-topic'" in result.stderr
    assert ".csv: 2 of 3 rows rejected; nothing was imported" in result.stderr
    assert records(cli) == []


def test_import_skip_invalid(cli: Invoke, tmp_path: Path) -> None:
    output = ok(cli("subscribers", "import", write(tmp_path, "bad.csv", BAD), "--skip-invalid"))
    assert output.splitlines()[0] == "added 1, updated 0, skipped 0 existing, rejected 2"
    assert "line 3: invalid email address" in output
    assert [r["email"] for r in records(cli)] == ["fine@example.org"]


def test_import_dry_run(cli: Invoke, tmp_path: Path) -> None:
    output = ok(cli("subscribers", "import", write(tmp_path, "good.csv", GOOD), "--dry-run"))
    assert output.startswith("dry run: would have added 2,")
    assert records(cli) == []


def test_import_file_errors(cli: Invoke, tmp_path: Path) -> None:
    latin = write(tmp_path, "latin.csv", "email,name\nrene@example.org,René\n".encode("latin-1"))
    result = cli("subscribers", "import", latin)
    assert result.exit_code == 1
    assert "not UTF-8: byte 0xe9 at position 31 (line 2)" in result.output

    unknown = write(tmp_path, "cols.csv", "email,phone\na@example.org,1\n")
    result = cli("subscribers", "import", unknown)
    assert result.exit_code == 1
    assert f"Error: {unknown}: unknown column 'phone'" in result.output
    assert "--skip-invalid" not in result.output  # it would not help

    result = cli("subscribers", "import", str(tmp_path / "missing.csv"))
    assert result.exit_code == 2
    assert "No such file" in result.output


def test_import_from_stdin_with_bom(cli: Invoke) -> None:
    output = ok(cli("subscribers", "import", "-", input="\ufeff" + GOOD))
    assert output.startswith("added 2,")


def test_export_and_reimport(cli: Invoke, runner: CliRunner, tmp_path: Path) -> None:
    ok(cli("subscribers", "import", write(tmp_path, "good.csv", GOOD)))
    ok(cli("subscribers", "add", "pen@example.org", "--status", "pending", "--name", "Pen, P."))

    exported = ok(cli("subscribers", "export"))
    rows = list(csv.reader(io.StringIO(exported)))
    assert rows[0] == list(CSV_COLUMNS)
    assert [row[:5] for row in rows[1:]] == [
        ["one@example.org", "One", "empathy", "digest", "active"],
        ["two@example.org", "Two", "*", "events", "active"],
        ["pen@example.org", "Pen, P.", "*", "digest", "pending"],
    ]
    assert [row[8] for row in rows[1:]] == ["import", "import", "cli"]
    out = tmp_path / "all.json"
    assert ok(cli("subscribers", "export", "--format", "json", "--out", str(out))) == (
        f"exported 3 subscribers to {out}\n"
    )
    assert [r["email"] for r in json.loads(out.read_text(encoding="utf-8"))] == [
        "one@example.org",
        "two@example.org",
        "pen@example.org",
    ]

    # A second installation reads the export back unchanged.
    other = tmp_path / "other"
    other.mkdir()
    config = other / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///copy.db"\n[delivery]\ntransport = "memory"\n{LISTS}',
        encoding="utf-8",
    )

    def again(*args: str) -> str:
        return ok(runner.invoke(main, ["--config", str(config), *args]))

    again("db", "upgrade")
    assert again("subscribers", "import", write(tmp_path, "export.csv", exported)).startswith(
        "added 3,"
    )
    assert again("subscribers", "export") == exported

    # The JSON export reads back too: by its extension, by its content, or by --format.
    json_export = out.read_text(encoding="utf-8")
    for args, stdin in (
        ([str(out)], None),
        (["-"], json_export),
        (["--format", "json", write(tmp_path, "backup.txt", json_export)], None),
    ):
        for email in ("one@example.org", "two@example.org", "pen@example.org"):
            again("subscribers", "remove", email, "--yes")
        output = ok(
            runner.invoke(
                main, ["--config", str(config), "subscribers", "import", *args], input=stdin
            )
        )
        assert output.startswith("added 3,"), args
        assert again("subscribers", "export") == exported
        assert again("subscribers", "export", "--format", "json") == json_export


def test_update_existing_keeps_what_blank_cells_leave_out(cli: Invoke, tmp_path: Path) -> None:
    ok(cli("subscribers", "add", "pen@example.org", "--status", "pending", "--name", "Pen"))
    ok(cli("subscribers", "add", "emp@example.org", "--topics", "empathy", "--list", "events"))
    before = ok(cli("subscribers", "export"))
    blank = write(
        tmp_path,
        "blank.csv",
        "email,name,topics,lists,status\npen@example.org,,,,\nemp@example.org,,,,\n",
    )
    assert ok(cli("subscribers", "import", blank, "--update-existing")).startswith(
        "added 0, updated 2,"
    )
    # A blank status never makes a pending address active; a blank name, topics or lists
    # cell keeps what is stored.
    assert ok(cli("subscribers", "export")) == before


def test_export_to_a_path_that_cannot_be_written(cli: Invoke, tmp_path: Path) -> None:
    ok(cli("subscribers", "add", "one@example.org"))
    for target in ("/nonexistent/x.csv", str(tmp_path / "missing" / "x.csv"), "/proc/x.csv"):
        result = cli("subscribers", "export", "--out", target)
        assert result.exit_code == 1, result.output
        assert result.output.startswith(f"Error: {target}: cannot write: ")
        assert len(result.output.splitlines()) == 1
        assert "Traceback" not in result.output and result.exception.__class__ is SystemExit
    assert not (tmp_path / "missing").exists()
    # A good path is replaced whole, and no temporary file is left beside it.
    out = tmp_path / "out.csv"
    out.write_text("old content\n", encoding="utf-8")
    ok(cli("subscribers", "export", "--out", str(out)))
    assert out.read_text(encoding="utf-8").startswith("email,name,")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def test_list_with_an_unknown_list_names_the_known_lists(cli: Invoke) -> None:
    ok(cli("subscribers", "add", "one@example.org"))
    result = cli("subscribers", "list", "--list", "evnets")
    assert result.exit_code == 1
    assert result.output == "Error: unknown list 'evnets' (known lists: digest, events)\n"
    assert [r["email"] for r in records(cli, "--list", "digest")] == ["one@example.org"]


LONG = "someone.with.a.rather.long.address.for.tables@research-department.example-university.ca"


def test_list_prints_whole_values_off_a_terminal(cli: Invoke) -> None:
    name = "Dr. Zoë Ångström-Łukasz, [b]Department of Clinical Psychology[/b]"
    ok(cli("subscribers", "add", LONG, "--name", name, "--list", "events", "--list", "digest"))
    ok(cli("subscribers", "add", "short@example.org"))
    output = ok(cli("subscribers", "list"))  # CliRunner's stdout is no terminal
    header, first, second, footer = output.splitlines()
    assert header.split("\t") == ["Email", "Name", "Status", "Topics", "Lists", "Since"]
    assert first.split("\t")[:5] == [LONG, name, "active", "all", "digest, events"]
    assert second.split("\t")[0] == "short@example.org"
    assert footer == "2 subscribers"


@pytest.mark.parametrize(
    ("topics", "chosen"),
    [
        (
            "Attendance, Attrition, and Drop-Out;Empathy",
            ["attendance-attrition-and-drop-out", "empathy"],
        ),
        ("Attendance, Attrition, and Drop-Out", ["attendance-attrition-and-drop-out"]),
        ("empathy,training", ["empathy", "training"]),
        (
            "Attendance, Attrition, and Drop-Out, Empathy",
            ["attendance-attrition-and-drop-out", "empathy"],
        ),
    ],
)
def test_add_topics_take_labels_with_commas(cli: Invoke, topics: str, chosen: list[str]) -> None:
    ok(cli("subscribers", "add", "t@example.org", "--topics", topics))
    [record] = records(cli)
    assert record["topics"] == chosen


@pytest.mark.parametrize(
    ("topics", "message", "not_suggested"),
    [
        (
            "Empathy, Trainin",
            "Error: unknown topic 'Trainin' in 'Empathy, Trainin' (topics are separated by ';');"
            " did you mean 'Training'",
            "'Empathy'",
        ),
        ("Empathy;Trainin", "Error: unknown topic 'Trainin'; did you mean 'Training'", "'Empathy'"),
        (
            "Attendance, Attrition",
            "Error: unknown topic 'Attendance, Attrition'; did you mean "
            "'Attendance, Attrition, and Drop-Out'?",
            "'Attendance, Attrition'?",
        ),
    ],
)
def test_unknown_topic_errors_suggest_real_matches_only(
    cli: Invoke, topics: str, message: str, not_suggested: str
) -> None:
    result = cli("subscribers", "add", "t@example.org", "--topics", topics)
    assert result.exit_code == 1
    assert result.output.startswith(message), result.output
    assert not_suggested not in result.output.split("did you mean", 1)[1]
    assert records(cli) == []


# --- set-status, unsubscribe, forget: thin wrappers over the subscriber service ---------------


def test_status_commands_have_help(runner: CliRunner) -> None:
    for command in ("set-status", "unsubscribe", "forget"):
        result = runner.invoke(main, ["subscribers", command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output


def test_set_status(cli: Invoke) -> None:
    ok(cli("subscribers", "add", "pen@example.org", "--status", "pending", "--list", "events"))
    output = ok(cli("subscribers", "set-status", "PEN@example.org", "active"))
    assert output == "pen@example.org is now active (was pending)\n"
    [pen] = records(cli)
    assert (pen["status"], pen["lists"]) == ("active", ["events"])
    assert pen["confirmed_at"] is not None
    assert ok(cli("subscribers", "set-status", "pen@example.org", "active")) == (
        "pen@example.org is already active\n"
    )
    output = ok(cli("subscribers", "set-status", "pen@example.org", "unsubscribed"))
    assert output == "pen@example.org is now unsubscribed (was active)\n"
    [pen] = records(cli)
    assert (pen["status"], pen["lists"]) == ("unsubscribed", [])  # like the admin page
    assert pen["unsubscribed_at"] is not None
    ok(cli("subscribers", "set-status", "pen@example.org", "bounced"))
    assert records(cli)[0]["status"] == "bounced"


def test_set_status_errors_change_nothing(cli: Invoke) -> None:
    ok(cli("subscribers", "add", "ann@example.org"))
    before = records(cli)
    result = cli("subscribers", "set-status", "nobody@example.org", "unsubscribed")
    assert result.exit_code == 1
    assert "Error: no subscriber nobody@example.org" in result.output
    result = cli("subscribers", "set-status", "ann@example.org", "gone")
    assert result.exit_code == 2
    assert "Invalid value for 'STATUS'" in result.output
    assert records(cli) == before


def test_unsubscribe(cli: Invoke) -> None:
    ok(cli("subscribers", "add", "ann@example.org", "--list", "digest", "--list", "events"))
    output = ok(cli("subscribers", "unsubscribe", "ann@example.org", "--list", "events"))
    assert output == "unsubscribed ann@example.org from the list events\n"
    [ann] = records(cli)
    assert (ann["status"], ann["lists"]) == ("active", ["digest"])
    assert ok(cli("subscribers", "unsubscribe", "ann@example.org", "--list", "events")) == (
        "ann@example.org was already unsubscribed from the list events\n"
    )
    output = ok(cli("subscribers", "unsubscribe", "Ann@Example.org"))
    assert output == "unsubscribed ann@example.org from every list\n"
    [ann] = records(cli)
    assert (ann["status"], ann["lists"]) == ("unsubscribed", [])
    assert ok(cli("subscribers", "unsubscribe", "ann@example.org")) == (
        "ann@example.org was already unsubscribed from every list\n"
    )


def test_unsubscribe_errors_change_nothing(cli: Invoke) -> None:
    ok(cli("subscribers", "add", "ann@example.org"))
    before = records(cli)
    result = cli("subscribers", "unsubscribe", "nobody@example.org")
    assert result.exit_code == 1
    assert "Error: no subscriber nobody@example.org" in result.output
    result = cli("subscribers", "unsubscribe", "ann@example.org", "--list", "events")
    assert result.exit_code == 1
    assert "Error: ann@example.org is not on the list 'events'" in result.output
    assert records(cli) == before


def test_forget(cli: Invoke) -> None:
    ok(cli("subscribers", "add", "ann@example.org", "--name", "Ann"))
    result = cli("subscribers", "forget", "ann@example.org", input="n\n")
    assert result.exit_code == 1
    assert "Forget ann@example.org" in result.output
    assert "Aborted" in result.output
    assert len(records(cli)) == 1
    output = ok(cli("subscribers", "forget", "ANN@example.org", input="y\n"))
    assert output.endswith(
        "forgot ann@example.org (only a hash of the address is kept, so it is never mailed again)\n"
    )
    assert records(cli) == []
    # The suppression hash stops the address coming back by accident.
    result = cli("subscribers", "add", "ann@example.org")
    assert result.exit_code == 1
    assert "is on the suppression list" in result.output
    ok(cli("subscribers", "add", "ben@example.org"))
    assert ok(cli("subscribers", "forget", "ben@example.org", "--yes")) == (
        "forgot ben@example.org (only a hash of the address is kept, so it is never mailed again)\n"
    )


def test_forget_unknown_address(cli: Invoke) -> None:
    ok(cli("subscribers", "add", "ann@example.org"))
    result = cli("subscribers", "forget", "nobody@example.org", "--yes")
    assert result.exit_code == 1
    assert "Error: no subscriber nobody@example.org" in result.output
    assert len(records(cli)) == 1


@pytest.mark.parametrize("name", ["Bob\nBcc: evil@example.net", "Bob\r\nX: y", "Tab\tName"])
def test_add_refuses_a_name_with_control_characters(cli: Invoke, name: str) -> None:
    result = cli("subscribers", "add", "bob@example.org", "--name", name)
    assert result.exit_code == 1
    assert "name must not contain control characters or line breaks" in result.output
    assert records(cli) == []


def test_add_refuses_a_non_ascii_local_part_and_keeps_idn_domains_ascii(cli: Invoke) -> None:
    result = cli("subscribers", "add", "anä@example.org")
    assert result.exit_code == 1
    assert "invalid email address 'anä@example.org'" in result.output
    assert records(cli) == []
    ok(cli("subscribers", "add", "ana@bücher.example"))
    assert [r["email"] for r in records(cli)] == ["ana@xn--bcher-kva.example"]
