/* Protocol behaviour of the real coordinator and the real worker over
 * tcp://127.0.0.1, each against a scripted peer built on proto/wire.h
 * (docs/protocol.md is the spec these check):
 *
 *   A1  coordinator: an unknown peer is told to send READY; JOB carries at
 *       most `slots` matches; each result returns one credit; ACK only
 *       after the commit; a retryable failure is re-dispatched with
 *       attempt + 1; the last attempt's failure is final; a duplicate is
 *       ACKed again; DISCONNECT(run_complete) at the end; what the store
 *       holds afterwards.
 *   A2  coordinator: a hung worker (heartbeats, never answers) beside a
 *       healthy one: its expired leases go to the other worker, it is
 *       drained, its late answer counts once, nothing is ABANDONED; alone,
 *       a match that loses max_lost leases is ABANDONED.
 *   A3  coordinator: a silent worker is dropped after heartbeat_ms *
 *       liveness and its matches go to another worker.
 *   A4  BUG: a RESULT for an unknown match, or a duplicate, returns a credit.
 *   A5  BUG: the last ACK and DISCONNECT(run_complete) are lost when the
 *       coordinator closes before the worker has read them.
 *   A6  a store write that fails mid-run stops the coordinator without an
 *       ACK; a restart completes exactly once.
 *   A7  leases are enforced: results from a registered worker that never
 *       held the lease, and from an unregistered peer, are dropped and
 *       counted; the lessee settles the match.
 *   A8  INFRA_ERROR goes back to the queue without spending an attempt,
 *       to another worker when one can take it; an unavailable worker
 *       gets no JOB; with every worker unavailable nothing is dispatched
 *       until one is available again.
 *   A9  CONFIG_ERROR stops the run at once with the worker's words; the
 *       match gets no outcome.
 *   A10 under CURVE, a second allow-listed key that never held the lease
 *       (and claims the lessee's name in READY) cannot settle the match.
 *   A11 after a coordinator restart, a resent result is recorded under the
 *       name of the worker that registered and sent it; an unregistered
 *       peer settles nothing.
 *   A12 signature jobs (§11), signing only: sign entries use credits and
 *       leases; an expired lease and an INFRA_ERROR put the image back in
 *       the queue; OK signatures are stored; the session ends with
 *       DISCONNECT(run_complete) and leaves the run record alone.
 *   B1  the worker registers (READY) once connected, and again when told
 *       to (DISCONNECT "send READY").
 *   B2  the worker resends unacknowledged results after re-READY; ACK
 *       clears them; DISCONNECT(run_complete) ends it.
 *
 * Timing: heartbeats every 200 ms (coordinator) / 100 ms (worker); every
 * wait below has at least a second of slack. */
#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bytes.h"
#include "check.h"
#include "testfs.h"
#include "clock.h"
#include "coordinator.h"
#include "curve.h"
#include "err.h"
#include "ingest.h"
#include "log.h"
#include "records.h"
#include "run.h"
#include "store.h"
#include "wire.h"
#include "worker.h"

static char tmpdir[] = "/tmp/joust-protocol-XXXXXX";

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int streq(const char *a, const char *b) { return a && b && !strcmp(a, b); }

/* A store holding one prompt "fox" with n images (latent = index; the
 * files need not exist for the sim judge). */
static joust_store_t *make_store(const char *name, int n)
{
    char dir[PATH_MAX], path[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/manifest.jsonl", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < n; i++)
        fprintf(f, "{\"image\":\"%d.png\",\"prompt\":\"fox\",\"latent\":%d}\n", i, i);
    fclose(f);
    joust_store_t *st = NULL;
    snprintf(path, sizeof path, "%s/db", dir);
    CHECK_RC(joust_store_open(path, 1, &st));
    snprintf(path, sizeof path, "%s/manifest.jsonl", dir);
    joust_ingest_stats s;
    CHECK_RC(joust_ingest(st, path, &s));
    CHECK(s.images == (uint64_t)n);
    return st;
}

/* ------------------------------------------------- coordinator thread -- */

typedef struct {
    joust_store_t *st;
    const char *run;
    joust_coord_config cfg;
    joust_coord_summary sum;
    volatile sig_atomic_t stop;
    volatile int done;
    int rc;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char endpoint[256];
} coord_thread;

static void on_bound(const char *endpoint, void *arg)
{
    coord_thread *c = arg;
    pthread_mutex_lock(&c->mu);
    snprintf(c->endpoint, sizeof c->endpoint, "%s", endpoint);
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void *coord_main(void *arg)
{
    coord_thread *c = arg;
    c->rc = joust_coordinator_run(c->st, c->run, &c->cfg, &c->sum);
    c->done = 1;
    on_bound("failed", c); /* wakes the starter if binding failed */
    return NULL;
}

/* Overrides for the next coord_start (0: the default). */
static uint32_t next_max_lost, next_drain_after;
static int next_sign;
static joust_commit_rule next_commit; /* .max != 0: the rule instead of the defaults */
static const char *next_curve_secret, *next_curve_allow;

static void coord_start(coord_thread *c, joust_store_t *st, const char *run, uint32_t lease_ms,
                        uint32_t max_attempts)
{
    memset(c, 0, sizeof *c);
    joust_run_spec spec = {.strategy = "round-robin", .judge = "sim", .order = "fixed",
                           .seed = 1, .max_attempts = max_attempts, .lease_ms = lease_ms};
    Joust__RunRecord *r = NULL;
    CHECK_RC(joust_run_open(st, run, &spec, &r));
    joust_rec_free(r);
    c->st = st;
    c->run = run;
    joust_coord_config_defaults(&c->cfg);
    c->cfg.bind = "tcp://127.0.0.1:*";
    c->cfg.heartbeat_ms = 200;
    c->cfg.liveness = 5;
    c->cfg.commit.ms = 5;
    c->cfg.log_every_ms = 500;
    if (next_max_lost)
        c->cfg.max_lost = next_max_lost;
    if (next_commit.max)
        c->cfg.commit = next_commit;
    memset(&next_commit, 0, sizeof next_commit);
    if (next_drain_after)
        c->cfg.drain_after = next_drain_after;
    c->cfg.curve_secret = next_curve_secret;
    c->cfg.curve_allow = next_curve_allow;
    c->cfg.sign = next_sign;
    next_max_lost = next_drain_after = 0;
    next_sign = 0;
    next_curve_secret = next_curve_allow = NULL;
    c->cfg.stop = &c->stop;
    c->cfg.on_bound = on_bound;
    c->cfg.on_bound_arg = c;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_mutex_lock(&c->mu);
    pthread_create(&c->th, NULL, coord_main, c);
    while (!c->endpoint[0])
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    CHECK(strncmp(c->endpoint, "tcp://", 6) == 0);
}

/* Waits up to 5 s for the coordinator to finish on its own (it should,
 * once the run is complete), stops it otherwise, and joins it. */
static void coord_join(coord_thread *c)
{
    int64_t until = joust_now_ms() + 5000;
    while (!c->done && joust_now_ms() < until)
        sleep_ms(10);
    CHECK(c->done);
    c->stop = 1;
    pthread_join(c->th, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
}

/* ------------------------------------------------------- fake worker --- */

#define INBOX 64

typedef struct {
    void *ctx, *sock;
    joust_wire_msg inbox[INBOX];
    int n;
    int heartbeats; /* HEARTBEATs received from the coordinator */
    int64_t last_sent;
    int unavailable; /* its heartbeats say so */
} fake;

/* A DEALER set up like the worker's (joust_wire_socket_setup), except
 * that ZMQ_IMMEDIATE is turned off unless `as_worker`: with IMMEDIATE on,
 * libzmq discards unread incoming messages when the connection drops
 * (session_base_t::reconnect terminates the pipe at once), so the last
 * messages of a coordinator that closes would race with our reads. A5
 * shows that race with the worker's own options. */
static void fake_open_opts(fake *w, const char *endpoint, int as_worker)
{
    memset(w, 0, sizeof *w);
    w->ctx = zmq_ctx_new();
    w->sock = zmq_socket(w->ctx, ZMQ_DEALER);
    joust_wire_socket_setup(w->sock, 0);
    if (!as_worker) {
        int zero = 0;
        zmq_setsockopt(w->sock, ZMQ_IMMEDIATE, &zero, sizeof zero);
    }
    CHECK(zmq_connect(w->sock, endpoint) == 0);
}

static void fake_open(fake *w, const char *endpoint) { fake_open_opts(w, endpoint, 0); }

/* A fake that speaks CURVE with its own keypair. */
static void fake_open_curve(fake *w, const char *endpoint, const joust_curve_keypair *kp,
                            const char *server_public)
{
    memset(w, 0, sizeof *w);
    w->ctx = zmq_ctx_new();
    w->sock = zmq_socket(w->ctx, ZMQ_DEALER);
    joust_wire_socket_setup(w->sock, 0);
    int zero = 0;
    zmq_setsockopt(w->sock, ZMQ_IMMEDIATE, &zero, sizeof zero);
    CHECK_RC(joust_curve_client_setup(w->sock, kp, server_public));
    CHECK(zmq_connect(w->sock, endpoint) == 0);
}

static void fake_close(fake *w)
{
    for (int i = 0; i < w->n; i++)
        joust_wire_msg_clear(&w->inbox[i]);
    zmq_close(w->sock);
    zmq_ctx_term(w->ctx);
}

/* Sends, retrying while the connection is not up yet (IMMEDIATE). */
static int fake_send(fake *w, int cmd, const ProtobufCMessage *body)
{
    int64_t until = joust_now_ms() + 3000;
    int rc;
    while ((rc = joust_wire_send(w->sock, NULL, 0, cmd, body)) == JOUST_EAGAIN &&
           joust_now_ms() < until)
        sleep_ms(5);
    if (rc == 0)
        w->last_sent = joust_now_ms();
    return rc;
}

/* A heartbeat: sent once the connection is up (retrying), or, with
 * `once`, tried once (the coordinator may have closed already). */
static void fake_heartbeat(fake *w, int once)
{
    Joust__Heartbeat hb = JOUST__HEARTBEAT__INIT;
    if (w->unavailable) {
        hb.has_unavailable = 1;
        hb.unavailable = 1;
        hb.unavailable_reason = "http://127.0.0.1:9/v1: connection refused";
    }
    if (!once)
        CHECK_RC(fake_send(w, JOUST_CMD_HEARTBEAT, &hb.base));
    else if (joust_wire_send(w->sock, NULL, 0, JOUST_CMD_HEARTBEAT, &hb.base) == 0)
        w->last_sent = joust_now_ms();
}

static void fake_ready(fake *w, const char *name, uint32_t slots)
{
    Joust__Ready r = JOUST__READY__INIT;
    r.worker_name = (char *)name;
    r.slots = slots;
    r.judge = "sim";
    CHECK_RC(fake_send(w, JOUST_CMD_READY, &r.base));
}

/* Receives for up to ms milliseconds into the inbox (HEARTBEATs counted,
 * not kept); keeps heartbeating when `alive`. */
static void fake_pump(fake *w, int ms, int alive)
{
    int64_t until = joust_now_ms() + ms;
    for (;;) {
        int64_t now = joust_now_ms();
        if (alive && now - w->last_sent >= 100)
            fake_heartbeat(w, 1);
        if (now >= until)
            break;
        zmq_pollitem_t item = {w->sock, 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, (int)(until - now < 50 ? until - now : 50));
        joust_wire_msg m;
        int rc;
        while ((rc = joust_wire_recv(w->sock, 0, &m)) != JOUST_EAGAIN && rc != JOUST_EIO) {
            if (rc < 0) {
                test_failed++;
                fprintf(stderr, "fake worker: bad message from the coordinator: %s\n", m.error);
            } else if (m.cmd == JOUST_CMD_HEARTBEAT) {
                w->heartbeats++;
                joust_wire_msg_clear(&m);
            } else if (w->n < INBOX) {
                w->inbox[w->n++] = m;
            } else {
                joust_wire_msg_clear(&m);
            }
        }
    }
}

/* Takes the first inbox message with this command, waiting up to ms. The
 * caller owns *out (joust_wire_msg_clear). */
static int fake_take(fake *w, int cmd, int ms, joust_wire_msg *out, int alive)
{
    int64_t until = joust_now_ms() + ms;
    for (;;) {
        for (int i = 0; i < w->n; i++) {
            if (w->inbox[i].cmd == cmd) {
                *out = w->inbox[i];
                memmove(&w->inbox[i], &w->inbox[i + 1], (size_t)(w->n - i - 1) * sizeof *w->inbox);
                w->n--;
                return 1;
            }
        }
        int64_t now = joust_now_ms();
        if (now >= until)
            return 0;
        fake_pump(w, (int)(until - now < 20 ? until - now : 20), alive);
    }
}

/* Waits for an ACK that contains match_id (other ACKs are dropped). */
static int fake_take_ack(fake *w, uint64_t match_id, int ms)
{
    int64_t until = joust_now_ms() + ms;
    joust_wire_msg m;
    while (fake_take(w, JOUST_CMD_ACK, (int)(until - joust_now_ms()), &m, 1)) {
        const Joust__Ack *a = (const Joust__Ack *)m.body;
        int found = 0;
        for (size_t i = 0; i < a->n_match_ids; i++)
            found |= a->match_ids[i] == match_id;
        joust_wire_msg_clear(&m);
        if (found)
            return 1;
        if (joust_now_ms() >= until)
            break;
    }
    return 0;
}

static void fake_result_kind(fake *w, uint32_t run_id, uint64_t match_id, uint32_t attempt,
                             int status, double p, const char *error, int kind)
{
    Joust__MatchResult x = JOUST__MATCH_RESULT__INIT;
    x.match_id = match_id;
    x.attempt = attempt;
    x.status = (Joust__OutcomeStatus)status;
    if (status == JOUST__OUTCOME_STATUS__OK) {
        x.has_p_first = 1;
        x.p_first = p;
        x.has_answer = 1;
        x.answer = p >= 0.5 ? 1 : 2;
        x.reason = "looks sharper";
    }
    x.error = (char *)error;
    if (status == JOUST__OUTCOME_STATUS__IMAGE_ERROR) {
        x.has_failed_image_id = 1;
        x.failed_image_id = 2;
    }
    x.has_latency_us = 1;
    x.latency_us = 1234;
    if (kind) {
        x.has_kind = 1;
        x.kind = (Joust__OutcomeKind)kind;
    }
    Joust__MatchResult *xs[] = {&x};
    Joust__Result r = JOUST__RESULT__INIT;
    r.run_id = run_id;
    r.n_results = 1;
    r.results = xs;
    r.judge = "sim";
    CHECK_RC(fake_send(w, JOUST_CMD_RESULT, &r.base));
}

static void fake_result(fake *w, uint32_t run_id, uint64_t match_id, uint32_t attempt, int status,
                        double p, const char *error)
{
    fake_result_kind(w, run_id, match_id, attempt, status, p, error, 0);
}

static int job_has(const Joust__Job *j, uint64_t match_id, uint32_t attempt)
{
    for (size_t i = 0; i < j->n_matches; i++)
        if (j->matches[i]->match_id == match_id && j->matches[i]->attempt == attempt)
            return 1;
    return 0;
}

static Joust__OutcomeRecord *outcome(joust_store_t *st, uint32_t run_id, uint64_t match_id)
{
    Joust__OutcomeRecord *o = NULL;
    return joust_rec_outcome_get(st, run_id, match_id, &o) < 0 ? NULL : o;
}

/* ------------------------------------------------------------ A1 ------- */

static void test_coordinator_basics(void)
{
    joust_store_t *st = make_store("a1", 3); /* 3 images, fixed order: 3 matches */
    coord_thread c;
    coord_start(&c, st, "a1", 10000, 2);
    joust_wire_msg m;

    /* a peer that never sent READY is asked to register */
    fake stranger;
    fake_open(&stranger, c.endpoint);
    fake_heartbeat(&stranger, 0);
    CHECK(fake_take(&stranger, JOUST_CMD_DISCONNECT, 3000, &m, 0));
    if (m.body) {
        const Joust__Disconnect *d = (const Joust__Disconnect *)m.body;
        CHECK(d->reason && strstr(d->reason, "send READY"));
        CHECK(!d->run_complete);
    }
    joust_wire_msg_clear(&m);
    CHECK(fake_take(&stranger, JOUST_CMD_JOB, 300, &m, 0) == 0); /* no work for it */
    fake_close(&stranger);

    fake w;
    fake_open(&w, c.endpoint);
    fake_ready(&w, "fw", 2);
    /* one JOB with two matches (the worker's slots), attempt 1 */
    CHECK(fake_take(&w, JOUST_CMD_JOB, 3000, &m, 1));
    const Joust__Job *j = (const Joust__Job *)m.body;
    CHECK(j && j->run_id == 1 && j->lease_ms == 10000 && j->n_matches == 2);
    if (j && j->n_matches == 2) {
        CHECK(job_has(j, 1, 1) && job_has(j, 2, 1));
        const Joust__MatchJob *mj = j->matches[0];
        CHECK(mj->prompt_id == 1 && streq(mj->prompt, "fox"));
        CHECK(mj->first->image_id == 1 && mj->second->image_id == 2);
        CHECK(mj->first->uri && strstr(mj->first->uri, "/a1/0.png"));
        CHECK(mj->first->has_latent && mj->second->has_latent && mj->second->latent == 1.0);
    }
    joust_wire_msg_clear(&m);
    /* credit exhausted: nothing more for 500 ms, but heartbeats come */
    CHECK(fake_take(&w, JOUST_CMD_JOB, 500, &m, 1) == 0);
    CHECK(w.heartbeats >= 1);

    /* a result returns one credit: ACK for it, the third match follows */
    fake_result_kind(&w, 1, 1, 1, JOUST__OUTCOME_STATUS__OK, 0.7, NULL, JOUST__OUTCOME_KIND__HARD);
    CHECK(fake_take_ack(&w, 1, 3000));
    CHECK(fake_take(&w, JOUST_CMD_JOB, 3000, &m, 1));
    j = (const Joust__Job *)m.body;
    CHECK(j && j->n_matches == 1 && job_has(j, 3, 1));
    joust_wire_msg_clear(&m);

    /* an infrastructure failure (legacy JUDGE_ERROR reads as INFRA_ERROR):
     * ACKed, re-dispatched with attempt 2, no attempt spent */
    fake_result(&w, 1, 2, 1, JOUST__OUTCOME_STATUS__JUDGE_ERROR, 0, "timeout");
    CHECK(fake_take_ack(&w, 2, 3000));
    CHECK(fake_take(&w, JOUST_CMD_JOB, 3000, &m, 1));
    j = (const Joust__Job *)m.body;
    CHECK(j && j->n_matches == 1 && job_has(j, 2, 2));
    joust_wire_msg_clear(&m);
    /* unparseable spends one of the 2 attempts: dispatched again */
    fake_result(&w, 1, 2, 2, JOUST__OUTCOME_STATUS__UNPARSEABLE, 0, "no answer yet");
    CHECK(fake_take_ack(&w, 2, 3000));
    CHECK(fake_take(&w, JOUST_CMD_JOB, 3000, &m, 1));
    j = (const Joust__Job *)m.body;
    CHECK(j && j->n_matches == 1 && job_has(j, 2, 3));
    joust_wire_msg_clear(&m);
    /* the last attempt's failure is final */
    fake_result(&w, 1, 2, 3, JOUST__OUTCOME_STATUS__UNPARSEABLE, 0, "no answer");
    CHECK(fake_take_ack(&w, 2, 3000));

    /* a duplicate of a committed result is ACKed again */
    fake_result(&w, 1, 1, 1, JOUST__OUTCOME_STATUS__OK, 0.7, NULL);
    CHECK(fake_take_ack(&w, 1, 3000));
    /* results for another run are dropped, but ACKed so the worker stops
     * resending what can never commit here */
    fake_result(&w, 9, 3, 1, JOUST__OUTCOME_STATUS__OK, 0.5, NULL);
    CHECK(fake_take_ack(&w, 3, 3000));

    /* the last match: an image error is final at once; the run completes */
    fake_result(&w, 1, 3, 1, JOUST__OUTCOME_STATUS__IMAGE_ERROR, 0, "gone");
    CHECK(fake_take_ack(&w, 3, 3000));
    CHECK(fake_take(&w, JOUST_CMD_DISCONNECT, 3000, &m, 1));
    const Joust__Disconnect *d = (const Joust__Disconnect *)m.body;
    CHECK(d && d->has_run_complete && d->run_complete);
    joust_wire_msg_clear(&m);
    coord_join(&c);
    CHECK(c.rc == 0);
    CHECK(c.sum.complete == 1);
    CHECK(c.sum.planned == 3 && c.sum.ok == 1 && c.sum.failed == 2);
    CHECK(c.sum.retried == 2 && c.sum.duplicates == 1 && c.sum.infra_retries == 1);
    CHECK(c.sum.run.planned == 3 && c.sum.run.counts.ok + c.sum.run.counts.failed == 3);
    CHECK(c.sum.run.counts.ok == 1);
    CHECK(c.sum.run.counts.unparseable == 1);
    CHECK(c.sum.run.counts.image_error == 1);
    CHECK(joust_coord_tally_failed(&c.sum.run) == 2);
    CHECK(streq(c.sum.run.example[JOUST_FAIL_UNPARSEABLE], "no answer"));
    fake_close(&w);

    /* the store */
    Joust__OutcomeRecord *o = outcome(st, 1, 1);
    CHECK(o && o->status == JOUST__OUTCOME_STATUS__OK && o->has_p_first && o->p_first == 0.7);
    if (o) {
        CHECK(o->first == 1 && o->second == 2 && o->prompt_id == 1);
        CHECK(o->attempt == 1 && streq(o->worker, "fw") && streq(o->judge, "sim"));
        CHECK(o->has_answer && o->answer == 1 && o->latency_us == 1234);
        CHECK(o->has_committed_ms && o->committed_ms > 0);
        CHECK(o->has_kind && o->kind == JOUST__OUTCOME_KIND__HARD);
    }
    joust_rec_free(o);
    char *val = NULL;
    size_t vlen = 0;
    CHECK_RC(joust_rec_rationale_get(st, 1, 1, &val, &vlen));
    CHECK(val && vlen == 13 && !memcmp(val, "looks sharper", 13));
    free(val);
    o = outcome(st, 1, 2);
    CHECK(o && o->status == JOUST__OUTCOME_STATUS__UNPARSEABLE && o->attempt == 3 &&
          streq(o->error, "no answer") && !o->has_p_first);
    joust_rec_free(o);
    o = outcome(st, 1, 3);
    CHECK(o && o->status == JOUST__OUTCOME_STATUS__IMAGE_ERROR && o->failed_image_id == 2);
    joust_rec_free(o);
    CHECK(outcome(st, 1, 4) == NULL);
    Joust__RunRecord *r = NULL;
    CHECK_RC(joust_run_open(st, "a1", NULL, &r));
    CHECK(r && r->complete && r->planning_done && r->next_match_id == 4);
    joust_rec_free(r);
    joust_store_destroy(&st);
}

/* ------------------------------------------------------------ A2 ------- */

/* A coordinator under `rule` over a run of 3 matches, which a fake worker
 * takes in one JOB and answers with feed(); then the run completes. */
static void commit_rule_run(const char *name, joust_commit_rule rule, void (*feed)(fake *w))
{
    joust_store_t *st = make_store(name, 3);
    coord_thread c;
    next_commit = rule;
    coord_start(&c, st, name, 10000, 2);
    joust_wire_msg m;
    fake w;
    fake_open(&w, c.endpoint);
    fake_ready(&w, "fw", 3);
    CHECK(fake_take(&w, JOUST_CMD_JOB, 3000, &m, 1));
    CHECK(m.body && ((const Joust__Job *)m.body)->n_matches == 3);
    joust_wire_msg_clear(&m);
    feed(&w);
    CHECK(fake_take(&w, JOUST_CMD_DISCONNECT, 3000, &m, 1));
    CHECK(m.body && ((const Joust__Disconnect *)m.body)->run_complete);
    joust_wire_msg_clear(&m);
    coord_join(&c);
    CHECK(c.rc == 0 && c.sum.complete && c.sum.ok == 3);
    fake_close(&w);
    joust_store_destroy(&st);
}

static void each_acked_at_once(fake *w)
{
    for (uint64_t id = 1; id <= 3; id++) {
        fake_result(w, 1, id, 1, JOUST__OUTCOME_STATUS__OK, 0.5, NULL);
        CHECK(fake_take_ack(w, id, 3000));
    }
}

/* A commit starts once commit.max_bytes of records are staged, long
 * before commit.ms, .min or .max: each result here is ACKed at once. */
static void test_commit_bytes(void)
{
    commit_rule_run("a13", (joust_commit_rule){.min = 1000, .max = 1000, .max_bytes = 1, .ms = 600000},
                    each_acked_at_once);
}

static void second_written_at_once(fake *w)
{
    fake_result(w, 1, 1, 1, JOUST__OUTCOME_STATUS__OK, 0.5, NULL);
    int64_t t0 = joust_now_ms();
    CHECK(!fake_take_ack(w, 1, 300)); /* one staged: under min, the timer 2 s off */
    fake_result(w, 1, 2, 1, JOUST__OUTCOME_STATUS__OK, 0.5, NULL);
    CHECK(fake_take_ack(w, 2, 1200) && joust_now_ms() - t0 < 2000); /* before the timer */
    fake_result(w, 1, 3, 1, JOUST__OUTCOME_STATUS__OK, 0.5, NULL);
    CHECK(fake_take_ack(w, 3, 5000));
}

/* With the writer idle, a commit starts once commit.min results are
 * staged, long before commit.ms: one result waits, the second is written
 * at once with it (the third too, or on the timer). */
static void test_commit_min(void)
{
    commit_rule_run("a14", (joust_commit_rule){.min = 2, .max = 1000, .max_bytes = 0, .ms = 2000},
                    second_written_at_once);
}

static void test_lease_expiry(void)
{
    /* A hung worker (heartbeats, never answers) beside a healthy one: its
     * expired leases go to the other worker, it is drained, no match is
     * abandoned; its late answer still counts, once. */
    joust_store_t *st = make_store("a2", 3); /* 3 matches */
    coord_thread c;
    coord_start(&c, st, "a2", 300, 2);
    fake hung, good;
    fake_open(&hung, c.endpoint);
    fake_ready(&hung, "hung", 3);
    joust_wire_msg m;
    CHECK(fake_take(&hung, JOUST_CMD_JOB, 3000, &m, 1));
    CHECK(m.body && ((const Joust__Job *)m.body)->n_matches == 3);
    joust_wire_msg_clear(&m);
    fake_open(&good, c.endpoint);
    fake_ready(&good, "good", 3);
    int64_t t0 = joust_now_ms();
    CHECK(fake_take(&good, JOUST_CMD_JOB, 3000, &m, 1)); /* after the leases expired */
    CHECK(joust_now_ms() - t0 >= 200);
    const Joust__Job *j = (const Joust__Job *)m.body;
    CHECK(j && j->n_matches == 3 && job_has(j, 1, 2) && job_has(j, 2, 2) && job_has(j, 3, 2));
    joust_wire_msg_clear(&m);
    /* the hung worker's late answer for match 1 is recorded (it held the
     * lease); the healthy one's twin is then a duplicate */
    fake_result(&hung, 1, 1, 1, JOUST__OUTCOME_STATUS__OK, 0.9, NULL);
    CHECK(fake_take_ack(&hung, 1, 3000));
    for (uint64_t id = 1; id <= 3; id++)
        fake_result(&good, 1, id, 2, JOUST__OUTCOME_STATUS__OK, 0.25, NULL);
    CHECK(fake_take_ack(&good, 3, 3000));
    CHECK(fake_take(&good, JOUST_CMD_DISCONNECT, 3000, &m, 1));
    CHECK(m.body && ((const Joust__Disconnect *)m.body)->run_complete);
    joust_wire_msg_clear(&m);
    /* the drained worker was never sent the matches again */
    CHECK(fake_take(&hung, JOUST_CMD_JOB, 0, &m, 1) == 0);
    coord_join(&c);
    CHECK(c.rc == 0 && c.sum.complete && c.sum.expired == 3 && c.sum.drained == 1);
    CHECK(c.sum.failed == 0 && c.sum.ok == 3 && c.sum.duplicates == 1);
    CHECK(joust_coord_tally_failed(&c.sum.run) == 0 && c.sum.run.counts.ok + c.sum.run.counts.failed == 3);
    Joust__OutcomeRecord *o = outcome(st, 1, 1);
    CHECK(o && o->status == JOUST__OUTCOME_STATUS__OK && streq(o->worker, "hung") && o->p_first == 0.9);
    joust_rec_free(o);
    o = outcome(st, 1, 2);
    CHECK(o && o->status == JOUST__OUTCOME_STATUS__OK && streq(o->worker, "good") && o->attempt == 2);
    joust_rec_free(o);
    fake_close(&hung);
    fake_close(&good);
    joust_store_destroy(&st);

    /* Alone, a match whose lease is lost max_lost times is ABANDONED: a
     * failure of the run, not a silent success. */
    st = make_store("a2b", 2); /* one match */
    next_max_lost = 2;
    next_drain_after = 100;
    coord_start(&c, st, "a2b", 300, 3);
    fake_open(&hung, c.endpoint);
    fake_ready(&hung, "hung", 1);
    CHECK(fake_take(&hung, JOUST_CMD_JOB, 3000, &m, 1));
    CHECK(m.body && job_has((const Joust__Job *)m.body, 1, 1));
    joust_wire_msg_clear(&m);
    CHECK(fake_take(&hung, JOUST_CMD_JOB, 3000, &m, 1)); /* the same, no other worker */
    CHECK(m.body && job_has((const Joust__Job *)m.body, 1, 2));
    joust_wire_msg_clear(&m);
    CHECK(fake_take(&hung, JOUST_CMD_DISCONNECT, 3000, &m, 1));
    CHECK(m.body && ((const Joust__Disconnect *)m.body)->run_complete);
    joust_wire_msg_clear(&m);
    coord_join(&c);
    CHECK(c.rc == 0 && c.sum.complete && c.sum.expired == 2 && c.sum.failed == 1);
    CHECK(c.sum.run.counts.abandoned == 1 && streq(c.sum.run.example[JOUST_FAIL_ABANDONED], "gave up after 2 lost leases: lease expired"));
    o = outcome(st, 1, 1);
    CHECK(o && o->status == JOUST__OUTCOME_STATUS__ABANDONED && o->attempt == 2);
    CHECK(o && o->error && strstr(o->error, "gave up after 2 lost leases: lease expired"));
    joust_rec_free(o);
    fake_close(&hung);
    joust_store_destroy(&st);
}

/* ------------------------------------------------------------ A3 ------- */

static void test_silent_worker_dropped(void)
{
    joust_store_t *st = make_store("a3", 2);
    coord_thread c;
    coord_start(&c, st, "a3", 60000, 3);
    fake w1, w2;
    fake_open(&w1, c.endpoint);
    fake_ready(&w1, "w1", 1);
    joust_wire_msg m;
    CHECK(fake_take(&w1, JOUST_CMD_JOB, 3000, &m, 1));
    joust_wire_msg_clear(&m);
    int64_t t0 = joust_now_ms();
    /* w1 goes silent; w2 registers and keeps heartbeating */
    fake_open(&w2, c.endpoint);
    fake_ready(&w2, "w2", 1);
    CHECK(fake_take(&w2, JOUST_CMD_JOB, 4000, &m, 1));
    int64_t waited = joust_now_ms() - t0;
    CHECK(waited >= 800 && waited < 3500); /* heartbeat_ms * liveness = 1000 ms */
    CHECK(m.body && job_has((const Joust__Job *)m.body, 1, 2));
    joust_wire_msg_clear(&m);
    fake_result(&w2, 1, 1, 2, JOUST__OUTCOME_STATUS__OK, 0.25, NULL);
    CHECK(fake_take_ack(&w2, 1, 3000));
    CHECK(fake_take(&w2, JOUST_CMD_DISCONNECT, 3000, &m, 1));
    joust_wire_msg_clear(&m);
    coord_join(&c);
    CHECK(c.rc == 0 && c.sum.complete && c.sum.ok == 1 && c.sum.retried == 1);
    Joust__OutcomeRecord *o = outcome(st, 1, 1);
    CHECK(o && o->attempt == 2 && streq(o->worker, "w2") && o->p_first == 0.25);
    joust_rec_free(o);
    /* the dropped worker got no goodbye */
    fake_pump(&w1, 100, 0);
    CHECK(fake_take(&w1, JOUST_CMD_DISCONNECT, 0, &m, 0) == 0);
    fake_close(&w1);
    fake_close(&w2);
    joust_store_destroy(&st);
}

/* ------------------------------------------------------------ A4 ------- */

/* Answers every match the fake holds or is sent until DISCONNECT. */
static int finish_run(fake *w, uint64_t *held, int nheld)
{
    int64_t until = joust_now_ms() + 5000;
    int done = 0;
    while (!done && joust_now_ms() < until) {
        while (nheld > 0) {
            uint64_t id = held[--nheld];
            fake_result(w, 1, id, 1, JOUST__OUTCOME_STATUS__OK, 0.5, NULL);
        }
        fake_pump(w, 50, 1);
        for (int i = 0; i < w->n; i++) {
            if (w->inbox[i].cmd == JOUST_CMD_JOB) {
                const Joust__Job *j = (const Joust__Job *)w->inbox[i].body;
                for (size_t k = 0; k < j->n_matches && nheld < 8; k++)
                    held[nheld++] = j->matches[k]->match_id;
            }
            done |= w->inbox[i].cmd == JOUST_CMD_DISCONNECT;
            joust_wire_msg_clear(&w->inbox[i]);
        }
        w->n = 0;
    }
    return done;
}

/* Takes a JOB within ms; adds its match ids to held. */
static int take_job(fake *w, int ms, uint64_t *held, int *nheld)
{
    joust_wire_msg m;
    if (!fake_take(w, JOUST_CMD_JOB, ms, &m, 1))
        return 0;
    const Joust__Job *j = (const Joust__Job *)m.body;
    for (size_t k = 0; j && k < j->n_matches && *nheld < 8; k++)
        held[(*nheld)++] = j->matches[k]->match_id;
    joust_wire_msg_clear(&m);
    return 1;
}

/* BUG (coordinator/coordinator.c, on_result, lines 535-536): every result in
 * a RESULT message returns a credit (`p->outstanding--`) before the match is
 * looked up, so a result for an unknown match, a duplicate of a committed
 * match, or the late result of an expired lease (whose credit expire_leases
 * already returned, lines 693-694) hands out a credit the worker does not
 * have. The coordinator then keeps more than `slots` matches at that worker
 * (its judge refuses them with JUDGE_ERROR, burning attempts). Expected: no
 * new JOB while the worker's only slot is taken. */
static void test_credit_not_returned_by_bogus_results(void)
{
    for (int dup = 0; dup < 2; dup++) {
        joust_store_t *st = make_store(dup ? "a4d" : "a4u", 3); /* 3 matches */
        coord_thread c;
        coord_start(&c, st, "a4", 60000, 3);
        fake w;
        fake_open(&w, c.endpoint);
        fake_ready(&w, "fw", 1);
        uint64_t held[8];
        int nheld = 0;
        CHECK(take_job(&w, 3000, held, &nheld) && nheld == 1);
        if (!dup) {
            /* a result for a match that was never planned: dropped */
            fake_result(&w, 1, 999, 1, JOUST__OUTCOME_STATUS__OK, 0.5, NULL);
        } else {
            /* answer match 1, get match 2, then send match 1 again */
            fake_result(&w, 1, held[0], 1, JOUST__OUTCOME_STATUS__OK, 0.5, NULL);
            nheld = 0;
            CHECK(fake_take_ack(&w, 1, 3000));
            CHECK(take_job(&w, 3000, held, &nheld) && nheld == 1);
            fake_result(&w, 1, 1, 1, JOUST__OUTCOME_STATUS__OK, 0.5, NULL);
            CHECK(fake_take_ack(&w, 1, 3000)); /* a duplicate is ACKed again */
        }
        int got = take_job(&w, 500, held, &nheld);
        CHECK(got == 0); /* BUG: fails while on_result returns a credit for it */
        if (got)
            fprintf(stderr, "  (%s result gave a credit: worker with 1 slot now holds %d matches)\n",
                    dup ? "a duplicate" : "an unknown match's", nheld);
        CHECK(finish_run(&w, held, nheld));
        coord_join(&c);
        CHECK(c.rc == 0 && c.sum.complete && c.sum.ok == 3);
        fake_close(&w);
        joust_store_destroy(&st);
    }
}

/* ------------------------------------------------------------ A5 ------- */

/* BUG (proto/wire.c, joust_wire_socket_setup line 49: ZMQ_IMMEDIATE on the
 * worker's DEALER; with coordinator/coordinator.c finish()/teardown closing
 * the ROUTER right after the goodbye): with IMMEDIATE set, libzmq drops the
 * DEALER's unread incoming messages when the connection closes, so the
 * final ACKs and DISCONNECT(run_complete) are lost unless the worker reads
 * them before the coordinator's socket is gone. The worker then keeps its
 * outbox, never sees run_complete and does not exit. Deterministic here:
 * the fake worker reads only after the coordinator has closed. Expected:
 * the goodbye is still readable. */
static void test_goodbye_survives_close(void)
{
    joust_store_t *st = make_store("a5", 2); /* one match */
    coord_thread c;
    coord_start(&c, st, "a5", 60000, 3);
    fake w;
    fake_open_opts(&w, c.endpoint, 1);
    fake_ready(&w, "fw", 1);
    joust_wire_msg m;
    CHECK(fake_take(&w, JOUST_CMD_JOB, 3000, &m, 1));
    joust_wire_msg_clear(&m);
    fake_result(&w, 1, 1, 1, JOUST__OUTCOME_STATUS__OK, 0.5, NULL);
    coord_join(&c); /* the run completes and the coordinator closes */
    CHECK(c.rc == 0 && c.sum.complete);
    sleep_ms(300);  /* the worker was busy judging meanwhile */
    int got_ack = 0, got_bye = 0;
    int rc;
    while ((rc = joust_wire_recv(w.sock, 0, &m)) != JOUST_EAGAIN && rc != JOUST_EIO) {
        got_ack |= rc == 0 && m.cmd == JOUST_CMD_ACK;
        got_bye |= rc == 0 && m.cmd == JOUST_CMD_DISCONNECT;
        joust_wire_msg_clear(&m);
    }
    CHECK(got_ack); /* BUG: lost with ZMQ_IMMEDIATE */
    CHECK(got_bye); /* BUG: lost with ZMQ_IMMEDIATE */
    fake_close(&w);
    joust_store_destroy(&st);
}

/* ------------------------------------------------------------ A7 ------- */

static void test_forged_results(void)
{
    joust_store_t *st = make_store("a7", 2); /* one match */
    coord_thread c;
    coord_start(&c, st, "a7", 60000, 3);
    fake w, evil, stranger;
    fake_open(&w, c.endpoint);
    fake_ready(&w, "fw", 1);
    joust_wire_msg m;
    CHECK(fake_take(&w, JOUST_CMD_JOB, 3000, &m, 1));
    CHECK(m.body && job_has((const Joust__Job *)m.body, 1, 1));
    joust_wire_msg_clear(&m);
    /* a registered worker that never held the lease */
    fake_open(&evil, c.endpoint);
    fake_ready(&evil, "evil", 4);
    fake_result(&evil, 1, 1, 1, JOUST__OUTCOME_STATUS__OK, 1.0, NULL);
    CHECK(!fake_take_ack(&evil, 1, 600));
    /* a peer that never registered */
    fake_open(&stranger, c.endpoint);
    fake_result(&stranger, 1, 1, 1, JOUST__OUTCOME_STATUS__CONFIG_ERROR, 0, "forged stop");
    CHECK(fake_take(&stranger, JOUST_CMD_DISCONNECT, 3000, &m, 0)); /* "send READY" */
    joust_wire_msg_clear(&m);
    CHECK(!fake_take_ack(&stranger, 1, 300));
    CHECK(!c.done); /* the forged CONFIG_ERROR stopped nothing */
    /* the lessee settles it */
    fake_result(&w, 1, 1, 1, JOUST__OUTCOME_STATUS__OK, 0.3, NULL);
    CHECK(fake_take_ack(&w, 1, 3000));
    CHECK(fake_take(&w, JOUST_CMD_DISCONNECT, 3000, &m, 1));
    joust_wire_msg_clear(&m);
    coord_join(&c);
    CHECK(c.rc == 0 && c.sum.complete && c.sum.ok == 1 && c.sum.forged == 2);
    Joust__OutcomeRecord *o = outcome(st, 1, 1);
    CHECK(o && o->p_first == 0.3 && streq(o->worker, "fw"));
    joust_rec_free(o);
    fake_close(&w);
    fake_close(&evil);
    fake_close(&stranger);
    joust_store_destroy(&st);
}

/* ------------------------------------------------------------ A8 ------- */

static void test_infra_and_unavailable(void)
{
    joust_store_t *st = make_store("a8", 2); /* one match */
    coord_thread c;
    coord_start(&c, st, "a8", 60000, 1); /* one attempt: an infra error must not spend it */
    fake w1, w2;
    fake_open(&w1, c.endpoint);
    fake_ready(&w1, "w1", 1);
    joust_wire_msg m;
    CHECK(fake_take(&w1, JOUST_CMD_JOB, 3000, &m, 1));
    CHECK(m.body && job_has((const Joust__Job *)m.body, 1, 1));
    joust_wire_msg_clear(&m);
    fake_open(&w2, c.endpoint);
    fake_ready(&w2, "w2", 1);
    fake_pump(&w2, 100, 1);
    /* w1's endpoint fails: the match goes to w2, not back to w1 */
    fake_result(&w1, 1, 1, 1, JOUST__OUTCOME_STATUS__INFRA_ERROR, 0, "connection refused");
    CHECK(fake_take_ack(&w1, 1, 3000));
    CHECK(fake_take(&w2, JOUST_CMD_JOB, 3000, &m, 1));
    CHECK(m.body && job_has((const Joust__Job *)m.body, 1, 2));
    joust_wire_msg_clear(&m);
    CHECK(fake_take(&w1, JOUST_CMD_JOB, 300, &m, 1) == 0);
    /* both become unavailable; w2 gives the match back: nobody gets it */
    w1.unavailable = w2.unavailable = 1;
    fake_heartbeat(&w1, 0);
    fake_heartbeat(&w2, 0);
    fake_pump(&w1, 100, 1);
    fake_result(&w2, 1, 1, 2, JOUST__OUTCOME_STATUS__INFRA_ERROR, 0, "503 Service Unavailable");
    CHECK(fake_take_ack(&w2, 1, 3000));
    for (int i = 0; i < 10; i++) { /* a second, both heartbeating */
        CHECK(fake_take(&w1, JOUST_CMD_JOB, 50, &m, 1) == 0);
        CHECK(fake_take(&w2, JOUST_CMD_JOB, 50, &m, 1) == 0);
    }
    CHECK(!c.done);
    /* paused, and `joust status` can say why (the run record) */
    Joust__RunRecord *rr = NULL;
    CHECK_RC(joust_run_open(st, "a8", NULL, &rr));
    CHECK(rr && rr->paused && strstr(rr->paused, "w1 unavailable (http://127.0.0.1:9/v1: connection refused)") &&
          strstr(rr->paused, "w2 unavailable"));
    joust_rec_free(rr);
    /* w1 is available again: it gets the match */
    w1.unavailable = 0;
    fake_heartbeat(&w1, 0);
    CHECK(fake_take(&w1, JOUST_CMD_JOB, 3000, &m, 1));
    CHECK(m.body && job_has((const Joust__Job *)m.body, 1, 3));
    joust_wire_msg_clear(&m);
    fake_result(&w1, 1, 1, 3, JOUST__OUTCOME_STATUS__OK, 0.6, NULL);
    CHECK(fake_take_ack(&w1, 1, 3000));
    CHECK(fake_take(&w1, JOUST_CMD_DISCONNECT, 3000, &m, 1));
    joust_wire_msg_clear(&m);
    coord_join(&c);
    CHECK(c.rc == 0 && c.sum.complete && c.sum.ok == 1 && c.sum.failed == 0);
    CHECK(c.sum.infra_retries == 2);
    CHECK_RC(joust_run_open(st, "a8", NULL, &rr));
    CHECK(rr && !rr->paused && rr->complete);
    joust_rec_free(rr);
    Joust__OutcomeRecord *o = outcome(st, 1, 1);
    CHECK(o && o->status == JOUST__OUTCOME_STATUS__OK && o->attempt == 3 && streq(o->worker, "w1"));
    joust_rec_free(o);
    fake_close(&w1);
    fake_close(&w2);
    joust_store_destroy(&st);
}

/* ------------------------------------------------------------ A9 ------- */

static void test_config_error_stops(void)
{
    joust_store_t *st = make_store("a9", 3);
    coord_thread c;
    coord_start(&c, st, "a9", 60000, 3);
    fake w;
    fake_open(&w, c.endpoint);
    fake_ready(&w, "fw", 1);
    joust_wire_msg m;
    CHECK(fake_take(&w, JOUST_CMD_JOB, 3000, &m, 1));
    joust_wire_msg_clear(&m);
    fake_result(&w, 1, 1, 1, JOUST__OUTCOME_STATUS__CONFIG_ERROR, 0,
                "http://127.0.0.1:8000/v1: HTTP 401: {\"error\": \"invalid api key\"}");
    CHECK(fake_take_ack(&w, 1, 3000));
    CHECK(fake_take(&w, JOUST_CMD_DISCONNECT, 3000, &m, 1));
    const Joust__Disconnect *d = (const Joust__Disconnect *)m.body;
    CHECK(d && !d->run_complete && d->reason && strstr(d->reason, "invalid api key"));
    joust_wire_msg_clear(&m);
    coord_join(&c);
    CHECK(c.rc == JOUST_EJUDGE && !c.sum.complete);
    CHECK(strstr(c.sum.stopped, "worker fw") && strstr(c.sum.stopped, "http://127.0.0.1:8000/v1") &&
          strstr(c.sum.stopped, "invalid api key"));
    CHECK(outcome(st, 1, 1) == NULL);
    fake_close(&w);
    joust_store_destroy(&st);
}

/* ------------------------------------------------------------ A10 ------ */

static void test_forged_under_curve(void)
{
    joust_curve_keypair ck, gk, ek;
    if (joust_curve_keygen(&ck) == JOUST_EUNSUPPORTED) {
        fprintf(stderr, "  (A9 skipped: libzmq without CURVE)\n");
        return;
    }
    CHECK_RC(joust_curve_keygen(&gk));
    CHECK_RC(joust_curve_keygen(&ek));
    joust_store_t *st = make_store("a10", 2); /* one match */
    char base[PATH_MAX], secret[PATH_MAX + 8], allow[PATH_MAX + 16], err[256];
    snprintf(base, sizeof base, "%s/a10/coord", tmpdir);
    CHECK_RC(joust_curve_write_keys(base, "coord", &ck, err, sizeof err));
    snprintf(secret, sizeof secret, "%s.key", base);
    snprintf(allow, sizeof allow, "%s/a10/allow.txt", tmpdir);
    FILE *f = fopen(allow, "w");
    CHECK(f != NULL);
    if (!f)
        return;
    fprintf(f, "gpu-1 %s\ngpu-2 %s\n", gk.public_z85, ek.public_z85);
    fclose(f);
    next_curve_secret = secret;
    next_curve_allow = allow;
    coord_thread c;
    coord_start(&c, st, "a10", 60000, 3);
    fake good, evil;
    fake_open_curve(&good, c.endpoint, &gk, ck.public_z85);
    fake_ready(&good, "whatever", 1);
    joust_wire_msg m;
    CHECK(fake_take(&good, JOUST_CMD_JOB, 3000, &m, 1));
    CHECK(m.body && job_has((const Joust__Job *)m.body, 1, 1));
    joust_wire_msg_clear(&m);
    /* gpu-2 registers claiming gpu-1's name, and forges the result */
    fake_open_curve(&evil, c.endpoint, &ek, ck.public_z85);
    fake_ready(&evil, "gpu-1", 1);
    fake_result(&evil, 1, 1, 1, JOUST__OUTCOME_STATUS__OK, 1.0, NULL);
    CHECK(!fake_take_ack(&evil, 1, 600));
    fake_result(&good, 1, 1, 1, JOUST__OUTCOME_STATUS__OK, 0.4, NULL);
    CHECK(fake_take_ack(&good, 1, 3000));
    CHECK(fake_take(&good, JOUST_CMD_DISCONNECT, 3000, &m, 1));
    joust_wire_msg_clear(&m);
    coord_join(&c);
    CHECK(c.rc == 0 && c.sum.complete && c.sum.forged == 1 && c.sum.ok == 1);
    Joust__OutcomeRecord *o = outcome(st, 1, 1);
    CHECK(o && o->p_first == 0.4 && streq(o->worker, "gpu-1"));
    joust_rec_free(o);
    fake_close(&good);
    fake_close(&evil);
    joust_curve_wipe(&ck, sizeof ck);
    joust_store_destroy(&st);
}

/* ------------------------------------------------------------ A11 ------ */

static void test_restart_resend(void)
{
    joust_store_t *st = make_store("a11", 2); /* one match */
    coord_thread c;
    coord_start(&c, st, "a11", 60000, 3);
    fake w, stranger;
    fake_open(&w, c.endpoint);
    fake_ready(&w, "fw", 1);
    joust_wire_msg m;
    CHECK(fake_take(&w, JOUST_CMD_JOB, 3000, &m, 1));
    joust_wire_msg_clear(&m);
    /* the coordinator goes away with the match leased */
    c.stop = 1;
    pthread_join(c.th, NULL);
    CHECK(c.rc == 0 && !c.sum.complete);
    pthread_mutex_destroy(&c.mu);
    pthread_cond_destroy(&c.cv);
    fake_close(&w);
    coord_start(&c, st, "a11", 60000, 3);
    /* a peer that did not register cannot settle the recovered match */
    fake_open(&stranger, c.endpoint);
    fake_result(&stranger, 1, 1, 1, JOUST__OUTCOME_STATUS__OK, 0.9, NULL);
    CHECK(!fake_take_ack(&stranger, 1, 400));
    /* the worker that judged it registers again and resends its result of
     * an attempt from before the restart: recorded under its name */
    fake_open(&w, c.endpoint);
    fake_ready(&w, "fw", 1);
    fake_result(&w, 1, 1, 2, JOUST__OUTCOME_STATUS__OK, 0.35, NULL);
    CHECK(fake_take_ack(&w, 1, 3000));
    CHECK(fake_take(&w, JOUST_CMD_DISCONNECT, 3000, &m, 1));
    joust_wire_msg_clear(&m);
    coord_join(&c);
    CHECK(c.rc == 0 && c.sum.complete && c.sum.forged == 1 && c.sum.ok == 1);
    Joust__OutcomeRecord *o = outcome(st, 1, 1);
    CHECK(o && streq(o->worker, "fw") && o->attempt == 2 && o->p_first == 0.35);
    joust_rec_free(o);
    fake_close(&w);
    fake_close(&stranger);
    joust_store_destroy(&st);
}

/* ------------------------------------------------------------ B -------- */

/* A scripted coordinator: a ROUTER that, like coordinator.c's on_message,
 * answers any message from a peer that has not sent READY with
 * DISCONNECT("unknown worker: send READY"). */
typedef struct {
    void *ctx, *sock;
    char endpoint[256];
    unsigned char rid[256];
    size_t rid_len;
    int registered, readies, disconnects_sent;
} fake_coord;

static void fake_coord_open(fake_coord *fc)
{
    memset(fc, 0, sizeof *fc);
    fc->ctx = zmq_ctx_new();
    fc->sock = zmq_socket(fc->ctx, ZMQ_ROUTER);
    joust_wire_socket_setup(fc->sock, 1);
    CHECK(zmq_bind(fc->sock, "tcp://127.0.0.1:*") == 0);
    size_t len = sizeof fc->endpoint;
    zmq_getsockopt(fc->sock, ZMQ_LAST_ENDPOINT, fc->endpoint, &len);
}

static void fake_coord_close(fake_coord *fc)
{
    zmq_close(fc->sock);
    zmq_ctx_term(fc->ctx);
}

static int fc_send(fake_coord *fc, int cmd, const ProtobufCMessage *body)
{
    return joust_wire_send(fc->sock, fc->rid, fc->rid_len, cmd, body);
}

static void fc_tell_unknown(fake_coord *fc)
{
    Joust__Disconnect d = JOUST__DISCONNECT__INIT;
    d.reason = "unknown worker: send READY";
    if (fc_send(fc, JOUST_CMD_DISCONNECT, &d.base) == 0)
        fc->disconnects_sent++;
}

/* Waits up to ms for a message with cmd from the worker; answers what an
 * unregistered peer sends like the coordinator does. With `forget` the
 * scripted coordinator acts as if it had restarted: the peer is unknown. */
static int fc_wait(fake_coord *fc, int cmd, int ms, joust_wire_msg *out)
{
    int64_t until = joust_now_ms() + ms;
    for (;;) {
        int64_t now = joust_now_ms();
        if (now >= until)
            return 0;
        zmq_pollitem_t item = {fc->sock, 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, (int)(until - now));
        joust_wire_msg m;
        int rc;
        while ((rc = joust_wire_recv(fc->sock, 1, &m)) != JOUST_EAGAIN && rc != JOUST_EIO) {
            if (rc < 0) {
                test_failed++;
                fprintf(stderr, "scripted coordinator: bad message: %s\n", m.error);
                continue;
            }
            memcpy(fc->rid, m.rid, m.rid_len);
            fc->rid_len = m.rid_len;
            if (m.cmd == JOUST_CMD_READY) {
                fc->registered = 1;
                fc->readies++;
            } else if (!fc->registered) {
                fc_tell_unknown(fc);
            }
            if (m.cmd == cmd) {
                *out = m;
                return 1;
            }
            joust_wire_msg_clear(&m);
        }
    }
}

typedef struct {
    joust_worker_config cfg;
    volatile sig_atomic_t stop;
    volatile int done;
    int rc;
    pthread_t th;
} worker_thread;

static void *worker_main(void *arg)
{
    worker_thread *t = arg;
    t->rc = joust_worker_run(&t->cfg);
    t->done = 1;
    return NULL;
}

static void worker_start(worker_thread *t, const char *endpoint)
{
    memset(t, 0, sizeof *t);
    joust_worker_config_defaults(&t->cfg);
    t->cfg.endpoint = endpoint;
    t->cfg.name = "tw";
    t->cfg.judge = "sim";
    t->cfg.slots = 4;
    t->cfg.heartbeat_ms = 100;
    t->cfg.liveness = 5;
    t->cfg.stop = &t->stop;
    pthread_create(&t->th, NULL, worker_main, t);
}

/* A sim worker started against a scripted coordinator; 1 once its READY
 * came (taken and dropped). worker_end stops it: it must exit with 0. */
static int worker_begin(fake_coord *fc, worker_thread *t)
{
    fake_coord_open(fc);
    worker_start(t, fc->endpoint);
    joust_wire_msg m;
    int got = fc_wait(fc, JOUST_CMD_READY, 3000, &m);
    CHECK(got);
    if (got)
        joust_wire_msg_clear(&m);
    return got;
}

static void worker_end(fake_coord *fc, worker_thread *t)
{
    t->stop = 1;
    pthread_join(t->th, NULL);
    CHECK(t->rc == 0);
    fake_coord_close(fc);
}

/* Regression: READY sent right after zmq_connect on a DEALER with
 * ZMQ_IMMEDIATE fails with EAGAIN while the TCP connection is being set up;
 * it must be sent again once connected. And a coordinator that answers
 * with DISCONNECT("unknown worker: send READY") keeps the worker's liveness
 * fresh, so the worker must re-register on it rather than wait for a
 * reconnect that never comes. (Both once made `joust demo` hang.) */
static void test_worker_registers(void)
{
    fake_coord fc;
    fake_coord_open(&fc);
    worker_thread t;
    worker_start(&t, fc.endpoint);
    joust_wire_msg m;
    int got = fc_wait(&fc, JOUST_CMD_READY, 2000, &m);
    CHECK(got);
    if (got) {
        const Joust__Ready *r = (const Joust__Ready *)m.body;
        CHECK(streq(r->worker_name, "tw") && r->slots == 4 && streq(r->judge, "sim"));
        CHECK(r->build && strncmp(r->build, "joust ", 6) == 0);
        joust_wire_msg_clear(&m);
    }
    /* act as a restarted coordinator: forget the worker */
    fc.registered = 0;
    int before = fc.readies;
    got = fc_wait(&fc, JOUST_CMD_READY, 2000, &m);
    CHECK(got && fc.readies > before);
    if (got)
        joust_wire_msg_clear(&m);
    t.stop = 1;
    pthread_join(t.th, NULL);
    CHECK(t.rc == 0);
    fake_coord_close(&fc);
}

/* JOB -> RESULT; without an ACK the result stays in the outbox and is sent
 * again after the worker re-registers; ACK clears it; DISCONNECT with
 * run_complete ends the worker. */
static void test_worker_outbox(void)
{
    fake_coord fc;
    worker_thread t;
    joust_wire_msg m;
    if (worker_begin(&fc, &t)) {
        Joust__ImageRef a = JOUST__IMAGE_REF__INIT, b = JOUST__IMAGE_REF__INIT;
        a.image_id = 1;
        a.uri = "https://example.com/a.png";
        a.has_latent = 1;
        a.latent = 2.0;
        b.image_id = 2;
        b.uri = "https://example.com/b.png";
        b.has_latent = 1;
        b.latent = 0.0;
        Joust__MatchJob mj = JOUST__MATCH_JOB__INIT;
        mj.match_id = 42;
        mj.attempt = 1;
        mj.prompt_id = 1;
        mj.prompt = "fox";
        mj.first = &a;
        mj.second = &b;
        Joust__MatchJob *mjs[] = {&mj};
        Joust__Job job = JOUST__JOB__INIT;
        job.run_id = 3;
        job.lease_ms = 60000;
        job.n_matches = 1;
        job.matches = mjs;
        CHECK_RC(fc_send(&fc, JOUST_CMD_JOB, &job.base));
        CHECK(fc_wait(&fc, JOUST_CMD_RESULT, 3000, &m));
        const Joust__Result *r = (const Joust__Result *)m.body;
        CHECK(r && r->run_id == 3 && r->n_results == 1 && streq(r->judge, "sim"));
        if (r && r->n_results == 1) {
            const Joust__MatchResult *x = r->results[0];
            CHECK(x->match_id == 42 && x->attempt == 1 && x->status == JOUST__OUTCOME_STATUS__OK);
            CHECK(x->has_p_first && x->p_first > 0.85 && x->p_first < 0.9); /* sigmoid(2) */
        }
        joust_wire_msg_clear(&m);
        /* no ACK; the coordinator "restarts" and forgets the worker */
        fc.registered = 0;
        int rgot = fc_wait(&fc, JOUST_CMD_READY, 2000, &m);
        CHECK(rgot);
        if (rgot) {
            joust_wire_msg_clear(&m);
            CHECK(fc_wait(&fc, JOUST_CMD_RESULT, 2000, &m)); /* the outbox again */
            r = (const Joust__Result *)m.body;
            CHECK(r && r->n_results == 1 && r->results[0]->match_id == 42);
            joust_wire_msg_clear(&m);
        }
        uint64_t ids[] = {42};
        Joust__Ack ack = JOUST__ACK__INIT;
        ack.run_id = 3;
        ack.n_match_ids = 1;
        ack.match_ids = ids;
        CHECK_RC(fc_send(&fc, JOUST_CMD_ACK, &ack.base));
        Joust__Disconnect d = JOUST__DISCONNECT__INIT;
        d.reason = "run complete";
        d.has_run_complete = 1;
        d.run_complete = 1;
        sleep_ms(50);
        CHECK_RC(fc_send(&fc, JOUST_CMD_DISCONNECT, &d.base));
        /* the worker leaves on its own */
        int64_t until = joust_now_ms() + 2000;
        while (!t.done && joust_now_ms() < until) {
            if (fc_wait(&fc, -1, 50, &m))
                joust_wire_msg_clear(&m);
        }
        CHECK(t.done);
    }
    worker_end(&fc, &t);
}

/* A JOB to the scripted coordinator's worker: match_id once per attempt
 * in attempts[0..n) (at most 4). */
static void fc_send_match(fake_coord *fc, uint64_t match_id, const uint32_t *attempts, size_t n)
{
    Joust__ImageRef a = JOUST__IMAGE_REF__INIT, b = JOUST__IMAGE_REF__INIT;
    a.image_id = 1, a.uri = "https://example.com/a.png", a.has_latent = 1, a.latent = 2.0;
    b.image_id = 2, b.uri = "https://example.com/b.png", b.has_latent = 1, b.latent = 0.0;
    Joust__MatchJob mj[4], *mjs[4];
    for (size_t i = 0; i < n && i < 4; i++) {
        joust__match_job__init(&mj[i]);
        mj[i].match_id = match_id, mj[i].attempt = attempts[i], mj[i].prompt_id = 1;
        mj[i].prompt = "fox", mj[i].first = &a, mj[i].second = &b;
        mjs[i] = &mj[i];
    }
    Joust__Job job = JOUST__JOB__INIT;
    job.run_id = 3, job.lease_ms = 60000, job.n_matches = n, job.matches = mjs;
    CHECK_RC(fc_send(fc, JOUST_CMD_JOB, &job.base));
}

/* The attempts a RESULT carries for match_id (0: none), in *count. */
static uint32_t result_attempt(const joust_wire_msg *m, uint64_t match_id, size_t *count)
{
    const Joust__Result *r = (const Joust__Result *)m->body;
    uint32_t attempt = 0;
    *count = 0;
    for (size_t i = 0; r && i < r->n_results; i++)
        if (r->results[i]->match_id == match_id)
            attempt = r->results[i]->attempt, (*count)++;
    return attempt;
}

/* A newer attempt of a match replaces the older one in the worker's
 * outbox: two attempts judged in one poll go out once, as the newer; an
 * attempt after an unacknowledged result goes out as the newer. */
static void test_worker_attempts(void)
{
    fake_coord fc;
    worker_thread t;
    joust_wire_msg m;
    if (worker_begin(&fc, &t)) {
        size_t count = 0;
        fc_send_match(&fc, 42, (const uint32_t[]){1, 2}, 2); /* one JOB: one poll */
        CHECK(fc_wait(&fc, JOUST_CMD_RESULT, 3000, &m));
        CHECK(result_attempt(&m, 42, &count) == 2 && count == 1);
        joust_wire_msg_clear(&m);
        fc_send_match(&fc, 42, (const uint32_t[]){3}, 1); /* no ACK came: replaces */
        CHECK(fc_wait(&fc, JOUST_CMD_RESULT, 3000, &m));
        CHECK(result_attempt(&m, 42, &count) == 3 && count == 1);
        joust_wire_msg_clear(&m);
        fc.registered = 0; /* re-registering resends the outbox: one entry, the newest */
        CHECK(fc_wait(&fc, JOUST_CMD_READY, 2000, &m));
        joust_wire_msg_clear(&m);
        CHECK(fc_wait(&fc, JOUST_CMD_RESULT, 2000, &m));
        CHECK(result_attempt(&m, 42, &count) == 3 && count == 1 &&
              ((const Joust__Result *)m.body)->n_results == 1);
        joust_wire_msg_clear(&m);
    }
    worker_end(&fc, &t);
}

/* ------------------------------------------------------------ A6 ------- */

/* A store write fails during a run (the store's fault seam, as a full disk):
 * the coordinator stops with JOUST_ENOSPC and acknowledges nothing of the
 * failed batch; restarted on a healthy store, the run completes and every
 * match has exactly one outcome, counted once. */
static void test_store_write_fails(void)
{
    joust_store_t *st = make_store("a6", 3); /* 3 matches */
    coord_thread c;
    coord_start(&c, st, "a6", 60000, 3);
    fake w;
    fake_open(&w, c.endpoint);
    fake_ready(&w, "fw", 4);
    uint64_t held[8];
    int nheld = 0;
    CHECK(take_job(&w, 3000, held, &nheld));
    fake_pump(&w, 200, 1); /* the planned matches are committed by now */
    joust_store_fault(st, JOUST_FAULT_WRITE, 0);
    CHECK(nheld > 0);
    fake_result(&w, 1, held[0], 1, JOUST__OUTCOME_STATUS__OK, 0.9, NULL);
    int64_t until = joust_now_ms() + 3000;
    while (!c.done && joust_now_ms() < until)
        fake_pump(&w, 20, 1);
    CHECK(c.done && c.rc == JOUST_ENOSPC && !c.sum.complete);
    CHECK(!fake_take_ack(&w, held[0], 300)); /* nothing acknowledged */
    coord_join(&c);
    fake_close(&w);
    Joust__OutcomeRecord *o = outcome(st, 1, held[0]);
    CHECK(o == NULL);
    joust_rec_free(o);
    joust_store_destroy(&st);

    /* Restart on the healthy store: the same result arrives again (the
     * worker kept it) and the run completes exactly once. */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/a6/db", tmpdir);
    CHECK_RC(joust_store_open(path, JOUST_STORE_EXISTING, &st));
    if (!st)
        return;
    coord_start(&c, st, "a6", 60000, 3);
    fake_open(&w, c.endpoint);
    fake_ready(&w, "fw", 4);
    fake_result(&w, 1, held[0], 1, JOUST__OUTCOME_STATUS__OK, 0.9, NULL);
    nheld = 0;
    CHECK(finish_run(&w, held, nheld));
    coord_join(&c);
    CHECK(c.rc == 0 && c.sum.complete);
    fake_close(&w);
    Joust__RunRecord *run = NULL;
    CHECK_RC(joust_run_open(st, "a6", NULL, &run));
    joust_run_counts kept, scanned;
    if (run) {
        CHECK_RC(joust_rec_run_counts(st, run, &kept));
        CHECK_RC(joust_rec_run_counts_scan(st, 1, &scanned));
        CHECK(kept.ok == 3 && kept.failed == 0 && !memcmp(&kept, &scanned, sizeof kept));
    }
    joust_rec_free(run);
    for (uint64_t id = 1; id <= 3; id++) {
        o = outcome(st, 1, id);
        CHECK(o && o->status == JOUST__OUTCOME_STATUS__OK);
        joust_rec_free(o);
    }
    joust_store_destroy(&st);
}

/* ----------------------------------------------------------- A12 ------- */

/* Sends one signature: OK with phash = 0x1000 + image id, or status. */
static void fake_signature(fake *w, uint32_t run_id, uint64_t image_id, int status)
{
    Joust__Signature g = JOUST__SIGNATURE__INIT, *gp = &g;
    g.image_id = image_id;
    g.status = (Joust__OutcomeStatus)status;
    if (status == JOUST__OUTCOME_STATUS__OK) {
        g.has_phash = g.has_width = g.has_height = 1;
        g.phash = 0x1000 + image_id;
        g.width = 640;
        g.height = 480;
    } else {
        g.error = "http://127.0.0.1:9/img: connection refused";
    }
    Joust__Result r = JOUST__RESULT__INIT;
    r.run_id = run_id;
    r.n_signatures = 1;
    r.signatures = &gp;
    CHECK_RC(fake_send(w, JOUST_CMD_RESULT, &r.base));
}

/* The image ids of a JOB's sign entries (no matches in it). */
static size_t sign_ids(const joust_wire_msg *m, uint64_t *ids)
{
    const Joust__Job *j = (const Joust__Job *)m->body;
    if (!j || j->n_matches)
        return 0;
    for (size_t i = 0; i < j->n_sign; i++)
        ids[i] = j->sign[i]->image_id;
    return j->n_sign;
}

static void test_signing(void)
{
    joust_store_t *st = make_store("a12", 3);
    coord_thread c;
    next_sign = JOUST_SIGN_ONLY;
    coord_start(&c, st, "a12", 300, 3);
    fake hung, good;
    joust_wire_msg m;
    uint64_t ids[8];
    fake_open(&hung, c.endpoint);
    fake_ready(&hung, "hung", 3);
    CHECK(fake_take(&hung, JOUST_CMD_JOB, 3000, &m, 1));
    CHECK(sign_ids(&m, ids) == 3 && ids[0] == 1 && ids[2] == 3);
    joust_wire_msg_clear(&m);
    /* the hung worker never answers: after 300 ms its leases expire and the
     * images go to the other worker, 2 at a time (its credit) */
    fake_open(&good, c.endpoint);
    fake_ready(&good, "good", 2);
    CHECK(fake_take(&good, JOUST_CMD_JOB, 3000, &m, 1));
    CHECK(sign_ids(&m, ids) == 2);
    uint64_t first = ids[0], second = ids[1];
    joust_wire_msg_clear(&m);
    fake_signature(&good, 1, first, JOUST__OUTCOME_STATUS__OK);
    fake_signature(&good, 1, second, JOUST__OUTCOME_STATUS__INFRA_ERROR); /* back to the queue */
    size_t got = 0;
    uint64_t all[8];
    while (got < 2 && fake_take(&good, JOUST_CMD_JOB, 3000, &m, 1)) {
        got += sign_ids(&m, all + got);
        joust_wire_msg_clear(&m);
    }
    CHECK(got == 2 && (all[0] == second || all[1] == second));
    for (size_t i = 0; i < got; i++)
        fake_signature(&good, 1, all[i], JOUST__OUTCOME_STATUS__OK);
    CHECK(fake_take(&good, JOUST_CMD_DISCONNECT, 3000, &m, 1));
    CHECK(m.body && ((const Joust__Disconnect *)m.body)->run_complete);
    joust_wire_msg_clear(&m);
    coord_join(&c);
    CHECK(c.rc == 0 && c.sum.complete && c.sum.sign_ok == 3 && c.sum.expired == 3);
    for (uint64_t id = 1; id <= 3; id++) {
        Joust__SignatureRecord *g = NULL;
        CHECK_RC(joust_rec_signature_get(st, id, &g));
        CHECK(g && g->status == JOUST__OUTCOME_STATUS__OK && g->phash == 0x1000 + id &&
              g->width == 640);
        joust_rec_free(g);
    }
    Joust__RunRecord *r = NULL;
    CHECK_RC(joust_rec_run_get(st, "a12", &r));
    CHECK(r && !r->complete && !r->planning_done && r->next_match_id == 1 && r->plan_cursor == 1);
    joust_rec_free(r);
    fake_close(&hung);
    fake_close(&good);
    joust_store_destroy(&st);
}

int main(int argc, char **argv)
{
    joust_log_set_level(getenv("JOUST_LOG") ? JOUST_LOG_DEBUG : JOUST_LOG_ERROR);
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 2;
    }
    const char *only = argc > 1 ? argv[1] : NULL;
    if (!only || !strcmp(only, "a1"))
        test_coordinator_basics();
    if (!only || !strcmp(only, "a2"))
        test_lease_expiry();
    if (!only || !strcmp(only, "a3"))
        test_silent_worker_dropped();
    if (!only || !strcmp(only, "a4"))
        test_credit_not_returned_by_bogus_results();
    if (!only || !strcmp(only, "a5"))
        test_goodbye_survives_close();
    if (!only || !strcmp(only, "a6"))
        test_store_write_fails();
    if (!only || !strcmp(only, "a7"))
        test_forged_results();
    if (!only || !strcmp(only, "a8"))
        test_infra_and_unavailable();
    if (!only || !strcmp(only, "a9"))
        test_config_error_stops();
    if (!only || !strcmp(only, "a10"))
        test_forged_under_curve();
    if (!only || !strcmp(only, "a11"))
        test_restart_resend();
    if (!only || !strcmp(only, "a12"))
        test_signing();
    if (!only || !strcmp(only, "a13"))
        test_commit_bytes();
    if (!only || !strcmp(only, "a14"))
        test_commit_min();
    if (!only || !strcmp(only, "b1"))
        test_worker_registers();
    if (!only || !strcmp(only, "b3"))
        test_worker_attempts();
    if (!only || !strcmp(only, "b2"))
        test_worker_outbox();
    rm_rf(tmpdir);
    return test_report();
}
