#include "export_dpo.h"

#include <archive.h>
#include <archive_entry.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bt.h"
#include "buf.h"
#include "err.h"
#include "hash.h"
#include "log.h"
#include "output.h"
#include "safe_open.h"
#include "uri.h"

void joust_dpo_opts_defaults(joust_dpo_opts *o)
{
    *o = (joust_dpo_opts){.layout = JOUST_DPO_TRL, .policy = JOUST_DPO_BEST_WORST, .k = 2,
                          .min_margin = 0.1, .max_image_bytes = (size_t)64 << 20};
}

static int parse_name(const char *s, const char *const *names, int n, int *out)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return 0;
        }
    return JOUST_EINVAL;
}

static const char *const layouts[] = {"trl", "pickapic"};
static const char *const policies[] = {"best-worst", "best-each", "all", "top-k"};

int joust_dpo_layout_parse(const char *s, int *layout) { return parse_name(s, layouts, 2, layout); }
int joust_dpo_policy_parse(const char *s, int *policy) { return parse_name(s, policies, 4, policy); }

typedef struct {
    const joust_dpo_opts *o;
    joust_outfile_t *out;
    struct archive *ar;
    joust_buf_t line;
    joust_dpo_stats st;
} dpo_ctx;

/* libarchive writes through the atomic output file. */
static la_ssize_t ar_write(struct archive *a, void *arg, const void *buf, size_t len)
{
    joust_outfile_write(arg, buf, len);
    return (la_ssize_t)len;
}

static const char *ext_of(const char *uri)
{
    const char *slash = strrchr(uri, '/'), *dot = strrchr(uri, '.');
    return dot && (!slash || dot > slash) && strlen(dot) < 8 ? dot + 1 : "img";
}

static int ar_member(dpo_ctx *d, const char *name, const void *data, size_t len)
{
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, name);
    archive_entry_set_size(e, (la_int64_t)len);
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_mtime(e, 0, 0); /* deterministic */
    int rc = archive_write_header(d->ar, e) == ARCHIVE_OK &&
                     (len == 0 || archive_write_data(d->ar, data, len) == (la_ssize_t)len)
                 ? 0
                 : JOUST_EIO;
    if (rc < 0)
        log_error("dpo tar: %s: %s", name, archive_error_string(d->ar));
    archive_entry_free(e);
    return rc;
}

static int read_image(dpo_ctx *d, const Joust__ImageRecord *img, unsigned char **data, size_t *len)
{
    char err[256] = "";
    joust_uri u = {0};
    int rc = joust_uri_parse(img->uri, NULL, &u, err, sizeof err);
    if (rc == 0 && u.scheme != JOUST_URI_LOCAL) {
        snprintf(err, sizeof err, "remote; only local images go into the tar");
        rc = JOUST_EUNSUPPORTED;
    }
    if (rc == 0)
        rc = joust_read_regular(u.path, 0, d->o->max_image_bytes, data, len, err, sizeof err);
    if (rc < 0)
        log_warn("dpo tar: image %s: %s; its pair is left out", img->uri,
                 err[0] ? err : joust_strerror(rc));
    joust_uri_clear(&u);
    return rc;
}

/* One pair: a JSONL line, or a tar sample (KEY.json + the two images). */
static int emit(dpo_ctx *d, const joust_scored_prompt *sp, const joust_scored_image *win,
                const joust_scored_image *lose)
{
    double margin = win->score->score - lose->score->score;
    if (!(margin > 0) || margin < d->o->min_margin)
        return 0;
    const Joust__ImageRecord *im[2] = {win->img, lose->img};
    /* Pick-a-Pic: which side the chosen image sits on follows a hash of
     * the pair, so position carries no signal and the file is stable. */
    int swap = 0;
    if (d->o->layout == JOUST_DPO_PICKAPIC) {
        uint64_t ids[2] = {win->img->image_id, lose->img->image_id};
        swap = (int)(joust_hash64(ids, sizeof ids) & 1);
    }
    const char *f0 = d->o->layout == JOUST_DPO_TRL ? "chosen" : "jpg_0";
    const char *f1 = d->o->layout == JOUST_DPO_TRL ? "rejected" : "jpg_1";
    const Joust__ImageRecord *a = im[swap], *b = im[!swap];
    char key[32], m0[64], m1[64];
    snprintf(key, sizeof key, "%08" PRIu64, d->st.pairs);
    snprintf(m0, sizeof m0, "%s.%s.%s", key, f0, ext_of(a->uri));
    snprintf(m1, sizeof m1, "%s.%s.%s", key, f1, ext_of(b->uri));
    joust_buf_t *l = &d->line;
    char id1[32], id2[32];
    joust_buf_reset(l);
    joust_buf_puts(l, "{\"prompt_id\":");
    joust_json_prompt_id(l, sp->prompt);
    joust_buf_puts(l, d->o->layout == JOUST_DPO_TRL ? ",\"prompt\":" : ",\"caption\":");
    joust_buf_json_str(l, sp->prompt->text);
    joust_buf_printf(l, ",\"%s\":", f0);
    joust_buf_json_str(l, d->ar ? m0 : a->uri);
    joust_buf_printf(l, ",\"%s\":", f1);
    joust_buf_json_str(l, d->ar ? m1 : b->uri);
    if (d->o->layout == JOUST_DPO_TRL) {
        joust_buf_puts(l, ",\"chosen_id\":");
        joust_buf_json_str(l, joust_image_label(a, id1, sizeof id1));
        joust_buf_puts(l, ",\"rejected_id\":");
        joust_buf_json_str(l, joust_image_label(b, id2, sizeof id2));
        joust_buf_printf(l, ",\"chosen_score\":%.9g,\"rejected_score\":%.9g", win->score->score,
                         lose->score->score);
    } else {
        joust_buf_printf(l, ",\"label_0\":%d,\"label_1\":%d,\"image_0_uid\":", !swap, swap);
        joust_buf_json_str(l, joust_image_label(a, id1, sizeof id1));
        joust_buf_puts(l, ",\"image_1_uid\":");
        joust_buf_json_str(l, joust_image_label(b, id2, sizeof id2));
        if (d->ar) {
            joust_buf_puts(l, ",\"uri_0\":");
            joust_buf_json_str(l, a->uri);
            joust_buf_puts(l, ",\"uri_1\":");
            joust_buf_json_str(l, b->uri);
        }
    }
    if (d->ar && d->o->layout == JOUST_DPO_TRL) {
        joust_buf_puts(l, ",\"chosen_uri\":");
        joust_buf_json_str(l, a->uri);
        joust_buf_puts(l, ",\"rejected_uri\":");
        joust_buf_json_str(l, b->uri);
    }
    joust_buf_printf(l, ",\"margin\":%.9g,\"p_chosen\":%.9g}\n", margin,
                     joust_bt_prob(win->score->score, lose->score->score));
    if (!d->ar) {
        joust_outfile_write(d->out, l->data, l->len);
        d->st.pairs++;
        return 1;
    }
    unsigned char *da = NULL, *db = NULL;
    size_t la = 0, lb = 0;
    int rc = 0;
    if (read_image(d, a, &da, &la) < 0 || read_image(d, b, &db, &lb) < 0) {
        d->st.skipped++;
    } else {
        char mj[64];
        snprintf(mj, sizeof mj, "%s.json", key);
        /* the .json member holds the line without its newline */
        rc = ar_member(d, mj, l->data, l->len - 1);
        if (rc == 0)
            rc = ar_member(d, m0, da, la);
        if (rc == 0)
            rc = ar_member(d, m1, db, lb);
        if (rc == 0)
            d->st.pairs++;
    }
    free(da);
    free(db);
    return rc < 0 ? rc : 1;
}

static int dpo_prompt(const joust_scored_prompt *sp, void *arg)
{
    dpo_ctx *d = arg;
    /* The scored images, best first (the walk gives rank order). */
    const joust_scored_image **v = malloc((sp->n ? sp->n : 1) * sizeof *v);
    if (!v)
        abort();
    size_t n = 0;
    for (size_t i = 0; i < sp->n; i++)
        if (sp->items[i].score && sp->items[i].score->has_score &&
            sp->items[i].score->comparisons > 0)
            v[n++] = &sp->items[i];
    int rc = 0, any = 0;
    size_t k = d->o->k < n / 2 ? d->o->k : n / 2;
    for (size_t i = 0; i < n && rc >= 0; i++)
        for (size_t j = i + 1; j < n && rc >= 0; j++) {
            int take = 0;
            switch (d->o->policy) {
            case JOUST_DPO_BEST_WORST: take = i == 0 && j == n - 1; break;
            case JOUST_DPO_BEST_EACH: take = i == 0; break;
            case JOUST_DPO_ALL: take = 1; break;
            case JOUST_DPO_TOPK: take = i < k && j >= n - k; break;
            }
            if (take && (rc = emit(d, sp, v[i], v[j])) > 0)
                any = 1;
        }
    free(v);
    d->st.prompts += any;
    return rc < 0 ? rc : 0;
}

int joust_export_dpo(joust_store_t *st, const Joust__RunRecord *run, const char *path,
                     const joust_dpo_opts *o, joust_dpo_stats *stats)
{
    dpo_ctx d = {.o = o};
    memset(stats, 0, sizeof *stats);
    int rc = joust_outfile_open(path, &d.out);
    if (rc == 0 && o->wds) {
        d.ar = archive_write_new();
        if (!d.ar || archive_write_set_format_pax_restricted(d.ar) != ARCHIVE_OK ||
            archive_write_set_bytes_in_last_block(d.ar, 1) != ARCHIVE_OK ||
            archive_write_open2(d.ar, d.out, NULL, ar_write, NULL, NULL) != ARCHIVE_OK) {
            log_error("dpo tar %s: %s", path, d.ar ? archive_error_string(d.ar) : "no memory");
            rc = JOUST_EIO;
        }
    }
    if (rc == 0)
        rc = joust_scores_walk(st, run, dpo_prompt, &d);
    if (d.ar) {
        if (archive_write_close(d.ar) != ARCHIVE_OK && rc == 0) {
            log_error("dpo tar %s: %s", path, archive_error_string(d.ar));
            rc = JOUST_EIO;
        }
        archive_write_free(d.ar);
    }
    if (rc == 0)
        rc = joust_outfile_commit(&d.out);
    joust_outfile_abort(&d.out);
    joust_buf_free(&d.line);
    if (rc == 0)
        *stats = d.st;
    return rc;
}
