#!/usr/bin/env python3
"""PGQueuer peer benchmark: drain throughput, WAL per job and pickup latency.

Run with the venv made by setup.sh:
    DATABASE_URL=postgres://... "$(bench/peers/setup.sh | tail -n1)" bench/peers/pgqueuer_bench.py

DATABASE_URL names an existing, otherwise-empty database; PGQueuer's schema is installed there with
its own CLI (`python -m pgqueuer install --durability durable`, then `autovac`, as its tuning guide
asks). An earlier PGQueuer schema there is uninstalled first, so reruns start clean.

  drain:  JOBS (50,000) no-op jobs enqueued in one bulk call (PGQueuer's list enqueue); then PROCESSES
          (2) separate OS processes, each one PGQueuer QueueManager on its own asyncpg connection
          (uvloop) with BATCH (100), already connected, are released at once. Wall time from their
          release until the queue table is empty (PGQueuer deletes a job when it completes).
          WAL bytes per job: pg_wal_lsn_diff over the same span / JOBS (no CHECKPOINT is forced).
  pickup: with the consumers still running, PICKUP_RATE (200) jobs/s are enqueued one at a time
          (one transaction each, open loop) for PICKUP_SECONDS (10); each payload carries time.time()
          taken just before its enqueue call, and the consumer records time.time() when the entrypoint
          starts. p50 and p99 of the difference, in ms.

Knobs (env): JOBS, PROCESSES, BATCH, MAX_CONCURRENT (0 = PGQueuer's default, unlimited in-flight tasks;
200 or 1000 were slower here), DURABILITY (durable, the default and the fair one: Skipper's tables are
logged; balanced/volatile make PGQueuer's tables UNLOGGED), PICKUP_RATE, PICKUP_SECONDS, HARD_TIMEOUT.
Everything is bounded by HARD_TIMEOUT (180 s); consumers are stopped by PID in a finally block.
Logs go to stderr; the last line of stdout is one JSON object (with "error" on failure, exit 1).
"""
from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from importlib.metadata import version

JOBS = int(os.environ.get("JOBS", "50000"))
PROCESSES = int(os.environ.get("PROCESSES", "2"))
BATCH = int(os.environ.get("BATCH", "100"))
PICKUP_RATE = float(os.environ.get("PICKUP_RATE", "200"))
PICKUP_SECONDS = float(os.environ.get("PICKUP_SECONDS", "10"))
HARD_TIMEOUT = float(os.environ.get("HARD_TIMEOUT", "180"))
MAX_CONCURRENT = int(os.environ.get("MAX_CONCURRENT", "0"))  # 0: PGQueuer's default, unlimited
DURABILITY = os.environ.get("DURABILITY", "durable")  # durable | balanced | volatile (unlogged tables)
ENTRYPOINT = "noop"
POLL = 0.05  # s between cheap progress checks


def log(msg: str) -> None:
    print(f"pgqueuer-bench: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Consumer: one OS process, one QueueManager.


def consumer_main(index, dsn, counter, ready, go, latency_path, parent_pid, deadline) -> None:
    import uvloop

    uvloop.run(consume(index, dsn, counter, ready, go, latency_path, parent_pid, deadline))


async def consume(index, dsn, counter, ready, go, latency_path, parent_pid, deadline) -> None:
    import asyncpg
    from pgqueuer import AsyncpgDriver, Job, QueueManager, Queries

    connection = await asyncpg.connect(dsn=dsn)
    qm = QueueManager(Queries(AsyncpgDriver(connection)))
    latencies = open(latency_path, "a", buffering=1)

    @qm.entrypoint(ENTRYPOINT)
    async def noop(job: Job) -> None:
        # Pickup jobs carry their enqueue time; drain jobs carry nothing.
        if job.payload:
            latencies.write(f"{time.time() - float(job.payload.decode())}\n")
        counter.value += 1

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, qm.shutdown.set)
    loop.add_signal_handler(signal.SIGINT, qm.shutdown.set)

    async def watchdog() -> None:
        # Stop if the parent disappears or the run overstays its bound.
        while not qm.shutdown.is_set():
            if os.getppid() != parent_pid or time.time() > deadline:
                qm.shutdown.set()
            await asyncio.sleep(0.5)

    guard = asyncio.create_task(watchdog())
    ready.set()
    released = await loop.run_in_executor(None, go.wait, max(1.0, deadline - time.time()))
    try:
        if released and not qm.shutdown.is_set():
            # PGQueuer's defaults except batch_size: unlimited in-flight tasks (max_concurrent_tasks=None),
            # NOTIFY-driven wakeups with the 30 s polling fallback, 30 s heartbeat timeout.
            await qm.run(
                batch_size=BATCH,
                dequeue_timeout=timedelta(seconds=30),
                max_concurrent_tasks=MAX_CONCURRENT or None,
            )
    finally:
        guard.cancel()
        latencies.close()
        await connection.close()


# --------------------------------------------------------------------------------------------------
# Parent: schema, enqueue, measure.


def pgq_cli(dsn: str, *args: str) -> None:
    env = dict(os.environ, PGDSN=dsn)
    cmd = [sys.executable, "-m", "pgqueuer", *args]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {out.stderr.strip() or out.stdout.strip()}")
    log(f"pgqueuer {' '.join(args)}: {out.stderr.strip() or 'ok'}")


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(p / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


async def wait_until_empty(conn, counters, target: int, limit: float) -> bool:
    """Wait until the consumers ran `target` jobs and the queue table is empty.

    The consumers' shared counters are free to read; the table is counted only once they say all ran
    (completions are flushed in batches right after), plus once a second as a fallback.
    """
    last_db_check = time.monotonic()
    end = time.monotonic() + limit
    while time.monotonic() < end:
        now = time.monotonic()
        if sum(c.value for c in counters) >= target or now - last_db_check >= 1.0:
            last_db_check = now
            if await conn.fetchval("SELECT count(*) FROM pgqueuer") == 0:
                return True
        await asyncio.sleep(POLL)
    return False


async def run(dsn: str, state: dict, deadline: float) -> dict:
    import asyncpg
    from pgqueuer import Queries

    conn = await asyncpg.connect(dsn=dsn)
    try:
        if await conn.fetchval("SELECT to_regclass('pgqueuer') IS NOT NULL"):
            log("found an earlier PGQueuer schema; reinstalling it")
            pgq_cli(dsn, "uninstall")
        pgq_cli(dsn, "install", "--durability", DURABILITY)
        pgq_cli(dsn, "autovac")
        queries = Queries.from_asyncpg_connection(conn)

        # ---- consumers: start them, let them import and connect, hold them until the queue is full.
        ctx = mp.get_context("spawn")
        go = ctx.Event()
        counters = [ctx.RawValue("q", 0) for _ in range(PROCESSES)]
        readies = [ctx.Event() for _ in range(PROCESSES)]
        lat_paths = [os.path.join(state["tmp"], f"latency-{i}.txt") for i in range(PROCESSES)]
        for i in range(PROCESSES):
            p = ctx.Process(
                target=consumer_main,
                args=(i, dsn, counters[i], readies[i], go, lat_paths[i], os.getpid(), deadline),
                name=f"pgqueuer-consumer-{i}",
            )
            p.start()
            state["procs"].append(p)
        log(f"started consumers, pids {[p.pid for p in state['procs']]}")

        # ---- drain
        t = time.perf_counter()
        await queries.enqueue([ENTRYPOINT] * JOBS, [None] * JOBS, [0] * JOBS)
        log(f"enqueued {JOBS} jobs in {time.perf_counter() - t:.2f} s")
        for r in readies:
            if not await asyncio.get_running_loop().run_in_executor(None, r.wait, 60):
                raise RuntimeError("a consumer did not become ready within 60 s")
        if any(not p.is_alive() for p in state["procs"]):
            raise RuntimeError("a consumer exited before the drain")

        lsn_before = await conn.fetchval("SELECT pg_current_wal_lsn()")
        t0 = time.perf_counter()
        go.set()
        if not await wait_until_empty(conn, counters, JOBS, limit=min(120.0, deadline - time.time() - 30)):
            left = await conn.fetchval("SELECT count(*) FROM pgqueuer")
            raise RuntimeError(f"drain did not finish: {left} jobs left")
        drain_s = time.perf_counter() - t0
        wal = await conn.fetchval("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)", lsn_before)
        ran = sum(c.value for c in counters)
        log(f"drained {JOBS} in {drain_s:.2f} s ({JOBS / drain_s:.0f} jobs/s), executions {ran}, "
            f"WAL {int(wal)} bytes, per consumer {[c.value for c in counters]}")

        # ---- pickup latency: open loop, one enqueue (one transaction) at a time.
        await asyncio.sleep(0.5)  # let the consumers go idle (waiting on NOTIFY)
        base = sum(c.value for c in counters)
        total = int(PICKUP_RATE * PICKUP_SECONDS)
        interval = 1.0 / PICKUP_RATE
        t1 = time.perf_counter()
        for i in range(total):
            delay = t1 + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await queries.enqueue(ENTRYPOINT, repr(time.time()).encode())
        enqueue_s = time.perf_counter() - t1
        if not await wait_until_empty(conn, counters, base + total, limit=min(20.0, deadline - time.time() - 10)):
            log("warning: not every pickup job finished within 20 s")

        samples: list[float] = []
        for path in lat_paths:
            with open(path) as f:
                samples += [float(line) * 1000.0 for line in f if line.strip()]
        samples.sort()
        log(f"pickup: {total} jobs enqueued in {enqueue_s:.2f} s ({total / enqueue_s:.0f}/s), "
            f"{len(samples)} latencies, max {samples[-1] if samples else float('nan'):.1f} ms")
        if len(samples) < total:
            raise RuntimeError(f"only {len(samples)} of {total} pickup jobs ran")

        return {
            "peer": "pgqueuer",
            "version": version("pgqueuer"),
            "driver": f"asyncpg {version('asyncpg')}",
            "durability": DURABILITY,
            "jobs": JOBS,
            "processes": PROCESSES,
            "batch": BATCH,
            "drain_seconds": round(drain_s, 3),
            "drain_jobs_per_s": round(JOBS / drain_s, 1),
            "wal_bytes_per_job": round(float(wal) / JOBS, 1),
            "pickup_jobs": total,
            "pickup_rate_per_s": round(total / enqueue_s, 1),
            "pickup_p50_ms": round(percentile(samples, 50), 2),
            "pickup_p99_ms": round(percentile(samples, 99), 2),
        }
    finally:
        await conn.close()


def stop_consumers(procs: list) -> None:
    """SIGTERM each consumer by PID (PGQueuer then shuts down cleanly), SIGKILL stragglers."""
    for p in procs:
        if p.pid is not None and p.is_alive():
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    end = time.monotonic() + 10
    for p in procs:
        p.join(max(0.1, end - time.monotonic()))
        if p.is_alive():
            log(f"consumer {p.pid} ignored SIGTERM; killing it")
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.join(5)


def main() -> int:
    dsn = os.environ.get("DATABASE_URL")
    if not dsn:
        print(json.dumps({"peer": "pgqueuer", "error": "DATABASE_URL is not set"}))
        return 1
    deadline = time.time() + HARD_TIMEOUT
    state: dict = {"procs": [], "tmp": tempfile.mkdtemp(prefix="pgqueuer-bench-")}

    # Last resort: if the event loop itself hangs, kill the consumers and leave.
    def hard_stop() -> None:
        log(f"hard timeout of {HARD_TIMEOUT:.0f} s passed; killing consumers")
        for p in state["procs"]:
            if p.pid is not None:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        print(json.dumps({"peer": "pgqueuer", "error": "hard timeout"}), flush=True)
        os._exit(1)

    watchdog = threading.Timer(HARD_TIMEOUT + 15, hard_stop)
    watchdog.daemon = True
    watchdog.start()
    try:
        result = asyncio.run(asyncio.wait_for(run(dsn, state, deadline), HARD_TIMEOUT))
    except BaseException as exc:  # noqa: BLE001 - report any failure as JSON
        reason = "hard timeout" if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) else repr(exc)
        log(f"failed: {reason}")
        result = {"peer": "pgqueuer", "error": reason}
    finally:
        stop_consumers(state["procs"])
        watchdog.cancel()
        for name in os.listdir(state["tmp"]):
            os.unlink(os.path.join(state["tmp"], name))
        os.rmdir(state["tmp"])
    print(json.dumps(result), flush=True)
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main())
