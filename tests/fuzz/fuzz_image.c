/* libFuzzer target: joust_image_decode (worker/image.h) on arbitrary bytes
 * with small limits (1024 per side, 1 Mpix), so a decompression bomb shows
 * up as a limit violation or an out-of-memory finding, not a slow run.
 * Properties checked (abort = finding): success gives an image within the
 * limits whose every pixel can be read and which resizes; failure leaves
 * the output zeroed (the header's promise) with a reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    joust_image_limits lim = {.max_side = 1024, .max_pixels = 1 << 20, .max_bytes = 1 << 20};
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
