/* The DPO export: preference pairs from a run's scores (coordinator/
 * output.h's scored walk), for trainers. Layouts: TRL (prompt, chosen,
 * rejected) and Pick-a-Pic / Diffusion-DPO (caption, jpg_0, jpg_1,
 * label_0), as JSONL with image paths, or as a WebDataset tar (libarchive)
 * where each sample is one pair: KEY.json plus the two images' bytes. Pair
 * policies per prompt, over the images with a score, in rank order:
 * best vs worst, best vs each other, all pairs, top-k vs bottom-k. A pair
 * is written only when its score margin is above 0 and at least
 * min_margin (docs/export.md). Deterministic; the file is written whole or
 * not at all (output.h's atomic files).
 *
 * Errors: 0, JOUST_EIO (the output) or the store's error. In a tar, a
 * pair whose image cannot go in (remote, missing, unreadable, over
 * max_image_bytes) is left out, logged with the image and the reason, and
 * counted in stats->skipped; the rest is written and 0 is returned (the
 * caller decides the exit status; `joust export dpo` exits 1).
 * Ownership: nothing kept after the call. Threads: none started. */
#ifndef JOUST_EXPORT_DPO_H
#define JOUST_EXPORT_DPO_H
#include <stddef.h>
#include <stdint.h>

#include "joust.pb-c.h"
#include "store.h"

enum { JOUST_DPO_TRL, JOUST_DPO_PICKAPIC };
enum { JOUST_DPO_BEST_WORST, JOUST_DPO_BEST_EACH, JOUST_DPO_ALL, JOUST_DPO_TOPK };

typedef struct {
    int layout;            /* JOUST_DPO_TRL (default) or JOUST_DPO_PICKAPIC */
    int policy;            /* JOUST_DPO_BEST_WORST (default), ... */
    uint32_t k;            /* top-k vs bottom-k: k (default 2) */
    double min_margin;     /* default 0.1; pairs with margin 0 never */
    int wds;               /* 1: a WebDataset tar with the image bytes */
    size_t max_image_bytes; /* tar: larger images are skipped (default 64 MiB) */
} joust_dpo_opts;

typedef struct {
    uint64_t pairs;   /* written */
    uint64_t prompts; /* prompts with at least one pair */
    uint64_t skipped; /* pairs left out: an image could not be read (tar) */
} joust_dpo_stats;

void joust_dpo_opts_defaults(joust_dpo_opts *o);
/* Parses "trl"/"pickapic" and "best-worst"/"best-each"/"all"/"top-k";
 * JOUST_EINVAL for anything else. */
int joust_dpo_layout_parse(const char *s, int *layout);
int joust_dpo_policy_parse(const char *s, int *policy);
int joust_export_dpo(joust_store_t *st, const Joust__RunRecord *run, const char *path,
                     const joust_dpo_opts *o, joust_dpo_stats *stats);

#endif
