/* Local workers: spawn, watch, restart with backoff, give up on repeated
 * failed starts. See supervisor.h for what this promises. */
#define _GNU_SOURCE /* pipe2 */
#include "supervisor.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "err.h"
#include "log.h"
#include "xalloc.h"

extern char **environ;

#define LINE_MAX_KEPT 512

typedef struct {
    pid_t pid;          /* 0: not running */
    int fd;             /* read end of its stderr pipe; -1 when closed */
    int64_t started_ms; /* when the current process started */
    int64_t restart_at; /* when to start it again; 0: not scheduled */
    int failed_starts;  /* consecutive */
    int backoff_ms;
    int done;           /* exited 0 or given up: never again */
    char partial[LINE_MAX_KEPT]; /* an unfinished stderr line */
    size_t plen;
    char last[LINE_MAX_KEPT];    /* its last complete stderr line */
    char first_err[LINE_MAX_KEPT]; /* the current process's first line that says ERROR */
} child;

struct joust_supervisor {
    joust_supervisor_config cfg;
    joust_argv argv;    /* exe, cfg.argv; worker args are added per spawn */
    char **envp;
    child *kids;
    pthread_t thread;
    atomic_int stopping; /* destroy was called */
    atomic_int failed;
    atomic_int restarts;
    char why[1024];      /* written by the thread before failed is set */
};

void joust_supervisor_config_defaults(joust_supervisor_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->workers = 1;
    cfg->start_window_ms = 3000;
    cfg->max_failed_starts = 3;
    cfg->backoff_ms = 100;
    cfg->backoff_max_ms = 2000;
    cfg->stop_grace_ms = 3000;
}

static int run_stopped(const joust_supervisor_t *s)
{
    return atomic_load(&s->stopping) || (s->cfg.stop && *s->cfg.stop);
}

/* Remembers the line in partial: the last one, and the first error (the
 * cause; what follows it is often only its consequence). */
static void keep(child *k)
{
    if (k->plen) {
        memcpy(k->last, k->partial, k->plen + 1);
        if (!k->first_err[0] && (strstr(k->partial, "ERROR") || strstr(k->partial, "joust")))
            memcpy(k->first_err, k->partial, k->plen + 1);
    }
    k->plen = 0;
}

/* Copies complete lines to our stderr, keeping the last one. */
static void pump(child *k, int drain)
{
    char buf[4096];
    for (;;) {
        ssize_t r = read(k->fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                close(k->fd);
                k->fd = -1;
            }
            break;
        }
        for (ssize_t i = 0; i < r; i++) {
            char ch = buf[i];
            if (ch != '\n' && k->plen < sizeof k->partial - 1) {
                k->partial[k->plen++] = ch;
                continue;
            }
            if (ch != '\n') /* an overlong line: cut it here */
                continue;
            k->partial[k->plen] = '\0';
            fprintf(stderr, "%s\n", k->partial);
            keep(k);
        }
        if (!drain)
            break;
    }
    if (k->fd < 0 && k->plen) { /* a last line without a newline */
        k->partial[k->plen] = '\0';
        fprintf(stderr, "%s\n", k->partial);
        keep(k);
    }
}

static void spawn(joust_supervisor_t *s, int i)
{
    child *k = &s->kids[i];
    int p[2];
    k->started_ms = joust_now_ms();
    k->restart_at = 0;
    k->first_err[0] = '\0';
    k->pid = 0;
    if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(k->last, sizeof k->last, "cannot make a pipe: %s", strerror(errno));
        return;
    }
    joust_argv a = {0};
    for (size_t j = 0; j < s->argv.n; j++)
        joust_argv_add(&a, s->argv.v[j]);
    if (s->cfg.worker_args)
        s->cfg.worker_args(i, &a, s->cfg.worker_args_arg);
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    posix_spawnattr_init(&at);
    /* This thread blocks every signal and the parent may ignore SIGPIPE:
     * the worker starts with an empty mask and default dispositions. */
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGINT);
    sigaddset(&dflt, SIGTERM);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dflt);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    /* posix_spawn execs at once: the child never touches the parent's
     * ZeroMQ context, which must not be used across fork. */
    int err = posix_spawn(&k->pid, s->cfg.exe, &fa, &at, a.v, s->envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    joust_argv_free(&a);
    close(p[1]);
    if (err) {
        k->pid = 0;
        close(p[0]);
        snprintf(k->last, sizeof k->last, "cannot start %s: %s", s->cfg.exe, strerror(err));
        return;
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    k->fd = p[0];
}

static void give_up(joust_supervisor_t *s, int i, const char *how)
{
    child *k = &s->kids[i];
    const char *first = k->first_err[0] && strcmp(k->first_err, k->last) ? k->first_err : NULL;
    snprintf(s->why, sizeof s->why, "local worker %d %s at start %d times in a row; it said: %.400s%s%.400s",
             i + 1, how, k->failed_starts, first ? first : "", first ? " / " : "",
             k->last[0] ? k->last : "(nothing on stderr)");
    atomic_store(&s->failed, 1);
    if (s->cfg.stop)
        *s->cfg.stop = 1;
}

/* A child exited (status from waitpid, or -1 when it never started). */
static void on_exit_status(joust_supervisor_t *s, int i, int status)
{
    child *k = &s->kids[i];
    int64_t now = joust_now_ms(), lived = now - k->started_ms;
    k->pid = 0;
    if (k->fd >= 0)
        pump(k, 1);
    int code = status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == 0 || run_stopped(s)) {
        k->done = 1;
        return;
    }
    /* Its own non-zero status soon after start (bad options, a judge that
     * cannot start) is a failed start; a signal (kill -9, 130/143 after
     * SIGINT/SIGTERM) is not. */
    int own = status < 0 || (code > 0 && code != 130 && code != 143);
    char how[64];
    if (status < 0)
        snprintf(how, sizeof how, "could not be started");
    else if (code > 0)
        snprintf(how, sizeof how, "exited with status %d", code);
    else
        snprintf(how, sizeof how, "was killed by signal %d", WTERMSIG(status));
    if (own && lived < s->cfg.start_window_ms)
        k->failed_starts++;
    else
        k->failed_starts = 0;
    if (k->failed_starts >= s->cfg.max_failed_starts) {
        give_up(s, i, how);
        k->done = 1;
        return;
    }
    if (lived > 3 * (int64_t)s->cfg.start_window_ms)
        k->backoff_ms = s->cfg.backoff_ms;
    log_warn("local worker %d %s after %.1f s; starting it again in %d ms", i + 1, how,
             (double)lived / 1000, k->backoff_ms);
    k->restart_at = now + k->backoff_ms;
    k->backoff_ms = k->backoff_ms * 2 > s->cfg.backoff_max_ms ? s->cfg.backoff_max_ms
                                                               : k->backoff_ms * 2;
}

static int alive(const joust_supervisor_t *s)
{
    int n = 0;
    for (int i = 0; i < s->cfg.workers; i++)
        n += s->kids[i].pid > 0;
    return n;
}

static void watch(joust_supervisor_t *s, int timeout_ms)
{
    struct pollfd pf[256];
    int idx[256], n = 0;
    for (int i = 0; i < s->cfg.workers && n < 256; i++)
        if (s->kids[i].fd >= 0) {
            pf[n].fd = s->kids[i].fd;
            pf[n].events = POLLIN;
            idx[n++] = i;
        }
    if (poll(pf, (nfds_t)n, timeout_ms) > 0)
        for (int j = 0; j < n; j++)
            if (pf[j].revents)
                pump(&s->kids[idx[j]], 0);
    for (int i = 0; i < s->cfg.workers; i++) {
        child *k = &s->kids[i];
        int status;
        if (k->pid > 0 && waitpid(k->pid, &status, WNOHANG) == k->pid)
            on_exit_status(s, i, status);
    }
}

static void *supervise(void *arg)
{
    joust_supervisor_t *s = arg;
    while (!run_stopped(s)) {
        int64_t now = joust_now_ms();
        for (int i = 0; i < s->cfg.workers && !run_stopped(s); i++) {
            child *k = &s->kids[i];
            if (k->done || k->pid > 0 || !k->restart_at || now < k->restart_at)
                continue;
            atomic_fetch_add(&s->restarts, 1);
            spawn(s, i);
            if (k->pid <= 0)
                on_exit_status(s, i, -1);
        }
        watch(s, 100);
    }
    /* Shutting down: the workers leave by themselves when the coordinator
     * tells them the run is complete; after the grace period they are told. */
    int64_t t0 = joust_now_ms();
    int termed = 0;
    while (alive(s)) {
        int64_t waited = joust_now_ms() - t0;
        if (!termed && (waited > s->cfg.stop_grace_ms || (s->cfg.stop && *s->cfg.stop))) {
            for (int i = 0; i < s->cfg.workers; i++)
                if (s->kids[i].pid > 0)
                    kill(s->kids[i].pid, SIGTERM);
            termed = 1;
            t0 = joust_now_ms() - s->cfg.stop_grace_ms;
        } else if (termed && waited > s->cfg.stop_grace_ms + 2000) {
            for (int i = 0; i < s->cfg.workers; i++)
                if (s->kids[i].pid > 0)
                    kill(s->kids[i].pid, SIGKILL);
        }
        watch(s, 20);
    }
    for (int i = 0; i < s->cfg.workers; i++)
        if (s->kids[i].fd >= 0) {
            pump(&s->kids[i], 1);
            if (s->kids[i].fd >= 0)
                close(s->kids[i].fd);
        }
    return NULL;
}

static char **env_with_parent(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = xcalloc(n + 2, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "JOUST_PARENT_PID=", 17))
            env[k++] = xstrdup(environ[i]);
    char pid[48];
    snprintf(pid, sizeof pid, "JOUST_PARENT_PID=%ld", (long)getpid());
    env[k++] = xstrdup(pid);
    env[k] = NULL;
    return env;
}

static void free_env(char **env)
{
    for (size_t i = 0; env && env[i]; i++)
        free(env[i]);
    free(env);
}

int joust_supervisor_start(const joust_supervisor_config *cfg, joust_supervisor_t **out)
{
    assert(cfg && cfg->exe && cfg->workers >= 1 && cfg->workers <= 256);
    joust_supervisor_t *s = xcalloc(1, sizeof *s);
    s->cfg = *cfg;
    joust_argv_add(&s->argv, cfg->exe);
    for (size_t i = 0; cfg->argv && cfg->argv[i]; i++)
        joust_argv_add(&s->argv, cfg->argv[i]);
    s->envp = env_with_parent();
    s->kids = xcalloc((size_t)cfg->workers, sizeof *s->kids);
    for (int i = 0; i < cfg->workers; i++) {
        s->kids[i].fd = -1;
        s->kids[i].backoff_ms = cfg->backoff_ms;
        s->kids[i].restart_at = 1; /* due at once: the thread starts them */
    }
    /* The thread starts with every signal blocked (it inherits this mask). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&s->thread, NULL, supervise, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        log_error("cannot start the worker supervisor: %s", strerror(err));
        joust_argv_free(&s->argv);
        free_env(s->envp);
        free(s->kids);
        free(s);
        return JOUST_EIO;
    }
    *out = s;
    return 0;
}

int joust_supervisor_failed(joust_supervisor_t *s, char *why, size_t whylen)
{
    if (!atomic_load(&s->failed))
        return 0;
    if (why && whylen)
        snprintf(why, whylen, "%s", s->why);
    return 1;
}

int joust_supervisor_restarts(joust_supervisor_t *s)
{
    /* The first start of each worker goes through the same path. */
    int r = atomic_load(&s->restarts) - s->cfg.workers;
    return r > 0 ? r : 0;
}

void joust_supervisor_destroy(joust_supervisor_t **self_p)
{
    joust_supervisor_t *s = *self_p;
    if (!s)
        return;
    atomic_store(&s->stopping, 1);
    pthread_join(s->thread, NULL);
    joust_argv_free(&s->argv);
    free_env(s->envp);
    free(s->kids);
    free(s);
    *self_p = NULL;
}
