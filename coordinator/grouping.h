/* Tournament groups that are not the prompt (issue 12.5): a corpus with one
 * image per caption has nothing to compare within a prompt, so a run may
 * group by a manifest field (`joust run --group-by FIELD`: images with the
 * same value form one group) or put the whole run in one group (`--group
 * all`). The choice is frozen in the run record (group_by, group_all).
 *
 * A group is named by its smallest image id, which is also what match,
 * outcome and score records of a grouped run hold in their prompt_id, and
 * what the run's plan_cursor walks: the ids never change when a manifest
 * is added (its images have larger ids), so planning passes, resume and
 * re-planning see the same groups.
 *
 * FIELD is "model" (the manifest's model) or any other manifest field
 * (kept in the image's metadata): a string value as it is, any other JSON
 * value as its compact JSON text. Every image of the run needs the field.
 * Ownership: a joust_groups owns its arrays (joust_groups_free).
 * Threads: none; read-only use of a loaded joust_groups may be shared.
 * Errors: 0 or negative JOUST_E*: JOUST_EINVAL when an image lacks the
 * field (logged, naming the image and its manifest line), store errors. */
#ifndef JOUST_GROUPING_H
#define JOUST_GROUPING_H
#include <stddef.h>
#include <stdint.h>

#include "joust.pb-c.h"
#include "records.h"
#include "store.h"

typedef struct {
    size_t ng;     /* groups */
    uint64_t *gid; /* ng ids (each the group's smallest image id), ascending */
    uint64_t *off; /* ng + 1 offsets into ids */
    uint64_t *ids; /* the run's image ids, group by group, ascending within one */
} joust_groups;

/* 1 when run groups by something other than the prompt. */
int joust_run_grouped(const Joust__RunRecord *run);

/* "all", "field NAME" or "prompt", for messages. */
const char *joust_run_grouping(const Joust__RunRecord *run, char *buf, size_t len);

/* Reads every image the run covers (one scan of the images) into groups;
 * *out is zeroed first. */
int joust_groups_load(joust_store_t *st, const Joust__RunRecord *run, joust_groups *out);
void joust_groups_free(joust_groups *g);

/* As joust_rec_prompt_walk, over the groups with from <= gid < until
 * (until 0: no bound): fn gets each group's id and members. */
int joust_groups_walk(const joust_groups *g, uint64_t from, uint64_t until, joust_rec_prompt_fn fn,
                      void *arg, uint64_t *next);

/* The members of group gid (borrowed). JOUST_ENOTFOUND when no group has
 * that id. */
int joust_groups_find(const joust_groups *g, uint64_t gid, const uint64_t **ids, size_t *n);

/* The run's tournament groups walked like joust_rec_prompt_walk: its prompts
 * (fn sees every prompt in the range, as joust_rec_prompt_walk), or its
 * groups when grouped (loaded for this call); a bound at the plan cursor
 * then also takes the group being streamed there (part of it is planned). */
int joust_run_group_walk(joust_store_t *st, const Joust__RunRecord *run, uint64_t from,
                         uint64_t until, joust_rec_prompt_fn fn, void *arg, uint64_t *next);

#endif
