/* Benchmark (not a test): the openai judge's image preparation (decode, fit
 * the pixel budget, resize, JPEG, base64) of one large JPEG, with TurboJPEG's
 * scaled decoding (the image stage's default) and at full size, side by
 * side in one run: --repeat rounds alternate the two, and the median of each
 * is printed.
 *
 * usage: bench_prep [--width W] [--height H] [--repeat N] [--max-pixels P]
 * defaults 4000 x 3000, 9 rounds, 401408 (Qwen2.5-VL, 512 tokens). The
 * image is a smooth gradient with detail (not a flat colour, which JPEG
 * would make unrealistically cheap), encoded at quality 90, 4:2:0. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "image.h"
#include "openai_prep.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int w = 4000, h = 3000, repeat = 9;
    long long max_pixels = 401408;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--width"))
            w = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--height"))
            h = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--repeat"))
            repeat = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-pixels"))
            max_pixels = atoll(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_prep [--width W] [--height H] [--repeat N] "
                            "[--max-pixels P]\n");
            return 2;
        }
    }
    if (w < 1 || h < 1 || repeat < 1 || repeat > 1000)
        return 2;
    char dir[] = "/tmp/joust-bench-prep.XXXXXX", path[64];
    if (!mkdtemp(dir))
        return 1;
    snprintf(path, sizeof path, "%s/big.jpg", dir);
    joust_image img = {w, h, malloc((size_t)w * h * 3)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char *p = img.rgb + 3 * ((size_t)y * w + x);
            p[0] = (unsigned char)(x * 255 / w);
            p[1] = (unsigned char)(y * 255 / h);
            p[2] = (unsigned char)((x ^ y) & 0xff);
        }
    unsigned char *jpg;
    size_t jlen;
    FILE *f = NULL;
    if (joust_image_encode_jpeg(&img, 90, 0, &jpg, &jlen) != 0 || !(f = fopen(path, "wb")) ||
        fwrite(jpg, 1, jlen, f) != jlen) {
        fprintf(stderr, "bench_prep: cannot write %s\n", path);
        return 1;
    }
    fclose(f);
    free(jpg);
    joust_image_free(&img);
    double *t[2] = {calloc((size_t)repeat, sizeof(double)), calloc((size_t)repeat, sizeof(double))};
    joust_oa_image out[2] = {{0}};
    for (int r = 0; r < repeat; r++)
        for (int full = 0; full < 2; full++) {
            joust_oa_prep_config pc = {.min_pixels = 3136, .max_pixels = max_pixels, .factor = 28,
                                       .jpeg_quality = 90, .max_entries = 4, .full_decode = full};
            joust_oa_prep_t *p = joust_oa_prep_new(&pc);
            char err[512];
            int64_t t0 = joust_now_us();
            if (joust_oa_prep_get(p, 1, path, &out[full], err, sizeof err) != 0) {
                fprintf(stderr, "bench_prep: %s\n", err);
                return 1;
            }
            t[full][r] = (double)(joust_now_us() - t0) / 1000.0;
            if (joust_oa_prep_scaled_decodes(p) != (full ? 0u : 1u)) {
                fprintf(stderr, "bench_prep: the %s decode did not %s\n", full ? "full" : "scaled",
                        full ? "stay at full size" : "scale");
                return 1;
            }
            joust_oa_prep_destroy(&p);
        }
    qsort(t[0], (size_t)repeat, sizeof(double), cmp);
    qsort(t[1], (size_t)repeat, sizeof(double), cmp);
    printf("prepare %dx%d JPEG (%zu bytes) -> %dx%d, median of %d:\n", w, h, jlen, out[0].w,
           out[0].h, repeat);
    printf("  full-size decode:   %7.1f ms\n", t[1][repeat / 2]);
    printf("  scaled decode:      %7.1f ms\n", t[0][repeat / 2]);
    remove(path);
    remove(dir);
    free(t[0]);
    free(t[1]);
    return 0;
}
