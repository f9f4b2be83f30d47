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
    char error[160];        /* why a message was rejected */
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
 * msg->rid is filled when known). */
int joust_wire_recv(void *sock, int is_router, joust_wire_msg *msg);
void joust_wire_msg_clear(joust_wire_msg *msg);

#endif
