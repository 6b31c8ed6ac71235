"""Send throughput: our sender against plain smtplib over the same connections.

    python bench/send_throughput.py [--subscribers 20000] [--connections 4]

Both send to bench/fastsink.py in its own process. Ours: plan N subscribers with random topic
sets for a three-summary issue, then time `CampaignRunner.run()` — claiming from the SQLite
ledger, rendering each variant once, building each message, SMTP, recording results. Baseline:
the same number of one pre-built message with `smtplib.SMTP.sendmail`, one thread per
connection. Prints both rates and their ratio (target: ratio ≥ 0.8, ours ≥ 1,000 messages/s).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from common import add_subscribers
from common import fast_sink
from common import load_bench_issue
from common import make_settings
from common import plain_smtplib

from newsletter.message.preview import preview_parts
from newsletter.personalize import make_recipient
from newsletter.sending.plan import plan_campaign
from newsletter.sending.runner import CampaignRunner
from newsletter.store import engine as db


def ours(folder: Path, port: int, count: int, connections: int) -> tuple[float, int, dict]:
    settings = make_settings(folder, port, connections)
    engine = db.make_engine(settings.database.url)
    db.upgrade(engine)
    add_subscribers(engine, settings, count)
    issue = load_bench_issue(settings)
    started = time.perf_counter()
    plan = plan_campaign(engine, settings, issue)
    planned = time.perf_counter() - started
    runner = CampaignRunner(engine, settings, issue)
    started = time.perf_counter()
    report = runner.run()
    elapsed = time.perf_counter() - started
    engine.dispose()
    info = {
        "plan_seconds": planned,
        "variants": report.variants_rendered,
        "skipped_no_match": plan.skipped_no_match,
    }
    return elapsed, report.sent, info


def baseline(folder: Path, port: int, count: int, connections: int) -> float:
    settings = make_settings(folder, port, connections)
    issue = load_bench_issue(settings)
    recipient = make_recipient(settings, "reader@example.net", "Reader", None)
    message = preview_parts(settings, issue, recipient).eml.replace(b"\n", b"\r\n")
    return plain_smtplib(port, message, count, connections)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("NEWSLETTER_SECRET_KEY", "bench-secret")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with fast_sink() as (port, ours_count):
            elapsed, sent, info = ours(folder / "ours", port, args.subscribers, args.connections)
        with fast_sink() as (port, base_count):
            base_elapsed = baseline(folder / "base", port, sent, args.connections)
    our_rate = sent / elapsed
    base_rate = sent / base_elapsed
    print(f"subscribers: {args.subscribers:,}; connections: {args.connections}")
    print(
        f"planned in {info['plan_seconds']:.2f} s; {info['variants']} variants rendered; "
        f"{info['skipped_no_match']:,} skipped (no matching topic)"
    )
    print(f"ours:     {sent:,} messages in {elapsed:.2f} s = {our_rate:,.0f} messages/s")
    print(f"smtplib:  {sent:,} messages in {base_elapsed:.2f} s = {base_rate:,.0f} messages/s")
    print(f"ratio:    {our_rate / base_rate:.2f}  (target ≥ 0.8; ours target ≥ 1,000/s)")
    print(f"sink counted: ours {ours_count[0]:,}, smtplib {base_count[0]:,}")


if __name__ == "__main__":
    main()
