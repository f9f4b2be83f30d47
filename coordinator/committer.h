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

#include "store.h"

typedef struct joust_committer joust_committer_t;

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
