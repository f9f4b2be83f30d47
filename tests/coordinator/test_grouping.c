/* Groups that are not the prompt (coordinator/grouping.h) on a real store:
 * --group all puts the run's images in one group named by its smallest
 * image id; --group-by FIELD groups by the metadata value (a string and
 * the number with the same text are different values), or by the model;
 * an image without the field is refused; only the run's images count;
 * the walk and the lookup see the groups in id order. */
#include <string.h>

#include "check.h"
#include "err.h"
#include "grouping.h"
#include "records.h"
#include "run.h"
#include "storage/storetest.h"

static void put_image(joust_batch_t *b, uint64_t id, const char *model, const char *meta)
{
    Joust__ImageRecord r = JOUST__IMAGE_RECORD__INIT;
    r.image_id = id;
    r.prompt_id = id; /* one image per caption */
    r.uri = "/x.png";
    r.model = (char *)model;
    r.meta_json = (char *)meta;
    r.has_line = 1;
    r.line = id;
    joust_rec_image_put(b, &r);
}

typedef struct {
    uint64_t gid[8], n[8];
    size_t ng;
} seen_t;

static int see(uint64_t gid, const uint64_t *ids, size_t n, void *arg)
{
    seen_t *s = arg;
    (void)ids;
    s->gid[s->ng] = gid;
    s->n[s->ng++] = n;
    return 0;
}

static Joust__RunRecord run_of(const char *group_by, int all, Joust__RunManifest *m,
                               Joust__RunManifest **mp)
{
    Joust__RunRecord r = JOUST__RUN_RECORD__INIT;
    r.group_by = (char *)group_by;
    r.has_group_all = r.group_all = all;
    *mp = m; /* the run covers images 2..7 (image 1 is another run's) */
    r.n_manifests = 1;
    r.manifests = mp;
    return r;
}

int main(void)
{
    joust_store_t *st = NULL;
    if (storetest_open(&st) < 0)
        return 1;
    joust_batch_t *b = joust_batch_new();
    put_image(b, 1, "m1", "{\"src\":\"a\"}");
    put_image(b, 2, "m2", "{\"src\":\"a\"}");
    put_image(b, 3, "m1", "{\"src\":\"1\"}");
    put_image(b, 4, "m2", "{\"src\":1}");
    put_image(b, 5, "m1", "{\"src\":\"a\",\"k\":[1,2]}");
    put_image(b, 6, NULL, "{\"src\":1}");
    put_image(b, 7, "m1", "{\"other\":true}");
    CHECK_RC(joust_store_write(st, b, 1));
    joust_batch_destroy(&b);
    Joust__RunManifest m = JOUST__RUN_MANIFEST__INIT, *mp;
    m.hash = 9;
    m.first_image = 2;
    m.end_image = 8;

    joust_groups g;
    Joust__RunRecord all = run_of(NULL, 1, &m, &mp);
    CHECK(joust_run_grouped(&all));
    CHECK_RC(joust_groups_load(st, &all, &g));
    CHECK(g.ng == 1 && g.gid[0] == 2 && g.off[1] == 6);
    const uint64_t *ids;
    size_t n;
    CHECK_RC(joust_groups_find(&g, 2, &ids, &n));
    CHECK(n == 6 && ids[0] == 2 && ids[5] == 7);
    CHECK(joust_groups_find(&g, 3, &ids, &n) == JOUST_ENOTFOUND);
    joust_groups_free(&g);

    /* by src: "a" {2,5}, "1" {3}, 1 {4,6}; image 7 has no src */
    Joust__RunRecord by_src = run_of("src", 0, &m, &mp);
    CHECK(joust_groups_load(st, &by_src, &g) == JOUST_EINVAL);
    m.end_image = 7;
    by_src = run_of("src", 0, &m, &mp);
    CHECK_RC(joust_groups_load(st, &by_src, &g));
    CHECK(g.ng == 3);
    seen_t s = {0};
    uint64_t next = 0;
    CHECK(joust_groups_walk(&g, 1, 0, see, &s, &next) == 0);
    CHECK(s.ng == 3 && s.gid[0] == 2 && s.gid[1] == 3 && s.gid[2] == 4);
    CHECK(s.n[0] == 2 && s.n[1] == 1 && s.n[2] == 2 && next == 5);
    memset(&s, 0, sizeof s);
    CHECK(joust_groups_walk(&g, 3, 4, see, &s, &next) == 0);
    CHECK(s.ng == 1 && s.gid[0] == 3 && next == 4);
    CHECK_RC(joust_groups_find(&g, 4, &ids, &n));
    CHECK(n == 2 && ids[0] == 4 && ids[1] == 6);
    joust_groups_free(&g);

    /* by model: image 6 has none */
    Joust__RunRecord by_model = run_of("model", 0, &m, &mp);
    CHECK(joust_groups_load(st, &by_model, &g) == JOUST_EINVAL);
    m.end_image = 6;
    by_model = run_of("model", 0, &m, &mp);
    CHECK_RC(joust_groups_load(st, &by_model, &g));
    CHECK(g.ng == 2 && g.gid[0] == 2 && g.gid[1] == 3 && g.off[1] == 2);
    char how[64];
    CHECK(!strcmp(joust_run_grouping(&by_model, how, sizeof how), "field model"));
    joust_groups_free(&g);

    Joust__RunRecord plain = JOUST__RUN_RECORD__INIT;
    CHECK(!joust_run_grouped(&plain));
    CHECK(!strcmp(joust_run_grouping(&plain, how, sizeof how), "prompt"));
    joust_store_destroy(&st);
    storetest_end();
    return test_report();
}
