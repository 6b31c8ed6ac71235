"""Planning time at scale: plan one campaign for N subscribers on SQLite and PostgreSQL.

    python bench/planning.py                                 # 1,000,000 subscribers, both
    python bench/planning.py --subscribers 100000 --databases sqlite
    python bench/planning.py --no-old                        # skip the row-by-row reference

The subscribers (30 % all topics, the rest 1–5 random topics) are inserted first and not timed.
Then the set-based planner (`plan_campaign`: one INSERT … SELECT) plans the demo month, and,
unless `--no-old`, the same month is planned again from scratch by the row-by-row planner it
replaced (stream the audience, choose each variant in Python, insert in chunks of 1,000), so
the ratio is measured in one run on the same data; both must write the same rows. Target:
1,000,000 deliveries in ≤ 10 s on each database. PostgreSQL comes from `--postgres-url` or
NEWSLETTER_TEST_DATABASE_URL (a schema of its own, dropped afterwards). Beside the wall time it
prints the CPU of this process and, for a PostgreSQL server on this machine, of the planner's
server backends (from /proc), which a busy machine moves much less than the wall time; a plan
written in two parts at once (`store.planning`) prints their sum and the busiest backend's.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import add_subscribers
from common import load_bench_issue
from common import make_settings
from sqlalchemy import create_engine
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from newsletter.personalize import choose_variant
from newsletter.sending.plan import plan_campaign
from newsletter.store import audience
from newsletter.store import engine as db
from newsletter.store import ledger
from newsletter.store.models import QUEUED
from newsletter.store.models import SKIPPED
from newsletter.store.models import Campaign
from newsletter.store.models import Delivery


def plan_row_by_row(engine, settings, issue, chunk: int = 1000) -> int:
    """The planner before set-based planning, kept here as the reference."""
    with db.session_factory(engine)() as session:
        campaign = ledger.get_or_create_campaign(session, issue.month, issue.subject, ["digest"])
        session.commit()
        pending: list[dict] = []
        count = 0
        for member in audience.iter_audience(
            session, ["digest"], campaign_id=campaign.id, chunk=chunk
        ):
            key = choose_variant(issue, member.topics, settings.delivery.on_no_match)
            pending.append(
                {
                    "campaign_id": campaign.id,
                    "subscriber_id": member.id,
                    "email": member.email,
                    "variant": key.encode() if key else "",
                    "status": QUEUED if key else SKIPPED,
                    "last_error": "" if key else "none of their topics is in this issue",
                }
            )
            count += 1
            if len(pending) >= chunk:
                audience.insert_deliveries(session.connection(), pending)
                session.commit()
                pending.clear()
        audience.insert_deliveries(session.connection(), pending)
        session.commit()
    return count


def planned_rows(engine) -> Counter:
    with engine.connect() as connection:
        query = select(Delivery.variant, Delivery.status, func.count()).group_by(
            Delivery.variant, Delivery.status
        )
        return Counter({(v, s): n for v, s, n in connection.execute(query)})


def clear(engine) -> None:
    with engine.begin() as connection:
        connection.execute(delete(Delivery))
        connection.execute(delete(Campaign))


class ServerCpu:
    """The CPU seconds used by the PostgreSQL backends of `engine`'s connections opened since
    `start()` (read from /proc: the server must be on this machine, else `seconds()` is None).
    On a busy machine wall time says little; the server's CPU says what the statements cost."""

    def __init__(self, engine) -> None:
        self.pids: set[int] = set()
        event.listen(engine, "connect", self._remember)

    def _remember(self, dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT pg_backend_pid()")
        self.pids.add(cursor.fetchone()[0])
        cursor.close()

    def start(self) -> None:
        self.pids.clear()

    def each(self) -> list[float] | None:
        """Each backend's CPU seconds (None when they cannot be read)."""
        try:
            stats = [Path(f"/proc/{pid}/stat").read_text() for pid in self.pids]
        except OSError:
            return None
        seconds = []
        for stat in stats:
            fields = stat.rsplit(")", 1)[1].split()
            seconds.append((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
        return seconds or None

    def seconds(self) -> float | None:
        each = self.each()
        return sum(each) if each else None


def run(label: str, url: str | None, folder: Path, count: int, old: bool) -> None:
    settings = make_settings(folder, 25, 1, url)
    engine = db.make_engine(url or settings.database.url)
    server_cpu = ServerCpu(engine) if url else None
    db.upgrade(engine)
    started = time.perf_counter()
    add_subscribers(engine, settings, count)
    print(
        f"{label}: inserted {count:,} subscribers in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    issue = load_bench_issue(settings)
    engine.dispose()  # from here on, only the planner's connections count
    if server_cpu:
        server_cpu.start()
    started, client = time.perf_counter(), time.process_time()
    report = plan_campaign(engine, settings, issue)
    new_seconds = time.perf_counter() - started
    cpu = f"our process's CPU {time.process_time() - client:.1f} s"
    each = server_cpu.each() if server_cpu else None
    if each is not None:
        # A plan in parts runs on several backends at once: on an idle machine its wall time
        # is about the busiest one's CPU, which a loaded machine moves much less.
        cpu += f", the server's CPU {sum(each):.1f} s"
        if len(each) > 1:
            cpu += f" over {len(each)} backends, the busiest {max(each):.1f} s"
    print(
        f"  set-based: planned {report.new_rows:,} deliveries in {new_seconds:.1f} s "
        f"({report.new_rows / new_seconds:,.0f}/s; {cpu}; load average "
        f"{os.getloadavg()[0]:.1f}; target ≤ 10 s for 1,000,000)",
        flush=True,
    )
    if old:
        rows = planned_rows(engine)
        clear(engine)
        started = time.perf_counter()
        planned = plan_row_by_row(engine, settings, issue)
        old_seconds = time.perf_counter() - started
        same = "same rows" if planned_rows(engine) == rows else "DIFFERENT ROWS"
        print(
            f"  row by row (the old planner): {planned:,} in {old_seconds:.1f} s; "
            f"set-based is {old_seconds / new_seconds:.1f}× faster ({same})"
        )
        if same != "same rows":
            sys.exit("the two planners disagree")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument(
        "--databases", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite", "postgresql"]
    )
    parser.add_argument("--postgres-url", default=os.environ.get("NEWSLETTER_TEST_DATABASE_URL"))
    parser.add_argument("--no-old", action="store_true", help="Skip the row-by-row reference.")
    args = parser.parse_args()
    # A stopped run (Ctrl-C, `timeout`) still drops its PostgreSQL schema (the finally below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))
    os.environ.setdefault("NEWSLETTER_SECRET_KEY", "bench-secret")
    for name in args.databases:
        with tempfile.TemporaryDirectory() as folder:
            if name == "sqlite":
                run("SQLite", None, Path(folder), args.subscribers, not args.no_old)
                continue
            if not args.postgres_url:
                print("PostgreSQL: skipped (give --postgres-url or NEWSLETTER_TEST_DATABASE_URL)")
                continue
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            admin = create_engine(args.postgres_url)
            with admin.begin() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            separator = "&" if "?" in args.postgres_url else "?"
            url = f"{args.postgres_url}{separator}options=-csearch_path%3D{schema}"
            try:
                run("PostgreSQL", url, Path(folder), args.subscribers, not args.no_old)
            finally:
                with admin.begin() as connection:
                    connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()


if __name__ == "__main__":
    main()
