/* --metrics: the registry and its HTTP server for run, coordinator, worker. */
#include <stdio.h>

#include "cli.h"
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
