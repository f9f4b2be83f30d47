/* The worker: a DEALER loop that registers with the coordinator (READY with
 * its slots), feeds JOB matches to its judge, sends RESULTs, keeps every
 * result in an outbox until the coordinator ACKs it (results survive a
 * coordinator restart: after a reconnect the outbox is sent again), and
 * heartbeats both ways. One thread; creates its own ZeroMQ context, so it
 * may run in a freshly forked or spawned process. A JOB's sign entries
 * (signature jobs, docs/protocol.md §11) are signed at once through
 * worker/signer.h, whatever the judge, and answered in one RESULT that is
 * not kept in the outbox.
 *
 * Judge health (a judge with a health op, such as openai): the worker
 * waits up to wait_ready_ms for the judge to be ready before it sends
 * READY, logging why every 5 s; while running, a judge that becomes
 * unavailable is announced at once (HEARTBEAT unavailable=true with the
 * reason; every heartbeat repeats it) and its return (unavailable=false).
 * Waiting costs no CPU: a judge that can wait on the socket's descriptor
 * (set_wake_fd) sleeps in its own poll until a reply, a timer or a
 * message from the coordinator. Connection problems are explained in the
 * log (worker_conn.h). */
#ifndef JOUST_WORKER_H
#define JOUST_WORKER_H
#include <signal.h>

#include "judge.h"

typedef struct {
    const char *endpoint;      /* e.g. tcp://127.0.0.1:5555 */
    const char *name;          /* informational; default w-<host>-<pid> */
    const char *judge;         /* "sim", "quality" */
    joust_judge_config judge_cfg;
    int slots;                 /* credit announced in READY; default 64 */
    int heartbeat_ms;          /* default 1000 */
    int liveness;              /* missed heartbeats before reconnect; default 5 */
    int exit_when_done;        /* exit on DISCONNECT(run_complete) */
    int max_idle_ms;           /* exit after this long without a coordinator; 0 = never */
    int wait_ready_ms;         /* wait this long for the judge before READY (default 600000);
                                  0: do not wait */
    volatile sig_atomic_t *stop; /* set by a signal handler to leave the loop */
    /* CURVE (proto/curve.h): both set, or neither. Read again on every
     * (re)connect, so a rotated key file takes effect without a restart. */
    const char *curve_secret;  /* this worker's secret key file (0600) */
    const char *server_key;    /* the coordinator's public key: Z85, or a file */
    struct joust_worker_metrics *metrics; /* worker_metrics.h, or NULL: off */
} joust_worker_config;

void joust_worker_config_defaults(joust_worker_config *cfg);
/* Runs until done, stopped or a fatal error. Returns 0 or a JOUST_E* code
 * (JOUST_ENOTFOUND: unknown judge; JOUST_ETIMEOUT: the judge did not
 * become ready within wait_ready_ms). */
int joust_worker_run(const joust_worker_config *cfg);

#endif
