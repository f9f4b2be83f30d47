/* libFuzzer target: joust_image_decode (worker/image.h) on arbitrary bytes
 * with small limits (1024 per side, 1 Mpix), so a decompression bomb shows
 * up as a limit violation or an out-of-memory finding, not a slow run.
 * Properties checked (abort = finding): success gives an image within the
 * limits whose every pixel can be read and which resizes; failure leaves
 * the output zeroed (the header's promise) with a reason. The same bytes go
 * through the kept luma decoder (joust_jpeg_luma_t, one for the whole run
 * as a signing thread keeps it): the same properties, and after each
 * failure it must still decode a known JPEG to the same plane. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The luma decoder kept across inputs and a 16 x 16 JPEG it must keep
 * decoding identically. */
static joust_jpeg_luma_t *luma_dec;
static unsigned char *known;
static size_t known_len;
static unsigned known_sum;

static unsigned luma_sum(const joust_luma *l)
{
    unsigned sum = 0;
    for (size_t i = 0; i < (size_t)l->w * (size_t)l->h; i++)
        sum += l->y[i];
    return sum;
}

static void check_luma(const uint8_t *data, size_t size, const joust_image_limits *lim)
{
    if (!luma_dec) {
        luma_dec = joust_jpeg_luma_new();
        unsigned char px[16 * 16 * 3];
        for (size_t i = 0; i < sizeof px; i++)
            px[i] = (unsigned char)(i * 29);
        joust_image card = {16, 16, px};
        joust_luma l;
        if (joust_image_encode_jpeg(&card, 90, 0, &known, &known_len) != 0 ||
            joust_jpeg_luma_decode(luma_dec, known, known_len, NULL, NULL, &l, NULL, 0) != 0)
            abort();
        known_sum = luma_sum(&l);
    }
    joust_luma l;
    memset(&l, 0x5a, sizeof l);
    char err[256] = "";
    int rc = joust_jpeg_luma_decode(luma_dec, data, size, lim, NULL, &l, err, sizeof err);
    if (rc == 0) {
        if (!l.y || l.w <= 0 || l.h <= 0 || l.w != l.src_w || l.h != l.src_h ||
            l.w > lim->max_side || l.h > lim->max_side ||
            (long long)l.w * l.h > lim->max_pixels)
            abort();
        if (luma_sum(&l) == 0xFFFFFFFFu) /* keep the reads */
            abort();
        return;
    }
    if (l.y || l.w || l.h || l.src_w || l.src_h || !err[0])
        abort();
    if (joust_jpeg_luma_decode(luma_dec, known, known_len, NULL, NULL, &l, NULL, 0) != 0 ||
        luma_sum(&l) != known_sum)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    joust_image_limits lim = {.max_side = 1024, .max_pixels = 1 << 20, .max_bytes = 1 << 20};
    check_luma(data, size, &lim);
    joust_image img;
    memset(&img, 0x5a, sizeof img); /* decode must overwrite it either way */
    char err[256] = "";
    int rc = joust_image_decode(data, size, &lim, &img, err, sizeof err);
    if (rc == 0) {
        if (!img.rgb || img.w <= 0 || img.h <= 0 || img.w > lim.max_side || img.h > lim.max_side ||
            (long long)img.w * img.h > lim.max_pixels)
            abort();
        unsigned sum = 0;
        for (size_t i = 0; i < (size_t)img.w * (size_t)img.h * 3; i++)
            sum += img.rgb[i];
        joust_image small = {0};
        int w = img.w > 16 ? 16 : img.w, h = img.h > 16 ? 16 : img.h;
        if (joust_image_resize(&img, w, h, &small) != 0 || small.w != w || small.h != h)
            abort();
        joust_image_free(&small);
        joust_image_free(&img);
        if (sum == 0xFFFFFFFFu) /* keep the reads */
            abort();
    } else if (img.rgb || img.w || img.h || !err[0]) {
        abort();
    }
    return 0;
}
