/* The worker's connection diagnostics; see worker_conn.h. */
#include "worker_conn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "log.h"
#include "xalloc.h"

#define REPEAT_MS 30000

enum { P_NONE, P_REFUSED, P_MECHANISM, P_AUTH, P_CRYPTO, P_HANDSHAKE, P_CLOSED, P_COUNT };

struct joust_conn_watch {
    void *sock, *mon;
    char *endpoint;
    int curve;
    int tcp_up;                 /* connected, handshake not yet done */
    int64_t retry_since_ms;     /* connection attempts refused since then; 0: none */
    int problem;                /* the latest, P_NONE after a handshake */
    int had_problem;
    char text[400];
    uint64_t count[P_COUNT];
    int64_t logged_ms[P_COUNT];
};

static int seq;

joust_conn_watch_t *joust_conn_watch_new(void *ctx, void *sock, const char *endpoint, int curve)
{
    char addr[64];
    snprintf(addr, sizeof addr, "inproc://joust-worker-conn-%d", seq++);
    int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_DISCONNECTED |
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
    if (zmq_socket_monitor(sock, addr, events) != 0)
        return NULL;
    void *mon = zmq_socket(ctx, ZMQ_PAIR);
    int zero = 0;
    if (!mon || zmq_setsockopt(mon, ZMQ_LINGER, &zero, sizeof zero) != 0 || zmq_connect(mon, addr) != 0) {
        if (mon)
            zmq_close(mon);
        zmq_socket_monitor(sock, NULL, 0);
        return NULL;
    }
    joust_conn_watch_t *cw = xcalloc(1, sizeof *cw);
    cw->sock = sock;
    cw->mon = mon;
    cw->endpoint = xstrdup(endpoint);
    cw->curve = curve;
    return cw;
}

void joust_conn_watch_destroy(joust_conn_watch_t **self_p)
{
    joust_conn_watch_t *cw = *self_p;
    if (!cw)
        return;
    zmq_socket_monitor(cw->sock, NULL, 0);
    zmq_close(cw->mon);
    free(cw->endpoint);
    free(cw);
    *self_p = NULL;
}

const char *joust_conn_watch_problem(const joust_conn_watch_t *cw)
{
    return cw && cw->problem != P_NONE ? cw->text : "";
}

static void report(joust_conn_watch_t *cw, int p, int64_t now, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report(joust_conn_watch_t *cw, int p, int64_t now, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cw->text, sizeof cw->text, fmt, ap);
    va_end(ap);
    cw->problem = p;
    cw->had_problem = 1;
    uint64_t n = ++cw->count[p];
    if (n == 1 || now - cw->logged_ms[p] >= REPEAT_MS) {
        cw->logged_ms[p] = now;
        if (n == 1)
            log_error("cannot talk to the coordinator at %s: %s", cw->endpoint, cw->text);
        else
            log_error("cannot talk to the coordinator at %s: %s (%llu times so far; still retrying)",
                      cw->endpoint, cw->text, (unsigned long long)n);
    }
}

static void on_event(joust_conn_watch_t *cw, unsigned event, unsigned value, int64_t now)
{
    switch (event) {
    case ZMQ_EVENT_CONNECT_RETRIED:
        /* Said once it lasts 2 s: a coordinator that just exited or
         * restarts is no problem yet. */
        if (!cw->retry_since_ms)
            cw->retry_since_ms = now;
        if (!cw->tcp_up && now - cw->retry_since_ms >= 2000)
            report(cw, P_REFUSED, now, "nothing accepts connections there (wrong host or port, "
                                       "or the coordinator is not running)");
        break;
    case ZMQ_EVENT_CONNECTED:
        cw->tcp_up = 1;
        cw->retry_since_ms = 0;
        break;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        cw->tcp_up = 0;
        if (cw->problem != P_NONE || cw->had_problem)
            log_info("connected to the coordinator at %s%s", cw->endpoint,
                     cw->curve ? " (CURVE handshake succeeded)" : "");
        cw->problem = P_NONE;
        cw->had_problem = 0;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        cw->tcp_up = 0;
        report(cw, P_AUTH, now, "the coordinator refused this worker's CURVE key (ZAP status %u): "
                                "is the worker's public key on the coordinator's --allow list?", value);
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        cw->tcp_up = 0;
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
            report(cw, P_MECHANISM, now, "%s",
                   cw->curve ? "the coordinator does not use CURVE but this worker does "
                               "(drop --curve-secret/--server-key, or start the coordinator with CURVE)"
                             : "the coordinator uses CURVE and this worker does not "
                               "(give --curve-secret and --server-key)");
        else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
            report(cw, P_CRYPTO, now, "the CURVE handshake failed to decrypt: wrong --server-key "
                                      "(the coordinator's public key)?");
        else
            report(cw, P_HANDSHAKE, now, "the handshake failed (ZMTP protocol error 0x%x)%s", value,
                   cw->curve ? ": wrong --server-key?" : "");
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        cw->tcp_up = 0;
        report(cw, P_HANDSHAKE, now, "the handshake failed%s",
               cw->curve ? " (CURVE: wrong --server-key, or a key the coordinator does not accept?)"
                         : " (does the coordinator require CURVE: --curve-secret and --server-key?)");
        break;
    case ZMQ_EVENT_DISCONNECTED:
        if (cw->tcp_up) /* closed before the handshake completed */
            report(cw, P_CLOSED, now, "%s",
                   cw->curve ? "the coordinator closed the connection during the CURVE handshake: "
                               "most likely a wrong --server-key (it cannot open this worker's HELLO), "
                               "or it does not use CURVE"
                             : "the coordinator closed the connection during the handshake: "
                               "does it require CURVE (--curve-secret and --server-key)?");
        cw->tcp_up = 0;
        break;
    default:
        break;
    }
}

void joust_conn_watch_poll(joust_conn_watch_t *cw, int64_t now_ms)
{
    if (!cw)
        return;
    for (;;) {
        zmq_msg_t a, b;
        zmq_msg_init(&a);
        if (zmq_msg_recv(&a, cw->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&a);
            return;
        }
        unsigned event = 0, value = 0;
        if (zmq_msg_size(&a) >= 6) {
            const unsigned char *d = zmq_msg_data(&a);
            uint16_t e16;
            uint32_t v32;
            memcpy(&e16, d, 2);
            memcpy(&v32, d + 2, 4);
            event = e16;
            value = v32;
        }
        int more = zmq_msg_more(&a);
        zmq_msg_close(&a);
        if (more) { /* the second frame: the address */
            zmq_msg_init(&b);
            zmq_msg_recv(&b, cw->mon, ZMQ_DONTWAIT);
            zmq_msg_close(&b);
        }
        on_event(cw, event, value, now_ms);
    }
}
