/* The local-worker supervisor of `joust run`: starts N worker processes,
 * restarts one that exits, and stops the run when workers keep failing at
 * start instead of leaving the coordinator waiting for them forever.
 *
 *   joust_supervisor_t *s;
 *   joust_supervisor_start(&cfg, &s);      // spawns the workers and a thread
 *   ... run the coordinator; *cfg.stop is set if the supervisor gives up
 *   if (joust_supervisor_failed(s, why, sizeof why)) ...
 *   joust_supervisor_destroy(&s);          // waits, then SIGTERM, reaps
 *
 * What it promises:
 * - Worker i (0-based) runs `exe argv... worker_args(i)` with its stderr
 *   piped through the supervisor, which copies it to our stderr line by line
 *   and keeps the last line for the report.
 * - Every worker has JOUST_PARENT_PID=<our pid> in its environment; a worker
 *   that sees it arms PR_SET_PDEATHSIG and checks getppid() (tools/cmd_run.c),
 *   so workers die with the process that started them, also on kill -9.
 * - A worker that exits while the run goes on is started again after a
 *   backoff (backoff_ms, doubling up to backoff_max_ms; back to backoff_ms
 *   once a worker has lived start_window_ms x 3). One that exits with a
 *   non-zero status of its own (not a signal, not 130/143) within
 *   start_window_ms of its start max_failed_starts times in a row makes the
 *   supervisor give up: *stop is set to 1 and joust_supervisor_failed tells
 *   why, with the worker's last stderr line. A worker that exits 0 (it heard
 *   that the run is complete) is not restarted, nor is any once *stop is set.
 * Threads: one supervisor thread owns the children (a child's
 * PR_SET_PDEATHSIG follows the thread that spawned it, and this thread lives
 * until every child is reaped). It blocks all signals; the caller's thread
 * keeps receiving them. The other calls are for the thread that started it.
 * Errors: start returns 0 or JOUST_EIO (no pipe / thread); a worker that
 * cannot be spawned counts as a failed start. */
#ifndef JOUST_SUPERVISOR_H
#define JOUST_SUPERVISOR_H
#include <signal.h>
#include <stddef.h>

#include "opt.h"

typedef struct {
    const char *exe;                 /* the program to run */
    const char *const *argv;         /* arguments after argv[0], NULL-terminated; copied */
    int workers;                     /* how many, >= 1 */
    /* Appends worker i's own arguments (its name, its statistics file). */
    void (*worker_args)(int i, joust_argv *a, void *arg);
    void *worker_args_arg;
    int start_window_ms;             /* default 3000 */
    int max_failed_starts;           /* default 3 */
    int backoff_ms, backoff_max_ms;  /* default 100, 2000 */
    int stop_grace_ms;               /* destroy: wait this long, then SIGTERM (default 3000) */
    volatile sig_atomic_t *stop;     /* set to 1 when the supervisor gives up */
} joust_supervisor_config;

typedef struct joust_supervisor joust_supervisor_t;

void joust_supervisor_config_defaults(joust_supervisor_config *cfg);
/* Starts the workers and the supervisor thread. */
int joust_supervisor_start(const joust_supervisor_config *cfg, joust_supervisor_t **out);
/* 1 when the supervisor gave up (why gets the reason), else 0. */
int joust_supervisor_failed(joust_supervisor_t *s, char *why, size_t whylen);
/* Workers started again after an exit, so far. */
int joust_supervisor_restarts(joust_supervisor_t *s);
/* Stops restarting, waits up to stop_grace_ms for the workers to exit, sends
 * SIGTERM to those left (SIGKILL 2 s later), reaps them, joins the thread,
 * frees and NULLs *self_p. Accepts NULL and *self_p == NULL. */
void joust_supervisor_destroy(joust_supervisor_t **self_p);

#endif
