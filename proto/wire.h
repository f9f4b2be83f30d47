/* Wire framing for the coordinator (ROUTER) <-> worker (DEALER) protocol:
 * [routing id, ROUTER side only] [5-byte header 'J' 'S' 'T' version cmd]
 * [protobuf body]. See docs/protocol.md, the normative spec.
 *
 * Every received message is validated after unpacking (header, command,
 * field ranges); an invalid one is drained completely and reported as
 * JOUST_EPROTO with the reason in msg->error, never delivered.
 * Threads: a socket and its messages belong to one thread. */
#ifndef JOUST_WIRE_H
#define JOUST_WIRE_H
#include <stddef.h>
#include <stdint.h>

#include "joust.pb-c.h"

#define JOUST_WIRE_VERSION 1
#define JOUST_WIRE_MAX_MATCHES 1024
#define JOUST_WIRE_MAX_MSG_BYTES (64 << 20)

typedef enum {
    JOUST_CMD_READY = 1,
    JOUST_CMD_JOB = 2,
    JOUST_CMD_RESULT = 3,
    JOUST_CMD_ACK = 4,
    JOUST_CMD_HEARTBEAT = 5,
    JOUST_CMD_DISCONNECT = 6
} joust_cmd;

typedef struct {
    int cmd;
    unsigned char rid[256]; /* routing id (ROUTER side) */
    size_t rid_len;
    ProtobufCMessage *body; /* owned; NULL after clear */
    int flat;               /* body is one allocation (a fast path: RESULT, JOB) */
    char error[160];        /* why a message was rejected */
    char user_id[128];      /* CURVE: the sender's name from the ZAP handler
                             * (its key's allow-list entry); "" without CURVE */
} joust_wire_msg;

const char *joust_cmd_name(int cmd);

/* Applies the options every joust socket needs (LINGER 0, max message
 * size; ROUTER: ROUTER_MANDATORY; DEALER: IMMEDIATE). */
void joust_wire_socket_setup(void *sock, int is_router);

/* Sends one message without blocking. rid is NULL on a DEALER.
 * Returns 0, JOUST_EAGAIN (peer at its high-water mark), JOUST_ENOTFOUND
 * (ROUTER: peer gone) or JOUST_EIO. */
int joust_wire_send(void *sock, const void *rid, size_t rid_len, int cmd,
                    const ProtobufCMessage *body);

/* Receives one whole message without blocking. Returns 0, JOUST_EAGAIN when
 * none is waiting, or JOUST_EPROTO (message dropped, reason in msg->error;
 * msg->rid is filled when known). msg->user_id gets the ZAP User-Id of the
 * connection (CURVE), else "". Uses joust_wire_header and joust_wire_decode. */
int joust_wire_recv(void *sock, int is_router, joust_wire_msg *msg);

/* The pure steps of joust_wire_recv, callable without sockets (fuzzing,
 * tests). Neither allocates anything that outlives a failure.
 *
 * joust_wire_header checks a header frame's bytes: returns the command
 * (1..6), or JOUST_EPROTO with *reason set to "bad header frame",
 * "unsupported protocol version" or "unknown command" (static strings).
 *
 * joust_wire_decode unpacks a body of command cmd and validates it
 * (docs/protocol.md §4). Returns 0 with msg->cmd and msg->body set (free
 * with joust_wire_msg_clear), or JOUST_EPROTO with msg->body NULL and the
 * reason in msg->error. msg->rid and msg->user_id are left as they are. */
int joust_wire_header(const void *data, size_t len, const char **reason);
int joust_wire_decode(int cmd, const void *data, size_t len, joust_wire_msg *msg);
void joust_wire_msg_clear(joust_wire_msg *msg);

/* joust_wire_decode's fast path for RESULT bodies (wire_result.c), public
 * for tests: returns 1 with *out set (one allocation: free() it) when it
 * decoded the body, else 0 with *out NULL, leaving the body to protobuf-c:
 * signatures, unknown or repeated singular fields, non-canonical varints,
 * undeclared enum values, a missing required field, anything malformed.
 * What it decodes, protobuf-c decodes to the same values. */
int joust_wire_result_fast(const void *data, size_t len, Joust__Result **out);
/* The same for JOB bodies (wire_job.c): decodes the tabled form (prompts,
 * images, pairs) and declines MatchJob and sign entries, unknown or
 * repeated singular fields, non-canonical varints, a missing required
 * field, anything malformed. */
int joust_wire_job_fast(const void *data, size_t len, Joust__Job **out);

#endif
