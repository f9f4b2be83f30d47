/* The worker: a DEALER loop that registers with the coordinator (READY with
 * its slots), feeds JOB matches to its judge, sends RESULTs, keeps every
 * result in an outbox until the coordinator ACKs it (results survive a
 * coordinator restart: after a reconnect the outbox is sent again), and
 * heartbeats both ways. One thread; creates its own ZeroMQ context, so it
 * may run in a freshly forked or spawned process. */
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
    volatile sig_atomic_t *stop; /* set by a signal handler to leave the loop */
    /* CURVE (proto/curve.h): both set, or neither. Read again on every
     * (re)connect, so a rotated key file takes effect without a restart. */
    const char *curve_secret;  /* this worker's secret key file (0600) */
    const char *server_key;    /* the coordinator's public key: Z85, or a file */
} joust_worker_config;

void joust_worker_config_defaults(joust_worker_config *cfg);
/* Runs until done, stopped or a fatal error. Returns 0 or a JOUST_E* code
 * (JOUST_ENOTFOUND: unknown judge). */
int joust_worker_run(const joust_worker_config *cfg);

#endif
