"""Outbox delivery benchmark: messages/s to a local SMTP sink, one worker vs two. Prints markdown.

    .venv/bin/python -m bench.bench_outbox                      # SQLite, plus PostgreSQL if reachable
    .venv/bin/python -m bench.bench_outbox --messages 4000 --pg none

Each worker is its own process (its own interpreter, database connection and SMTP
session), as in production; the SMTP sink is aiosmtpd on loopback in the parent process.
Timing starts when every worker has started up and stops when the last one is done.
Two rounds: an instant sink (CPU-bound: rendering, SMTP on both ends and the database
share the machine's cores) and a sink that takes --latency-ms per message, standing in
for a real relay's round trip (I/O-bound: where a second worker should pay off).
PostgreSQL: --pg URL (default $BENCH_DATABASE_URL, else
postgresql+psycopg://postgres@127.0.0.1:5432/portal_bench_outbox; dropped and recreated).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import socket
import tempfile
import threading
import time
from pathlib import Path

from bench.common import fresh_database

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/portal_bench_outbox"


def _config(url: str, instance: str) -> dict:
    return {
        "PORTAL_ENV": "test",
        "SECRET_KEY": "bench-" + "x" * 32,
        "PHI_KEK": "bench-kek-" + "y" * 32,
        "DATABASE_URL": url,
        "INSTANCE_PATH": instance,
        "RATELIMIT_ENABLED": False,
    }


def _fresh_database(url: str | None, tmp: Path) -> str:
    return fresh_database(url, tmp / "bench_outbox.db")


def _prepare(url: str, instance: str) -> None:
    from flask_migrate import upgrade

    from portal import create_app
    from portal.extensions import db

    app = create_app(_config(url, instance))
    with app.app_context():
        upgrade()
        db.engine.dispose()


def _enqueue(url: str, instance: str, n: int, run: str) -> None:
    from portal import create_app
    from portal.extensions import db
    from portal.notifications.services import enqueue

    app = create_app(_config(url, instance))
    with app.app_context():
        for i in range(n):
            enqueue(
                f"partner{i}@example.com",
                "referral_status_changed",
                dedupe_key=f"{run}-{i}",
                reference=f"RB-{i:08d}",
                status_label="Scheduled",
                link=f"https://portal.example/r/{i}",
            )
            if i % 500 == 499:
                db.session.commit()
        db.session.commit()
        db.engine.dispose()


def _worker(url: str, instance: str, port: int, batch: int, ready, go, results) -> None:
    from portal import create_app
    from portal.extensions import db
    from portal.notifications.transports import SmtpTransport
    from portal.notifications.worker import Policy, Worker

    app = create_app(_config(url, instance))
    with app.app_context():
        worker = Worker(
            SmtpTransport("127.0.0.1", port, security="none", timeout=10), Policy(batch_size=batch, lease_seconds=300)
        )
        db.session.execute(db.text("SELECT 1"))  # connect before the clock starts
        db.session.commit()
        ready.release()
        go.wait()
        totals = worker.run(once=True)
        results.put((totals.sent, time.perf_counter()))
        db.engine.dispose()


class _Sink:
    """Counts messages; ``latency`` seconds before each reply stand in for a real relay's round trip."""

    def __init__(self, latency: float = 0.0):
        self.count = 0
        self.latency = latency
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.latency:
            await asyncio.sleep(self.latency)
        with self.lock:
            self.count += 1
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(url: str, instance: str, port: int, sink: _Sink, workers: int, n: int, batch: int, run: str) -> float:
    _enqueue(url, instance, n, run)
    ctx = mp.get_context("spawn")
    ready, go, results = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    before = sink.count
    procs = [ctx.Process(target=_worker, args=(url, instance, port, batch, ready, go, results)) for _ in range(workers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    start = time.perf_counter()
    go.set()
    outcomes = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    sent = sum(s for s, _ in outcomes)
    elapsed = max(t for _, t in outcomes) - start
    if sent != n or sink.count - before != n:
        raise SystemExit(f"expected {n} deliveries, workers sent {sent}, the sink got {sink.count - before}")
    return n / elapsed


def bench(label: str, url: str | None, n: int, batch: int, repeats: int, latency_ms: int) -> list[str]:
    from aiosmtpd.controller import Controller

    tmp = Path(tempfile.mkdtemp(prefix="bench-outbox-"))
    db_url = _fresh_database(url, tmp)
    _prepare(db_url, str(tmp))
    sink, port = _Sink(latency_ms / 1000), _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        tag = f"{latency_ms}ms"
        one = max(measure(db_url, str(tmp), port, sink, 1, n, batch, f"{tag}-one-{r}") for r in range(repeats))
        two = max(measure(db_url, str(tmp), port, sink, 2, n, batch, f"{tag}-two-{r}") for r in range(repeats))
    finally:
        controller.stop()
    return [f"| {label} | {latency_ms} ms | {n} | {batch} | {one:,.0f} | {two:,.0f} | {two / one:.2f}x |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="per run with an instant sink")
    parser.add_argument(
        "--latency-ms",
        type=int,
        default=20,
        help="a second round with this much delay per message at the sink (0: skip)",
    )
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2, help="best of N runs per configuration")
    parser.add_argument(
        "--pg", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG), help='PostgreSQL URL, or "none"'
    )
    args = parser.parse_args()

    rows = [
        "| database | sink delay | messages | batch | 1 worker (msg/s) | 2 workers (msg/s) | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    # With a delay, fewer messages keep the run short: ~n x delay seconds for one worker.
    rounds = [(0, args.messages)] + (
        [(args.latency_ms, max(100, 12_000 // args.latency_ms))] if args.latency_ms else []
    )
    databases = [("SQLite (WAL)", None)] + ([("PostgreSQL", args.pg)] if args.pg != "none" else [])
    for label, url in databases:
        for latency_ms, n in rounds:
            try:
                rows += bench(label, url, n, args.batch, args.repeats, latency_ms)
            except Exception as exc:  # PostgreSQL not reachable: say so, keep the other figures
                rows.append(f"| {label} | {latency_ms} ms | — | — | not run: {type(exc).__name__} | | |")
                break
    print(
        f"Outbox delivery, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPU(s), aiosmtpd sink on loopback, template `referral_status_changed`:\n"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
