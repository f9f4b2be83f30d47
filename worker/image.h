/* Image I/O for the worker: decoding untrusted JPEG/PNG/WebP into RGB8,
 * resizing, the Qwen2.5-VL pixel budget, and JPEG/PNG encoding.
 *
 * Ownership: a joust_image owns its pixel buffer (malloc'd); release it with
 * joust_image_free. Output images are written only on success; on failure
 * *out is left zeroed, so joust_image_free is always safe on it.
 * Threads: every function is reentrant (codec handles are per call; the
 * luma decoder below keeps its own and is one per thread); an image may be
 * read from several threads but written from one.
 * Errors: functions return 0 or a negative JOUST_E* code (common/err.h) and,
 * where an err buffer is given, put a human-readable reason into it. Input
 * bytes are never trusted: header dimensions are checked against the limits
 * before any pixel buffer is allocated (decompression bombs), and every codec
 * warning is treated as corruption. */
#ifndef JOUST_IMAGE_H
#define JOUST_IMAGE_H
#include <stddef.h>

/* Packed RGB8, stride 3*w, no padding. */
typedef struct {
    int w, h;
    unsigned char *rgb;
} joust_image;

typedef struct {
    int max_side;          /* longest accepted width or height */
    long long max_pixels;  /* largest accepted w*h */
    size_t max_bytes;      /* largest accepted encoded file (joust_image_load) */
} joust_image_limits;

/* Transparent pixels are composited onto this grey level (white), the same for
 * PNG and WebP, so that both images of a pair get the same treatment. */
#define JOUST_IMAGE_BACKGROUND 255

/* 16384 per side, 64 Mpix, 256 MiB. */
void joust_image_limits_defaults(joust_image_limits *lim);

/* Decodes a JPEG, PNG or WebP held in memory (format from the magic bytes).
 * lim may be NULL for the defaults; err may be NULL.
 * @return 0; JOUST_ECORRUPT (empty, truncated or corrupt data, or any codec
 *         warning); JOUST_EFORMAT (unknown format, animated WebP);
 *         JOUST_ETOOBIG (dimensions over lim); JOUST_EINVAL (NULL data/out). */
int joust_image_decode(const void *data, size_t len, const joust_image_limits *lim,
                       joust_image *out, char *err, size_t errlen);

/* What a caller will use of an image whose full size is w x h: at least
 * *min_w x *min_h pixels (e.g. its pixel budget). */
typedef struct {
    void (*fn)(void *ctx, int w, int h, int *min_w, int *min_h);
    void *ctx;
} joust_image_want;

/* As joust_image_decode, but a JPEG far above what want asks for is decoded
 * at a reduced scale with TurboJPEG's DCT scaling: the smallest of its
 * n/8 scales (1/8 .. 7/8) whose result is still at least want's size in
 * both sides (a 4000x3000 photo for a 512-token budget: 1/4, 1000x750).
 * out->w and out->h are the decoded size; the limits still apply to the
 * full size in the header. PNG and WebP are decoded at full size. want NULL
 * (or want->fn NULL): full size. */
int joust_image_decode_for(const void *data, size_t len, const joust_image_limits *lim,
                           const joust_image_want *want, joust_image *out, char *err,
                           size_t errlen);

/* A JPEG decoder that decodes straight to 8-bit luma and keeps its
 * TurboJPEG handle and output buffer between calls (what signatures need:
 * no colour conversion, no chroma upsampling, no handle set-up per image).
 * Threads: not thread-safe; one per thread. Ownership: the decoder holds
 * the largest luma plane it has produced until it is destroyed. */
typedef struct joust_jpeg_luma joust_jpeg_luma_t;

/* A decoded luma plane: w x h bytes, stride w, borrowed from the decoder
 * (valid until its next decode or destroy); src_w x src_h is the size in
 * the header, which w x h is smaller than when decoded at a reduced
 * scale. */
typedef struct {
    const unsigned char *y;
    int w, h;
    int src_w, src_h;
} joust_luma;

/* Never NULL (aborts on out-of-memory). */
joust_jpeg_luma_t *joust_jpeg_luma_new(void);
/* Frees the decoder and sets *self_p to NULL; accepts NULL. */
void joust_jpeg_luma_destroy(joust_jpeg_luma_t **self_p);

/* Decodes a JPEG held in memory to luma at the scale want asks for (as
 * joust_image_decode_for; want NULL: full size): the Y plane of a YCbCr
 * image as it is stored (JPEG's luma, 0.299 R + 0.587 G + 0.114 B), the
 * plane of a greyscale one, that luma computed from an RGB one. On failure
 * *out is zeroed. lim may be NULL for the defaults; err may be NULL.
 * @return 0; JOUST_ECORRUPT, JOUST_ETOOBIG as joust_image_decode;
 *         JOUST_EFORMAT (not a JPEG); JOUST_EUNSUPPORTED (CMYK or YCCK:
 *         no luma plane; decode it with joust_image_decode_for instead);
 *         JOUST_EINVAL (NULL decoder, data or out). */
int joust_jpeg_luma_decode(joust_jpeg_luma_t *d, const void *data, size_t len,
                           const joust_image_limits *lim, const joust_image_want *want,
                           joust_luma *out, char *err, size_t errlen);

/* Reads (common/safe_open.h: regular files only, never blocks) and decodes
 * a file; the message in err names the path. Judges read images through
 * the image stage (imgsrc.h), which also resolves and confines them.
 * @return as joust_image_decode, plus JOUST_ENOTFOUND (no such file),
 *         JOUST_EDENIED, JOUST_EIO (not a regular file, unreadable) and
 *         JOUST_ETOOBIG (file larger than lim->max_bytes). */
int joust_image_load(const char *path, const joust_image_limits *lim, joust_image *out,
                     char *err, size_t errlen);

/* Frees the pixels and zeroes *img; accepts NULL and zeroed images. */
void joust_image_free(joust_image *img);

/* Resamples src to w x h into a new image: area averaging along an axis that
 * shrinks (no aliasing), bilinear along one that grows. Each axis separately,
 * so a constant image stays exactly constant.
 * @return 0 or JOUST_EINVAL (bad sizes, empty src). */
int joust_image_resize(const joust_image *src, int w, int h, joust_image *out);

/* Qwen2.5-VL smart_resize: each side rounded to a multiple of factor (ties to
 * even, as Python's round), then if the area exceeds max_pixels both sides are
 * scaled down and floored to multiples of factor, or if it is under min_pixels
 * scaled up and ceiled, keeping the aspect ratio. Sides are at least factor.
 * Unlike smart_resize, which raises an error for them, extreme shapes are
 * fitted too:
 * - a long side is capped at max_aspect times the short side (floored to a
 *   multiple of factor), so the result's aspect ratio is at most max_aspect
 *   (Qwen2.5-VL refuses more than 200); such an image is squeezed along its
 *   long side instead of being refused by the server;
 * - when a side is held at factor (16384 x 16), the other is floored so
 *   that the area stays within max_pixels.
 * Guarantees for valid input with max_pixels >= factor^2 (0: no limit):
 * sides are multiples of factor, w*h <= max_pixels, aspect <= max_aspect
 * (max_aspect <= 0: no limit; at least 1). Invalid input (w, h or factor
 * <= 0) gives 0 x 0. */
void joust_image_fit_budget(int w, int h, long long min_pixels, long long max_pixels, int factor,
                            double max_aspect, int *ow, int *oh);

/* Encodes to JPEG (quality 1..100; 4:4:4 when subsamp444, else 4:2:0).
 * *out is malloc'd and owned by the caller.
 * @return 0, JOUST_EINVAL, or JOUST_EFORMAT when the codec fails. */
int joust_image_encode_jpeg(const joust_image *img, int quality, int subsamp444,
                            unsigned char **out, size_t *outlen);
/* Encodes to an 8-bit RGB PNG; *out is malloc'd and owned by the caller.
 * @return 0, JOUST_EINVAL or JOUST_EFORMAT. */
int joust_image_encode_png(const joust_image *img, unsigned char **out, size_t *outlen);

/* Write the encoded image to path (4:4:4 for JPEG). The file is written
 * under a temporary name and renamed, so readers never see half a file.
 * @return 0, JOUST_EINVAL, JOUST_EFORMAT or JOUST_EIO. */
int joust_image_save_jpeg(const char *path, const joust_image *img, int quality);
int joust_image_save_png(const char *path, const joust_image *img);

#endif
