/* Reads a run's outcomes from the store and prints how many each worker
 * name recorded. With a NAME argument it passes (exit 0) only when there
 * is at least one outcome and every outcome records that worker.
 * usage: check_workers DB RUN [NAME] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "records.h"
#include "run.h"
#include "store.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: check_workers DB RUN [NAME]\n");
        return 2;
    }
    joust_store_t *st;
    Joust__RunRecord *run;
    if (joust_store_open(argv[1], 0, &st) < 0 || joust_run_open(st, argv[2], NULL, &run) < 0) {
        fprintf(stderr, "check_workers: cannot open run %s in %s\n", argv[2], argv[1]);
        return 1;
    }
    joust_rec_cursor_t *it;
    if (joust_rec_cursor_new(st, JOUST_REC_OUTCOMES, run->run_id, &it) < 0)
        return 1;
    struct { char name[128]; uint64_t n; } seen[64];
    size_t nseen = 0;
    uint64_t total = 0, other = 0;
    for (; joust_rec_cursor_valid(it); joust_rec_cursor_next(it)) {
        Joust__OutcomeRecord *o = joust_rec_cursor_outcome(it);
        if (!o)
            continue;
        const char *w = o->worker ? o->worker : "";
        total++;
        if (argc > 3 && strcmp(w, argv[3]))
            other++;
        size_t i = 0;
        while (i < nseen && strcmp(seen[i].name, w))
            i++;
        if (i == nseen && nseen < 64) {
            snprintf(seen[nseen].name, sizeof seen[nseen].name, "%s", w);
            seen[nseen++].n = 0;
        }
        if (i < nseen)
            seen[i].n++;
        joust_rec_free(o);
    }
    joust_rec_cursor_destroy(&it);
    for (size_t i = 0; i < nseen; i++)
        printf("worker '%s': %" PRIu64 " outcomes\n", seen[i].name, seen[i].n);
    int bad = argc > 3 && (total == 0 || other > 0);
    if (argc > 3)
        printf("%d passed, %d failed\n", !bad, bad);
    joust_rec_free(run);
    joust_store_destroy(&st);
    return bad;
}
