/* Human preference labels for `joust eval` (docs/judges.md, "Evaluating a
 * judge"): readers for four formats, all turned into prompts, images and
 * labelled pairs.
 *
 *   imagereward  the ImageReward test set (data/test.json): a JSON array
 *                (or JSONL) of {"id" or "prompt_id", "prompt",
 *                "generations": [image, ...], "ranking": [rank, ...]};
 *                rank 1 = best, equal ranks are human ties.
 *   hpdv2        the HPDv2 test set (test.json): {"prompt", "image_path":
 *                [image, ...], "rank": [rank, ...]} per prompt (ranks may
 *                be averaged, i.e. fractional; lower = better; equal = tie).
 *   pickapic     Pick-a-Pic-style pairs, JSONL (or a JSON array):
 *                {"caption", "jpg_0", "jpg_1", "label_0", "label_1"}; label
 *                (1, 0) prefers jpg_0, (0, 1) jpg_1, (0.5, 0.5) is a tie.
 *   pairs        generic pairs, JSONL (or a JSON array): {"prompt",
 *                "image_a", "image_b", "preferred": "a" | "b" | "tie"},
 *                optional "prompt_id".
 * Any record may carry "category" (a string) for per-category results.
 * Ranking formats give every pair i < j of a prompt (human ties included:
 * the protocols decide); pair formats give one pair a record and group
 * records into prompts by prompt_id, else by prompt text.
 *
 * Images are paths or URIs as in a manifest (common/uri.h): a relative path
 * is joined to the label file's folder; the reference must parse. Reading
 * the images, and confinement to allowed roots, happen later at ingest.
 *
 * Errors: a malformed record (not an object, a missing or mistyped field,
 * lists of different lengths, a bad label or image reference) is skipped
 * and reported as "LINE N: reason" (JSONL) or "entry N: reason" (JSON
 * array; N counts from 1); every other record is kept. A file that cannot
 * be read, or a JSON array that does not parse, fails the whole call.
 * Ownership: joust_labels_read allocates *out; joust_labels_destroy frees
 * it. Threads: reentrant. */
#ifndef JOUST_LABELS_H
#define JOUST_LABELS_H
#include <stddef.h>
#include <stdint.h>

typedef enum {
    JOUST_LABELS_AUTO = 0, /* from the first record's fields */
    JOUST_LABELS_IMAGEREWARD,
    JOUST_LABELS_HPDV2,
    JOUST_LABELS_PICKAPIC,
    JOUST_LABELS_PAIRS,
} joust_labels_format;

#define JOUST_LABELS_NO_CATEGORY UINT32_MAX

typedef struct {
    char *key;         /* grouping key: the prompt id, else the text */
    char *text;        /* the prompt shown to the judge */
} joust_label_prompt;

typedef struct {
    uint32_t prompt; /* index into prompts */
    uint32_t a, b;   /* indexes into images */
    double human;    /* 1: a preferred, 0: b preferred, 0.5: tie */
    uint32_t category; /* index into categories, or JOUST_LABELS_NO_CATEGORY */
    uint64_t where;  /* the record's line (JSONL) or entry (JSON array) */
} joust_label_pair;

typedef struct {
    joust_labels_format format;
    char **images;       /* resolved references (a local path joined to the folder) */
    size_t n_images;
    joust_label_prompt *prompts;
    size_t n_prompts;
    joust_label_pair *pairs;
    size_t n_pairs;
    char **categories;
    size_t n_categories;
    uint64_t records;    /* records read, good and bad */
    char **errors;       /* one per bad record, in file order */
    size_t n_errors;
} joust_labels;

/* "imagereward", "hpdv2", "pickapic", "pairs", "auto". */
const char *joust_labels_format_name(joust_labels_format f);
/* 0, or JOUST_EINVAL for an unknown name. */
int joust_labels_format_parse(const char *name, joust_labels_format *out);

/* Reads path in the given format (AUTO: imagereward when the first record
 * has "generations", hpdv2 with "image_path", pickapic with "jpg_0", pairs
 * with "image_a"). base_dir: the folder relative image paths are joined to
 * (NULL: the label file's folder).
 * @return 0 (bad records are in (*out)->errors); JOUST_ENOTFOUND/JOUST_EIO
 *   for a file that cannot be read, JOUST_EINVAL for a JSON array that does
 *   not parse or a format that AUTO cannot tell, with the reason in err. */
int joust_labels_read(const char *path, joust_labels_format format, const char *base_dir,
                      joust_labels **out, char *err, size_t errlen);
void joust_labels_destroy(joust_labels **self_p);

#endif
