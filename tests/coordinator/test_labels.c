/* Label readers (coordinator/labels.h) on the hand-made files in
 * tests/fixtures/labels: every format with malformed records (line- or
 * entry-numbered errors, the good records all kept), human ties, a
 * single-image prompt, and each format's protocol accuracy (rank/eval.h)
 * for a hand-made judge, computed by hand below. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "eval.h"
#include "labels.h"

/* The judge: a score per image (by the end of its path); p = 1, 0 or 0.5
 * (a judge tie) in both orders. */
static const struct {
    const char *name;
    double score;
} judge_scores[] = {
    {"ir/a.webp", 3}, {"ir/b.webp", 1}, {"ir/c.webp", 1}, {"ir/d.webp", 2}, {"ir/e.webp", 2},
    {"ir/f.webp", 5}, {"ir/g.webp", 0}, {"h/1.jpg", 3},   {"h/2.jpg", 1},   {"h/3.jpg", 2},
    {"h/4.jpg", 1},   {"h/5.jpg", 1},   {"h/6.jpg", 0},   {"h/7.jpg", 2},   {"pp/1.jpg", 2},
    {"pp/2.jpg", 1},  {"pp/3.jpg", 1},  {"pp/4.jpg", 1},  {"pp/5.jpg", 1},  {"pp/6.jpg", 2},
    {"pp/7.jpg", 0},  {"pp/8.jpg", 1},  {"g/1.png", 2},   {"g/2.png", 1},   {"g/3.png", 3},
    {"g/4.png", 1},   {"g/5.png", 1},
};

static double score_of(const char *path)
{
    size_t pl = strlen(path);
    for (size_t i = 0; i < sizeof judge_scores / sizeof *judge_scores; i++) {
        size_t nl = strlen(judge_scores[i].name);
        if (pl >= nl && !strcmp(path + pl - nl, judge_scores[i].name))
            return judge_scores[i].score;
    }
    fprintf(stderr, "no judge score for %s\n", path);
    return NAN;
}

/* The protocol accuracy of the hand-made judge on l. */
static double accuracy(const joust_labels *l, joust_protocol proto, uint32_t category)
{
    joust_eval_pair *x = calloc(l->n_pairs + 1, sizeof *x);
    for (size_t i = 0; i < l->n_pairs; i++) {
        const joust_label_pair *lp = &l->pairs[i];
        double sa = score_of(l->images[lp->a]), sb = score_of(l->images[lp->b]);
        double p = sa > sb ? 1 : sa < sb ? 0 : 0.5;
        x[i] = (joust_eval_pair){lp->prompt, lp->category, lp->human, p, 1 - p};
    }
    joust_eval_sums *s = calloc(l->n_prompts + 1, sizeof *s);
    joust_eval_sums_compute(proto, x, l->n_pairs, category, s, l->n_prompts);
    double acc = joust_eval_combine(s, NULL, l->n_prompts);
    free(x);
    free(s);
    return acc;
}

static joust_labels *read_fixture(const char *name, joust_labels_format f)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s", LABELS_DIR, name);
    joust_labels *l = NULL;
    int rc = joust_labels_read(path, f, NULL, &l, err, sizeof err);
    if (rc < 0)
        fprintf(stderr, "%s: %s\n", name, err);
    CHECK(rc == 0 && l);
    return l;
}

static int has_error(const joust_labels *l, const char *prefix, const char *part)
{
    for (size_t i = 0; i < l->n_errors; i++)
        if (!strncmp(l->errors[i], prefix, strlen(prefix)) && strstr(l->errors[i], part))
            return 1;
    return 0;
}

static void test_imagereward(void)
{
    joust_labels *l = read_fixture("imagereward.json", JOUST_LABELS_AUTO);
    if (!l)
        return;
    CHECK(l->format == JOUST_LABELS_IMAGEREWARD);
    CHECK(l->records == 7 && l->n_errors == 4);
    CHECK(has_error(l, "entry 4:", "\"generations\" has 1 items and \"ranking\" 2"));
    CHECK(has_error(l, "entry 5:", "not a JSON object"));
    CHECK(has_error(l, "entry 6:", "\"prompt\" is missing"));
    CHECK(has_error(l, "entry 7:", "\"ranking\"[1] is not a number"));
    CHECK(l->n_prompts == 3 && l->n_images == 8);
    CHECK(!strcmp(l->prompts[0].key, "p1") && !strcmp(l->prompts[1].key, "2"));
    CHECK(!strcmp(l->prompts[2].text, "a single image"));
    CHECK(l->n_pairs == 3 + 6); /* the single image gives none */
    CHECK(l->pairs[2].human == 0.5); /* b, c tied by the humans */
    CHECK(l->pairs[3].human == 0.0 && l->pairs[3].where == 2); /* d ranked 2, e 1 */
    CHECK(l->images[0][0] == '/' && strstr(l->images[0], "/fixtures/labels/ir/a.webp"));
    /* Prompt 1: (a,b) and (a,c) right, (b,c) a human tie. Prompt 2:
     * (d,e) a judge tie 0.5, (d,f) 0, (d,g) 1, (e,f) 0, (e,g) 1, (f,g) 1.
     * Pooled: (2 + 3.5) / 8. */
    CHECK_NEAR(accuracy(l, JOUST_PROTOCOL_POOLED, JOUST_EVAL_NO_CATEGORY), 5.5 / 8, 1e-12);
    joust_labels_destroy(&l);
    CHECK(l == NULL);
}

static void test_hpdv2(void)
{
    joust_labels *l = read_fixture("hpdv2.json", JOUST_LABELS_AUTO);
    if (!l)
        return;
    CHECK(l->format == JOUST_LABELS_HPDV2);
    CHECK(l->records == 4 && l->n_errors == 1);
    CHECK(has_error(l, "entry 4:", "must be lists"));
    CHECK(l->n_prompts == 3 && l->n_pairs == 3 + 6);
    /* Prompt "a cat": (1,2), (1,3) right, (2,3) wrong: 1 - 1/3. "a dog":
     * (4,5) a judge tie (0.5 discordant), (4,6) a human tie (agrees),
     * (4,7), (5,7), (6,7) wrong, (5,6) right: 1 - 3.5/6. The single-image
     * prompt has no pair and is left out of the mean. */
    CHECK_NEAR(accuracy(l, JOUST_PROTOCOL_PER_PROMPT, JOUST_EVAL_NO_CATEGORY),
               ((1 - 1.0 / 3) + (1 - 3.5 / 6)) / 2, 1e-12);
    joust_labels_destroy(&l);
}

static void test_pickapic(void)
{
    joust_labels *l = read_fixture("pickapic.jsonl", JOUST_LABELS_AUTO);
    if (!l)
        return;
    CHECK(l->format == JOUST_LABELS_PICKAPIC);
    CHECK(l->records == 8 && l->n_errors == 4); /* the blank line 4 is no record */
    CHECK(has_error(l, "line 6:", "\"label_0\", \"label_1\""));
    CHECK(has_error(l, "line 7:", "not valid JSON"));
    CHECK(has_error(l, "line 8:", "\"jpg_0\" is empty"));
    CHECK(has_error(l, "line 9:", "ftp://host/y.jpg"));
    CHECK(l->n_pairs == 4 && l->n_prompts == 2);
    CHECK(l->pairs[1].prompt == 0 && l->pairs[2].prompt == 1 && l->pairs[2].human == 0.5);
    CHECK(l->pairs[3].where == 5);
    /* (1,2) right, (3,4) a judge tie, (5,6) a human tie left out, (7,8)
     * wrong: (1 + 0.5 + 0) / 3. */
    CHECK_NEAR(accuracy(l, JOUST_PROTOCOL_POOLED, JOUST_EVAL_NO_CATEGORY), 0.5, 1e-12);
    joust_labels_destroy(&l);
}

static void test_pairs(void)
{
    joust_labels *l = read_fixture("pairs.jsonl", JOUST_LABELS_PAIRS);
    if (!l)
        return;
    CHECK(l->records == 7 && l->n_errors == 3);
    CHECK(has_error(l, "line 5:", "\"preferred\" must be"));
    CHECK(has_error(l, "line 6:", "not a JSON object"));
    CHECK(has_error(l, "line 7:", "\"category\""));
    CHECK(l->n_pairs == 4 && l->n_prompts == 2);
    CHECK(!strcmp(l->prompts[0].key, "7") && !strcmp(l->prompts[1].key, "a car"));
    CHECK(l->n_categories == 2 && !strcmp(l->categories[1], "vehicles"));
    CHECK(!strcmp(l->images[4], "/data/g/4.png") && !strcmp(l->images[5], "/data/g/5.png"));
    /* (1,2) right, (2,3) right, the tie left out, (4,5) a judge tie. */
    CHECK_NEAR(accuracy(l, JOUST_PROTOCOL_POOLED, JOUST_EVAL_NO_CATEGORY), 2.5 / 3, 1e-12);
    CHECK_NEAR(accuracy(l, JOUST_PROTOCOL_POOLED, 0), 1.0, 1e-12);
    CHECK_NEAR(accuracy(l, JOUST_PROTOCOL_POOLED, 1), 0.5, 1e-12);
    joust_labels_destroy(&l);
}

static void test_bad_files(void)
{
    char path[1024], err[512];
    joust_labels *l = NULL;
    CHECK(joust_labels_read("/nonexistent/labels.json", JOUST_LABELS_AUTO, NULL, &l, err,
                            sizeof err) == JOUST_ENOTFOUND && !l && strstr(err, "/nonexistent"));
    /* An array that does not parse fails as a whole. */
    snprintf(path, sizeof path, "%s/broken.json", BUILD_DIR);
    FILE *f = fopen(path, "w");
    fputs("[{\"prompt\": \"x\", ", f);
    fclose(f);
    CHECK(joust_labels_read(path, JOUST_LABELS_AUTO, NULL, &l, err, sizeof err) == JOUST_EINVAL &&
          strstr(err, "not a valid JSON array"));
    /* AUTO cannot tell: says to give --format. */
    f = fopen(path, "w");
    fputs("{\"prompt\": \"x\"}\n", f);
    fclose(f);
    CHECK(joust_labels_read(path, JOUST_LABELS_AUTO, NULL, &l, err, sizeof err) == JOUST_EINVAL &&
          strstr(err, "--format"));
    remove(path);
    joust_labels_format fm;
    CHECK(joust_labels_format_parse("hpdv2", &fm) == 0 && fm == JOUST_LABELS_HPDV2);
    CHECK(joust_labels_format_parse("csv", &fm) == JOUST_EINVAL);
}

int main(void)
{
    test_imagereward();
    test_hpdv2();
    test_pickapic();
    test_pairs();
    test_bad_files();
    return test_report();
}
