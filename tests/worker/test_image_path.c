/* Tests of common/confine.h (image path confinement) and of its use by
 * the quality judge:
 * - inside a root: plain, through "..", through a symlink that stays
 *   inside, the root given through a symlink; the canonical path comes back;
 * - outside: "..", a symlink that leaves the root (file and directory
 *   links), an absolute path elsewhere, a sibling that shares the root's
 *   name as a prefix -> JOUST_EDENIED "outside the allowed roots";
 * - missing files -> JOUST_ENOTFOUND inside a root, JOUST_EDENIED outside
 *   (placed by their nearest existing folder; ".." under a missing folder
 *   is refused); no roots -> every path accepted as is;
 *   a missing or non-directory root is an error at init;
 * - the quality judge with allow_roots fails an outside image with
 *   IMAGE_ERROR naming the reason, and judges inside images. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "err.h"
#include "image.h"
#include "confine.h"
#include "judge.h"

static char dir[] = "/tmp/joust-paths-XXXXXX";

static void touch(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs("x", f);
        fclose(f);
    }
}

static void sub(char *out, size_t n, const char *rel)
{
    snprintf(out, n, "%s/%s", dir, rel);
}

static void link_to(const char *target, const char *rel)
{
    char p[512];
    sub(p, sizeof p, rel);
    if (symlink(target, p) != 0)
        perror("symlink");
}

/* Expects rc for rel (relative to dir, or absolute when it starts with '/'). */
static void expect(const joust_path_roots *r, const char *rel, int want, const char *want_real, int line)
{
    char p[512], err[600] = "", *real = NULL;
    if (rel[0] == '/')
        snprintf(p, sizeof p, "%s", rel);
    else
        sub(p, sizeof p, rel);
    int rc = joust_path_confine(r, p, &real, err, sizeof err);
    char want_path[512] = "";
    if (want_real)
        sub(want_path, sizeof want_path, want_real);
    int ok = rc == want && (rc != 0 || !want_real || (real && !strcmp(real, want_path))) &&
             (rc == 0 || (!real && strstr(err, p))) &&
             (rc != JOUST_EDENIED || strstr(err, "outside the allowed roots"));
    if (ok) {
        test_passed++;
    } else {
        test_failed++;
        fprintf(stderr, "%s:%d: %s: rc %d (want %d), real %s, err '%s'\n", __FILE__, line, p, rc,
                want, real ? real : "-", err);
    }
    free(real);
}

static void test_confine(void)
{
    char root[512], err[512];
    mkdir(strcat(strcpy(root, dir), "/root"), 0755);
    sub(root, sizeof root, "root/sub");
    mkdir(root, 0755);
    sub(root, sizeof root, "rootx");
    mkdir(root, 0755);
    sub(root, sizeof root, "outside");
    mkdir(root, 0755);
    touch("root/a.png");
    touch("root/sub/b.png");
    touch("rootx/c.png");
    touch("outside/secret.png");
    link_to("../outside/secret.png", "root/escape.png");    /* file link leaving the root */
    link_to("../outside", "root/outdir");                   /* directory link leaving it */
    link_to("sub/b.png", "root/inside_link.png");           /* stays inside */
    link_to("root", "root_alias");                          /* the root through a link */

    sub(root, sizeof root, "root_alias"); /* given through a symlink: canonicalised */
    const char *dirs[] = {root};
    joust_path_roots r;
    CHECK_RC(joust_path_roots_init(&r, dirs, 1, err, sizeof err));

    expect(&r, "root/a.png", 0, "root/a.png", __LINE__);
    expect(&r, "root/sub/../a.png", 0, "root/a.png", __LINE__);
    expect(&r, "root/inside_link.png", 0, "root/sub/b.png", __LINE__);
    expect(&r, "root_alias/sub/b.png", 0, "root/sub/b.png", __LINE__);
    expect(&r, "root/../outside/secret.png", JOUST_EDENIED, NULL, __LINE__);
    expect(&r, "root/sub/../../outside/secret.png", JOUST_EDENIED, NULL, __LINE__);
    expect(&r, "root/escape.png", JOUST_EDENIED, NULL, __LINE__);
    expect(&r, "root/outdir/secret.png", JOUST_EDENIED, NULL, __LINE__);
    expect(&r, "outside/secret.png", JOUST_EDENIED, NULL, __LINE__);
    expect(&r, "rootx/c.png", JOUST_EDENIED, NULL, __LINE__); /* shares the prefix "root" */
    expect(&r, "/etc/hostname", access("/etc/hostname", F_OK) == 0 ? JOUST_EDENIED : JOUST_ENOTFOUND,
           NULL, __LINE__);
    expect(&r, "root/missing.png", JOUST_ENOTFOUND, NULL, __LINE__);
    expect(&r, "root/a.png/x", JOUST_ENOTFOUND, NULL, __LINE__);
    /* a missing file is placed by its nearest existing folder */
    expect(&r, "root/nodir/deeper/x.png", JOUST_ENOTFOUND, NULL, __LINE__);
    expect(&r, "outside/missing.png", JOUST_EDENIED, NULL, __LINE__);
    expect(&r, "root/outdir/missing.png", JOUST_EDENIED, NULL, __LINE__);
    expect(&r, "root/nodir/../../outside/secret.png", JOUST_EDENIED, NULL, __LINE__);
    expect(&r, "root/nodir/..", JOUST_EDENIED, NULL, __LINE__);
    joust_path_roots_free(&r);

    /* two roots: either will do */
    char r2[512];
    sub(root, sizeof root, "root/sub");
    sub(r2, sizeof r2, "outside");
    const char *two[] = {root, r2};
    CHECK_RC(joust_path_roots_init(&r, two, 2, err, sizeof err));
    expect(&r, "root/escape.png", 0, "outside/secret.png", __LINE__);
    expect(&r, "root/a.png", JOUST_EDENIED, NULL, __LINE__);
    joust_path_roots_free(&r);

    /* "/" contains everything */
    const char *slash[] = {"/"};
    CHECK_RC(joust_path_roots_init(&r, slash, 1, err, sizeof err));
    expect(&r, "root/escape.png", 0, "outside/secret.png", __LINE__);
    joust_path_roots_free(&r);

    /* no roots: no confinement, the path comes back unchanged */
    CHECK_RC(joust_path_roots_init(&r, NULL, 0, err, sizeof err));
    char *real = NULL;
    CHECK_RC(joust_path_confine(&r, "../anything/at/all", &real, err, sizeof err));
    CHECK(real && !strcmp(real, "../anything/at/all"));
    free(real);

    /* bad roots */
    sub(root, sizeof root, "no-such-dir");
    const char *missing[] = {root};
    CHECK(joust_path_roots_init(&r, missing, 1, err, sizeof err) == JOUST_ENOTFOUND && strstr(err, root));
    sub(root, sizeof root, "root/a.png");
    const char *file[] = {root};
    CHECK(joust_path_roots_init(&r, file, 1, err, sizeof err) == JOUST_EINVAL && strstr(err, "not a directory"));
    CHECK(r.n == 0 && r.dirs == NULL);
}

/* The quality judge reads inside images and refuses the others. */
static void test_judge(void)
{
    char good1[512], good2[512], bad[512], root[512];
    joust_image img = {64, 64, malloc(64 * 64 * 3)};
    for (int i = 0; i < 64 * 64 * 3; i++)
        img.rgb[i] = (unsigned char)(i * 7 + (i / 192) * 13);
    sub(good1, sizeof good1, "root/g1.png");
    sub(good2, sizeof good2, "root/sub/g2.png");
    sub(bad, sizeof bad, "root/../outside/g3.png");
    CHECK_RC(joust_image_save_png(good1, &img));
    CHECK_RC(joust_image_save_png(good2, &img));
    sub(root, sizeof root, "outside/g3.png");
    CHECK_RC(joust_image_save_png(root, &img));
    joust_image_free(&img);

    sub(root, sizeof root, "root");
    const char *dirs[] = {root};
    joust_judge_config cfg;
    joust_judge_config_defaults(&cfg);
    cfg.allow_roots = dirs;
    cfg.n_allow_roots = 1;
    joust_judge_t *j = NULL;
    CHECK_RC(joust_judge_new("quality", &cfg, &j));
    if (!j)
        return;
    joust_judge_req ok = {.match_id = 1, .attempt = 1, .prompt = "p",
                          .first = {1, good1, 0, 0}, .second = {2, good2, 0, 0}};
    joust_judge_req out = {.match_id = 2, .attempt = 1, .prompt = "p",
                           .first = {1, good1, 0, 0}, .second = {3, bad, 0, 0}};
    CHECK_RC(joust_judge_submit(j, &ok));
    CHECK_RC(joust_judge_submit(j, &out));
    joust_judge_res res[2];
    CHECK(joust_judge_poll(j, res, 2, 0) == 2);
    CHECK(res[0].match_id == 1 && res[0].status == JOUST_STATUS_OK);
    CHECK(res[1].match_id == 2 && res[1].status == JOUST_STATUS_IMAGE_ERROR &&
          res[1].failed_image_id == 3 && res[1].error &&
          strstr(res[1].error, "outside the allowed roots"));
    joust_judge_res_clear(&res[0]);
    joust_judge_res_clear(&res[1]);
    joust_judge_destroy(&j);

    /* a root that does not exist refuses to create the judge */
    sub(root, sizeof root, "nope");
    CHECK(joust_judge_new("quality", &cfg, &j) < 0 && j == NULL);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_confine();
    test_judge();
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_report();
}
