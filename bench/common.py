"""Shared set-up for the benchmarks: a temp project, many subscribers fast, the fast sink."""

from __future__ import annotations

import contextlib
import random
import shutil
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy import select

from newsletter.config import Settings
from newsletter.config import settings_from_dict
from newsletter.content.taxonomy import default_taxonomy
from newsletter.store import engine as db
from newsletter.store.models import MailingList
from newsletter.store.models import Subscriber
from newsletter.store.models import SubscriberTopic
from newsletter.store.models import Subscription
from newsletter.store.models import utcnow
from newsletter.store.subscribers import ensure_lists

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def fast_sink() -> Iterator[tuple[int, list[int]]]:
    """Run bench/fastsink.py in its own process; yields (port, [count after exit])."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(BENCH / "fastsink.py"), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    count: list[int] = []
    try:
        yield port, count
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
        count.append(int(output.strip().splitlines()[-1]))


def make_settings(folder: Path, port: int, connections: int, url: str | None = None) -> Settings:
    """Settings for a temp project with the repo's content, sending by SMTP to `port`."""
    shutil.copytree(REPO / "content", folder / "content", dirs_exist_ok=True)
    data = {
        "newsletter": {"name": "Bench Digest", "from_email": "digest@example.org"},
        "database": {"url": url or "sqlite:///bench.db"},
        "delivery": {"transport": "smtp", "batch_size": 500},
        "smtp": {"host": "127.0.0.1", "port": port, "connections": connections},
        "templates": {"dir": str(REPO / "templates")},
    }
    return settings_from_dict(data, folder)


def add_subscribers(engine, settings: Settings, count: int, seed: int = 7) -> None:
    """Insert `count` active subscribers with random topic sets, in bulk (not the import path)."""
    chance = random.Random(seed)
    slugs = [t.slug for t in default_taxonomy().topics]
    with db.session_factory(engine)() as session:
        ensure_lists(session, settings)
        session.commit()
        list_id = session.scalar(select(MailingList.id).where(MailingList.slug == "digest"))
        start = session.scalar(select(Subscriber.id).order_by(Subscriber.id.desc())) or 0
    now = utcnow()
    chunk = 10_000
    with engine.begin() as connection:
        for first in range(0, count, chunk):
            people, topics, memberships = [], [], []
            for n in range(first, min(count, first + chunk)):
                subscriber_id = start + n + 1
                all_topics = chance.random() < 0.3
                people.append(
                    {
                        "id": subscriber_id,
                        "email": f"reader{subscriber_id}@example.net",
                        "email_key": f"reader{subscriber_id}@example.net",
                        "name": f"Reader {subscriber_id}",
                        "status": "active",
                        "all_topics": all_topics,
                        "created_at": now,
                        "updated_at": now,
                        "confirmed_at": now,
                        "consent_source": "bench",
                        "consent_ip": "",
                    }
                )
                if not all_topics:
                    for slug in chance.sample(slugs, chance.randint(1, 5)):
                        topics.append({"subscriber_id": subscriber_id, "topic": slug})
                memberships.append(
                    {
                        "subscriber_id": subscriber_id,
                        "list_id": list_id,
                        "status": "subscribed",
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            connection.execute(insert(Subscriber), people)
            connection.execute(insert(SubscriberTopic), topics)
            connection.execute(insert(Subscription), memberships)


def load_bench_issue(settings: Settings, month: str = "2026-10"):
    """The demo month with three summaries."""
    from newsletter.content.reader import load_issue

    return load_issue(settings.content.dir, month, default_taxonomy(), settings.newsletter.name)


@contextlib.contextmanager
def scratch_schema(url: str) -> Iterator[str]:
    """A PostgreSQL schema of its own in the database at `url`, dropped afterwards; yields the
    URL that selects it (subprocesses given that URL use it too)."""
    import uuid

    from sqlalchemy import create_engine
    from sqlalchemy import text

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in url else "?"
    try:
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def plain_smtplib(port: int, message: bytes, count: int, connections: int) -> float:
    """Seconds for plain smtplib to send `message` `count` times over `connections` threads
    (the naive reference every send benchmark compares against)."""
    shares = [
        count // connections + (1 if i < count % connections else 0) for i in range(connections)
    ]

    def send(share: int) -> None:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.ehlo()
            for _ in range(share):
                smtp.sendmail("digest@example.org", ["reader@example.net"], message)

    threads = [threading.Thread(target=send, args=(share,)) for share in shares]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started
