/* A no-reference image quality measure on the CPU, and the "quality" judge
 * built on it: P(first preferred) = sigmoid((score1 - score2) / T).
 *
 * The measure looks at technical quality only (sharpness, noise, exposure,
 * contrast, colour, JPEG blocking), never at the prompt: it is a baseline and
 * a test judge with a known answer, not a substitute for a VLM.
 * Ownership: stats are plain values; text goes into caller buffers.
 * Threads: all functions are reentrant. Errors: 0 or JOUST_EINVAL. */
#ifndef JOUST_QUALITY_H
#define JOUST_QUALITY_H
#include <stddef.h>
#include <stdint.h>

#include "image.h"
#include "judge.h"

typedef struct {
    double sharpness;     /* edge energy of the denoised luma, noise removed (>= 0) */
    double noise;         /* estimated noise sigma in flat regions, 0..255 luma units */
    double exposure;      /* 1 = well exposed; lower for dark/bright means and clipping */
    double contrast;      /* luma standard deviation / 255 */
    double colourfulness; /* Hasler-Suesstrunk M on a small thumbnail, 0..~150 */
    double blockiness;    /* excess luma step across 8x8 block edges (0 = none) */
    double score;         /* higher = better; combines the above */
} joust_quality_stats;

/* The long side is reduced to this (area averaging) before measuring, so
 * the cost is bounded whatever the input size. Blockiness alone is measured
 * on a crop of the original pixels, where the JPEG grid still is. */
#define JOUST_QUALITY_SIDE 512

/* Temperature T of joust_quality_prob, in score units. */
#define JOUST_QUALITY_TEMPERATURE 0.25

/* @return 0, or JOUST_EINVAL for an empty image (under 8x8 pixels). */
int joust_quality_measure(const joust_image *img, joust_quality_stats *out);

/* Soft P(a preferred over b) = sigmoid((a.score - b.score) / T). */
double joust_quality_prob(const joust_quality_stats *a, const joust_quality_stats *b);

/* A short reason naming the largest differences, e.g. "image 1 is sharper
 * (sharpness 21.3 vs 6.2), image 2 is noisier (noise 9.1 vs 1.4)". Always
 * NUL-terminated (truncated to outlen). */
void joust_quality_reason(const joust_quality_stats *a, const joust_quality_stats *b, char *out,
                          size_t outlen);

/* Image cache counters of a judge made by joust_judge_quality_new (one
 * lookup per image per match; a miss decodes the file). Zeros for another
 * kind of judge. */
void joust_judge_quality_cache_stats(joust_judge_t *j, uint64_t *hits, uint64_t *misses);

#endif
