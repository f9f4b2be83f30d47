#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "clock.h"
#include "curve.h"
#include "err.h"
#include "log.h"
#include "signer.h"
#include "idmap.h"
#include "wire.h"
#include "worker_conn.h"
#include "worker_metrics.h"
#include "xalloc.h"

#define POLL_BATCH 256

/* Results waiting for their ACK, resent whole after a reconnect. */
typedef struct {
    Joust__MatchResult **items;
    size_t len, cap;
    joust_idmap_t index; /* match_id -> position in items */
} outbox;

typedef struct {
    const joust_worker_config *cfg;
    void *ctx, *sock;
    joust_judge_t *judge;
    joust_signer_t *signer; /* made at the first signature job */
    int signer_failed;
    outbox out;
    uint32_t run_id;
    int64_t last_recv_ms, last_send_ms;
    int need_ready; /* READY not yet sent on this connection */
    char name[128];
    uint64_t judged, acked, signed_images;
    joust_conn_watch_t *watch;
    int wakes;       /* the judge waits on the socket's fd (no 1 ms polling) */
    int unavailable; /* the judge says it cannot judge now */
    char unavailable_why[512];
} worker;

void joust_worker_config_defaults(joust_worker_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->judge = "quality";
    joust_judge_config_defaults(&cfg->judge_cfg);
    cfg->slots = 64;
    cfg->heartbeat_ms = 1000;
    cfg->liveness = 5;
    cfg->exit_when_done = 1;
    cfg->wait_ready_ms = 600000;
}

static void result_free(Joust__MatchResult *r)
{
    free(r->reason);
    free(r->error);
    free(r);
}

/* Cuts an owned string to the wire's limit in place. */
static char *truncated(char *s, size_t max)
{
    if (s && strnlen(s, max + 1) > max)
        s[max] = '\0';
    return s;
}

/* Stores a result (replacing an earlier attempt's: *replaced 1, nullable)
 * and returns it. */
static Joust__MatchResult *outbox_add(outbox *o, const joust_judge_res *res, int *replaced)
{
    Joust__MatchResult *r = xmalloc(sizeof *r);
    joust__match_result__init(r);
    r->match_id = res->match_id;
    r->attempt = res->attempt;
    r->status = (Joust__OutcomeStatus)res->status;
    if (res->status == JOUST_STATUS_OK) {
        r->has_p_first = 1;
        r->p_first = res->p_first;
    }
    r->has_answer = res->answer != 0;
    r->answer = (uint32_t)res->answer;
    /* Ownership of the strings moves from the judge result to the outbox;
     * the wire limits are enforced here so a verbose judge cannot make
     * the coordinator reject the whole RESULT. */
    r->reason = truncated(res->reason, 65536);
    r->error = truncated(res->error, 4096);
    r->has_failed_image_id = res->failed_image_id != 0;
    r->failed_image_id = res->failed_image_id;
    r->has_latency_us = 1;
    r->latency_us = res->latency_us;
    r->has_tokens = res->tokens != 0;
    r->tokens = res->tokens;
    if (res->status == JOUST_STATUS_OK && res->kind) {
        r->has_kind = 1;
        r->kind = (Joust__OutcomeKind)res->kind;
    }
    uint64_t pos;
    int found = joust_idmap_get(&o->index, r->match_id, &pos);
    if (replaced)
        *replaced = found;
    if (found) { /* newer attempt replaces */
        result_free(o->items[pos]);
        o->items[pos] = r;
        return r;
    }
    xgrow((void **)&o->items, &o->cap, o->len + 1, sizeof *o->items);
    joust_idmap_put(&o->index, r->match_id, o->len);
    o->items[o->len++] = r;
    return r;
}

static void outbox_ack(outbox *o, uint64_t match_id)
{
    uint64_t pos;
    if (!joust_idmap_get(&o->index, match_id, &pos))
        return;
    joust_idmap_del(&o->index, match_id);
    result_free(o->items[pos]);
    o->items[pos] = o->items[--o->len];
    if (pos < o->len)
        joust_idmap_put(&o->index, o->items[pos]->match_id, pos);
}

static int send_msg(worker *w, int cmd, const ProtobufCMessage *body)
{
    int rc = joust_wire_send(w->sock, NULL, 0, cmd, body);
    if (rc == 0)
        w->last_send_ms = joust_now_ms();
    return rc;
}

/* At least a result's packed size: its nine scalar fields take at most
 * 82 bytes with their tags (varints of up to 10 bytes, a double of 8),
 * each string its bytes and at most 6 more. Cheaper than protobuf-c's
 * exact count, which the pack then does again. */
static size_t result_bytes_max(const Joust__MatchResult *x)
{
    return 96 + (x->reason ? 6 + strlen(x->reason) : 0) + (x->error ? 6 + strlen(x->error) : 0);
}

/* Sends results (outbox entries) in RESULT messages of at most
 * JOUST_WIRE_MAX_MATCHES results. */
static void send_list(worker *w, Joust__MatchResult **items, size_t len)
{
    size_t from = 0;
    while (from < len && w->run_id && !w->need_ready) {
        /* Bounded by count and by bytes, well under the coordinator's
         * maximum message size even with long reasoning texts. */
        size_t n = 0, bytes = 0;
        while (from + n < len && n < JOUST_WIRE_MAX_MATCHES &&
               (n == 0 || bytes < JOUST_WIRE_MAX_MSG_BYTES / 8))
            bytes += result_bytes_max(items[from + n++]);
        Joust__Result msg = JOUST__RESULT__INIT;
        msg.run_id = w->run_id;
        msg.n_results = n;
        msg.results = items + from;
        msg.judge = (char *)joust_judge_name(w->judge);
        if (send_msg(w, JOUST_CMD_RESULT, &msg.base) < 0)
            return; /* kept in the outbox; resent after reconnect */
        from += n;
    }
}

/* Sends the whole outbox (after (re)registering). */
static void send_results(worker *w) { send_list(w, w->out.items, w->out.len); }

/* With ZMQ_IMMEDIATE a send fails until the connection is up, so READY is
 * retried from the loop until it goes out; the unacknowledged results
 * follow it. */
static void send_ready(worker *w)
{
    Joust__Ready r = JOUST__READY__INIT;
    r.worker_name = w->name;
    r.slots = (uint32_t)w->cfg->slots;
    r.judge = (char *)w->cfg->judge;
    r.build = "joust " JOUST_VERSION;
    r.has_job_tables = r.job_tables = 1;
    if (send_msg(w, JOUST_CMD_READY, &r.base) == 0) {
        w->need_ready = 0;
        send_results(w);
    }
}

static int connect_socket(worker *w)
{
    joust_conn_watch_destroy(&w->watch);
    if (w->sock)
        zmq_close(w->sock);
    w->sock = zmq_socket(w->ctx, ZMQ_DEALER);
    joust_wire_socket_setup(w->sock, 0);
    w->watch = joust_conn_watch_new(w->ctx, w->sock, w->cfg->endpoint,
                                    w->cfg->curve_secret || w->cfg->server_key);
    if (w->cfg->curve_secret || w->cfg->server_key) {
        joust_curve_keypair kp;
        char server[JOUST_CURVE_Z85_LEN + 1], err[512] = "CURVE needs both --curve-secret and --server-key";
        int rc = w->cfg->curve_secret && w->cfg->server_key ? 0 : JOUST_EINVAL;
        if (rc == 0 && (rc = joust_curve_read_secret(w->cfg->curve_secret, &kp, err, sizeof err)) == 0 &&
            (rc = joust_curve_read_public(w->cfg->server_key, server, err, sizeof err)) == 0 &&
            (rc = joust_curve_client_setup(w->sock, &kp, server)) < 0)
            snprintf(err, sizeof err, "cannot make the socket a CURVE client: %s", zmq_strerror(errno));
        joust_curve_wipe(&kp, sizeof kp);
        if (rc < 0) {
            log_error("CURVE: %s", err);
            return rc;
        }
    }
    if (zmq_connect(w->sock, w->cfg->endpoint) != 0) {
        log_error("cannot connect to %s: %s", w->cfg->endpoint, zmq_strerror(errno));
        return JOUST_EINVAL;
    }
    w->last_recv_ms = joust_now_ms();
    w->need_ready = 1;
    int fd = -1;
    size_t fdlen = sizeof fd;
    w->wakes = zmq_getsockopt(w->sock, ZMQ_FD, &fd, &fdlen) == 0 &&
               joust_judge_set_wake_fd(w->judge, fd) == 0;
    send_ready(w);
    return 0;
}

static void send_heartbeat(worker *w)
{
    Joust__Heartbeat hb = JOUST__HEARTBEAT__INIT;
    hb.has_inflight = 1;
    hb.inflight = (uint32_t)joust_judge_inflight(w->judge);
    hb.has_unavailable = 1;
    hb.unavailable = w->unavailable;
    hb.unavailable_reason = w->unavailable ? w->unavailable_why : NULL;
    send_msg(w, JOUST_CMD_HEARTBEAT, &hb.base);
}

/* Announces a change of the judge's health at once. */
static void check_health(worker *w)
{
    char why[512];
    int un = joust_judge_health(w->judge, why, sizeof why) != 0;
    if (un == w->unavailable && (!un || !strcmp(why, w->unavailable_why)))
        return;
    if (un && !w->unavailable)
        log_warn("worker %s: the judge cannot judge now (%s); telling the coordinator, "
                 "taking no new matches", w->name, why);
    else if (!un)
        log_info("worker %s: the judge is available again", w->name);
    w->unavailable = un;
    snprintf(w->unavailable_why, sizeof w->unavailable_why, "%s", un ? why : "");
    if (!w->need_ready)
        send_heartbeat(w);
}

/* Before READY: the judge must be able to judge (an endpoint answers),
 * up to wait_ready_ms, saying why not every 5 s. */
static int wait_ready(worker *w)
{
    char why[512];
    int64_t t0 = joust_now_ms(), logged = 0;
    while (joust_judge_health(w->judge, why, sizeof why) != 0) {
        int64_t now = joust_now_ms();
        if (w->cfg->stop && *w->cfg->stop)
            return 0;
        if (now - t0 >= w->cfg->wait_ready_ms) {
            log_error("worker %s: the judge was not ready after %d s (--wait-ready): %s", w->name,
                      w->cfg->wait_ready_ms / 1000, why);
            return JOUST_ETIMEOUT;
        }
        if (!logged || now - logged >= 5000) {
            log_warn("worker %s: waiting for the judge before asking for work (%lld of %d s): %s",
                     w->name, (long long)(now - t0) / 1000, w->cfg->wait_ready_ms / 1000, why);
            logged = now;
        }
        joust_judge_poll(w->judge, NULL, 0, 250); /* probes; sleeps meanwhile */
    }
    if (logged)
        log_info("worker %s: the judge is ready after %.1f s", w->name,
                 (double)(joust_now_ms() - t0) / 1000.0);
    return 0;
}

/* Signature jobs (docs/protocol.md §11): each image through the signing
 * stage, at once; the signatures go out in one RESULT, not kept in the
 * outbox (a lost one is signed again after its lease). */
static void sign_job(worker *w, const Joust__Job *job)
{
    if (!w->signer && !w->signer_failed)
        w->signer_failed = !(w->signer = joust_signer_new(&w->cfg->judge_cfg));
    size_t n = job->n_sign;
    Joust__Signature *sigs = xcalloc(n, sizeof *sigs);
    Joust__Signature **ptrs = xcalloc(n, sizeof *ptrs);
    char (*errors)[512] = xcalloc(n, sizeof *errors);
    for (size_t i = 0; i < n; i++) {
        const Joust__ImageRef *ref = job->sign[i];
        Joust__Signature *g = &sigs[i];
        joust__signature__init(g);
        g->image_id = ref->image_id;
        joust_signer_out o;
        if (w->signer) {
            joust_signer_sign(w->signer, ref->image_id, ref->uri, &o);
        } else {
            memset(&o, 0, sizeof o);
            o.status = JOUST_STATUS_INFRA_ERROR;
            snprintf(o.error, sizeof o.error, "this worker cannot sign: its allowed roots "
                     "(--allow-root) cannot be resolved");
        }
        g->status = (Joust__OutcomeStatus)o.status;
        if (o.status == JOUST_STATUS_OK) {
            g->has_phash = g->has_width = g->has_height = g->has_bytes = 1;
            g->phash = o.sig.phash;
            g->width = o.sig.w;
            g->height = o.sig.h;
            g->bytes = o.bytes;
        } else {
            memcpy(errors[i], o.error, sizeof errors[i]);
            g->error = errors[i];
        }
        ptrs[i] = g;
    }
    w->signed_images += n;
    if (!w->need_ready) {
        Joust__Result msg = JOUST__RESULT__INIT;
        msg.run_id = w->run_id;
        msg.n_signatures = n;
        msg.signatures = ptrs;
        msg.judge = (char *)joust_judge_name(w->judge);
        send_msg(w, JOUST_CMD_RESULT, &msg.base); /* lost: signed again after the lease */
    }
    free(errors);
    free(ptrs);
    free(sigs);
}

static joust_judge_image judge_img(const Joust__ImageRef *r)
{
    return (joust_judge_image){r->image_id, r->uri, r->latent, r->has_latent};
}

static void submit_one(worker *w, const joust_judge_req *req)
{
    int rc = joust_judge_submit(w->judge, req);
    if (rc < 0) {
        /* The judge cannot take it: report a judge error so the
         * coordinator re-dispatches it instead of waiting for a lease. */
        joust_judge_res res = {.match_id = req->match_id, .attempt = req->attempt,
                               .status = JOUST_STATUS_INFRA_ERROR};
        char msg[128];
        snprintf(msg, sizeof msg, "judge refused match %llu: %s",
                 (unsigned long long)req->match_id, joust_strerror(rc));
        res.error = xstrdup(msg);
        Joust__MatchResult *r = outbox_add(&w->out, &res, NULL);
        send_list(w, &r, 1);
    }
}

/* A JOB's matches, as MatchJobs or as pairs indexing its tables
 * (docs/protocol.md §4; wire.c checked the indexes). */
static void submit_job(worker *w, const Joust__Job *job)
{
    w->run_id = job->run_id;
    if (job->n_sign)
        sign_job(w, job);
    for (size_t i = 0; i < job->n_matches; i++) {
        const Joust__MatchJob *m = job->matches[i];
        joust_judge_req req = {.match_id = m->match_id, .attempt = m->attempt,
                               .prompt_id = m->prompt_id, .prompt = m->prompt,
                               .first = judge_img(m->first), .second = judge_img(m->second),
                               .caption = {m->first->caption, m->second->caption}};
        submit_one(w, &req);
    }
    for (size_t i = 0; i < job->n_pairs; i++) {
        const Joust__PairJob *m = job->pairs[i];
        const Joust__PromptRef *p = job->prompts[m->prompt];
        joust_judge_req req = {.match_id = m->match_id, .attempt = m->attempt,
                               .prompt_id = p->prompt_id, .prompt = p->text,
                               .first = judge_img(job->images[m->first]),
                               .second = judge_img(job->images[m->second]),
                               .caption = {job->images[m->first]->caption,
                                           job->images[m->second]->caption}};
        submit_one(w, &req);
    }
}

/* Returns 1 when the worker should exit. */
static int handle(worker *w, joust_wire_msg *m)
{
    switch (m->cmd) {
    case JOUST_CMD_JOB:
        submit_job(w, (const Joust__Job *)m->body);
        break;
    case JOUST_CMD_ACK: {
        const Joust__Ack *a = (const Joust__Ack *)m->body;
        for (size_t i = 0; i < a->n_match_ids; i++)
            outbox_ack(&w->out, a->match_ids[i]);
        w->acked += a->n_match_ids;
        break;
    }
    case JOUST_CMD_DISCONNECT: {
        const Joust__Disconnect *d = (const Joust__Disconnect *)m->body;
        log_info("coordinator says goodbye: %s", d->reason ? d->reason : "");
        if (d->run_complete && w->cfg->exit_when_done && w->out.len == 0)
            return 1;
        if (!d->run_complete)
            w->need_ready = 1; /* e.g. a restarted coordinator that does not know us */
        break;
    }
    default: /* HEARTBEAT: any message already counted as a sign of life */
        break;
    }
    return 0;
}

static void collect_results(worker *w, int timeout_ms)
{
    joust_judge_res res[POLL_BATCH];
    Joust__MatchResult *fresh[POLL_BATCH];
    uint64_t fresh_ids[POLL_BATCH]; /* compared by id: a replaced entry is freed */
    int n = joust_judge_poll(w->judge, res, POLL_BATCH, timeout_ms);
    /* Send exactly what came in: a newer attempt replaces its predecessor
     * in place, wherever that sits in the outbox. */
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (w->cfg->metrics)
            joust_prom_judge_record(&w->cfg->metrics->judge, (int)res[i].status,
                                    res[i].latency_us > 0 ? (uint64_t)res[i].latency_us : 0,
                                    res[i].tokens);
        int replaced;
        Joust__MatchResult *r = outbox_add(&w->out, &res[i], &replaced); /* takes the strings */
        /* Only a replaced entry can be in fresh already (from this poll). */
        size_t j = replaced ? 0 : k;
        while (j < k && fresh_ids[j] != r->match_id)
            j++;
        fresh[j] = r; /* a second attempt in the same poll replaces the first */
        fresh_ids[j] = r->match_id;
        k += j == k;
    }
    w->judged += n > 0 ? (uint64_t)n : 0;
    send_list(w, fresh, k);
}

int joust_worker_run(const joust_worker_config *cfg)
{
    worker w = {.cfg = cfg};
    joust_idmap_init(&w.out.index);
    if (cfg->name)
        snprintf(w.name, sizeof w.name, "%s", cfg->name);
    else {
        char host[64] = "host";
        gethostname(host, sizeof host - 1);
        snprintf(w.name, sizeof w.name, "w-%s-%d", host, (int)getpid());
    }
    int rc = joust_judge_new(cfg->judge, &cfg->judge_cfg, &w.judge);
    if (rc < 0) {
        log_error("unknown judge '%s'", cfg->judge);
        return rc;
    }
    log_info("worker %s: judge %s, %d slots, coordinator %s", w.name, cfg->judge, cfg->slots,
             cfg->endpoint);
    if (cfg->wait_ready_ms > 0 && (rc = wait_ready(&w)) < 0) {
        joust_judge_destroy(&w.judge);
        return rc;
    }
    w.ctx = zmq_ctx_new();
    rc = connect_socket(&w);
    int64_t idle_since = joust_now_ms();
    while (rc == 0 && !(cfg->stop && *cfg->stop)) {
        int busy = joust_judge_inflight(w.judge) > 0;
        if (w.wakes) {
            /* The judge sleeps until a reply, one of its timers, or the
             * socket's fd (checked first: ZMQ_FD is edge-triggered, and
             * reading ZMQ_EVENTS re-arms it). */
            int ev = 0;
            size_t evlen = sizeof ev;
            zmq_getsockopt(w.sock, ZMQ_EVENTS, &ev, &evlen);
            int64_t due = w.last_send_ms + cfg->heartbeat_ms - joust_now_ms();
            int wait = ev & ZMQ_POLLIN ? 0 : (int)(due < 1 ? 1 : due > cfg->heartbeat_ms / 4 ? cfg->heartbeat_ms / 4 : due);
            collect_results(&w, wait);
        } else {
            zmq_pollitem_t item = {w.sock, 0, ZMQ_POLLIN, 0};
            /* While the judge holds matches, wake every millisecond to
             * collect what it has finished. */
            if (zmq_poll(&item, 1, busy ? 1 : cfg->heartbeat_ms / 4) < 0 && errno != EINTR)
                break;
        }
        int64_t now = joust_now_ms();
        joust_conn_watch_poll(w.watch, now);
        joust_wire_msg m;
        int r, done = 0;
        while (!done && (r = joust_wire_recv(w.sock, 0, &m)) != JOUST_EAGAIN && r != JOUST_EIO) {
            w.last_recv_ms = now;
            if (r == JOUST_EPROTO)
                log_warn("dropped a message from the coordinator: %s", m.error);
            else
                done = handle(&w, &m);
            joust_wire_msg_clear(&m);
        }
        if (done)
            break;
        if (w.need_ready)
            send_ready(&w);
        if (!w.wakes && busy)
            collect_results(&w, 0);
        check_health(&w);
        joust_worker_metrics_tick(cfg->metrics, joust_judge_inflight(w.judge), w.out.len,
                                  !w.unavailable, w.acked);
        now = joust_now_ms();
        if (now - w.last_send_ms >= cfg->heartbeat_ms)
            send_heartbeat(&w);
        if (now - w.last_recv_ms > (int64_t)cfg->heartbeat_ms * cfg->liveness) {
            const char *why = joust_conn_watch_problem(w.watch);
            log_warn("coordinator silent for %lld ms%s%s; reconnecting", (long long)(now - w.last_recv_ms),
                     why[0] ? ": " : "", why);
            if (cfg->max_idle_ms && now - idle_since > cfg->max_idle_ms) {
                log_warn("no coordinator for %d ms; exiting", cfg->max_idle_ms);
                break;
            }
            rc = connect_socket(&w);
        } else {
            idle_since = now;
        }
    }
    log_info("worker %s: %llu judged, %llu acknowledged, %llu signed", w.name,
             (unsigned long long)w.judged, (unsigned long long)w.acked,
             (unsigned long long)w.signed_images);
    joust_signer_destroy(&w.signer);
    for (size_t i = 0; i < w.out.len; i++)
        result_free(w.out.items[i]);
    free(w.out.items);
    joust_idmap_free(&w.out.index);
    joust_judge_destroy(&w.judge);
    joust_conn_watch_destroy(&w.watch);
    zmq_close(w.sock);
    zmq_ctx_term(w.ctx);
    return rc;
}
