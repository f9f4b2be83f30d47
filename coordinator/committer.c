#include "committer.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "err.h"
#include "xalloc.h"

struct joust_committer {
    joust_store_t *st;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    joust_batch_t *writing, *spare;
    int pending;  /* a batch is handed over and not yet reaped */
    int finished; /* its write is done; rc holds the result */
    int quit, rc;
    int pipe_fd[2];
};

static void *writer(void *arg)
{
    joust_committer_t *c = arg;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->quit && !(c->pending && !c->finished))
            pthread_cond_wait(&c->cv, &c->mu);
        if (c->quit)
            break;
        joust_batch_t *b = c->writing;
        pthread_mutex_unlock(&c->mu);
        int rc = joust_store_write(c->st, b, 1);
        pthread_mutex_lock(&c->mu);
        c->rc = rc;
        c->finished = 1;
        pthread_cond_broadcast(&c->cv);
        char one = 1;
        ssize_t w = write(c->pipe_fd[1], &one, 1); /* wakes the coordinator's poll */
        (void)w;
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

int joust_committer_new(joust_store_t *st, joust_committer_t **out)
{
    joust_committer_t *c = xcalloc(1, sizeof *c);
    c->st = st;
    c->writing = joust_batch_new();
    c->spare = joust_batch_new();
    if (pipe(c->pipe_fd) != 0) {
        joust_batch_destroy(&c->writing);
        joust_batch_destroy(&c->spare);
        free(c);
        return JOUST_EIO;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_create(&c->thread, NULL, writer, c);
    *out = c;
    return 0;
}

int joust_committer_submit(joust_committer_t *c, joust_batch_t **batch_p)
{
    pthread_mutex_lock(&c->mu);
    int busy = c->pending;
    if (!busy) {
        joust_batch_t *empty = c->spare;
        c->spare = c->writing;
        c->writing = *batch_p;
        *batch_p = empty;
        c->pending = 1;
        c->finished = 0;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return busy ? JOUST_EAGAIN : 0;
}

int joust_committer_busy(const joust_committer_t *c) { return c->pending; }

int joust_committer_fd(const joust_committer_t *c) { return c->pipe_fd[0]; }

int joust_committer_reap(joust_committer_t *c, int block, int *rc)
{
    pthread_mutex_lock(&c->mu);
    while (block && c->pending && !c->finished)
        pthread_cond_wait(&c->cv, &c->mu);
    int got = c->pending && c->finished;
    if (got) {
        *rc = c->rc;
        c->pending = c->finished = 0;
        joust_batch_clear(c->writing);
        char drain;
        ssize_t r = read(c->pipe_fd[0], &drain, 1);
        (void)r;
    }
    pthread_mutex_unlock(&c->mu);
    return got;
}

void joust_committer_destroy(joust_committer_t **self_p)
{
    joust_committer_t *c = *self_p;
    if (!c)
        return;
    int rc;
    joust_committer_reap(c, 1, &rc);
    pthread_mutex_lock(&c->mu);
    c->quit = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    close(c->pipe_fd[0]);
    close(c->pipe_fd[1]);
    joust_batch_destroy(&c->writing);
    joust_batch_destroy(&c->spare);
    free(c);
    *self_p = NULL;
}

void joust_commit_rule_defaults(joust_commit_rule *r)
{
    *r = (joust_commit_rule){.min = 1024, .max = 16384, .max_bytes = 8u << 20, .ms = 50};
}

int joust_commit_full(const joust_commit_rule *r, uint32_t staged, size_t bytes)
{
    return staged >= r->max || (r->max_bytes && bytes >= r->max_bytes);
}

int joust_commit_due(const joust_commit_rule *r, uint32_t staged, size_t bytes,
                     int64_t waited_ms, int writer_busy)
{
    return staged && (joust_commit_full(r, staged, bytes) || (!writer_busy && staged >= r->min) ||
                      waited_ms >= r->ms);
}
