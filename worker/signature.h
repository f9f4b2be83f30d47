/* Image signatures for near-duplicate detection (issue 12.1): a 64-bit DCT
 * perceptual hash and the image's size.
 *
 * The hash (pHash as imagededup 0.3's PHash defines it, but for the
 * reduction to 32 x 32, see docs/ranking.md section 8): the luma Y = 0.299 R +
 * 0.587 G + 0.114 B, area-averaged to 32x32 (each output pixel the mean of
 * the source area it covers, so any scale and aspect ratio map to the same
 * grid), the 2-D DCT-II of that grid (unnormalised), its top-left 8x8 block
 * of lowest frequencies, and one bit per coefficient: set when the
 * coefficient is >= the median of the 63 coefficients other than the DC
 * term. Coefficient (u, v) (u vertical frequency) is bit 63 - (8u + v), so
 * the hash printed as 16 hex digits reads like imagededup's phash string.
 * The DC bit is nearly always 1 (the DC term of a non-black image is far
 * above the AC median); it is kept for that compatibility and costs no
 * distance between near-duplicates.
 *
 * Scaled decoding: a JPEG is decoded straight to its luma plane (the Y
 * the encoder stored, no colour conversion or chroma upsampling) at the
 * smallest of TurboJPEG's n/8 scales that keeps both sides >= 32 pixels
 * (1/8 for a 1-Mpix image: the DC term of each 8 x 8 block), with a
 * decoder kept in a joust_signature_ctx_t between images; what remains is
 * the entropy decoding every JPEG decoder must do (docs/benchmarks.md,
 * "Image signatures"). A CMYK/YCCK JPEG is decoded to RGB at that scale
 * (joust_image_decode_for), PNG and WebP at full size (worker/image.h),
 * and their luma is 0.299 R + 0.587 G + 0.114 B, the JPEG weights.
 * The width and height reported are the image's own, from its header.
 * Robustness (measured in tests/worker/test_signature.c, docs/dedup.md):
 * JPEG re-encodes at quality 50-95, resizes by 2 px and 50 %, 2 % crops and
 * brightness shifts of 25 levels stay within Hamming distance 8; a small
 * caption band (0.8 % of the area) within 6, up to 14 on pictures of nearly
 * flat luma; distinct scenes of the demo generator are 18-40 apart (mean
 * 31, as unrelated random hashes).
 *
 * Threads: a joust_signature_ctx_t is not thread-safe: one per thread
 * (each signing thread keeps its own); everything else is reentrant.
 * Errors: 0 or a negative JOUST_E* code with a reason in err (when given):
 * JOUST_EINVAL (NULL arguments, empty pixels), and for encoded input the
 * errors of joust_image_decode: JOUST_ECORRUPT, JOUST_EFORMAT,
 * JOUST_ETOOBIG (header dimensions over lim, checked before decoding).
 * A hostile file is an error, never the end of the process: libjpeg's
 * error exit returns into TurboJPEG (longjmp), and every codec warning
 * (truncated, corrupt data) is an error too. Nothing is retained after a
 * call but the ctx's decoder and buffer. */
#ifndef JOUST_SIGNATURE_H
#define JOUST_SIGNATURE_H
#include <stddef.h>
#include <stdint.h>

#include "image.h"

typedef struct {
    uint64_t phash; /* DCT perceptual hash, bit layout above */
    uint32_t w, h;  /* the image's size in pixels (before any scaled decode) */
} joust_signature;

/* Side of the grid the hash is computed on. */
#define JOUST_SIGNATURE_GRID 32

/* The kept decoding state of joust_signature_of_bytes (a TurboJPEG handle
 * and a luma buffer): one per thread. new never returns NULL (aborts on
 * out-of-memory); destroy frees it, sets *self_p to NULL, accepts NULL. */
typedef struct joust_signature_ctx joust_signature_ctx_t;
joust_signature_ctx_t *joust_signature_ctx_new(void);
void joust_signature_ctx_destroy(joust_signature_ctx_t **self_p);

/* Signature of an encoded JPEG, PNG or WebP (format from the magic bytes).
 * ctx NULL: a decoder made and freed within the call (1-2 % slower on a
 * 1-Mpix JPEG, measured). lim NULL means
 * joust_image_limits_defaults. On failure *out is zeroed. */
int joust_signature_of_bytes(joust_signature_ctx_t *ctx, const void *data, size_t len,
                             const joust_image_limits *lim, joust_signature *out, char *err,
                             size_t errlen);

/* Signature of a decoded RGB image (w, h taken from it). */
int joust_signature_of_image(const joust_image *img, joust_signature *out);

/* The hash of a w x h plane of 8-bit luma with the given row stride
 * (>= w). */
int joust_signature_phash_gray(const unsigned char *y, int w, int h, size_t stride,
                               uint64_t *phash);

/* Number of differing bits. */
static inline int joust_signature_distance(uint64_t a, uint64_t b)
{
    return __builtin_popcountll(a ^ b);
}

#endif
