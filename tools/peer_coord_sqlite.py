#!/usr/bin/env python3
"""Peer benchmark for `joust bench coordinator` (docs/benchmarks.md), never
part of joust: the script a user would write to record pairwise outcomes
durably with Python's standard library. Worker processes (multiprocessing)
answer every match of a job at once; the main process hands out jobs of
--job-matches matches within --slots per worker, and writes one row per
outcome into SQLite (WAL, synchronous=FULL), --commit rows per transaction.
At the end it checks that the table holds exactly match ids 1..N and prints
one line: `peer matches N seconds S rate R`."""
import argparse
import multiprocessing as mp
import os
import sqlite3
import sys
import time
from multiprocessing.connection import wait


def worker(conn):
    """Answers each job (a list of (match, prompt, first, second)) at once."""
    while True:
        job = conn.recv()
        if job is None:
            return
        conn.send([(m, p, a, b, 0.5) for (m, p, a, b) in job])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--matches", type=int, default=1_500_000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--job-matches", type=int, default=256)
    ap.add_argument("--slots", type=int, default=1024)
    ap.add_argument("--commit", type=int, default=4096)
    ap.add_argument("--db", required=True)
    a = ap.parse_args()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(a.db + suffix):
            os.unlink(a.db + suffix)
    db = sqlite3.connect(a.db, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE outcomes (match_id INTEGER PRIMARY KEY, prompt_id INTEGER,"
               " first INTEGER, second INTEGER, p_first REAL, worker INTEGER)")
    pipes = [mp.Pipe() for _ in range(a.workers)]
    procs = [mp.Process(target=worker, args=(child,)) for _, child in pipes]
    for p in procs:
        p.start()
    conns = [parent for parent, _ in pipes]
    outstanding = [0] * a.workers
    next_id, received, rows = 1, 0, []
    t0 = time.perf_counter()

    def commit():
        db.execute("BEGIN")
        db.executemany("INSERT INTO outcomes VALUES (?, ?, ?, ?, ?, ?)", rows)
        db.execute("COMMIT")
        rows.clear()

    while received < a.matches:
        for w, conn in enumerate(conns):
            while outstanding[w] < a.slots and next_id <= a.matches:
                n = min(a.job_matches, a.slots - outstanding[w], a.matches - next_id + 1)
                conn.send([(m, m // 8 + 1, 2 * m, 2 * m + 1) for m in range(next_id, next_id + n)])
                next_id += n
                outstanding[w] += n
        for conn in wait(conns):
            w = conns.index(conn)
            res = conn.recv()
            outstanding[w] -= len(res)
            received += len(res)
            rows.extend((m, p, f, s, pf, w) for (m, p, f, s, pf) in res)
            if len(rows) >= a.commit:
                commit()
    if rows:
        commit()
    seconds = time.perf_counter() - t0
    for conn in conns:
        conn.send(None)
    for p in procs:
        p.join()
    count, lo, hi = db.execute("SELECT count(*), min(match_id), max(match_id) FROM outcomes").fetchone()
    db.close()
    if (count, lo, hi) != (a.matches, 1, a.matches):
        print(f"peer: the table holds {count} rows with ids {lo}..{hi}, not 1..{a.matches}",
              file=sys.stderr)
        return 1
    print(f"peer matches {count} seconds {seconds:.3f} rate {count / seconds:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
