/* Why a worker cannot reach its coordinator, as far as ZeroMQ's socket
 * monitor can tell (zmq_socket_monitor): nothing accepts TCP connections
 * there (wrong host or port, coordinator not running), the security
 * mechanisms differ (CURVE on one side only), the coordinator refused this
 * worker's key (ZAP), the CURVE handshake failed, or the coordinator closed
 * the connection during the handshake (with CURVE: most often a wrong
 * --server-key, since the coordinator cannot open our HELLO). Each kind of
 * problem is logged when it first appears and then at most every 30 s with
 * a count, and a successful handshake after a problem is logged too, so a
 * worker never reconnects silently forever.
 *
 * Ownership: the watch borrows ctx and sock; destroy it before closing sock.
 * Threads: the thread that owns sock. Never fails the worker: when the
 * monitor cannot be set up, new returns NULL and the worker runs without. */
#ifndef JOUST_WORKER_CONN_H
#define JOUST_WORKER_CONN_H
#include <stdint.h>

typedef struct joust_conn_watch joust_conn_watch_t;

/* curve: 1 when this worker uses CURVE (it shapes the explanations). */
joust_conn_watch_t *joust_conn_watch_new(void *ctx, void *sock, const char *endpoint, int curve);
void joust_conn_watch_destroy(joust_conn_watch_t **self_p);
/* Reads the pending events and logs what they mean. */
void joust_conn_watch_poll(joust_conn_watch_t *cw, int64_t now_ms);
/* The latest problem in words, "" when the last handshake succeeded. */
const char *joust_conn_watch_problem(const joust_conn_watch_t *cw);

#endif
