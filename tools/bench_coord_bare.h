/* The bare limit of the coordinator's stack, for `joust bench coordinator`:
 * the same transport (ZeroMQ ROUTER/DEALER over tcp on 127.0.0.1, the
 * joust wire framing and protobuf messages, CURVE optional) and the same
 * store (joust_store_open's RocksDB options, group commits with the WAL
 * synced on the committer thread, ACKs only after the write) with nothing
 * else: no planning, no in-flight bookkeeping, workers that answer every
 * match of a JOB at once. The coordinator writes one outcome record per
 * result (joust_rec_outcome_put) and counts the store afterwards: a lost
 * or doubled match fails the run.
 *
 * Workers are forked before the coordinator makes its ZeroMQ context or
 * opens the store. Threads: call from one thread; not reentrant.
 * Errors: 0, JOUST_EINVAL (no matches, workers or job size out of range),
 * JOUST_EIO (sockets, fork), a store error, or JOUST_ECORRUPT
 * when the store does not hold exactly `matches` outcomes. */
#ifndef JOUST_BENCH_COORD_BARE_H
#define JOUST_BENCH_COORD_BARE_H
#include <stddef.h>
#include <stdint.h>

#include "committer.h"

typedef struct {
    const char *db;        /* store to create (must not exist) */
    uint64_t matches;      /* how many to record */
    int workers;           /* worker processes */
    uint32_t slots;        /* credit per worker */
    uint32_t job_matches;  /* matches per JOB, 1..1024 */
    joust_commit_rule commit; /* the coordinator's group commits (committer.h) */
    int curve;             /* CURVE with keys made in memory */
} joust_bare_config;

typedef struct {
    uint64_t matches; /* recorded and counted back from the store */
    double seconds;   /* first JOB sent to last commit reaped */
    double cpu_s;     /* CPU (user + sys) of the coordinator while recording and
                       * of the worker processes, all threads */
} joust_bare_result;

/* User + sys CPU seconds of this process (who = RUSAGE_SELF) or of its
 * waited-for children (RUSAGE_CHILDREN). */
double joust_bench_cpu_s(int who);

int joust_bench_bare_run(const joust_bare_config *cfg, joust_bare_result *out);

#endif
