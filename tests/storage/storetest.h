/* Helpers for tests on a real store in a fresh temporary folder: make the
 * folder, name paths in it, ask whether an outcome key is present, and
 * remove the folder at the end. */
#ifndef JOUST_TEST_STORETEST_H
#define JOUST_TEST_STORETEST_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "joust.pb-c.h"
#include "store.h"
#include "testfs.h"

static char storetest_dir[] = "/tmp/joust-storetest-XXXXXX";

/* Makes the folder; 0, or -1 with the reason printed. */
static inline int storetest_begin(void)
{
    if (mkdtemp(storetest_dir))
        return 0;
    perror("mkdtemp");
    return -1;
}

/* dir/name in one of four rotating buffers. */
static inline const char *storetest_path(const char *name)
{
    static char buf[4][512];
    static int slot;
    char *p = buf[slot++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", storetest_dir, name);
    return p;
}

/* 1 when the outcomes family holds key. */
static inline int storetest_has(joust_store_t *s, const char *key)
{
    void *v = NULL;
    size_t n = 0;
    int rc = joust_store_get(s, JOUST_CF_OUTCOMES, key, strlen(key), &v, &n);
    free(v);
    return rc == 0;
}

static inline void storetest_end(void) { rm_rf(storetest_dir); }

/* A run record with the required fields (borrowed strings). */
static inline Joust__RunRecord storetest_run(const char *name)
{
    Joust__RunRecord r = JOUST__RUN_RECORD__INIT;
    r.name = (char *)name;
    r.strategy = "round-robin";
    r.judge = "sim";
    r.order = "both";
    return r;
}

/* Makes the folder and creates a store "db" in it; 0, or < 0 (printed). */
static inline int storetest_open(joust_store_t **st)
{
    int rc = storetest_begin();
    if (rc == 0 && (rc = joust_store_open(storetest_path("db"), JOUST_STORE_CREATE, st)) < 0)
        fprintf(stderr, "cannot create the test store\n");
    return rc;
}

#endif
