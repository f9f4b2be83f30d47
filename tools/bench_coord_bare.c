#include "bench_coord_bare.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "clock.h"
#include "committer.h"
#include "curve.h"
#include "err.h"
#include "log.h"
#include "records.h"
#include "store.h"
#include "wire.h"
#include "xalloc.h"

#define BARE_RUN_ID 1

double joust_bench_cpu_s(int who)
{
    struct rusage ru;
    getrusage(who, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Sends one message, waiting while the pipe is full (a bench peer that
 * goes away ends the run with JOUST_EIO). */
static int send_wait(void *sock, const void *rid, size_t rid_len, int cmd, const ProtobufCMessage *body)
{
    for (;;) {
        int rc = joust_wire_send(sock, rid, rid_len, cmd, body);
        if (rc != JOUST_EAGAIN)
            return rc;
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLOUT, 0};
        if (zmq_poll(&it, 1, 1000) < 0 && errno != EINTR)
            return JOUST_EIO;
    }
}

/* ------------------------------------------------------------ worker --- */

/* A worker process: registers, answers every match of every JOB at once
 * with OK, exits at DISCONNECT. */
static int bare_worker(int fd, int idx, const joust_bare_config *cfg, const joust_curve_keypair *wkp,
                       const char *server_pub)
{
    char ep[256];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof ep - 1 && (r = read(fd, ep + len, sizeof ep - 1 - len)) > 0)
        len += (size_t)r;
    ep[len] = 0;
    close(fd);
    if (!len)
        return 1;
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    joust_wire_socket_setup(s, 0);
    if (cfg->curve && joust_curve_client_setup(s, wkp, server_pub) < 0)
        return 1;
    if (zmq_connect(s, ep) != 0)
        return 1;
    char name[32];
    snprintf(name, sizeof name, "bare-%d", idx);
    Joust__Ready ready = JOUST__READY__INIT;
    ready.worker_name = name;
    ready.slots = cfg->slots;
    ready.judge = "bare";
    int rc = send_wait(s, NULL, 0, JOUST_CMD_READY, &ready.base);
    Joust__MatchResult *res = xcalloc(JOUST_WIRE_MAX_MATCHES, sizeof *res);
    Joust__MatchResult **ptrs = xmalloc(JOUST_WIRE_MAX_MATCHES * sizeof *ptrs);
    for (int done = 0; rc == 0 && !done;) {
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 1000) < 0 && errno != EINTR)
            break;
        joust_wire_msg m;
        int got;
        while (!done && (got = joust_wire_recv(s, 0, &m)) != JOUST_EAGAIN && got != JOUST_EIO) {
            if (got == 0 && m.cmd == JOUST_CMD_JOB) {
                const Joust__Job *job = (const Joust__Job *)m.body;
                for (size_t i = 0; i < job->n_pairs; i++) {
                    joust__match_result__init(&res[i]);
                    res[i].match_id = job->pairs[i]->match_id;
                    res[i].attempt = job->pairs[i]->attempt;
                    res[i].status = JOUST__OUTCOME_STATUS__OK;
                    res[i].has_p_first = 1;
                    res[i].p_first = 0.5;
                    ptrs[i] = &res[i];
                }
                Joust__Result out = JOUST__RESULT__INIT;
                out.run_id = job->run_id;
                out.n_results = job->n_pairs;
                out.results = ptrs;
                rc = send_wait(s, NULL, 0, JOUST_CMD_RESULT, &out.base);
            } else if (got == 0 && m.cmd == JOUST_CMD_DISCONNECT) {
                done = 1;
            }
            joust_wire_msg_clear(&m);
        }
    }
    free(res);
    free(ptrs);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return rc == 0 ? 0 : 1;
}

/* ------------------------------------------------------- coordinator --- */

typedef struct {
    unsigned char rid[256];
    size_t rid_len;
    uint32_t slots, outstanding;
    uint64_t *acks;
    size_t nacks, acks_cap;
} bare_peer;

typedef struct {
    uint32_t peer;
    uint64_t id;
} bare_ack;

typedef struct {
    const joust_bare_config *cfg;
    void *sock;
    joust_store_t *st;
    joust_committer_t *committer;
    joust_batch_t *batch;
    Joust__RunRecord run; /* counts only; never stored */
    bare_peer *peers;
    size_t npeers, peers_cap;
    int64_t last_progress_ms;
    bare_ack *staged, *flight;
    size_t nstaged, nflight, staged_cap, flight_cap;
    int64_t first_staged_ms;
    uint64_t next_id, committed;
    /* One JOB's messages, reused. */
    Joust__PairJob *pairs, **pair_ptrs;
    Joust__PromptRef *prompts, **prompt_ptrs;
    Joust__ImageRef *refs, **ref_ptrs;
    char (*uris)[32];
} bare;

static bare_peer *bare_peer_of(bare *b, const joust_wire_msg *m)
{
    for (size_t i = 0; i < b->npeers; i++)
        if (b->peers[i].rid_len == m->rid_len && !memcmp(b->peers[i].rid, m->rid, m->rid_len))
            return &b->peers[i];
    return NULL;
}

static int bare_dispatch(bare *b)
{
    for (size_t w = 0; w < b->npeers; w++) {
        bare_peer *p = &b->peers[w];
        while (p->outstanding < p->slots && b->next_id <= b->cfg->matches) {
            uint64_t left = b->cfg->matches - b->next_id + 1;
            uint32_t n = p->slots - p->outstanding;
            n = n < b->cfg->job_matches ? n : b->cfg->job_matches;
            n = left < n ? (uint32_t)left : n;
            /* JOBs as joust sends them (docs/protocol.md §4): pairs with
             * tables. Match k pairs two of the 16 images of prompt
             * (k - 1) / 240 + 1, the way a prompt of 16 has 240 ordered
             * pairs, so a JOB's tables are about as long as joust's. */
            size_t np = 0, ni = 0;
            uint64_t last_prompt = 0, img_ids[2 * JOUST_WIRE_MAX_MATCHES];
            for (uint32_t i = 0; i < n; i++) {
                uint64_t id = b->next_id + i, k = id - 1, prompt = k / 240 + 1;
                uint64_t pair[2] = {(prompt - 1) * 16 + k % 16 + 1, (prompt - 1) * 16 + (k / 16 + 1 + k % 16) % 16 + 1};
                if (prompt != last_prompt) {
                    joust__prompt_ref__init(&b->prompts[np]);
                    b->prompts[np].prompt_id = prompt;
                    b->prompts[np].text = "";
                    b->prompt_ptrs[np] = &b->prompts[np];
                    np++;
                    last_prompt = prompt;
                }
                Joust__PairJob *j = &b->pairs[i];
                joust__pair_job__init(j);
                j->match_id = id;
                j->attempt = 1;
                j->prompt = (uint32_t)(np - 1);
                for (int s = 0; s < 2; s++) {
                    size_t at = 0;
                    while (at < ni && img_ids[at] != pair[s]) /* a JOB has ~32 images */
                        at++;
                    if (at == ni) {
                        Joust__ImageRef *r = &b->refs[ni];
                        joust__image_ref__init(r);
                        r->image_id = img_ids[ni] = pair[s];
                        snprintf(b->uris[ni], sizeof b->uris[0], "img/%" PRIu64 ".jpg", pair[s]);
                        r->uri = b->uris[ni];
                        b->ref_ptrs[ni++] = r;
                    }
                    if (s == 0)
                        j->first = (uint32_t)at;
                    else
                        j->second = (uint32_t)at;
                }
                b->pair_ptrs[i] = j;
            }
            Joust__Job job = JOUST__JOB__INIT;
            job.run_id = BARE_RUN_ID;
            job.lease_ms = 60000;
            job.n_pairs = n;
            job.pairs = b->pair_ptrs;
            job.n_prompts = np;
            job.prompts = b->prompt_ptrs;
            job.n_images = ni;
            job.images = b->ref_ptrs;
            int rc = joust_wire_send(b->sock, p->rid, p->rid_len, JOUST_CMD_JOB, &job.base);
            if (rc == JOUST_EAGAIN)
                break;
            if (rc < 0)
                return rc;
            b->next_id += n;
            p->outstanding += n;
        }
    }
    return 0;
}

static void bare_on_result(bare *b, bare_peer *p, const Joust__Result *r)
{
    for (size_t i = 0; i < r->n_results; i++) {
        const Joust__MatchResult *x = r->results[i];
        uint64_t id = x->match_id;
        Joust__OutcomeRecord o = JOUST__OUTCOME_RECORD__INIT;
        o.prompt_id = (id - 1) / 240 + 1; /* the bare keeps no pairs: ids of the same size */
        o.first = 2 * id;
        o.second = 2 * id + 1;
        o.status = x->status;
        o.has_p_first = x->has_p_first;
        o.p_first = x->p_first;
        joust_rec_outcome_put(b->batch, &b->run, id, &o, NULL, NULL);
        if (b->nstaged++ == 0)
            b->first_staged_ms = joust_now_ms();
        xgrow((void **)&b->staged, &b->staged_cap, b->nstaged, sizeof *b->staged);
        b->staged[b->nstaged - 1] = (bare_ack){(uint32_t)(p - b->peers), id};
        if (p->outstanding)
            p->outstanding--;
    }
}

static void bare_commit_begin(bare *b)
{
    if (!b->nstaged || joust_committer_busy(b->committer))
        return;
    bare_ack *t = b->flight;
    b->flight = b->staged;
    b->staged = t;
    size_t cap = b->flight_cap;
    b->flight_cap = b->staged_cap;
    b->staged_cap = cap;
    b->nflight = b->nstaged;
    b->nstaged = 0;
    joust_committer_submit(b->committer, &b->batch);
}

/* After a synced write: its results are acknowledged, as joust does. */
static int bare_commit_reap(bare *b, int block)
{
    int rc = 0;
    if (!joust_committer_reap(b->committer, block, &rc))
        return 0;
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < b->nflight; i++) {
        bare_peer *p = &b->peers[b->flight[i].peer];
        xgrow((void **)&p->acks, &p->acks_cap, p->nacks + 1, sizeof *p->acks);
        p->acks[p->nacks++] = b->flight[i].id;
    }
    b->committed += b->nflight;
    b->nflight = 0;
    b->last_progress_ms = joust_now_ms();
    for (size_t i = 0; i < b->npeers; i++) {
        bare_peer *p = &b->peers[i];
        if (!p->nacks)
            continue;
        Joust__Ack ack = JOUST__ACK__INIT;
        ack.run_id = BARE_RUN_ID;
        ack.match_ids = p->acks;
        ack.n_match_ids = p->nacks;
        joust_wire_send(b->sock, p->rid, p->rid_len, JOUST_CMD_ACK, &ack.base);
        p->nacks = 0;
    }
    return 0;
}

static int bare_full(const bare *b)
{
    return joust_commit_full(&b->cfg->commit, b->nstaged, joust_batch_bytes(b->batch));
}

static int bare_loop(bare *b)
{
    const joust_bare_config *cfg = b->cfg;
    int rc = 0;
    while (rc == 0 && b->committed < cfg->matches) {
        if ((rc = bare_dispatch(b)) < 0)
            break;
        if (joust_now_ms() - b->last_progress_ms > 30000) {
            log_error("bare: nothing committed for 30 s (%zu workers registered); giving up",
                      b->npeers);
            return JOUST_EIO;
        }
        int busy = joust_committer_busy(b->committer), timeout = 1000;
        if (b->nstaged && !busy) {
            int64_t left = b->first_staged_ms + cfg->commit.ms - joust_now_ms();
            timeout = left < 0 ? 0 : (int)left;
        }
        int full = bare_full(b);
        zmq_pollitem_t items[2] = {{NULL, joust_committer_fd(b->committer), ZMQ_POLLIN, 0},
                                   {b->sock, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, full && busy ? 1 : 2, timeout) < 0 && errno != EINTR)
            return JOUST_EIO;
        if ((rc = bare_commit_reap(b, 0)) < 0)
            break;
        joust_wire_msg m;
        int r;
        while (!bare_full(b) &&
               (r = joust_wire_recv(b->sock, 1, &m)) != JOUST_EAGAIN && r != JOUST_EIO) {
            bare_peer *p = r == 0 ? bare_peer_of(b, &m) : NULL;
            if (r == 0 && m.cmd == JOUST_CMD_READY && !p) {
                xgrow((void **)&b->peers, &b->peers_cap, b->npeers + 1, sizeof *b->peers);
                p = &b->peers[b->npeers++];
                memset(p, 0, sizeof *p);
                memcpy(p->rid, m.rid, m.rid_len);
                p->rid_len = m.rid_len;
                p->slots = ((const Joust__Ready *)m.body)->slots;
            } else if (r == 0 && m.cmd == JOUST_CMD_RESULT && p) {
                bare_on_result(b, p, (const Joust__Result *)m.body);
            }
            joust_wire_msg_clear(&m);
        }
        if (joust_commit_due(&cfg->commit, b->nstaged, joust_batch_bytes(b->batch),
                             joust_now_ms() - b->first_staged_ms,
                             joust_committer_busy(b->committer)))
            bare_commit_begin(b);
        if (b->committed + b->nflight + b->nstaged == cfg->matches && b->nstaged)
            bare_commit_begin(b);
    }
    if (rc == 0)
        rc = bare_commit_reap(b, 1);
    return rc;
}

/* Counts the store's outcomes: exactly one per match id 1..matches. */
static int bare_verify(joust_store_t *st, uint64_t matches, uint64_t *counted)
{
    joust_rec_cursor_t *cur;
    int rc = joust_rec_cursor_new(st, JOUST_REC_OUTCOMES, BARE_RUN_ID, &cur);
    if (rc < 0)
        return rc;
    uint64_t n = 0, expect = 1;
    for (; joust_rec_cursor_valid(cur); joust_rec_cursor_next(cur), n++)
        if (joust_rec_cursor_id(cur) != expect++)
            rc = JOUST_ECORRUPT;
    if (!rc)
        rc = joust_rec_cursor_error(cur);
    joust_rec_cursor_destroy(&cur);
    *counted = n;
    return rc < 0 ? rc : n == matches ? 0 : JOUST_ECORRUPT;
}

static int bare_coordinator(const joust_bare_config *cfg, const int *fds, joust_bare_result *out,
                            const joust_curve_keypair *skp, joust_curve_allow_t **allow)
{
    bare b = {.cfg = cfg, .next_id = 1};
    b.run.run_id = BARE_RUN_ID;
    void *ctx = zmq_ctx_new();
    b.sock = zmq_socket(ctx, ZMQ_ROUTER);
    joust_wire_socket_setup(b.sock, 1);
    int rc = 0;
    if (cfg->curve && ((rc = joust_zap_start(ctx, allow)) < 0 ||
                       (rc = joust_curve_server_setup(b.sock, skp)) < 0))
        log_error("bare: CURVE setup failed");
    char ep[256] = "";
    size_t eplen = sizeof ep;
    if (rc == 0 && (zmq_bind(b.sock, "tcp://127.0.0.1:0") != 0 ||
                    zmq_getsockopt(b.sock, ZMQ_LAST_ENDPOINT, ep, &eplen) != 0))
        rc = JOUST_EIO;
    for (int i = 0; i < cfg->workers; i++) {
        if (rc == 0 && write(fds[i], ep, strlen(ep)) != (ssize_t)strlen(ep))
            rc = JOUST_EIO;
        close(fds[i]);
    }
    if (rc == 0 && (rc = joust_store_open(cfg->db, JOUST_STORE_CREATE, &b.st)) == 0 &&
        (rc = joust_committer_new(b.st, &b.committer)) == 0) {
        b.batch = joust_batch_new();
        b.pairs = xmalloc(cfg->job_matches * sizeof *b.pairs);
        b.pair_ptrs = xmalloc(cfg->job_matches * sizeof *b.pair_ptrs);
        b.prompts = xmalloc(cfg->job_matches * sizeof *b.prompts);
        b.prompt_ptrs = xmalloc(cfg->job_matches * sizeof *b.prompt_ptrs);
        b.refs = xmalloc(2 * cfg->job_matches * sizeof *b.refs);
        b.ref_ptrs = xmalloc(2 * cfg->job_matches * sizeof *b.ref_ptrs);
        b.uris = xmalloc(2 * cfg->job_matches * sizeof *b.uris);
        int64_t t0 = joust_now_us();
        double cpu0 = joust_bench_cpu_s(RUSAGE_SELF);
        b.last_progress_ms = joust_now_ms();
        rc = bare_loop(&b);
        out->seconds = (double)(joust_now_us() - t0) / 1e6;
        out->cpu_s = joust_bench_cpu_s(RUSAGE_SELF) - cpu0;
        Joust__Disconnect d = JOUST__DISCONNECT__INIT;
        d.reason = "run complete";
        d.has_run_complete = d.run_complete = 1;
        for (size_t i = 0; i < b.npeers; i++)
            send_wait(b.sock, b.peers[i].rid, b.peers[i].rid_len, JOUST_CMD_DISCONNECT, &d.base);
        int linger = 1000;
        zmq_setsockopt(b.sock, ZMQ_LINGER, &linger, sizeof linger);
        joust_committer_destroy(&b.committer);
        joust_batch_destroy(&b.batch);
        if (rc == 0 && (rc = bare_verify(b.st, cfg->matches, &out->matches)) < 0)
            log_error("bare: the store holds %" PRIu64 " outcomes, not %" PRIu64
                      " with ids 1..%" PRIu64,
                      out->matches, cfg->matches, cfg->matches);
    }
    joust_store_destroy(&b.st);
    for (size_t i = 0; i < b.npeers; i++)
        free(b.peers[i].acks);
    free(b.peers);
    free(b.staged);
    free(b.flight);
    free(b.pairs);
    free(b.pair_ptrs);
    free(b.prompts);
    free(b.prompt_ptrs);
    free(b.refs);
    free(b.ref_ptrs);
    free(b.uris);
    zmq_close(b.sock);
    zmq_ctx_term(ctx);
    return rc;
}

int joust_bench_bare_run(const joust_bare_config *cfg, joust_bare_result *out)
{
    memset(out, 0, sizeof *out);
    if (cfg->workers < 1 || cfg->workers > 64 || !cfg->matches || !cfg->job_matches ||
        cfg->job_matches > JOUST_WIRE_MAX_MATCHES || !cfg->slots || !cfg->commit.max)
        return JOUST_EINVAL;
    joust_curve_keypair skp, wkp;
    joust_curve_allow_t *allow = NULL;
    if (cfg->curve) {
        char text[128], err[256];
        if (joust_curve_keygen(&skp) < 0 || joust_curve_keygen(&wkp) < 0)
            return JOUST_EIO;
        snprintf(text, sizeof text, "bare-worker %s\n", wkp.public_z85);
        if (joust_curve_allow_parse(text, &allow, err, sizeof err) < 0)
            return JOUST_EIO;
    }
    int fds[64];
    pid_t pids[64];
    double children0 = joust_bench_cpu_s(RUSAGE_CHILDREN);
    int n = 0, rc = 0;
    fflush(NULL);
    for (; n < cfg->workers; n++) {
        int p[2];
        if (pipe(p) != 0) {
            rc = JOUST_EIO;
            break;
        }
        pids[n] = fork();
        if (pids[n] == 0) {
            close(p[1]);
            for (int i = 0; i < n; i++)
                close(fds[i]);
            _exit(bare_worker(p[0], n, cfg, &wkp, skp.public_z85));
        }
        close(p[0]);
        if (pids[n] < 0) {
            close(p[1]);
            rc = JOUST_EIO;
            break;
        }
        fds[n] = p[1];
    }
    if (rc == 0) {
        joust_bare_config c = *cfg;
        c.workers = n;
        rc = bare_coordinator(&c, fds, out, &skp, &allow);
    } else {
        for (int i = 0; i < n; i++)
            close(fds[i]); /* a worker without an endpoint exits */
    }
    for (int i = 0; i < n; i++) {
        int status;
        while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR)
            ;
        if (rc == 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
            rc = JOUST_EIO;
    }
    out->cpu_s += joust_bench_cpu_s(RUSAGE_CHILDREN) - children0;
    joust_curve_allow_destroy(&allow);
    joust_curve_wipe(&skp, sizeof skp);
    joust_curve_wipe(&wkp, sizeof wkp);
    return rc;
}
