/* Ingest: streams a JSONL manifest into the store (prompts, images and the
 * indexes in META), committing every few thousand lines, so memory does not
 * grow with the manifest. Relative image paths resolve against the
 * manifest's folder. A bad line is reported with its line number and reason
 * and skipped; nothing else is lost. A manifest whose content was already
 * ingested into this store is skipped as a whole. */
#ifndef JOUST_INGEST_H
#define JOUST_INGEST_H
#include <stdint.h>

#include "store.h"

typedef struct {
    uint64_t lines;        /* non-empty lines read */
    uint64_t images;       /* images added */
    uint64_t errors;       /* lines rejected */
    uint64_t duplicates;   /* images whose content equals an earlier image */
    uint64_t missing;      /* local files that do not exist (yet) */
    uint64_t prompts;      /* new prompt groups */
    int already_ingested;  /* the same manifest content was ingested before */
} joust_ingest_stats;

/* Returns 0, JOUST_ENOTFOUND / JOUST_EIO for an unreadable manifest, or a
 * store error. Per-line problems are counted in stats, not returned. */
int joust_ingest(joust_store_t *st, const char *manifest_path, joust_ingest_stats *stats);

#endif
