/* --metrics: the registry and its HTTP server for run, coordinator, worker. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memrchr */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "log.h"
#include "prom.h"
#include "prom_http.h"

void cli_metrics_open(cli_metrics *m)
{
    m->reg = joust_prom_new();
    m->srv = NULL;
}

int cli_metrics_serve(cli_metrics *m, const char *addr)
{
    char err[256];
    unsigned port = 0;
    int rc = joust_prom_http_start(addr, m->reg, &m->srv, &port, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "joust: --metrics: %s\n", err);
        return rc;
    }
    log_info("metrics: serving /metrics on port %u (--metrics %s)", port, addr);
    return 0;
}

void cli_metrics_close(cli_metrics *m)
{
    joust_prom_http_stop(&m->srv);
    joust_prom_destroy(&m->reg);
}

/* "[HOST:]PORT" into host and port (0..65535). */
static int split_addr(const char *a, size_t len, char *host, size_t hostlen, long *port)
{
    const char *colon = memrchr(a, ':', len);
    const char *p = colon ? colon + 1 : a;
    size_t plen = len - (size_t)(p - a);
    char num[16], *end;
    if (!plen || plen >= sizeof num)
        return -1;
    memcpy(num, p, plen);
    num[plen] = '\0';
    *port = strtol(num, &end, 10);
    if (*end || *port < 0 || *port > 65535)
        return -1;
    snprintf(host, hostlen, "%.*s", colon ? (int)(colon - a) : 9,
             colon ? a : "127.0.0.1");
    return host[0] ? 0 : -1;
}

int cli_worker_metrics_addr(const cli_opts *o, int i, char *out, size_t outlen, char *err,
                            size_t errlen)
{
    char host[256];
    long port;
    out[0] = '\0';
    if (o->worker_metrics) {
        const char *s = o->worker_metrics;
        int k = 0, n = 1;
        for (const char *c = s; *c; c++)
            n += *c == ',';
        if (n != o->workers)
            return joust_errf(err, errlen, JOUST_EINVAL, "--worker-metrics lists %d addresses "
                              "for %d local workers (--workers)", n, o->workers);
        while (k < i)
            k += *s++ == ',';
        size_t len = strcspn(s, ",");
        if (split_addr(s, len, host, sizeof host, &port) < 0)
            return joust_errf(err, errlen, JOUST_EINVAL, "--worker-metrics: \"%.*s\" is not "
                              "[HOST:]PORT", (int)len, s);
    } else if (o->metrics) {
        if (split_addr(o->metrics, strlen(o->metrics), host, sizeof host, &port) < 0)
            return joust_errf(err, errlen, JOUST_EINVAL, "--metrics: \"%s\" is not [HOST:]PORT",
                              o->metrics);
        if (port && port + 1 + i > 65535)
            return joust_errf(err, errlen, JOUST_EINVAL, "--metrics %s: local worker %d would "
                              "get port %ld, past 65535 (give --worker-metrics)", o->metrics,
                              i + 1, port + 1 + i);
        port = port ? port + 1 + i : 0;
    } else {
        return 0;
    }
    snprintf(out, outlen, "%s:%ld", host, port);
    return 0;
}
