/* Writes the near-duplicate fixture of test_dedup.sh into DIR: per prompt
 * a base scene (512 x 384 JPEG q92, the demo generator's) and its
 * near-duplicates of every kind, plus look-alike distinct scenes of the
 * same prompt (the generator's scene for that prompt under other seeds:
 * same palette family and layout rules, different content), and
 * DIR/manifest.jsonl with the expected cluster of each image ("truth": the
 * base's id for a near-duplicate, the image's own id otherwise) and its
 * "kind".
 *
 *   make_dedup_set DIR PROMPTS
 *
 * Kinds: orig; exact (the same bytes); q85, q70, q50 (JPEG re-encodes of
 * the q92 file's pixels); resize (2 px smaller on each side); crop (2 % off
 * every edge); colour (red +12, blue -12); overlay (an opaque 6 % x 4 %
 * badge in the corner); distinct1..3 (other scenes). Exit 0, or 1 with
 * the reason on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo_data.h"
#include "err.h"
#include "image.h"
#include "xalloc.h"

static FILE *manifest;
static const char *dir;

static void emit(const char *id, const char *truth, const char *kind, int prompt)
{
    fprintf(manifest, "{\"image\":\"%s/%s.jpg\",\"id\":\"%s\",\"prompt\":\"scene %d\","
                      "\"truth\":\"%s\",\"kind\":\"%s\"}\n",
            dir, id, id, prompt, truth, kind);
}

static int save(const joust_image *img, const char *id, int quality)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.jpg", dir, id);
    int rc = joust_image_save_jpeg(path, img, quality);
    if (rc < 0)
        fprintf(stderr, "cannot write %s: %s\n", path, joust_strerror(rc));
    return rc;
}

/* The pixels of a JPEG file as decoded, for re-encoding. */
static int reload(const char *id, joust_image *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.jpg", dir, id);
    return joust_image_load(path, NULL, out, NULL, 0);
}

/* The rectangle (x0, y0, w, h) of src as a new image. */
static void cut(const joust_image *src, int x0, int y0, int w, int h, joust_image *out)
{
    out->w = w;
    out->h = h;
    out->rgb = xmalloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w * 3; x++)
            out->rgb[((size_t)y * w) * 3 + x] = src->rgb[((size_t)(y + y0) * src->w + x0) * 3 + x];
}

static unsigned char clamp(int v)
{
    return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static int one_prompt(int p)
{
    char id[64], base_id[64], tmp[64];
    joust_image scene, base, img;
    joust_demo_base(31, p, &scene, NULL, 0);
    int rc = joust_image_resize(&scene, 512, 384, &base);
    joust_image_free(&scene);
    if (rc < 0)
        return rc;
    snprintf(base_id, sizeof base_id, "p%d_orig", p);
    rc = save(&base, base_id, 92);
    emit(base_id, base_id, "orig", p);
    /* exact: the same bytes under another name */
    snprintf(id, sizeof id, "p%d_exact", p);
    if (rc == 0 && (rc = save(&base, id, 92)) == 0)
        emit(id, base_id, "exact", p);
    joust_image px;
    if (rc == 0 && (rc = reload(base_id, &px)) == 0) {
        static const int qualities[] = {85, 70, 50};
        for (int i = 0; i < 3 && rc == 0; i++) {
            snprintf(id, sizeof id, "p%d_q%d", p, qualities[i]);
            snprintf(tmp, sizeof tmp, "q%d", qualities[i]);
            if ((rc = save(&px, id, qualities[i])) == 0)
                emit(id, base_id, tmp, p);
        }
        joust_image_free(&px);
    }
    if (rc == 0 && (rc = joust_image_resize(&base, base.w - 2, base.h - 2, &img)) == 0) {
        snprintf(id, sizeof id, "p%d_resize", p);
        if ((rc = save(&img, id, 92)) == 0)
            emit(id, base_id, "resize", p);
        joust_image_free(&img);
    }
    if (rc == 0) {
        int dx = base.w / 50, dy = base.h / 50;
        cut(&base, dx, dy, base.w - 2 * dx, base.h - 2 * dy, &img);
        snprintf(id, sizeof id, "p%d_crop", p);
        if ((rc = save(&img, id, 92)) == 0)
            emit(id, base_id, "crop", p);
        joust_image_free(&img);
    }
    if (rc == 0) {
        cut(&base, 0, 0, base.w, base.h, &img);
        for (size_t i = 0; i < (size_t)img.w * img.h; i++) {
            img.rgb[3 * i] = clamp(img.rgb[3 * i] + 12);
            img.rgb[3 * i + 2] = clamp(img.rgb[3 * i + 2] - 12);
        }
        snprintf(id, sizeof id, "p%d_colour", p);
        if ((rc = save(&img, id, 92)) == 0)
            emit(id, base_id, "colour", p);
        joust_image_free(&img);
    }
    if (rc == 0) {
        cut(&base, 0, 0, base.w, base.h, &img);
        int bw = img.w * 6 / 100, bh = img.h * 4 / 100, x0 = img.w - bw - 8, y0 = 8;
        for (int y = y0; y < y0 + bh; y++)
            for (int x = x0; x < x0 + bw; x++) {
                unsigned char *q = img.rgb + ((size_t)y * img.w + x) * 3;
                q[0] = 250, q[1] = (unsigned char)(x * 5), q[2] = 30; /* a bright badge */
            }
        snprintf(id, sizeof id, "p%d_overlay", p);
        if ((rc = save(&img, id, 92)) == 0)
            emit(id, base_id, "overlay", p);
        joust_image_free(&img);
    }
    for (int k = 1; k <= 3 && rc == 0; k++) { /* look-alike, distinct */
        joust_demo_base(31 + (uint64_t)k * 7, p, &scene, NULL, 0);
        if ((rc = joust_image_resize(&scene, 512, 384, &img)) == 0) {
            snprintf(id, sizeof id, "p%d_distinct%d", p, k);
            if ((rc = save(&img, id, 92)) == 0)
                emit(id, id, "distinct", p);
            joust_image_free(&img);
        }
        joust_image_free(&scene);
    }
    joust_image_free(&base);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: make_dedup_set DIR PROMPTS\n");
        return 2;
    }
    dir = argv[1];
    int prompts = atoi(argv[2]);
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.jsonl", dir);
    if (!(manifest = fopen(path, "w"))) {
        perror(path);
        return 1;
    }
    int rc = 0;
    for (int p = 0; p < prompts && rc == 0; p++)
        rc = one_prompt(p);
    if (fclose(manifest) != 0)
        rc = JOUST_EIO;
    return rc == 0 ? 0 : 1;
}
