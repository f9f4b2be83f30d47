/* Demo data: procedural base images, one per prompt, each with graded
 * degraded variants whose true quality order is known, plus a JSONL manifest
 * for ingest. Everything is a pure function of the seed (and the libm in
 * use), so a seed always gives the same images and manifest.
 *
 * Ownership: images returned through joust_image out-parameters belong to
 * the caller (joust_image_free). Threads: reentrant, no global state.
 * Errors: 0 or a negative JOUST_E* code (common/err.h). */
#ifndef JOUST_DEMO_DATA_H
#define JOUST_DEMO_DATA_H
#include <stddef.h>
#include <stdint.h>

#include "image.h"

#define JOUST_DEMO_SIDE 320 /* base images are square, a multiple of 8 */

typedef enum {
    JOUST_DEGRADE_BLUR = 0,   /* Gaussian blur, sigma up to 3.2 px */
    JOUST_DEGRADE_NOISE,      /* additive Gaussian noise per channel, sigma up to 30 */
    JOUST_DEGRADE_JPEG,       /* JPEG 4:2:0 round trip, quality 92 down to 6 */
    JOUST_DEGRADE_UNDER,      /* under-exposure, down to -2.2 stops in linear light */
    JOUST_DEGRADE_OVER,       /* over-exposure, up to +2.2 stops, highlights clip */
    JOUST_DEGRADE_COUNT
} joust_degrade_kind;

const char *joust_degrade_name(joust_degrade_kind kind);

/* Renders prompt's base image (JOUST_DEMO_SIDE square) and, when desc is not
 * NULL, a description of it that is unique per prompt. */
void joust_demo_base(uint64_t seed, int prompt, joust_image *out, char *desc, size_t desclen);

/* Degrades img in place at severity in [0, 1] (0 leaves it unchanged;
 * quality falls strictly as severity grows). noise_seed drives the noise. */
void joust_demo_degrade(joust_image *img, joust_degrade_kind kind, double severity,
                        uint64_t noise_seed);

/* The degradation plan of a prompt: a primary kind applied at the level's
 * full severity and, for about a third of the prompts, a secondary kind at
 * half of it (secondary is -1 when there is none). */
void joust_demo_plan(uint64_t seed, int prompt, int *primary, int *secondary);

/* Renders variant k (0 = pristine, per_prompt-1 = worst) of a prompt as
 * joust_demo_generate writes it, before the final JPEG q95 encoding. */
void joust_demo_variant(uint64_t seed, int prompt, int k, int per_prompt, joust_image *out);

/* Creates dir (with parents) and writes prompts x per_prompt images named
 * p<prompt>_v<k>.jpg (JPEG q95 4:4:4) and the manifest, one JSON object per
 * line: {"image": absolute path, "prompt": text, "model": fake generator
 * name (one per level), "id": "p<prompt>_v<k>", "truth": per_prompt-1-k}.
 * Within a prompt the lines are shuffled by the seed so the order leaks
 * nothing. manifest_path NULL means <dir>/manifest.jsonl.
 * @return 0, JOUST_EINVAL (prompts < 1, per_prompt < 2 or > 100, no dir) or
 *         JOUST_EIO (cannot create the directory or write a file). */
int joust_demo_generate(const char *dir, int prompts, int per_prompt, uint64_t seed,
                        const char *manifest_path);

#endif
