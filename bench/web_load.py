"""The web app during a send: latency and errors under load, and what the load costs the send.

    python bench/web_load.py [--subscribers 20000] [--rate 200] [--seconds 60] [--workers 1]
    python bench/web_load.py --cost-only   # step 0 alone: each request's cost in-process

On the default configuration (SQLite, WAL) with bench/fastsink.py as the SMTP server:

0. Each kind of request in this process, one at a time, no load: the app's own cost (a
   /subscribe with its confirmation email delivered).
1. `newsletter send` of one three-summary month to `--subscribers` readers, alone: its rate.
2. The same send on a fresh copy of the database while `newsletter serve` takes `--rate`
   requests a second for `--seconds` seconds, offered on a fixed schedule (open loop: a slow
   answer does not slow the offer), mixed: half preference pages (GET /preferences/<token>),
   a quarter /subscribe POSTs (a new address each, with the form's CSRF token and cookie) and
   a quarter one-click unsubscribes (POST /u/<token>, RFC 8058) of readers of the send.

Prints the send's rate alone and under load (target: under load ≥ 0.8 × alone), and the
requests' p50/p99 latency and errors (any status but 200, a failed connection, or "database is
locked" in the server's log), for the requests made while the send ran and for the whole run
(target: p99 ≤ 50 ms, zero errors). The load generator is this process (asyncio, httpx2) and
shares the machine with the server and the send.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import httpx2 as httpx
from common import REPO
from common import add_subscribers
from common import fast_sink
from common import free_port

from newsletter.config import load_settings
from newsletter.store import engine as db
from newsletter.tokens import PREFERENCES
from newsletter.tokens import UNSUBSCRIBE
from newsletter.tokens import Signer

NEWSLETTER = Path(sys.executable).parent / "newsletter"
MONTH = "2026-10"  # three summaries
CONFIG = """
[newsletter]
name = "Bench Digest"
from_email = "digest@example.org"
base_url = "http://127.0.0.1:{web_port}"
postal_address = "1 Example Street, Example Town"
admin_email = "admin@example.org"

[content]
dir = "content"

[templates]
dir = "{templates}"

[database]
url = "sqlite:///{database}"

[delivery]
transport = "smtp"
batch_size = 500

[smtp]
host = "127.0.0.1"
port = {smtp_port}
connections = 4

[web]
# The load comes from one address: the per-address/IP limits would answer 429 (correctly).
subscribe_per_ip_per_hour = 1000000
subscribe_per_address_per_hour = 1000000
"""


@dataclass
class Results:
    latencies: list[tuple[float, float, str]] = field(default_factory=list)  # (start, s, kind)
    errors: list[str] = field(default_factory=list)


def write_project(folder: Path, database: str, smtp_port: int, web_port: int) -> Path:
    shutil.copytree(REPO / "content", folder / "content", dirs_exist_ok=True)
    config = folder / f"{Path(database).stem}.toml"
    config.write_text(
        CONFIG.format(
            web_port=web_port,
            templates=REPO / "templates",
            database=database,
            smtp_port=smtp_port,
        ),
        encoding="utf-8",
    )
    return config


def send(config: Path, folder: Path) -> tuple[int, float]:
    """Run `newsletter send MONTH --yes`; (messages sent, the send's own wall time)."""
    done = subprocess.run(
        [str(NEWSLETTER), "--config", str(config), "send", MONTH, "--yes"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    report = re.search(r"sent (\d+), .*wall time ([\d.]+)s", done.stdout)
    if done.returncode != 0 or report is None:
        raise SystemExit(f"send failed ({done.returncode}): {done.stdout[-800:]}{done.stderr}")
    return int(report.group(1)), float(report.group(2))


async def csrf_client(base: str) -> tuple[httpx.AsyncClient, str]:
    """A client holding a session cookie, and the subscribe form's CSRF token for it."""
    client = httpx.AsyncClient(base_url=base, timeout=30)
    page = await client.get("/subscribe")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None, page.text[:500]
    return client, token.group(1)


async def offer_load(
    base: str, rate: int, seconds: float, signer: Signer, people: list[tuple[int, str]]
) -> Results:
    """`rate` requests a second for `seconds`, on a fixed schedule, over a pool of clients."""
    results = Results()
    # Idle connections are dropped before uvicorn drops them (its keep-alive is 5 s): a request
    # sent on a connection the server is closing would fail through no fault of the app.
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=200, keepalive_expiry=3.0)
    plain = httpx.AsyncClient(base_url=base, timeout=30, limits=limits)
    form_client, csrf = await csrf_client(base)
    preference_tokens = [signer.make(PREFERENCES, i, email) for i, email in people]
    unsubscribe_tokens = [signer.make(UNSUBSCRIBE, i, email) for i, email in people]
    counter = {"subscribe": 0, "unsubscribe": 0}

    async def one(n: int) -> None:
        kind = ("preferences", "subscribe", "preferences", "unsubscribe")[n % 4]
        started = time.perf_counter()
        try:
            if kind == "preferences":
                token = preference_tokens[(n * 7919) % len(preference_tokens)]
                response = await plain.get(f"/preferences/{token}")
            elif kind == "subscribe":
                counter["subscribe"] += 1
                data = {
                    "email": f"load{counter['subscribe']}-{secrets.token_hex(3)}@example.com",
                    "name": "Load Test",
                    "topic_mode": "all",
                    "csrf_token": csrf,
                }
                response = await form_client.post("/subscribe", data=data)
            else:
                token = unsubscribe_tokens[counter["unsubscribe"] % len(unsubscribe_tokens)]
                counter["unsubscribe"] += 1
                response = await plain.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                results.errors.append(f"{kind}: HTTP {response.status_code}")
            results.latencies.append((started, elapsed, kind))
        except httpx.HTTPError as error:
            results.errors.append(f"{kind}: {type(error).__name__}: {error}")

    tasks = []
    begin = time.perf_counter()
    for n in range(int(rate * seconds)):
        delay = begin + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n)))
    await asyncio.gather(*tasks)
    await plain.aclose()
    await form_client.aclose()
    return results


def page_cost(config: Path, signer: Signer, people: list[tuple[int, str]]) -> str:
    """The app's own cost of each kind of request, in this process, one at a time (no network,
    no load): the median over a few hundred, after a warm-up."""
    from newsletter.web import create_app

    app = create_app(load_settings(config))
    transport = httpx.ASGITransport(app=app)
    flush = getattr(app.state.ctx.mailer, "flush", lambda: None)
    timings: dict[str, list[float]] = {"preferences": [], "unsubscribe": [], "subscribe": []}

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            page = await client.get("/subscribe")
            found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert found is not None, page.text[:500]
            sample = people[:600]
            for n, (i, email) in enumerate(sample):
                kind = ("preferences", "unsubscribe", "preferences", "subscribe")[n % 4]
                started = time.perf_counter()
                if kind == "preferences":
                    answer = await client.get(f"/preferences/{signer.make(PREFERENCES, i, email)}")
                elif kind == "unsubscribe":
                    answer = await client.post(
                        f"/u/{signer.make(UNSUBSCRIBE, i, email)}",
                        data={"List-Unsubscribe": "One-Click"},
                    )
                else:
                    answer = await client.post(
                        "/subscribe",
                        data={
                            "email": f"cost{n}@example.com",
                            "name": "Load Test",
                            "topic_mode": "all",
                            "csrf_token": found.group(1),
                        },
                    )
                    # Its confirmation mail too, wherever the app sends it from.
                    await asyncio.to_thread(flush)
                assert answer.status_code == 200, answer.text[:300]
                if n >= len(sample) // 10:  # the first ones warm caches up
                    timings[kind].append(time.perf_counter() - started)

    asyncio.run(run())
    mailer = app.state.ctx.mailer
    if hasattr(mailer, "kept"):  # the outbox thread and its kept SMTP connection
        mailer.outbox.stop()
        mailer.kept.close()
    app.state.ctx.engine.dispose()
    return ", ".join(
        f"{kind} {statistics.median(values) * 1000:.2f} ms" for kind, values in timings.items()
    )


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process `pid` and its live children (the workers of
    `serve --workers N`), from /proc (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(process_cpu(int(child)) for child in children)


def wait_until_up(base: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"newsletter serve exited: {server.stderr and server.stderr.read()}")
        try:
            if httpx.get(base + "/subscribe", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("newsletter serve did not answer")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def describe(label: str, samples: list[tuple[float, float, str]]) -> str:
    times = [elapsed for _start, elapsed, _kind in samples]
    if not times:
        return f"{label}: no requests"
    kinds = ", ".join(
        f"{kind} p99 {percentile([e for _s, e, k in samples if k == kind], 0.99) * 1000:.0f}"
        for kind in ("preferences", "subscribe", "unsubscribe")
    )
    return (
        f"{label}: {len(times)} requests, p50 {statistics.median(times) * 1000:.1f} ms, "
        f"p99 {percentile(times, 0.99) * 1000:.1f} ms, max {max(times) * 1000:.0f} ms ({kinds} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=200, help="requests per second offered")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=1, help="`newsletter serve --workers`")
    parser.add_argument("--no-send", action="store_true", help="the load alone, no send")
    parser.add_argument(
        "--cost-only", action="store_true", help="only the in-process cost of each request"
    )
    options = parser.parse_args()
    os.environ.setdefault("NEWSLETTER_SECRET_KEY", secrets.token_urlsafe(32))
    signer = Signer(os.environ["NEWSLETTER_SECRET_KEY"])
    with tempfile.TemporaryDirectory() as tmp, fast_sink() as (smtp_port, _count):
        folder = Path(tmp)
        web_port = free_port()
        alone = write_project(folder, "alone.db", smtp_port, web_port)
        loaded = write_project(folder, "loaded.db", smtp_port, web_port)
        settings = load_settings(alone)
        engine = db.make_engine(settings.database.url)
        db.upgrade(engine)
        add_subscribers(engine, settings, options.subscribers)
        engine.dispose()
        shutil.copy(folder / "alone.db", folder / "loaded.db")
        people = [(i, f"reader{i}@example.net") for i in range(1, options.subscribers + 1)]

        print(f"one request in-process, no load (median): {page_cost(alone, signer, people)}")
        if options.cost_only:
            return
        shutil.copy(folder / "loaded.db", folder / "alone.db")  # undo its unsubscribes
        if options.no_send:
            sent_alone, seconds_alone = 0, 1.0
        else:
            sent_alone, seconds_alone = send(alone, folder)
            print(
                f"send alone: {sent_alone} messages in {seconds_alone:.1f} s = "
                f"{sent_alone / seconds_alone:,.0f}/s"
            )
        rate_alone = sent_alone / seconds_alone

        log = (folder / "serve.log").open("w+")
        server = subprocess.Popen(
            [str(NEWSLETTER), "--config", str(loaded), "serve", "--port", str(web_port)]
            + (["--workers", str(options.workers)] if options.workers > 1 else []),
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{web_port}"
        try:
            wait_until_up(base, server)
            with_load: dict[str, float] = {}

            async def both() -> Results:
                load = asyncio.create_task(
                    offer_load(base, options.rate, options.seconds, signer, people)
                )
                with_load["start"] = time.perf_counter()
                with_load["cpu_before"] = process_cpu(server.pid)
                if options.no_send:
                    with_load["sent"], with_load["seconds"] = 0, 1.0
                else:
                    with_load["sent"], with_load["seconds"] = await asyncio.to_thread(
                        send, loaded, folder
                    )
                with_load["end"] = time.perf_counter()
                finished = await load
                with_load["cpu"] = process_cpu(server.pid) - with_load["cpu_before"]
                return finished

            results = asyncio.run(both())
        finally:
            server.terminate()
            server.wait(timeout=60)
        log.seek(0)
        locked = log.read().count("database is locked")
        rate_loaded = with_load["sent"] / with_load["seconds"]
        print() if options.no_send else print(
            f"send under load: {with_load['sent']:.0f} messages in {with_load['seconds']:.1f} s "
            f"= {rate_loaded:,.0f}/s; ratio to alone {rate_loaded / max(rate_alone, 1):.2f} "
            "(target ≥ 0.80)"
        )
        during = [
            sample
            for sample in results.latencies
            if with_load["start"] <= sample[0] <= with_load["end"]
        ]
        print(describe("during the send", during) + "   (target p99 ≤ 50 ms)")
        print(
            describe(f"whole run ({options.rate}/s for {options.seconds:.0f} s)", results.latencies)
        )
        offered = int(options.rate * options.seconds)
        answered = len(results.latencies)
        print(
            f"server CPU: {with_load['cpu']:.1f} s for {answered} answers = "
            f"{with_load['cpu'] / max(answered, 1) * 1000:.2f} ms per request"
        )
        print(
            f"errors: {len(results.errors)} of {offered} requests; "
            f"'database is locked' in the server log: {locked}   (target 0)"
        )
        for error in sorted(set(results.errors))[:10]:
            print(f"  {error}")


if __name__ == "__main__":
    main()
