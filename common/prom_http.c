#include "prom_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "xalloc.h"

struct joust_prom_http {
    struct MHD_Daemon *d;
    joust_prom_t *reg;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *type,
                             const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_len, void **state)
{
    joust_prom_http_t *s = cls;
    static const char *const text = "text/plain; charset=utf-8";
    if (strcmp(method, "GET") && strcmp(method, "HEAD"))
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text, "only GET\n", 9);
    if (strcmp(url, "/metrics"))
        return reply(conn, MHD_HTTP_NOT_FOUND, text, "metrics are at /metrics\n", 24);
    joust_buf_t b = {0};
    joust_prom_render(s->reg, &b);
    enum MHD_Result rc = reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                               b.data ? b.data : "", b.len);
    joust_buf_free(&b);
    return rc;
}

static int parse_addr(const char *addr, struct sockaddr_in *sa, char *err, size_t errlen)
{
    char host[256] = "127.0.0.1";
    const char *colon = strrchr(addr, ':'), *port = colon ? colon + 1 : addr;
    if (colon) {
        size_t n = (size_t)(colon - addr);
        if (n == 0 || n >= sizeof host)
            return joust_errf(err, errlen, JOUST_EINVAL, "metrics address '%s': bad host", addr);
        memcpy(host, addr, n);
        host[n] = 0;
    }
    char *end;
    errno = 0;
    long p = strtol(port, &end, 10);
    if (!*port || *end || errno || p < 0 || p > 65535)
        return joust_errf(err, errlen, JOUST_EINVAL,
                          "metrics address '%s': expected PORT or HOST:PORT (port 0-65535)", addr);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(host, NULL, &hints, &res);
    if (g != 0 || !res)
        return joust_errf(err, errlen, JOUST_EINVAL, "metrics address '%s': host '%s': %s", addr,
                          host, gai_strerror(g));
    memcpy(sa, res->ai_addr, sizeof *sa);
    freeaddrinfo(res);
    sa->sin_port = htons((uint16_t)p);
    return 0;
}

int joust_prom_http_start(const char *addr, joust_prom_t *reg, joust_prom_http_t **srv,
                          unsigned *port, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    int rc = parse_addr(addr, &sa, err, errlen);
    if (rc < 0)
        return rc;
    joust_prom_http_t *s = xcalloc(1, sizeof *s);
    s->reg = reg;
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                            on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!s->d) {
        free(s);
        return joust_errf(err, errlen, JOUST_EIO, "metrics: cannot listen on %s (in use?)", addr);
    }
    if (port) {
        const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
        *port = i ? i->port : 0;
    }
    *srv = s;
    return 0;
}

void joust_prom_http_stop(joust_prom_http_t **srv)
{
    if (!*srv)
        return;
    MHD_stop_daemon((*srv)->d);
    free(*srv);
    *srv = NULL;
}
