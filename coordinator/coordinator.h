/* The coordinator loop for one run: plans prompt groups lazily into
 * matches, dispatches them over a ROUTER socket to registered workers with
 * credit, leases them (re-dispatch with attempt + 1, preferably to another
 * worker, when a lease is lost), and records results: all effects of a
 * batch of results commit in one synced RocksDB write before the workers
 * are ACKed (group commit). Only a worker that holds or held a match's
 * lease may settle it; other results are dropped and counted. A result for
 * a committed match is ACKed again and ignored. Infrastructure failures
 * (INFRA_ERROR, legacy JUDGE_ERROR, lost leases) are never final; a
 * CONFIG_ERROR stops the run. Workers that say they are unavailable, or
 * whose leases keep expiring (drained), get no work; with none left the
 * coordinator pauses and says why. Restarted on the same store, it
 * rebuilds its queues from the store: matches planned without an outcome
 * are dispatched again. Memory holds only the in-flight window. The wire
 * protocol is docs/protocol.md (§5-§8 for this behaviour); pairing is
 * rank/planner.h.
 *
 * Ownership: the caller owns the store and the config (both must outlive
 * joust_coordinator_run, which keeps no pointer to them afterwards) and the
 * summary it fills. The run record is read from the store and written back
 * there; nothing is handed to the caller to free.
 *
 * Threads: joust_coordinator_run blocks the calling thread until the run is
 * complete, *cfg->stop is set (from a signal handler: it is polled at least
 * every heartbeat_ms / 2) or an error. Inside it creates and destroys its own
 * ZeroMQ context and socket and one writer thread (coordinator/committer.h)
 * that performs the synced store writes; the store must not be written by
 * anyone else meanwhile.
 *
 * Errors: 0 when every planned match has an outcome (sum->complete = 1;
 * whether some outcomes are failures is in sum->run) or when stopped
 * (sum->complete = 0; run it again to resume). JOUST_EJUDGE when a worker
 * reported a CONFIG_ERROR (sum->stopped says who and why; run it again once
 * fixed). Otherwise a negative JOUST_E* code, logged with the reason: the
 * run does not exist or names an unknown order or strategy, the endpoint
 * cannot be bound or the CURVE keys cannot be read, or a store read or
 * write failed. After a failed write nothing of that batch is acknowledged,
 * so workers resend those results to the next coordinator. Malformed or
 * unexpected messages from workers are never errors: they are dropped and
 * counted in sum->rejected (sum->forged for results from a peer that never
 * held the lease). */
#ifndef JOUST_COORDINATOR_H
#define JOUST_COORDINATOR_H
#include <signal.h>
#include <stdint.h>

#include "committer.h"
#include "store.h"
#include "tally.h"

typedef struct {
    const char *bind;          /* e.g. tcp://127.0.0.1:5555 or tcp://127.0.0.1:* */
    uint32_t window;           /* planned, unfinished matches kept in memory */
    uint32_t job_matches;      /* most matches in one JOB message */
    joust_commit_rule commit;  /* when staged results are written (committer.h) */
    int heartbeat_ms;
    int liveness;              /* missed heartbeats before a worker is dropped */
    int progress;              /* 1: progress line on stderr (a terminal) */
    int log_every_ms;          /* 0, or without a progress line: a progress
                                * log line this often (default 5000); also
                                * how often a pause is explained */
    uint32_t drain_after;      /* leases expired in a row before a worker is
                                * drained (default 3) */
    uint32_t max_lost;         /* lost leases (expired, worker gone) before a
                                * match is ABANDONED (default 10) */
    int drain_ms;              /* after completion, tell late workers for this long */
    int no_reuse;              /* judge every match, even when an earlier outcome of
                                * the same judge settings, prompt and image
                                * contents exists (reuse.h; default: reuse it) */
    volatile sig_atomic_t *stop;
    /* CURVE (proto/curve.h): both set, or neither. With them the socket
     * accepts only workers whose public key is in the allow-list, and a
     * worker's name is the one its key has there. */
    const char *curve_secret;  /* the coordinator's secret key file (0600) */
    const char *curve_allow;   /* allow-list file: "name public-key-z85" lines */
    /* Prometheus metrics (coord_metrics.h), or NULL: off. */
    struct joust_coord_metrics *metrics;
    /* Signature jobs (docs/protocol.md §11, docs/dedup.md): JOUST_SIGN_FIRST
     * signs the run's unsigned images before planning anything, then calls
     * after_signing (e.g. to collapse near-duplicates: the run's duplicate
     * records, read back afterwards, are left out of planning);
     * JOUST_SIGN_ONLY signs and ends (sum->complete = 1 once every image is
     * signed or given up) without planning or touching the run record:
     * run_name NULL then means the images sign_scope covers. */
    int sign;
    const Joust__RunRecord *sign_scope; /* borrowed; see joust_coord_sign_scope */
    int (*after_signing)(joust_store_t *st, const Joust__RunRecord *run, void *arg);
    void *after_signing_arg;
    /* Called once the socket is bound, with the actual endpoint. */
    void (*on_bound)(const char *endpoint, void *arg);
    void *on_bound_arg;
} joust_coord_config;

enum { JOUST_SIGN_NONE = 0, JOUST_SIGN_FIRST, JOUST_SIGN_ONLY };

/* The run id that signature jobs of a whole store (no run) carry. */
#define JOUST_SIGN_STORE_RUN 0xffffffffu

typedef struct {
    /* This session (planned: every match of the run known to it): */
    uint64_t planned, ok, failed, retried, expired, duplicates, rejected;
    uint64_t reused;        /* matches answered by an earlier outcome (reuse.h), not judged */
    uint64_t infra_retries; /* INFRA_ERROR / JUDGE_ERROR results re-queued */
    uint64_t forged;        /* results from a peer that never held the lease */
    uint64_t drained;       /* times a worker was drained */
    /* Signature jobs: signed by workers (OK / IMAGE_ERROR), copied from an
     * image with the same content, signed in an earlier session, given up
     * (lost leases or INFRA_ERROR SIGN_MAX_TRIES times; signed next time). */
    uint64_t sign_ok, sign_failed, sign_copied, sign_known, sign_given_up;
    double seconds;
    int complete;           /* every planned match has an outcome */
    char stopped[1024];     /* why it stopped early (CONFIG_ERROR), or "" */
    /* The whole run, read from the store at the end (also after resumes): */
    joust_coord_tally run;
} joust_coord_summary;

void joust_coord_config_defaults(joust_coord_config *cfg);
/* A transient run record for a signing-only session without a run: it
 * covers the images first_image <= id < end_image (both 0: every image in
 * the store), has run id JOUST_SIGN_STORE_RUN and is never written. Free
 * with joust_rec_free. 0 or JOUST_ECORRUPT. */
int joust_coord_sign_scope(uint64_t first_image, uint64_t end_image, Joust__RunRecord **out);
/* Runs `run_name` (which must exist) until every planned match has an
 * outcome or *stop is set. Returns 0 or a JOUST_E* code. */
int joust_coordinator_run(joust_store_t *st, const char *run_name, const joust_coord_config *cfg,
                          joust_coord_summary *sum);

#endif
