"""What it costs to commit each accepted message before its connection sends the next.

    python bench/durability.py [--subscribers 13000] [--connections 4] [--rounds 2]
                               [--database-url postgresql+psycopg://...]

Against Postfix's `smtp-sink` (apt-get install postfix), in one process, the same planned
campaign is sent by `CampaignRunner` with the per-message recorder (`sending.durable`, the
default: at most one duplicate per connection after a crash) and without it (results only in
batches of 50 or every 0.25 s: up to a batch per crash), alternating, `--rounds` times each.
Prints both rates, their ratio and how many messages each recorder commit carried. SQLite by
default; `--database-url` for PostgreSQL (in a schema of its own, dropped at the end).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

from common import scratch_schema
from limit import SECRET
from limit import Sink
from limit import seed
from limit import write_project
from sqlalchemy import update

from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import default_taxonomy
from newsletter.sending.plan import plan_campaign
from newsletter.sending.runner import CampaignRunner
from newsletter.store import engine as db
from newsletter.store.models import Delivery

MONTH = "2026-10"
CPU: dict[bool, list[float]] = {True: [], False: []}  # seconds per message, by `durable`


def measure(settings, args) -> tuple[dict[bool, list[float]], list[float], int]:
    """Rates with and without the recorder, alternating; messages per recorder commit. The
    CPU seconds per message of this process (every thread) go to `CPU`."""
    seed(settings, args.subscribers)
    rates: dict[bool, list[float]] = {True: [], False: []}
    per_commit: list[float] = []
    engine = db.make_engine(settings.database.url)
    issue = load_issue(settings.content.dir, MONTH, default_taxonomy(), settings.newsletter.name)
    plan_campaign(engine, settings, issue)
    for _ in range(args.rounds):
        for durable in (True, False):
            with engine.begin() as connection:  # every row open again
                connection.execute(
                    update(Delivery)
                    .where(Delivery.status == "sent")
                    .values(status="queued", attempts=0, sent_at=None)
                )
            runner = CampaignRunner(engine, settings, issue, durable=durable)
            started = time.perf_counter()
            cpu = time.process_time()
            report = runner.run()
            rates[durable].append(report.sent / (time.perf_counter() - started))
            CPU[durable].append((time.process_time() - cpu) / max(report.sent, 1))
            if durable and runner.recorder_commits:
                per_commit.append(report.sent / runner.recorder_commits)
    engine.dispose()
    return rates, per_commit, report.sent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=13_000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    os.environ["NEWSLETTER_SECRET_KEY"] = SECRET
    sink = Sink()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _config, settings = write_project(Path(tmp), sink.port, args.connections, 1)
            schema = scratch_schema(args.database_url) if args.database_url else None
            with schema or contextlib.nullcontext(settings.database.url) as url:
                settings.database.url = url
                rates, per_commit, sent = measure(settings, args)
    finally:
        sink.stop()
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    print(
        f"database: {'PostgreSQL' if args.database_url else 'SQLite'}; messages: "
        f"{sent:,}; connections: {args.connections}; rounds: {args.rounds}"
    )
    print(f"each acceptance committed: {on:8,.0f} messages/s")
    print(f"results in batches:        {off:8,.0f} messages/s")
    print(
        f"ratio: {on / off:.2f}; messages per recorder commit: {statistics.median(per_commit):.1f}"
    )
    cpu_on, cpu_off = statistics.median(CPU[True]), statistics.median(CPU[False])
    print(
        f"CPU per message (this process, every thread): {cpu_on * 1e6:,.0f} µs committed each, "
        f"{cpu_off * 1e6:,.0f} µs in batches: {cpu_off / cpu_on:.2f} (steadier on a busy machine)"
    )


if __name__ == "__main__":
    main()
