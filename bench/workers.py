"""Scale out: two `newsletter worker` processes on PostgreSQL against one.

    python bench/workers.py [--subscribers 26000] [--connections 2] [--rounds 2]
                            [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

Against Postfix's `smtp-sink` (apt-get install postfix). A schema of its own in the given
PostgreSQL database (dropped at the end) is seeded with `--subscribers` subscribers and the
demo month planned once; then, alternating, one and two real `newsletter worker --once`
processes (each with `--connections` connections) send every open row, and the rows are put
back in the queue for the next round. Times from the first worker's start to the last one's
exit; prints both rates and their ratio (target: two workers ≥ 1.6 × one).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import scratch_schema
from limit import SECRET
from limit import Sink
from limit import seed
from limit import write_project
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from newsletter.content.reader import load_issue
from newsletter.content.taxonomy import default_taxonomy
from newsletter.sending.plan import plan_campaign
from newsletter.store import engine as db
from newsletter.store.models import Campaign
from newsletter.store.models import Delivery

MONTH = "2026-10"


def run_workers(config: Path, count: int) -> float:
    env = dict(os.environ, NEWSLETTER_SECRET_KEY=SECRET)
    command = [sys.executable, "-m", "newsletter", "--config", str(config), "worker", "--once"]
    started = time.perf_counter()
    workers = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(count)
    ]
    for worker in workers:
        output, _ = worker.communicate()
        if worker.returncode != 0:
            sys.exit(f"worker failed ({worker.returncode}):\n{output.decode()}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=26_000)
    parser.add_argument("--connections", type=int, default=2, help="per worker")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    args = parser.parse_args()
    os.environ["NEWSLETTER_SECRET_KEY"] = SECRET
    sink = Sink()
    rates: dict[int, list[float]] = {1: [], 2: []}
    try:
        with scratch_schema(args.database_url) as url, tempfile.TemporaryDirectory() as tmp:
            config, settings = write_project(Path(tmp), sink.port, args.connections, 1)
            config.write_text(
                config.read_text().replace('url = "sqlite:///bench.db"', f'url = "{url}"')
            )
            settings.database.url = url
            seed(settings, args.subscribers)
            engine = db.make_engine(url)
            issue = load_issue(
                settings.content.dir, MONTH, default_taxonomy(), settings.newsletter.name
            )
            plan_campaign(engine, settings, issue)
            with engine.connect() as connection:
                messages = connection.scalar(
                    select(func.count()).where(Delivery.status == "queued")
                )
            for _ in range(args.rounds):
                for count in (1, 2):
                    with engine.begin() as connection:  # every row open again
                        connection.execute(
                            update(Delivery)
                            .where(Delivery.status == "sent")
                            .values(status="queued", attempts=0, sent_at=None, worker_id="")
                        )
                        connection.execute(update(Campaign).values(status="planned"))
                    elapsed = run_workers(config, count)
                    with engine.connect() as connection:
                        sent = connection.scalar(
                            select(func.count()).where(Delivery.status == "sent")
                        )
                    assert sent == messages, f"{sent} of {messages} sent"
                    rates[count].append(sent / elapsed)
                    print(f"{count} worker(s): {sent / elapsed:,.0f} messages/s", flush=True)
            engine.dispose()
    finally:
        sink.stop()
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(
        f"PostgreSQL; messages: {messages:,}; connections per worker: {args.connections}; "
        f"rounds: {args.rounds}"
    )
    print(f"one worker:  {one:8,.0f} messages/s")
    print(f"two workers: {two:8,.0f} messages/s")
    print(f"ratio: {two / one:.2f}  (target ≥ 1.6)")


if __name__ == "__main__":
    main()
