/* Tests of the wire framing (proto/wire.h) over a real inproc ROUTER/DEALER
 * pair set up like the coordinator's and the worker's sockets:
 * a READY/JOB/RESULT/ACK/HEARTBEAT/DISCONNECT round trip with every field
 * preserved; malformed messages (framing crafted with raw zmq_send, bodies
 * out of range) rejected as JOUST_EPROTO with a reason, never delivered,
 * and the next valid message still arrives; ROUTER send to an unknown
 * routing id is JOUST_ENOTFOUND. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "check.h"
#include "err.h"
#include "wire.h"

static void *ctx, *router, *dealer;
static const char worker_rid[] = "worker-1";

static int streq(const char *a, const char *b) { return a && b && !strcmp(a, b); }

/* Waits up to 2 s for a message, then receives it. */
static int recv_wait(void *sock, int is_router, joust_wire_msg *m)
{
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    zmq_poll(&item, 1, 2000);
    return joust_wire_recv(sock, is_router, m);
}

static int rid_is_worker(const joust_wire_msg *m)
{
    return m->rid_len == strlen(worker_rid) && !memcmp(m->rid, worker_rid, m->rid_len);
}

static int w_send(int cmd, const ProtobufCMessage *body)
{
    return joust_wire_send(dealer, NULL, 0, cmd, body);
}

static int c_send(int cmd, const ProtobufCMessage *body)
{
    return joust_wire_send(router, worker_rid, strlen(worker_rid), cmd, body);
}

static void send_heartbeat_from_worker(uint32_t inflight)
{
    Joust__Heartbeat hb = JOUST__HEARTBEAT__INIT;
    hb.has_inflight = 1;
    hb.inflight = inflight;
    CHECK_RC(w_send(JOUST_CMD_HEARTBEAT, &hb.base));
}

/* The next message on the router is a HEARTBEAT with this inflight value:
 * nothing of a rejected message was left behind. */
static void expect_heartbeat_at_router(uint32_t inflight, int line)
{
    joust_wire_msg m;
    int rc = recv_wait(router, 1, &m);
    const Joust__Heartbeat *hb = (const Joust__Heartbeat *)m.body;
    if (rc != 0 || m.cmd != JOUST_CMD_HEARTBEAT || !hb || hb->inflight != inflight ||
        !rid_is_worker(&m)) {
        test_failed++;
        fprintf(stderr, "%s:%d: expected HEARTBEAT(%u), got rc %d cmd %d (%s)\n", __FILE__, line,
                inflight, rc, m.cmd, m.error);
    } else {
        test_passed++;
    }
    joust_wire_msg_clear(&m);
    /* and nothing else is waiting */
    CHECK(joust_wire_recv(router, 1, &m) == JOUST_EAGAIN);
}

/* The next message at the router is rejected with a reason containing why. */
static void expect_reject_at_router(const char *why, int line)
{
    joust_wire_msg m;
    int rc = recv_wait(router, 1, &m);
    if (rc != JOUST_EPROTO || m.body != NULL || !m.error[0] || (why && !strstr(m.error, why))) {
        test_failed++;
        fprintf(stderr, "%s:%d: expected rejection \"%s\", got rc %d error \"%s\"\n", __FILE__,
                line, why ? why : "(any)", rc, m.error);
    } else {
        test_passed++;
    }
    CHECK(rid_is_worker(&m)); /* the sender is known even when rejected */
    joust_wire_msg_clear(&m);
    static uint32_t seq = 1000;
    send_heartbeat_from_worker(++seq);
    expect_heartbeat_at_router(seq, line);
}
#define REJECTED(why) expect_reject_at_router(why, __LINE__)

static void expect_reject_at_dealer(const char *why, int line)
{
    joust_wire_msg m;
    int rc = recv_wait(dealer, 0, &m);
    if (rc != JOUST_EPROTO || m.body != NULL || !m.error[0] || (why && !strstr(m.error, why))) {
        test_failed++;
        fprintf(stderr, "%s:%d: expected rejection \"%s\" at the worker, got rc %d error \"%s\"\n",
                __FILE__, line, why ? why : "(any)", rc, m.error);
    } else {
        test_passed++;
    }
    joust_wire_msg_clear(&m);
    Joust__Heartbeat hb = JOUST__HEARTBEAT__INIT;
    CHECK_RC(c_send(JOUST_CMD_HEARTBEAT, &hb.base));
    rc = recv_wait(dealer, 0, &m);
    CHECK(rc == 0 && m.cmd == JOUST_CMD_HEARTBEAT);
    joust_wire_msg_clear(&m);
    CHECK(joust_wire_recv(dealer, 0, &m) == JOUST_EAGAIN);
}
#define REJECTED_AT_WORKER(why) expect_reject_at_dealer(why, __LINE__)

/* Raw frames from the worker: n frames, all but the last with SNDMORE. */
static void raw_from_worker(int n, const void *const *data, const size_t *len)
{
    for (int i = 0; i < n; i++)
        CHECK(zmq_send(dealer, data[i], len[i], i + 1 < n ? ZMQ_SNDMORE : 0) == (int)len[i]);
}

static void raw_from_coordinator(int n, const void *const *data, const size_t *len)
{
    CHECK(zmq_send(router, worker_rid, strlen(worker_rid), ZMQ_SNDMORE) >= 0);
    for (int i = 0; i < n; i++)
        CHECK(zmq_send(router, data[i], len[i], i + 1 < n ? ZMQ_SNDMORE : 0) == (int)len[i]);
}

static size_t pack_heartbeat(unsigned char *buf, uint32_t inflight)
{
    Joust__Heartbeat hb = JOUST__HEARTBEAT__INIT;
    hb.has_inflight = 1;
    hb.inflight = inflight;
    return protobuf_c_message_pack(&hb.base, buf);
}

/* --------------------------------------------------------------- tests -- */

static void test_empty(void)
{
    joust_wire_msg m;
    CHECK(joust_wire_recv(router, 1, &m) == JOUST_EAGAIN);
    CHECK(joust_wire_recv(dealer, 0, &m) == JOUST_EAGAIN);
    CHECK(streq(joust_cmd_name(JOUST_CMD_READY), "READY"));
    CHECK(streq(joust_cmd_name(JOUST_CMD_DISCONNECT), "DISCONNECT"));
    CHECK(streq(joust_cmd_name(0), "?") && streq(joust_cmd_name(7), "?"));
}

static void test_round_trip(void)
{
    joust_wire_msg m;
    /* READY: worker -> coordinator */
    Joust__Ready ready = JOUST__READY__INIT;
    ready.worker_name = "w-host-1";
    ready.slots = 65536;
    ready.judge = "quality";
    ready.model = "qwen2.5-vl";
    ready.build = "joust 0.1.0";
    CHECK_RC(w_send(JOUST_CMD_READY, &ready.base));
    CHECK_RC(recv_wait(router, 1, &m));
    CHECK(m.cmd == JOUST_CMD_READY && rid_is_worker(&m) && !m.error[0]);
    const Joust__Ready *r = (const Joust__Ready *)m.body;
    CHECK(r && r->base.descriptor == &joust__ready__descriptor);
    if (r) {
        CHECK(streq(r->worker_name, "w-host-1") && r->slots == 65536);
        CHECK(streq(r->judge, "quality") && streq(r->model, "qwen2.5-vl"));
        CHECK(streq(r->build, "joust 0.1.0"));
    }
    joust_wire_msg_clear(&m);
    CHECK(m.body == NULL);
    joust_wire_msg_clear(&m); /* twice is harmless */

    /* JOB: coordinator -> worker, two matches sharing an image */
    Joust__ImageRef ia = JOUST__IMAGE_REF__INIT, ib = JOUST__IMAGE_REF__INIT,
                    ic = JOUST__IMAGE_REF__INIT;
    ia.image_id = 11;
    ia.uri = "/data/a.png";
    ia.has_latent = 1;
    ia.latent = -0.75;
    ib.image_id = 12;
    ib.uri = "https://example.com/b.webp";
    ic.image_id = UINT64_MAX;
    ic.uri = "c.jpg";
    Joust__MatchJob j1 = JOUST__MATCH_JOB__INIT, j2 = JOUST__MATCH_JOB__INIT;
    j1.match_id = 1;
    j1.attempt = 1;
    j1.prompt_id = 5;
    j1.prompt = "a red fox";
    j1.first = &ia;
    j1.second = &ib;
    j2.match_id = UINT64_MAX;
    j2.attempt = 3;
    j2.prompt_id = 5;
    j2.prompt = "";
    j2.first = &ic;
    j2.second = &ia;
    Joust__MatchJob *jobs[] = {&j1, &j2};
    Joust__Job job = JOUST__JOB__INIT;
    job.run_id = 7;
    job.lease_ms = 60000;
    job.n_matches = 2;
    job.matches = jobs;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    CHECK_RC(recv_wait(dealer, 0, &m));
    CHECK(m.cmd == JOUST_CMD_JOB && m.rid_len == 0);
    const Joust__Job *j = (const Joust__Job *)m.body;
    CHECK(j && j->run_id == 7 && j->lease_ms == 60000 && j->n_matches == 2);
    if (j && j->n_matches == 2) {
        const Joust__MatchJob *a = j->matches[0], *b = j->matches[1];
        CHECK(a->match_id == 1 && a->attempt == 1 && a->prompt_id == 5);
        CHECK(streq(a->prompt, "a red fox"));
        CHECK(a->first->image_id == 11 && streq(a->first->uri, "/data/a.png"));
        CHECK(a->first->has_latent && a->first->latent == -0.75);
        CHECK(a->second->image_id == 12 && streq(a->second->uri, "https://example.com/b.webp"));
        CHECK(!a->second->has_latent);
        CHECK(b->match_id == UINT64_MAX && b->attempt == 3 && streq(b->prompt, ""));
        CHECK(b->first->image_id == UINT64_MAX && b->second->image_id == 11);
    }
    joust_wire_msg_clear(&m);

    /* RESULT: worker -> coordinator, every status the worker may send */
    Joust__MatchResult x1 = JOUST__MATCH_RESULT__INIT, x2 = JOUST__MATCH_RESULT__INIT,
                       x3 = JOUST__MATCH_RESULT__INIT, x4 = JOUST__MATCH_RESULT__INIT;
    x1.match_id = 1;
    x1.attempt = 1;
    x1.status = JOUST__OUTCOME_STATUS__OK;
    x1.has_p_first = 1;
    x1.p_first = 0.8125;
    x1.has_answer = 1;
    x1.answer = 1;
    x1.reason = "<think>sharper</think>";
    x1.has_latency_us = 1;
    x1.latency_us = 123456;
    x1.has_tokens = 1;
    x1.tokens = 321;
    x2.match_id = UINT64_MAX;
    x2.attempt = 3;
    x2.status = JOUST__OUTCOME_STATUS__IMAGE_ERROR;
    x2.error = "c.jpg: not found";
    x2.has_failed_image_id = 1;
    x2.failed_image_id = UINT64_MAX;
    x3.match_id = 2;
    x3.attempt = 1;
    x3.status = JOUST__OUTCOME_STATUS__JUDGE_ERROR;
    x4.match_id = 3;
    x4.attempt = 2;
    x4.status = JOUST__OUTCOME_STATUS__UNPARSEABLE;
    x4.has_answer = 1;
    x4.answer = 0;
    Joust__MatchResult *xs[] = {&x1, &x2, &x3, &x4};
    Joust__Result res = JOUST__RESULT__INIT;
    res.run_id = 7;
    res.n_results = 4;
    res.results = xs;
    res.judge = "quality";
    res.model = "m";
    CHECK_RC(w_send(JOUST_CMD_RESULT, &res.base));
    CHECK_RC(recv_wait(router, 1, &m));
    CHECK(m.cmd == JOUST_CMD_RESULT && rid_is_worker(&m));
    const Joust__Result *rr = (const Joust__Result *)m.body;
    CHECK(rr && rr->run_id == 7 && rr->n_results == 4 && streq(rr->judge, "quality") &&
          streq(rr->model, "m"));
    if (rr && rr->n_results == 4) {
        const Joust__MatchResult *y = rr->results[0];
        CHECK(y->match_id == 1 && y->attempt == 1 && y->status == JOUST__OUTCOME_STATUS__OK);
        CHECK(y->has_p_first && y->p_first == 0.8125);
        CHECK(y->has_answer && y->answer == 1);
        CHECK(streq(y->reason, "<think>sharper</think>") && y->error == NULL);
        CHECK(y->has_latency_us && y->latency_us == 123456);
        CHECK(y->has_tokens && y->tokens == 321);
        y = rr->results[1];
        CHECK(y->match_id == UINT64_MAX && y->attempt == 3);
        CHECK(y->status == JOUST__OUTCOME_STATUS__IMAGE_ERROR && !y->has_p_first);
        CHECK(streq(y->error, "c.jpg: not found"));
        CHECK(y->has_failed_image_id && y->failed_image_id == UINT64_MAX);
        CHECK(rr->results[2]->status == JOUST__OUTCOME_STATUS__JUDGE_ERROR);
        CHECK(rr->results[3]->status == JOUST__OUTCOME_STATUS__UNPARSEABLE);
        CHECK(rr->results[3]->has_answer && rr->results[3]->answer == 0);
    }
    joust_wire_msg_clear(&m);

    /* ACK: coordinator -> worker, including an empty one */
    uint64_t ids[] = {1, UINT64_MAX, 2};
    Joust__Ack ack = JOUST__ACK__INIT;
    ack.run_id = 7;
    ack.n_match_ids = 3;
    ack.match_ids = ids;
    CHECK_RC(c_send(JOUST_CMD_ACK, &ack.base));
    CHECK_RC(recv_wait(dealer, 0, &m));
    const Joust__Ack *a = (const Joust__Ack *)m.body;
    CHECK(m.cmd == JOUST_CMD_ACK && a && a->run_id == 7 && a->n_match_ids == 3);
    if (a && a->n_match_ids == 3)
        CHECK(a->match_ids[0] == 1 && a->match_ids[1] == UINT64_MAX && a->match_ids[2] == 2);
    joust_wire_msg_clear(&m);
    ack.n_match_ids = 0;
    CHECK_RC(c_send(JOUST_CMD_ACK, &ack.base));
    CHECK_RC(recv_wait(dealer, 0, &m));
    CHECK(m.cmd == JOUST_CMD_ACK && m.body && ((Joust__Ack *)m.body)->n_match_ids == 0);
    joust_wire_msg_clear(&m);

    /* HEARTBEAT both ways; an empty HEARTBEAT body (0 bytes) is valid */
    Joust__Heartbeat hb = JOUST__HEARTBEAT__INIT;
    CHECK_RC(c_send(JOUST_CMD_HEARTBEAT, &hb.base));
    CHECK_RC(recv_wait(dealer, 0, &m));
    CHECK(m.cmd == JOUST_CMD_HEARTBEAT && m.body && !((Joust__Heartbeat *)m.body)->has_inflight);
    joust_wire_msg_clear(&m);
    send_heartbeat_from_worker(17);
    expect_heartbeat_at_router(17, __LINE__);

    /* DISCONNECT both ways */
    Joust__Disconnect d = JOUST__DISCONNECT__INIT;
    d.reason = "run complete";
    d.has_run_complete = 1;
    d.run_complete = 1;
    CHECK_RC(c_send(JOUST_CMD_DISCONNECT, &d.base));
    CHECK_RC(recv_wait(dealer, 0, &m));
    const Joust__Disconnect *dd = (const Joust__Disconnect *)m.body;
    CHECK(m.cmd == JOUST_CMD_DISCONNECT && dd && streq(dd->reason, "run complete") &&
          dd->has_run_complete && dd->run_complete);
    joust_wire_msg_clear(&m);
    Joust__Disconnect d2 = JOUST__DISCONNECT__INIT;
    CHECK_RC(w_send(JOUST_CMD_DISCONNECT, &d2.base));
    CHECK_RC(recv_wait(router, 1, &m));
    dd = (const Joust__Disconnect *)m.body;
    CHECK(m.cmd == JOUST_CMD_DISCONNECT && dd && dd->reason == NULL && !dd->has_run_complete);
    joust_wire_msg_clear(&m);

    /* a message that needs the heap (> 4 KiB body) */
    char *big = malloc(60000);
    memset(big, 'r', 59999);
    big[59999] = '\0';
    x1.reason = big;
    res.n_results = 1;
    CHECK_RC(w_send(JOUST_CMD_RESULT, &res.base));
    CHECK_RC(recv_wait(router, 1, &m));
    rr = (const Joust__Result *)m.body;
    CHECK(rr && rr->n_results == 1 && rr->results[0]->reason &&
          strlen(rr->results[0]->reason) == 59999);
    joust_wire_msg_clear(&m);
    free(big);
}

static void test_bad_framing(void)
{
    unsigned char body[64];
    size_t blen = pack_heartbeat(body, 5);
    const unsigned char good_hdr[5] = {'J', 'S', 'T', JOUST_WIRE_VERSION, JOUST_CMD_HEARTBEAT};
    size_t len[4];
    const void *f[4];

    /* wrong magic */
    const unsigned char magic[5] = {'J', 'S', 'X', JOUST_WIRE_VERSION, JOUST_CMD_HEARTBEAT};
    f[0] = magic, len[0] = 5, f[1] = body, len[1] = blen;
    raw_from_worker(2, f, len);
    REJECTED("bad header frame");
    /* lower-case magic */
    const unsigned char lower[5] = {'j', 's', 't', JOUST_WIRE_VERSION, JOUST_CMD_HEARTBEAT};
    f[0] = lower;
    raw_from_worker(2, f, len);
    REJECTED("bad header frame");
    /* header of the wrong length (4 and 6 bytes, empty) */
    f[0] = good_hdr, len[0] = 4;
    raw_from_worker(2, f, len);
    REJECTED("bad header frame");
    const unsigned char six[6] = {'J', 'S', 'T', JOUST_WIRE_VERSION, JOUST_CMD_HEARTBEAT, 0};
    f[0] = six, len[0] = 6;
    raw_from_worker(2, f, len);
    REJECTED("bad header frame");
    f[0] = "", len[0] = 0;
    raw_from_worker(2, f, len);
    REJECTED("bad header frame");
    /* a single garbage frame */
    f[0] = "hello", len[0] = 5;
    raw_from_worker(1, f, len);
    REJECTED(NULL);

    /* wrong version, both directions */
    const unsigned char v0[5] = {'J', 'S', 'T', 0, JOUST_CMD_HEARTBEAT};
    const unsigned char v2[5] = {'J', 'S', 'T', JOUST_WIRE_VERSION + 1, JOUST_CMD_HEARTBEAT};
    f[0] = v2, len[0] = 5, f[1] = body, len[1] = blen;
    raw_from_worker(2, f, len);
    REJECTED("unsupported protocol version");
    f[0] = v0;
    raw_from_worker(2, f, len);
    REJECTED("unsupported protocol version");
    f[0] = v2;
    raw_from_coordinator(2, f, len);
    REJECTED_AT_WORKER("unsupported protocol version");

    /* unknown commands */
    const unsigned char c0[5] = {'J', 'S', 'T', JOUST_WIRE_VERSION, 0};
    const unsigned char c7[5] = {'J', 'S', 'T', JOUST_WIRE_VERSION, 7};
    const unsigned char cff[5] = {'J', 'S', 'T', JOUST_WIRE_VERSION, 0xff};
    f[0] = c0;
    raw_from_worker(2, f, len);
    REJECTED("unknown command");
    f[0] = c7;
    raw_from_worker(2, f, len);
    REJECTED("unknown command");
    f[0] = cff;
    raw_from_coordinator(2, f, len);
    REJECTED_AT_WORKER("unknown command");

    /* missing body frame: a lone header, both directions. (The reason says
     * "bad header frame": a header without a following frame is rejected as
     * a bad header, before the body is looked for.) */
    f[0] = good_hdr, len[0] = 5;
    raw_from_worker(1, f, len);
    REJECTED(NULL);
    raw_from_coordinator(1, f, len);
    REJECTED_AT_WORKER(NULL);

    /* extra frame after the body, both directions; 2 extra frames too */
    f[0] = good_hdr, len[0] = 5, f[1] = body, len[1] = blen, f[2] = "x", len[2] = 1;
    raw_from_worker(3, f, len);
    REJECTED("extra frames");
    f[3] = "y", len[3] = 1;
    raw_from_worker(4, f, len);
    REJECTED("extra frames");
    raw_from_coordinator(3, f, len);
    REJECTED_AT_WORKER("extra frames");

    /* garbage bodies */
    const unsigned char garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff};
    f[0] = good_hdr, len[0] = 5, f[1] = garbage, len[1] = sizeof garbage;
    raw_from_worker(2, f, len);
    REJECTED("body does not unpack");
    raw_from_coordinator(2, f, len);
    REJECTED_AT_WORKER("body does not unpack");
    /* a READY body with its required fields missing (empty body) */
    const unsigned char ready_hdr[5] = {'J', 'S', 'T', JOUST_WIRE_VERSION, JOUST_CMD_READY};
    f[0] = ready_hdr, f[1] = "", len[1] = 0;
    raw_from_worker(2, f, len);
    REJECTED("body does not unpack");
    /* a HEARTBEAT body sent as a JOB: required fields missing */
    const unsigned char job_hdr[5] = {'J', 'S', 'T', JOUST_WIRE_VERSION, JOUST_CMD_JOB};
    f[0] = job_hdr, f[1] = body, len[1] = blen;
    raw_from_coordinator(2, f, len);
    REJECTED_AT_WORKER("body does not unpack");
    /* a truncated RESULT body */
    Joust__MatchResult x = JOUST__MATCH_RESULT__INIT;
    x.match_id = 9;
    x.attempt = 1;
    x.status = JOUST__OUTCOME_STATUS__OK;
    x.has_p_first = 1;
    x.p_first = 0.5;
    Joust__MatchResult *xs[] = {&x};
    Joust__Result res = JOUST__RESULT__INIT;
    res.run_id = 1;
    res.n_results = 1;
    res.results = xs;
    unsigned char rbuf[256];
    size_t rlen = protobuf_c_message_pack(&res.base, rbuf);
    const unsigned char res_hdr[5] = {'J', 'S', 'T', JOUST_WIRE_VERSION, JOUST_CMD_RESULT};
    f[0] = res_hdr, f[1] = rbuf, len[1] = rlen - 3;
    raw_from_worker(2, f, len);
    REJECTED("body does not unpack");
    /* the same bytes whole are fine */
    len[1] = rlen;
    raw_from_worker(2, f, len);
    joust_wire_msg m;
    CHECK_RC(recv_wait(router, 1, &m));
    CHECK(m.cmd == JOUST_CMD_RESULT && m.body);
    joust_wire_msg_clear(&m);

    /* several bad messages in a row, then a good one */
    f[0] = magic, len[0] = 5, f[1] = body, len[1] = blen;
    raw_from_worker(2, f, len);
    f[0] = c7;
    raw_from_worker(2, f, len);
    f[0] = good_hdr, f[2] = "x", len[2] = 1;
    raw_from_worker(3, f, len);
    send_heartbeat_from_worker(77);
    for (int i = 0; i < 3; i++) {
        CHECK(recv_wait(router, 1, &m) == JOUST_EPROTO);
        joust_wire_msg_clear(&m);
    }
    expect_heartbeat_at_router(77, __LINE__);
}

static void send_result(const Joust__MatchResult *x)
{
    Joust__MatchResult *xs[] = {(Joust__MatchResult *)x};
    Joust__Result res = JOUST__RESULT__INIT;
    res.run_id = 1;
    res.n_results = 1;
    res.results = xs;
    CHECK_RC(w_send(JOUST_CMD_RESULT, &res.base));
}

static Joust__MatchResult ok_result(double p)
{
    Joust__MatchResult x = JOUST__MATCH_RESULT__INIT;
    x.match_id = 4;
    x.attempt = 1;
    x.status = JOUST__OUTCOME_STATUS__OK;
    x.has_p_first = 1;
    x.p_first = p;
    return x;
}

static void test_bad_result(void)
{
    Joust__MatchResult x;
    joust_wire_msg m;
    /* p_first at the edges is fine */
    x = ok_result(0.0);
    send_result(&x);
    CHECK_RC(recv_wait(router, 1, &m));
    joust_wire_msg_clear(&m);
    x = ok_result(1.0);
    send_result(&x);
    CHECK_RC(recv_wait(router, 1, &m));
    joust_wire_msg_clear(&m);

    x = ok_result(1.0000001);
    send_result(&x);
    REJECTED("p_first missing or outside [0,1]");
    x = ok_result(-0.01);
    send_result(&x);
    REJECTED("p_first");
    x = ok_result(NAN);
    send_result(&x);
    REJECTED("p_first");
    x = ok_result(INFINITY);
    send_result(&x);
    REJECTED("p_first");
    x = ok_result(0.5);
    x.has_p_first = 0; /* OK without p_first */
    send_result(&x);
    REJECTED("p_first missing");
    /* a failure status needs no p_first, and an out-of-range one is ignored */
    x = ok_result(7.0);
    x.status = JOUST__OUTCOME_STATUS__JUDGE_ERROR;
    send_result(&x);
    CHECK_RC(recv_wait(router, 1, &m));
    joust_wire_msg_clear(&m);

    /* statuses a worker may not send */
    x = ok_result(0.5);
    x.status = (Joust__OutcomeStatus)99;
    send_result(&x);
    REJECTED("unknown status");
    x.status = JOUST__OUTCOME_STATUS__OUTCOME_STATUS_UNSPECIFIED;
    send_result(&x);
    REJECTED("unknown status");
    x.status = JOUST__OUTCOME_STATUS__ABANDONED;
    send_result(&x);
    REJECTED("unknown status");

    x = ok_result(0.5);
    x.match_id = 0;
    send_result(&x);
    REJECTED("match_id or attempt is 0");
    x = ok_result(0.5);
    x.attempt = 0;
    send_result(&x);
    REJECTED("match_id or attempt is 0");
    x = ok_result(0.5);
    x.has_answer = 1;
    x.answer = 3;
    send_result(&x);
    REJECTED("answer not in 0..2");

    /* text limits: reason <= 64 KiB, error <= 4 KiB */
    char *s = malloc(65538);
    memset(s, 'x', 65537);
    s[65537] = '\0';
    x = ok_result(0.5);
    x.reason = s;
    send_result(&x);
    REJECTED("reason or error too long");
    s[65536] = '\0';
    send_result(&x);
    CHECK_RC(recv_wait(router, 1, &m));
    joust_wire_msg_clear(&m);
    x.reason = NULL;
    s[4097] = '\0';
    x.error = s;
    send_result(&x);
    REJECTED("reason or error too long");
    s[4096] = '\0';
    send_result(&x);
    CHECK_RC(recv_wait(router, 1, &m));
    joust_wire_msg_clear(&m);
    free(s);

    /* counts and run_id */
    Joust__Result res = JOUST__RESULT__INIT;
    res.run_id = 1;
    CHECK_RC(w_send(JOUST_CMD_RESULT, &res.base));
    REJECTED("RESULT: result count or run_id out of range");
    x = ok_result(0.5);
    Joust__MatchResult *xs[] = {&x};
    res.n_results = 1;
    res.results = xs;
    res.run_id = 0;
    CHECK_RC(w_send(JOUST_CMD_RESULT, &res.base));
    REJECTED("RESULT: result count or run_id out of range");
    /* one bad result among good ones rejects the whole message */
    Joust__MatchResult good = ok_result(0.25), bad = ok_result(2.0);
    Joust__MatchResult *mix[] = {&good, &bad, &good};
    res.run_id = 1;
    res.n_results = 3;
    res.results = mix;
    CHECK_RC(w_send(JOUST_CMD_RESULT, &res.base));
    REJECTED("p_first");
    /* 1025 results are too many; 1024 are fine */
    Joust__MatchResult **many = malloc(1025 * sizeof *many);
    for (int i = 0; i < 1025; i++)
        many[i] = &good;
    res.results = many;
    res.n_results = 1025;
    CHECK_RC(w_send(JOUST_CMD_RESULT, &res.base));
    REJECTED("result count");
    res.n_results = 1024;
    CHECK_RC(w_send(JOUST_CMD_RESULT, &res.base));
    CHECK_RC(recv_wait(router, 1, &m));
    CHECK(m.body && ((Joust__Result *)m.body)->n_results == 1024);
    joust_wire_msg_clear(&m);
    free(many);
}

static void test_bad_ready(void)
{
    joust_wire_msg m;
    Joust__Ready r = JOUST__READY__INIT;
    r.worker_name = "w";
    r.judge = "sim";
    r.slots = 0;
    CHECK_RC(w_send(JOUST_CMD_READY, &r.base));
    REJECTED("READY: slots out of range 1..65536");
    r.slots = 65537;
    CHECK_RC(w_send(JOUST_CMD_READY, &r.base));
    REJECTED("slots out of range");
    r.slots = 1;
    CHECK_RC(w_send(JOUST_CMD_READY, &r.base));
    CHECK_RC(recv_wait(router, 1, &m));
    CHECK(m.cmd == JOUST_CMD_READY && m.body && ((Joust__Ready *)m.body)->slots == 1);
    joust_wire_msg_clear(&m);

    char name[258];
    memset(name, 'n', 257);
    name[257] = '\0';
    r.worker_name = name;
    CHECK_RC(w_send(JOUST_CMD_READY, &r.base));
    REJECTED("worker_name or judge too long");
    name[256] = '\0';
    CHECK_RC(w_send(JOUST_CMD_READY, &r.base));
    CHECK_RC(recv_wait(router, 1, &m));
    joust_wire_msg_clear(&m);
    r.worker_name = "w";
    name[65] = '\0';
    r.judge = name;
    CHECK_RC(w_send(JOUST_CMD_READY, &r.base));
    REJECTED("worker_name or judge too long");

    Joust__Ack a = JOUST__ACK__INIT; /* ACK with run_id 0, sent the wrong way */
    CHECK_RC(w_send(JOUST_CMD_ACK, &a.base));
    REJECTED("ACK: run_id or count out of range");
}

static void test_bad_job(void)
{
    joust_wire_msg m;
    Joust__ImageRef ia = JOUST__IMAGE_REF__INIT, ib = JOUST__IMAGE_REF__INIT;
    ia.image_id = 1;
    ia.uri = "a.png";
    ib.image_id = 2;
    ib.uri = "b.png";
    Joust__MatchJob mj = JOUST__MATCH_JOB__INIT;
    mj.match_id = 1;
    mj.attempt = 1;
    mj.prompt_id = 1;
    mj.prompt = "p";
    mj.first = &ia;
    mj.second = &ib;
    Joust__MatchJob *mjs[] = {&mj};
    Joust__Job job = JOUST__JOB__INIT;
    job.run_id = 1;
    job.lease_ms = 1000;

    job.n_matches = 0; /* no matches */
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("JOB: match count or run_id out of range");
    job.n_matches = 1;
    job.matches = mjs;
    job.run_id = 0;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("JOB: match count or run_id out of range");
    job.run_id = 1;

    mj.match_id = 0;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("JOB: invalid match field");
    mj.match_id = 1;
    mj.attempt = 0;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("JOB: invalid match field");
    mj.attempt = 1;
    ib.image_id = 0;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("JOB: invalid match field");
    ib.image_id = 2;
    ia.uri = "";
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("JOB: invalid match field");
    char *longuri = malloc(4098);
    memset(longuri, 'u', 4097);
    longuri[4097] = '\0';
    ia.uri = longuri;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("JOB: invalid match field");
    longuri[4096] = '\0'; /* 4096 bytes is the limit */
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    CHECK_RC(recv_wait(dealer, 0, &m));
    CHECK(m.cmd == JOUST_CMD_JOB && m.body);
    joust_wire_msg_clear(&m);
    ia.uri = "a.png";
    free(longuri);
    ia.has_latent = 1;
    ia.latent = NAN;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("JOB: invalid match field");
    ia.latent = -INFINITY;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("JOB: invalid match field");
    ia.has_latent = 0;

    /* 1025 matches are too many; 1024 are fine */
    Joust__MatchJob **many = malloc(1025 * sizeof *many);
    for (int i = 0; i < 1025; i++)
        many[i] = &mj;
    job.matches = many;
    job.n_matches = 1025;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("match count");
    job.n_matches = 1024;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    CHECK_RC(recv_wait(dealer, 0, &m));
    CHECK(m.body && ((Joust__Job *)m.body)->n_matches == 1024);
    joust_wire_msg_clear(&m);
    free(many);
}

/* Signature jobs (docs/protocol.md §11): a JOB of sign entries alone and a
 * RESULT of signatures alone arrive with every field; bad entries and bad
 * signatures reject the message; the 1024 bound counts both kinds. */
static void test_sign(void)
{
    joust_wire_msg m;
    Joust__ImageRef ia = JOUST__IMAGE_REF__INIT, *refs[] = {&ia};
    ia.image_id = 7;
    ia.uri = "/data/a.jpg";
    Joust__Job job = JOUST__JOB__INIT;
    job.run_id = 3;
    job.lease_ms = 1000;
    job.n_sign = 1;
    job.sign = refs;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    CHECK_RC(recv_wait(dealer, 0, &m));
    const Joust__Job *got = (const Joust__Job *)m.body;
    CHECK(got && got->n_matches == 0 && got->n_sign == 1 && got->sign[0]->image_id == 7 &&
          streq(got->sign[0]->uri, "/data/a.jpg"));
    joust_wire_msg_clear(&m);
    ia.image_id = 0;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("JOB: invalid sign entry");
    ia.image_id = 7;
    ia.uri = "";
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("JOB: invalid sign entry");
    ia.uri = "/data/a.jpg";
    Joust__ImageRef **many = malloc(1025 * sizeof *many);
    for (int i = 0; i < 1025; i++)
        many[i] = &ia;
    job.sign = many;
    job.n_sign = 1025;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("JOB: match count or run_id out of range");
    free(many);

    Joust__Signature ok = JOUST__SIGNATURE__INIT, bad = JOUST__SIGNATURE__INIT;
    ok.image_id = 7;
    ok.status = JOUST__OUTCOME_STATUS__OK;
    ok.has_phash = ok.has_width = ok.has_height = ok.has_bytes = 1;
    ok.phash = 0x8000f00dcafe1234ull;
    ok.width = 640;
    ok.height = 480;
    ok.bytes = 12345;
    bad.image_id = 8;
    bad.status = JOUST__OUTCOME_STATUS__IMAGE_ERROR;
    bad.error = "/data/b.jpg: not a JPEG, PNG or WebP";
    Joust__Signature *sigs[] = {&ok, &bad};
    Joust__Result r = JOUST__RESULT__INIT;
    r.run_id = 3;
    r.n_signatures = 2;
    r.signatures = sigs;
    CHECK_RC(w_send(JOUST_CMD_RESULT, &r.base));
    CHECK_RC(recv_wait(router, 1, &m));
    const Joust__Result *gr = (const Joust__Result *)m.body;
    CHECK(gr && gr->n_results == 0 && gr->n_signatures == 2 &&
          gr->signatures[0]->phash == 0x8000f00dcafe1234ull && gr->signatures[0]->width == 640 &&
          gr->signatures[0]->height == 480 && gr->signatures[0]->bytes == 12345 &&
          gr->signatures[1]->status == JOUST__OUTCOME_STATUS__IMAGE_ERROR &&
          streq(gr->signatures[1]->error, bad.error));
    joust_wire_msg_clear(&m);
    ok.has_phash = 0; /* OK needs a hash */
    CHECK_RC(w_send(JOUST_CMD_RESULT, &r.base));
    REJECTED("RESULT: invalid signature");
    ok.has_phash = 1;
    ok.width = 0; /* and a size */
    CHECK_RC(w_send(JOUST_CMD_RESULT, &r.base));
    REJECTED("RESULT: invalid signature");
    ok.width = 640;
    bad.status = JOUST__OUTCOME_STATUS__UNPARSEABLE; /* not a signing status */
    CHECK_RC(w_send(JOUST_CMD_RESULT, &r.base));
    REJECTED("RESULT: invalid signature");
    bad.status = JOUST__OUTCOME_STATUS__INFRA_ERROR;
    bad.image_id = 0;
    CHECK_RC(w_send(JOUST_CMD_RESULT, &r.base));
    REJECTED("RESULT: invalid signature");
}

/* JOBs with tables (docs/protocol.md §4): indexes must fall inside the
 * tables, table entries are checked like MatchJob fields, and pairs count
 * towards the 1024 matches of a JOB together with MatchJobs. */
static void test_job_tables(void)
{
    joust_wire_msg m;
    Joust__ImageRef ia = JOUST__IMAGE_REF__INIT, ib = JOUST__IMAGE_REF__INIT;
    ia.image_id = 1;
    ia.uri = "a.png";
    ib.image_id = 2;
    ib.uri = "b.png";
    Joust__ImageRef *imgs[] = {&ia, &ib};
    Joust__PromptRef pr = JOUST__PROMPT_REF__INIT;
    pr.prompt_id = 7;
    pr.text = "a prompt";
    Joust__PromptRef *prs[] = {&pr};
    Joust__PairJob pj = JOUST__PAIR_JOB__INIT, pk = JOUST__PAIR_JOB__INIT;
    pj.match_id = 1;
    pj.attempt = 1;
    pj.prompt = 0;
    pj.first = 0;
    pj.second = 1;
    pk = pj;
    pk.match_id = 2;
    pk.first = 1;
    pk.second = 0;
    Joust__PairJob *pjs[] = {&pj, &pk};
    Joust__Job job = JOUST__JOB__INIT;
    job.run_id = 1;
    job.lease_ms = 1000;
    job.n_prompts = 1;
    job.prompts = prs;
    job.n_images = 2;
    job.images = imgs;
    job.n_pairs = 2;
    job.pairs = pjs;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    CHECK_RC(recv_wait(dealer, 0, &m));
    const Joust__Job *got = (const Joust__Job *)m.body;
    CHECK(m.cmd == JOUST_CMD_JOB && got && got->n_pairs == 2 && got->n_matches == 0);
    CHECK(!strcmp(got->prompts[got->pairs[1]->prompt]->text, "a prompt"));
    CHECK(got->images[got->pairs[1]->first]->image_id == 2);
    CHECK(got->images[got->pairs[1]->second]->image_id == 1);
    joust_wire_msg_clear(&m);

    pk.second = 2; /* past the image table */
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("JOB: pair index out of range");
    pk.second = 0;
    pk.prompt = 1; /* past the prompt table */
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("JOB: pair index out of range");
    pk.prompt = 0;
    pk.attempt = 0;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("JOB: invalid match field");
    pk.attempt = 1;
    ib.uri = "";
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("JOB: invalid table entry");
    ib.uri = "b.png";
    job.n_images = 2049;
    Joust__ImageRef **many = malloc(2049 * sizeof *many);
    for (int i = 0; i < 2049; i++)
        many[i] = &ia;
    job.images = many;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("JOB: table too long");
    free(many);
    job.n_images = 2;
    job.images = imgs;
    /* 1023 MatchJobs + 2 pairs are too many */
    Joust__MatchJob mj = JOUST__MATCH_JOB__INIT;
    mj.match_id = 3;
    mj.attempt = 1;
    mj.prompt = "p";
    mj.first = &ia;
    mj.second = &ib;
    Joust__MatchJob **mjs = malloc(1023 * sizeof *mjs);
    for (int i = 0; i < 1023; i++)
        mjs[i] = &mj;
    job.matches = mjs;
    job.n_matches = 1023;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    REJECTED_AT_WORKER("match count");
    job.n_matches = 1022;
    CHECK_RC(c_send(JOUST_CMD_JOB, &job.base));
    CHECK_RC(recv_wait(dealer, 0, &m));
    CHECK(m.body && ((Joust__Job *)m.body)->n_matches == 1022);
    joust_wire_msg_clear(&m);
    free(mjs);
}

static void test_unknown_peer(void)
{
    Joust__Heartbeat hb = JOUST__HEARTBEAT__INIT;
    CHECK(joust_wire_send(router, "nobody", 6, JOUST_CMD_HEARTBEAT, &hb.base) == JOUST_ENOTFOUND);
    CHECK(joust_wire_send(router, "", 0, JOUST_CMD_HEARTBEAT, &hb.base) == JOUST_ENOTFOUND);
    /* the failed send left no partial message behind: the known peer still works */
    CHECK_RC(c_send(JOUST_CMD_HEARTBEAT, &hb.base));
    joust_wire_msg m;
    CHECK_RC(recv_wait(dealer, 0, &m));
    CHECK(m.cmd == JOUST_CMD_HEARTBEAT);
    joust_wire_msg_clear(&m);
    CHECK(joust_wire_recv(dealer, 0, &m) == JOUST_EAGAIN);
}

int main(void)
{
    ctx = zmq_ctx_new();
    router = zmq_socket(ctx, ZMQ_ROUTER);
    dealer = zmq_socket(ctx, ZMQ_DEALER);
    joust_wire_socket_setup(router, 1);
    joust_wire_socket_setup(dealer, 0);
    /* (ROUTER_MANDATORY is write-only; test_unknown_peer checks it.) */
    int linger = -1;
    size_t sz = sizeof linger;
    CHECK(zmq_getsockopt(dealer, ZMQ_LINGER, &linger, &sz) == 0 && linger == 0);
    int64_t maxmsg = 0;
    sz = sizeof maxmsg;
    CHECK(zmq_getsockopt(router, ZMQ_MAXMSGSIZE, &maxmsg, &sz) == 0 &&
          maxmsg == JOUST_WIRE_MAX_MSG_BYTES);
    CHECK(zmq_setsockopt(dealer, ZMQ_ROUTING_ID, worker_rid, strlen(worker_rid)) == 0);
    CHECK(zmq_bind(router, "inproc://joust-wire-test") == 0);
    CHECK(zmq_connect(dealer, "inproc://joust-wire-test") == 0);

    test_empty();
    test_round_trip();
    test_bad_framing();
    test_bad_result();
    test_bad_ready();
    test_bad_job();
    test_sign();
    test_job_tables();
    test_unknown_peer();

    zmq_close(dealer);
    zmq_close(router);
    zmq_ctx_term(ctx);
    return test_report();
}
