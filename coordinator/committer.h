/* Group commit on a background thread: writes one batch at a time with the
 * WAL synced, so the coordinator keeps receiving and dispatching while the
 * fsync runs. The caller acknowledges a batch's results only after reaping
 * its write with rc 0; a write that failed acknowledges nothing, and the
 * store then refuses every later write (store.h), so the caller stops.
 *
 * Ownership: the committer borrows the store (it must outlive the
 * committer) and owns two batches: the one being written and a spare that
 * submit hands back, so submitting swaps batches without allocating.
 * Threads: every call from one (the coordinator's) thread; the writer thread
 * touches only the batch it was handed, and the store (thread-safe).
 * Errors: _new returns JOUST_EIO when it cannot make its wake-up pipe;
 * submit JOUST_EAGAIN while a write is in flight; a write's own result
 * (JOUST_ENOSPC, JOUST_ESTORE, ...) comes back through reap. */
#ifndef JOUST_COMMITTER_H
#define JOUST_COMMITTER_H

#include <stdint.h>

#include "store.h"

typedef struct joust_committer joust_committer_t;

/* When staged results are written (the coordinator's rule; the bare
 * benchmark's too): as soon as the writer is idle once `min` are staged —
 * so that under load a group is what arrived during the last write and
 * the writer never waits for a count — or at `max` results or `max_bytes`
 * bytes of records (then staging stops until the write in flight is
 * done), or `ms` after the first was staged, whichever comes first. */
typedef struct {
    uint32_t min, max;
    size_t max_bytes; /* 0: no limit */
    int ms;
} joust_commit_rule;

/* The defaults: 1024, 16384, 8 MiB, 50 ms (docs/storage.md). */
void joust_commit_rule_defaults(joust_commit_rule *r);
/* 1 when `staged` results in `bytes` bytes of records fill a group. */
int joust_commit_full(const joust_commit_rule *r, uint32_t staged, size_t bytes);
/* 1 when a write of the staged results is due: the first was staged
 * `waited_ms` ago, and `writer_busy` says whether a write is in flight
 * (a group that is due while one is starts when it is reaped). */
int joust_commit_due(const joust_commit_rule *r, uint32_t staged, size_t bytes,
                     int64_t waited_ms, int writer_busy);

int joust_committer_new(joust_store_t *st, joust_committer_t **out);
/* Waits for a write in flight (its result is dropped: reap it first to
 * know it), stops the thread, frees both batches, NULLs *self_p.
 * *self_p == NULL is a no-op. */
void joust_committer_destroy(joust_committer_t **self_p);
/* Hands *batch_p to the writer and gives back an empty batch in its place.
 * JOUST_EAGAIN while a write is in flight (nothing changes). */
int joust_committer_submit(joust_committer_t *c, joust_batch_t **batch_p);
/* 1 from submit until the write is reaped, else 0. */
int joust_committer_busy(const joust_committer_t *c);
/* A descriptor that turns readable when a write has finished (for poll);
 * reap drains it. */
int joust_committer_fd(const joust_committer_t *c);
/* Returns 1 and the write's result in *rc when a write has finished since
 * the last reap (block != 0: waits for the one in flight), else 0 (nothing
 * in flight, or not finished and block == 0). */
int joust_committer_reap(joust_committer_t *c, int block, int *rc);

#endif
