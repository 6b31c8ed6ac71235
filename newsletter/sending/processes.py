"""`[smtp] processes`: one send shared by N sending processes, each with its own connections.

Python threads share one interpreter lock, so one process cannot use both cores of a small
server however many connections it opens. With `processes = N` the planned campaign is sent
by N forked processes, each a `CampaignRunner` with `[smtp] connections` connections of its
own, claiming its own batches from the shared ledger (the same claims that let several
workers share a PostgreSQL database; SQLite serializes them). The parent only gathers their
progress and reports. A process that finds nothing left but rows its siblings hold ends
instead of waiting for their leases; Ctrl-C reaches every process (one process group) and a
SIGTERM to the parent is passed on, so all drain; if the parent is killed the kernel kills
the children too (Linux), so a crash is one crash, bounded as in `sending.durable`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine

from newsletter.errors import SendError
from newsletter.sending.report import ProgressCallback
from newsletter.sending.report import SendReport
from newsletter.sending.runner import CampaignRunner
from newsletter.store import ledger
from newsletter.store.engine import session_factory
from newsletter.store.models import Campaign

RunnerFactory = Callable[[ProgressCallback, frozenset[str]], CampaignRunner]
PROGRESS_EVERY = 0.1  # seconds between a child's progress messages


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)


def _child(index: int, make_runner: RunnerFactory, engine: Engine, pids, go, messages) -> None:
    _die_with_parent()
    engine.dispose(close=False)  # the parent's pooled connections stay the parent's
    go.wait()
    host = socket.gethostname()
    siblings = frozenset(f"{host}:{pid}" for pid in pids if pid != os.getpid())
    last = 0.0

    def progress(report: SendReport, _step: int) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY:
            last = now
            messages.put(("progress", index, report.done, report.total))

    try:
        report = make_runner(progress, siblings).run()
    except BaseException as error:
        messages.put(("error", index, f"{type(error).__name__}: {error}"))
        messages.close()
        messages.join_thread()
        os._exit(1)
    messages.put(("report", index, report))
    messages.close()
    messages.join_thread()
    os._exit(0)


def run_processes(
    engine: Engine,
    month: str,
    processes: int,
    make_runner: RunnerFactory,
    *,
    stop: threading.Event | None = None,
    on_progress: ProgressCallback | None = None,
) -> SendReport:
    """Send with `processes` forked runners; their reports summed (see the module)."""
    context = multiprocessing.get_context("fork")
    messages = context.Queue()
    pids = context.Array("i", processes)
    go = context.Event()
    started = time.monotonic()
    children = []
    for index in range(processes):
        child = context.Process(
            target=_child,
            args=(index, make_runner, engine, pids, go, messages),
            name=f"sender-{index}",
        )
        child.start()
        pids[index] = child.pid or 0
        children.append(child)
    go.set()
    combined = SendReport(month)
    progress: dict[int, tuple[int, int]] = {}
    reports: dict[int, SendReport] = {}
    errors: list[str] = []
    forwarded = False
    while len(reports) + len(errors) < processes:
        if stop is not None and stop.is_set() and not forwarded:
            forwarded = True  # a SIGTERM to us: every child drains too
            for child in children:
                if child.is_alive() and child.pid:
                    os.kill(child.pid, signal.SIGTERM)
        try:
            kind, index, *rest = messages.get(timeout=0.2)
        except queue.Empty:
            if not any(child.is_alive() for child in children) and messages.empty():
                errors.append("a sending process ended without a report")
                break
            continue
        if kind == "progress":
            progress[index] = (rest[0], rest[1])
        elif kind == "report":
            reports[index] = rest[0]
            progress[index] = (rest[0].done, rest[0].total)
        else:
            errors.append(rest[0])
        if on_progress is not None:
            combined.done = sum(done for done, _ in progress.values())
            combined.total = max(combined.done, *(total for _, total in progress.values()))
            on_progress(combined, 0)
    for child in children:
        child.join()
    if errors:
        raise SendError(f"{month}: a sending process failed: {errors[0]}")
    return _combine(engine, month, list(reports.values()), time.monotonic() - started)


def _combine(engine: Engine, month: str, reports: list[SendReport], elapsed: float) -> SendReport:
    """One report for the whole send: counts summed, the campaign's state read afresh."""
    combined = SendReport(month, elapsed=elapsed)
    for report in reports:
        combined.total = max(combined.total, report.total)  # each counted every open row
        for name in ("sent", "failed", "skipped", "retried", "throttled", "done"):
            setattr(combined, name, getattr(combined, name) + getattr(report, name))
        combined.render_seconds += report.render_seconds
        combined.wait_seconds = max(combined.wait_seconds, report.wait_seconds)
        combined.variants_rendered = max(combined.variants_rendered, report.variants_rendered)
        if report.paused and not combined.paused:
            combined.paused, combined.stopped_reason = True, report.stopped_reason
        elif report.stopped_reason and not combined.stopped_reason:
            combined.stopped_reason = report.stopped_reason
    with session_factory(engine)() as session:
        campaign = ledger.find_campaign(session, month)
        assert isinstance(campaign, Campaign)
        combined.finished = ledger.finish_if_complete(session, campaign)
        combined.counts = ledger.status_counts(session, campaign.id)
        session.commit()
    if not combined.finished:
        combined.leftover = [line for report in reports for line in report.leftover]
    combined.total = max(combined.total, combined.done)
    return combined
