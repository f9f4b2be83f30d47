/* Outcome reuse: an OK outcome is recorded under a key made of the judge
 * settings that decide a judgement, the prompt text and the two images'
 * content hashes in presentation order; a run that plans a match with the
 * same key copies that outcome instead of judging the pair again
 * (docs/storage.md "Reusing outcomes"). This part makes the keys; the index
 * is storage/records.h joust_rec_reuse_*, the copying is in planning.c.
 * Pure functions; no state. */
#ifndef JOUST_REUSE_H
#define JOUST_REUSE_H
#include <stdint.h>

#include "joust.pb-c.h"

/* The judge part of the key: the run's judge name and its recorded judge
 * settings (RunRecord.judge_options, "name=value" tokens) without the
 * operational ones that cannot change a judgement (endpoints, timeouts,
 * retries, concurrency, caches, key variables, statistics, latency). */
uint64_t joust_reuse_salt(const Joust__RunRecord *run);
/* The key of a match: salt, prompt text, the first and the second image's
 * content hash. */
uint64_t joust_reuse_key(uint64_t salt, const char *prompt, uint64_t first_content,
                         uint64_t second_content);

#endif
