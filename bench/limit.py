"""The machine's limit: `newsletter send` end to end against Postfix's own benchmark sender.

    python bench/limit.py [--subscribers 20000] [--connections 4] [--processes 1] [--rounds 1]

Needs Postfix's `smtp-sink` and `smtp-source` (Debian: `apt-get install postfix`; they land in
/usr/sbin); installs nothing itself. In one run, against one `smtp-sink` and with the same
number of connections, it times:

- `smtp-source`: Postfix's C sender, re-sending one pre-built message of ours (`-F`), one
  connection kept per session (`-d`);
- plain smtplib: one thread per connection, `sendmail` of the same pre-built message;
- ours: the real `newsletter send MONTH --yes` process as a user runs it (start-up, plan,
  render, build, sign links, SMTP, ledger) with a real config, the repo's content and a SQLite
  database seeded with `--subscribers` subscribers with random topics.

Each sends as many messages as ours sent. Prints the three rates and the ratios (target: ours
at least 0.8 of smtp-source). `--rounds N` repeats the three and prints the medians.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import REPO
from common import add_subscribers
from common import free_port
from common import load_bench_issue
from common import make_settings
from common import plain_smtplib
from sqlalchemy import func
from sqlalchemy import select

from newsletter.message.skeleton import Sender
from newsletter.personalize import make_recipient
from newsletter.sending.variants import VariantCache
from newsletter.store import engine as db
from newsletter.store.models import Campaign
from newsletter.store.models import Delivery
from newsletter.store.models import utcnow

MONTH = "2026-10"
CPU_SECONDS: list[float] = []  # of each `newsletter send` run (see `ours`)
SECRET = "bench-secret-key-that-is-long-enough-0123456789"


def postfix_tool(name: str) -> str:
    """The path of a Postfix benchmark tool, or exit saying how to install it."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/lib/postfix/sbin")
    if found is None:
        sys.exit(f"{name} not found: install Postfix's test tools (apt-get install postfix)")
    return found


class Sink:
    """Postfix's smtp-sink on a free loopback port, for the whole run."""

    def __init__(self, pipelining: bool = True) -> None:
        self.port = free_port()
        command = [postfix_tool("smtp-sink")]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # smtp-sink refuses to keep root privileges
        if not pipelining:
            command.append("-p")  # do not announce PIPELINING
        command += [f"127.0.0.1:{self.port}", "256"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=1) as probe:
                    probe.noop()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def write_project(folder: Path, port: int, connections: int, processes: int):
    """A project folder as a user has it: config.toml, content/, a seeded SQLite database."""
    settings = make_settings(folder, port, connections, url=f"sqlite:///{folder / 'bench.db'}")
    config = folder / "config.toml"
    config.write_text(
        f"""[newsletter]
name = "Bench Digest"
from_email = "digest@example.org"
base_url = "http://127.0.0.1:8000"
postal_address = "Bench Network, 1 Example Street, Ottawa ON K1A 0A1, Canada"

[content]
dir = "content"

[templates]
dir = "{REPO / "templates"}"

[database]
url = "sqlite:///bench.db"

[delivery]
transport = "smtp"
batch_size = 500

[smtp]
host = "127.0.0.1"
port = {port}
connections = {connections}
"""
        + (f"processes = {processes}\n" if processes != 1 else ""),
        encoding="utf-8",
    )
    return config, settings


def seed(settings, count: int) -> None:
    engine = db.make_engine(settings.database.url)
    db.upgrade(engine)
    add_subscribers(engine, settings, count)
    engine.dispose()


def reset(settings) -> None:
    """Forget the campaign, so that the next round plans and sends it again."""
    engine = db.make_engine(settings.database.url)
    with engine.begin() as connection:
        connection.execute(Delivery.__table__.delete())
        connection.execute(Campaign.__table__.delete())
    engine.dispose()


def sent_count(settings) -> int:
    engine = db.make_engine(settings.database.url)
    with engine.connect() as connection:
        count = connection.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.status == "sent")
        )
    engine.dispose()
    return int(count or 0)


def ours(config: Path, settings) -> tuple[float, int]:
    """Wall seconds of the `newsletter send` process and the messages it sent (its CPU
    seconds, user and system, are added to `CPU_SECONDS`)."""
    env = dict(os.environ, NEWSLETTER_SECRET_KEY=SECRET)
    command = [sys.executable, "-m", "newsletter", "--config", str(config), "send", MONTH]
    if os.environ.get("BENCH_WRAP"):  # e.g. "py-spy record -o profile.svg --" to profile ours
        command = [*os.environ["BENCH_WRAP"].split(), *command]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        [*command, "--yes"], env=env, capture_output=True, text=True, cwd=config.parent
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU_SECONDS.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if result.returncode != 0:
        sys.exit(f"newsletter send failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return elapsed, sent_count(settings)


def prebuilt(settings) -> bytes:
    """One message of ours (CRLF line endings), of the variant whose size is nearest the mean
    size of the messages ours sent (weighted by how many each variant went to)."""
    engine = db.make_engine(settings.database.url)
    with engine.connect() as connection:
        counts = dict(
            connection.execute(
                select(Delivery.variant, func.count())
                .where(Delivery.status == "sent")
                .group_by(Delivery.variant)
            ).all()
        )
    engine.dispose()
    issue = load_bench_issue(settings, MONTH)
    cache = VariantCache(settings, issue, Sender.from_settings(settings), utcnow())
    recipient = make_recipient(settings, "reader@example.net", "Reader", None, subscriber_id=1)
    built = {}
    for variant in counts:
        skeleton, summaries = cache.get(variant)
        message, _ = skeleton.build(recipient, MONTH, 1, summaries)
        built[variant] = message.replace(b"\n", b"\r\n")
    mean = sum(len(built[v]) * n for v, n in counts.items()) / sum(counts.values())
    return min(built.values(), key=lambda message: abs(len(message) - mean))


def smtp_source(port: int, message_file: Path, count: int, connections: int) -> float:
    command = [
        postfix_tool("smtp-source"),
        "-d",  # keep each session's connection for its next message, as we do
        "-s",
        str(connections),
        "-m",
        str(count),
        "-F",
        str(message_file),
        "-f",
        "digest@example.org",
        "-t",
        "reader@example.net",
        f"127.0.0.1:{port}",
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=26_000, help="~18,800 messages")
    parser.add_argument("--connections", type=int, default=4, help="in all, over every process")
    parser.add_argument("--processes", type=int, default=1, help="[smtp] processes for ours")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--compare-pipelining",
        action="store_true",
        help="also time ours against a second smtp-sink that does not offer PIPELINING (-p)",
    )
    args = parser.parse_args()
    if args.connections % args.processes:
        sys.exit("--connections must be a multiple of --processes")
    per_process = args.connections // args.processes
    rates: dict[str, list[float]] = {"smtp-source": [], "smtplib": [], "ours": []}
    cpu_per_message: list[float] = []  # ours, every process and thread, start-up included
    if args.compare_pipelining:
        rates["ours, no PIPELINING"] = []
    sink = Sink()
    plain_sink = Sink(pipelining=False) if args.compare_pipelining else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            config, settings = write_project(folder, sink.port, per_process, args.processes)
            seed(settings, args.subscribers)
            message_file = folder / "message.eml"
            for round_ in range(args.rounds):
                if round_:
                    reset(settings)
                elapsed, sent = ours(config, settings)
                if not round_:
                    message = prebuilt(settings)
                    message_file.write_bytes(message)
                rates["ours"].append(sent / elapsed)
                cpu_per_message.append(CPU_SECONDS[-1] / sent)
                base = plain_smtplib(sink.port, message, sent, args.connections)
                rates["smtplib"].append(sent / base)
                source = smtp_source(sink.port, message_file, sent, args.connections)
                rates["smtp-source"].append(sent / source)
                if plain_sink is not None:
                    plain = folder / "config-no-pipelining.toml"
                    plain.write_text(
                        config.read_text().replace(
                            f"port = {sink.port}\n", f"port = {plain_sink.port}\n"
                        )
                    )
                    reset(settings)
                    elapsed_plain, sent_plain = ours(plain, settings)
                    rates["ours, no PIPELINING"].append(sent_plain / elapsed_plain)
                print(
                    f"round {round_ + 1}: ours {sent / elapsed:,.0f}/s, smtplib {sent / base:,.0f}"
                    f"/s, smtp-source {sent / source:,.0f}/s",
                    flush=True,
                )
    finally:
        sink.stop()
        if plain_sink is not None:
            plain_sink.stop()
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(
        f"subscribers: {args.subscribers:,}; messages: {sent:,} of {len(message):,} bytes; "
        f"connections: {args.connections} ({args.processes} process(es) for ours); "
        f"rounds: {args.rounds}"
    )
    for name in rates:
        print(f"{name + ':':21} {median[name]:8,.0f} messages/s")
    print(
        f"ours' CPU per message: {statistics.median(cpu_per_message) * 1e6:,.0f} µs (user + "
        "system, start-up to exit; steadier than the rates on a busy machine)"
    )
    print(
        f"ours / smtp-source: {median['ours'] / median['smtp-source']:.2f}  (target ≥ 0.8)\n"
        f"ours / smtplib:     {median['ours'] / median['smtplib']:.2f}\n"
        f"smtplib / smtp-source: {median['smtplib'] / median['smtp-source']:.2f}"
    )
    if args.compare_pipelining:
        print(
            f"ours with / without PIPELINING: {median['ours'] / median['ours, no PIPELINING']:.2f}"
        )


if __name__ == "__main__":
    main()
