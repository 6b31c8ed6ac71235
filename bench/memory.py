"""Memory and planning time at scale: plan and send to N subscribers, print the peak RSS.

    python bench/memory.py                      # 1,000,000 subscribers (about 15–20 minutes)
    python bench/memory.py --subscribers 100000 1000000   # show that memory stays flat

Each size runs in a fresh process: subscribers are inserted by a child process first (so their
creation does not count), then the measured process plans the campaign and sends every message
over SMTP to bench/fastsink.py, which discards them. Peak RSS is the kernel's high-water mark
(`ru_maxrss`, what `/usr/bin/time -v` reports as "Maximum resident set size"). Planning is
set-based (one INSERT … SELECT, `store.planning`): no subscriber passes through Python, so it
adds nothing to the peak. Targets: peak ≤ 80 MB and flat as subscribers grow (the samples every
50,000 sent stay within a few MB); planning 1M deliveries ≤ 10 s (`bench/planning.py` compares
it with the row-by-row planner and measures PostgreSQL too).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import add_subscribers
from common import fast_sink
from common import load_bench_issue
from common import make_settings

from newsletter.store import engine as db


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def populate(folder: str, count: int) -> None:
    settings = make_settings(Path(folder), 25, 1)  # nothing is sent while populating
    engine = db.make_engine(settings.database.url)
    db.upgrade(engine)
    add_subscribers(engine, settings, count)
    engine.dispose()


def measure(folder: str, count: int, connections: int, results) -> None:
    from newsletter.sending.plan import plan_campaign
    from newsletter.sending.runner import CampaignRunner

    with fast_sink() as (port, received):
        settings = make_settings(Path(folder), port, connections)
        engine = db.make_engine(settings.database.url)
        issue = load_bench_issue(settings)
        start_mb = peak_mb()
        started = time.perf_counter()
        plan = plan_campaign(engine, settings, issue)
        plan_seconds = time.perf_counter() - started
        plan_mb = peak_mb()
        samples: list[float] = []

        def progress(report, _step) -> None:
            if report.sent % 50_000 == 0:
                samples.append(peak_mb())

        started = time.perf_counter()
        report = CampaignRunner(engine, settings, issue, on_progress=progress).run()
        send_seconds = time.perf_counter() - started
        engine.dispose()
    results.put(
        {
            "subscribers": count,
            "planned": plan.new_rows,
            "plan_seconds": plan_seconds,
            "sent": report.sent,
            "send_seconds": send_seconds,
            "start_mb": start_mb,
            "plan_mb": plan_mb,
            "peak_mb": peak_mb(),
            "samples": samples,
            "received": received[0] if received else None,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    os.environ.setdefault("NEWSLETTER_SECRET_KEY", "bench-secret")
    context = multiprocessing.get_context("spawn")
    for count in args.subscribers:
        with tempfile.TemporaryDirectory() as folder:
            print(f"{count:,} subscribers: inserting…", flush=True)
            child = context.Process(target=populate, args=(folder, count))
            child.start()
            child.join()
            if child.exitcode:
                sys.exit(f"inserting subscribers failed (exit {child.exitcode})")
            results = context.Queue()
            child = context.Process(target=measure, args=(folder, count, args.connections, results))
            child.start()
            child.join()
            if child.exitcode:
                sys.exit(f"the measured run failed (exit {child.exitcode})")
            result = results.get()
        rate = result["sent"] / result["send_seconds"]
        print(
            f"  planned {result['planned']:,} deliveries in {result['plan_seconds']:.1f} s "
            f"(target ≤ 10 s for 1M)"
        )
        print(
            f"  sent {result['sent']:,} in {result['send_seconds']:.0f} s ({rate:,.0f}/s); "
            f"sink received {result['received']:,}"
        )
        samples = ", ".join(f"{mb:.0f}" for mb in result["samples"][:12])
        spread = max(result["samples"]) - min(result["samples"]) if result["samples"] else 0.0
        verdict = "within" if result["peak_mb"] <= 80 else "OVER"
        print(
            f"  peak RSS: {result['peak_mb']:.0f} MB, {verdict} the 80 MB target (after start-up "
            f"{result['start_mb']:.0f} MB, after planning {result['plan_mb']:.0f} MB, planning "
            f"added {result['plan_mb'] - result['start_mb']:.0f} MB; every 50k sent: {samples}; "
            f"spread while sending {spread:.0f} MB)"
        )


if __name__ == "__main__":
    main()
