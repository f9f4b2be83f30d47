/* Serves a metrics registry (prom.h) at GET /metrics over HTTP, with
 * libmicrohttpd on its own background thread. The thread only renders the
 * registry (atomic reads): it never touches the caller's sockets or store.
 * Other paths answer 404, other methods 405.
 *
 * Ownership: the caller keeps the registry alive until
 * joust_prom_http_stop, which joins the thread. Errors: start returns
 * JOUST_EINVAL for a malformed address and JOUST_EIO when it cannot bind,
 * with the reason in err. */
#ifndef JOUST_PROM_HTTP_H
#define JOUST_PROM_HTTP_H
#include <stddef.h>

#include "prom.h"

typedef struct joust_prom_http joust_prom_http_t;

/* addr: "PORT" (binds 127.0.0.1) or "HOST:PORT" (an IPv4 address or a
 * name; "0.0.0.0:9100" for every interface). PORT 0 picks a free port;
 * *port (when not NULL) receives the bound one. */
int joust_prom_http_start(const char *addr, joust_prom_t *reg, joust_prom_http_t **srv,
                          unsigned *port, char *err, size_t errlen);
void joust_prom_http_stop(joust_prom_http_t **srv);

#endif
