#include "wire.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "err.h"
#include "xalloc.h"

static const char *cmd_names[] = {"?", "READY", "JOB", "RESULT", "ACK", "HEARTBEAT", "DISCONNECT"};

const char *joust_cmd_name(int cmd)
{
    return cmd >= JOUST_CMD_READY && cmd <= JOUST_CMD_DISCONNECT ? cmd_names[cmd] : "?";
}

static const ProtobufCMessageDescriptor *descriptor_of(int cmd)
{
    switch (cmd) {
    case JOUST_CMD_READY: return &joust__ready__descriptor;
    case JOUST_CMD_JOB: return &joust__job__descriptor;
    case JOUST_CMD_RESULT: return &joust__result__descriptor;
    case JOUST_CMD_ACK: return &joust__ack__descriptor;
    case JOUST_CMD_HEARTBEAT: return &joust__heartbeat__descriptor;
    case JOUST_CMD_DISCONNECT: return &joust__disconnect__descriptor;
    default: return NULL;
    }
}

void joust_wire_socket_setup(void *sock, int is_router)
{
    int zero = 0, one = 1;
    int64_t maxmsg = JOUST_WIRE_MAX_MSG_BYTES;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    /* ZMTP heartbeats close dead TCP connections; the application's own
     * HEARTBEAT messages decide liveness. */
    int ivl = 2000, tmo = 6000;
    zmq_setsockopt(sock, ZMQ_HEARTBEAT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(sock, ZMQ_HEARTBEAT_TIMEOUT, &tmo, sizeof tmo);
    if (is_router)
        zmq_setsockopt(sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
}

static int map_errno(int e)
{
    if (e == EAGAIN)
        return JOUST_EAGAIN;
    if (e == EHOSTUNREACH)
        return JOUST_ENOTFOUND;
    return JOUST_EIO;
}

int joust_wire_send(void *sock, const void *rid, size_t rid_len, int cmd,
                    const ProtobufCMessage *body)
{
    unsigned char hdr[5] = {'J', 'S', 'T', JOUST_WIRE_VERSION, (unsigned char)cmd};
    /* With ROUTER_MANDATORY the routing-id frame is where an unknown peer
     * or a full pipe is reported; DONTWAIT keeps a vanished peer from
     * blocking the coordinator. */
    if (rid && zmq_send(sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return map_errno(errno);
    size_t n = protobuf_c_message_get_packed_size(body);
    unsigned char stackbuf[4096];
    unsigned char *buf = n <= sizeof stackbuf ? stackbuf : xmalloc(n);
    protobuf_c_message_pack(body, buf);
    int rc = 0;
    if (zmq_send(sock, hdr, sizeof hdr, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(sock, buf, n, ZMQ_DONTWAIT) < 0)
        rc = map_errno(errno);
    if (buf != stackbuf)
        free(buf);
    return rc;
}

static int reject(joust_wire_msg *m, const char *reason)
{
    snprintf(m->error, sizeof m->error, "%s", reason);
    return JOUST_EPROTO;
}

static int valid_text(const char *s, size_t max)
{
    return s && strnlen(s, max + 1) <= max;
}

static int validate_image(const Joust__ImageRef *r)
{
    return r && r->image_id > 0 && valid_text(r->uri, 4096) && r->uri[0] &&
           (!r->has_latent || isfinite(r->latent)) && (!r->caption || valid_text(r->caption, 1 << 20));
}

/* OK with a hash and a size, or a failure (the two the worker's image
 * stage can give) with a bounded reason. */
static int valid_signature(const Joust__Signature *g)
{
    if (!g || g->image_id == 0 || (g->error && !valid_text(g->error, 4096)))
        return 0;
    if (g->status == JOUST__OUTCOME_STATUS__OK)
        return g->has_phash && g->has_width && g->has_height && g->width > 0 && g->height > 0;
    return g->status == JOUST__OUTCOME_STATUS__IMAGE_ERROR ||
           g->status == JOUST__OUTCOME_STATUS__INFRA_ERROR;
}

static int validate(joust_wire_msg *m)
{
    switch (m->cmd) {
    case JOUST_CMD_READY: {
        const Joust__Ready *r = (const Joust__Ready *)m->body;
        if (r->slots < 1 || r->slots > 65536)
            return reject(m, "READY: slots out of range 1..65536");
        if (!valid_text(r->worker_name, 256) || !valid_text(r->judge, 64))
            return reject(m, "READY: worker_name or judge too long");
        return 0;
    }
    case JOUST_CMD_JOB: {
        const Joust__Job *j = (const Joust__Job *)m->body;
        size_t items = j->n_matches + j->n_sign + j->n_pairs;
        if (items < 1 || items > JOUST_WIRE_MAX_MATCHES || j->run_id == 0)
            return reject(m, "JOB: match count or run_id out of range");
        for (size_t i = 0; i < j->n_sign; i++)
            if (!validate_image(j->sign[i]))
                return reject(m, "JOB: invalid sign entry");
        for (size_t i = 0; i < j->n_matches; i++) {
            const Joust__MatchJob *mj = j->matches[i];
            if (mj->match_id == 0 || mj->attempt == 0 || !validate_image(mj->first) ||
                !validate_image(mj->second) || !valid_text(mj->prompt, 1 << 20))
                return reject(m, "JOB: invalid match field");
        }
        if (j->n_prompts > JOUST_WIRE_MAX_MATCHES || j->n_images > 2 * JOUST_WIRE_MAX_MATCHES)
            return reject(m, "JOB: table too long");
        for (size_t i = 0; i < j->n_prompts; i++)
            if (!valid_text(j->prompts[i]->text, 1 << 20))
                return reject(m, "JOB: invalid table entry");
        for (size_t i = 0; i < j->n_images; i++)
            if (!validate_image(j->images[i]))
                return reject(m, "JOB: invalid table entry");
        for (size_t i = 0; i < j->n_pairs; i++) {
            const Joust__PairJob *pj = j->pairs[i];
            if (pj->match_id == 0 || pj->attempt == 0)
                return reject(m, "JOB: invalid match field");
            if (pj->prompt >= j->n_prompts || pj->first >= j->n_images || pj->second >= j->n_images)
                return reject(m, "JOB: pair index out of range");
        }
        return 0;
    }
    case JOUST_CMD_RESULT: {
        const Joust__Result *r = (const Joust__Result *)m->body;
        size_t items = r->n_results + r->n_signatures;
        if (items < 1 || items > JOUST_WIRE_MAX_MATCHES || r->run_id == 0)
            return reject(m, "RESULT: result count or run_id out of range");
        for (size_t i = 0; i < r->n_signatures; i++)
            if (!valid_signature(r->signatures[i]))
                return reject(m, "RESULT: invalid signature");
        for (size_t i = 0; i < r->n_results; i++) {
            const Joust__MatchResult *x = r->results[i];
            if (x->match_id == 0 || x->attempt == 0)
                return reject(m, "RESULT: match_id or attempt is 0");
            switch (x->status) {
            case JOUST__OUTCOME_STATUS__OK:
                if (!x->has_p_first || !isfinite(x->p_first) || x->p_first < 0 || x->p_first > 1)
                    return reject(m, "RESULT: p_first missing or outside [0,1]");
                break;
            case JOUST__OUTCOME_STATUS__IMAGE_ERROR:
            case JOUST__OUTCOME_STATUS__JUDGE_ERROR:
            case JOUST__OUTCOME_STATUS__UNPARSEABLE:
            case JOUST__OUTCOME_STATUS__INFRA_ERROR:
            case JOUST__OUTCOME_STATUS__CONFIG_ERROR:
                break;
            default:
                return reject(m, "RESULT: unknown status");
            }
            if (x->has_kind && (x->kind < JOUST__OUTCOME_KIND__SOFT || x->kind > JOUST__OUTCOME_KIND__HARD))
                return reject(m, "RESULT: unknown outcome kind");
            if (x->has_answer && x->answer > 2)
                return reject(m, "RESULT: answer not in 0..2");
            if ((x->reason && !valid_text(x->reason, 65536)) ||
                (x->error && !valid_text(x->error, 4096)))
                return reject(m, "RESULT: reason or error too long");
        }
        return 0;
    }
    case JOUST_CMD_HEARTBEAT: {
        const Joust__Heartbeat *h = (const Joust__Heartbeat *)m->body;
        if (h->unavailable_reason && !valid_text(h->unavailable_reason, 4096))
            return reject(m, "HEARTBEAT: unavailable_reason too long");
        return 0;
    }
    case JOUST_CMD_ACK: {
        const Joust__Ack *a = (const Joust__Ack *)m->body;
        if (a->run_id == 0 || a->n_match_ids > 65536)
            return reject(m, "ACK: run_id or count out of range");
        return 0;
    }
    default:
        return 0;
    }
}

/* Reads the remaining frames of a rejected multipart message. */
static void drain(void *sock)
{
    int more = 1;
    size_t sz = sizeof more;
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
        zmq_msg_t f;
        zmq_msg_init(&f);
        zmq_msg_recv(&f, sock, 0);
        zmq_msg_close(&f);
    }
}

static int recv_frame(void *sock, zmq_msg_t *f, int flags)
{
    zmq_msg_init(f);
    if (zmq_msg_recv(f, sock, flags) < 0) {
        zmq_msg_close(f);
        return errno == EAGAIN ? JOUST_EAGAIN : JOUST_EIO;
    }
    return 0;
}

int joust_wire_header(const void *data, size_t len, const char **reason)
{
    const unsigned char *h = data;
    if (len != 5 || h[0] != 'J' || h[1] != 'S' || h[2] != 'T') {
        *reason = "bad header frame";
        return JOUST_EPROTO;
    }
    if (h[3] != JOUST_WIRE_VERSION) {
        *reason = "unsupported protocol version";
        return JOUST_EPROTO;
    }
    if (!descriptor_of(h[4])) {
        *reason = "unknown command";
        return JOUST_EPROTO;
    }
    return h[4];
}

int joust_wire_decode(int cmd, const void *data, size_t len, joust_wire_msg *m)
{
    m->cmd = cmd;
    m->body = NULL;
    m->error[0] = '\0';
    const ProtobufCMessageDescriptor *d = descriptor_of(cmd);
    if (!d)
        return reject(m, "unknown command");
    Joust__Result *fast_result;
    Joust__Job *fast_job;
    if (cmd == JOUST_CMD_RESULT && joust_wire_result_fast(data, len, &fast_result))
        m->body = &fast_result->base, m->flat = 1;
    else if (cmd == JOUST_CMD_JOB && joust_wire_job_fast(data, len, &fast_job))
        m->body = &fast_job->base, m->flat = 1;
    else
        m->body = protobuf_c_message_unpack(d, NULL, len, data), m->flat = 0;
    if (!m->body)
        return reject(m, "body does not unpack");
    int rc = validate(m);
    if (rc < 0)
        joust_wire_msg_clear(m);
    return rc;
}

int joust_wire_recv(void *sock, int is_router, joust_wire_msg *m)
{
    memset(m, 0, sizeof *m);
    zmq_msg_t f;
    int rc;
    if (is_router) {
        if ((rc = recv_frame(sock, &f, ZMQ_DONTWAIT)) < 0)
            return rc;
        m->rid_len = zmq_msg_size(&f) <= sizeof m->rid ? zmq_msg_size(&f) : sizeof m->rid;
        memcpy(m->rid, zmq_msg_data(&f), m->rid_len);
        int more = zmq_msg_more(&f);
        zmq_msg_close(&f);
        if (!more)
            return reject(m, "message without header frame");
    }
    /* The rest of a multipart message is already here: it arrives whole. */
    if ((rc = recv_frame(sock, &f, is_router ? 0 : ZMQ_DONTWAIT)) < 0)
        return rc;
    /* With CURVE, the ZAP handler's User-Id (the name the allow-list gives
     * the sender's key) rides on every frame of the connection. */
    const char *uid = zmq_msg_gets(&f, "User-Id");
    if (uid)
        snprintf(m->user_id, sizeof m->user_id, "%s", uid);
    const char *why = NULL;
    int cmd = joust_wire_header(zmq_msg_data(&f), zmq_msg_size(&f), &why);
    int more = zmq_msg_more(&f);
    zmq_msg_close(&f);
    if (!more) /* a header without a body frame is a bad header, whatever it says */
        why = "bad header frame";
    if (!more || cmd < 0) {
        drain(sock);
        return reject(m, why);
    }
    if ((rc = recv_frame(sock, &f, 0)) < 0)
        return reject(m, "missing body frame");
    if (zmq_msg_more(&f)) {
        zmq_msg_close(&f);
        drain(sock);
        m->cmd = cmd;
        return reject(m, "extra frames");
    }
    rc = joust_wire_decode(cmd, zmq_msg_data(&f), zmq_msg_size(&f), m);
    zmq_msg_close(&f);
    return rc;
}

void joust_wire_msg_clear(joust_wire_msg *m)
{
    if (m->flat)
        free(m->body);
    else if (m->body)
        protobuf_c_message_free_unpacked(m->body, NULL);
    m->body = NULL;
    m->flat = 0;
}
