/* joust dedup: image signatures computed by workers (signature jobs), then
 * near-duplicate clusters (coordinator/dedup.h). docs/dedup.md. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "clock.h"
#include "dedup.h"
#include "err.h"
#include "log.h"
#include "records.h"
#include "run.h"

static const char usage[] =
    "usage: joust dedup [MANIFEST] [--db PATH] [--run NAME] [--out DIR] [--radius R]\n"
    "                   [--scope prompt|model|global] [--threads N] [options]\n"
    "Signs every image without a signature (a 64-bit DCT perceptual hash and its\n"
    "size, computed once per image by the workers' image stage), then finds the\n"
    "near-duplicates: images whose hashes differ in at most R bits (default 8),\n"
    "compared within a prompt (default), a model, or globally, and clustered\n"
    "transitively. Writes DIR/clusters.jsonl (one cluster a line: representative,\n"
    "members, distances) and DIR/dedup_summary.json. The images: run NAME's when it\n"
    "exists (its scores choose the representatives), else MANIFEST's (ingested\n"
    "first), else the whole store. Workers: --workers N local ones (default 2),\n"
    "or --workers 0 and remote `joust worker --connect` at --bind. Exit 1 when an\n"
    "image could not be signed (listed in the log; the files are still written).\n";

/* The run named by --run when it exists and covers the manifest's images;
 * otherwise a transient scope over the manifest's images or the store. */
static int choose_images(joust_store_t *st, const cli_opts *o, const char *manifest,
                         const joust_ingest_stats *is, Joust__RunRecord **run,
                         Joust__RunRecord **scope)
{
    *run = *scope = NULL;
    int rc = joust_run_open(st, o->run, NULL, run);
    if (rc == 0 && manifest && !(is->end_image > is->first_image &&
                                 joust_run_covers(*run, is->first_image))) {
        joust_rec_free(*run); /* the run is about other images */
        *run = NULL;
    } else if (rc < 0 && rc != JOUST_ENOTFOUND) {
        log_error("run '%s': %s", o->run, joust_strerror(rc));
        return rc;
    }
    if (*run) {
        printf("dedup: the images of run '%s'\n", (*run)->name);
        return 0;
    }
    rc = joust_coord_sign_scope(manifest ? is->first_image : 0, manifest ? is->end_image : 0, scope);
    if (rc == 0)
        printf("dedup: %s\n", manifest ? "the manifest's images" : "every image in the store");
    return rc;
}

static void print_summary(const joust_dedup_result *dr, const char *clusters, const char *summary)
{
    printf("signed %" PRIu64 " images in %.1f s (%" PRIu64 " copied from images with the same "
           "content, %" PRIu64 " signed before); %" PRIu64 " could not be read, %" PRIu64
           " given up\n",
           dr->signed_now, dr->sign_s, dr->sign_copied, dr->sign_known, dr->sign_failed,
           dr->sign_given_up);
    size_t in_clusters = dr->nd.n_clusters ? dr->nd.start[dr->nd.n_clusters] : 0;
    printf("near-duplicates (radius %u, scope %s): %zu clusters holding %zu images (%zu "
           "duplicates to drop) among %zu signed images; search %.3f s\n",
           dr->opts.radius, joust_dedup_scope_name(dr->opts.scope), dr->nd.n_clusters,
           in_clusters, in_clusters - dr->nd.n_clusters, dr->nd.n, dr->search_s);
    printf("wrote %s and %s\n", clusters, summary);
}

int cmd_dedup(int argc, char **argv)
{
    cli_opts o;
    int code;
    if (!cli_begin_opts(argc, argv, usage, CLI_RUN | CLI_COORD, 0, 1, &o, &code))
        return code;
    const char *manifest = o.argc ? o.argv[0] : NULL;
    joust_dedup_opts dopts;
    joust_dedup_opts_defaults(&dopts);
    dopts.radius = o.radius;
    dopts.threads = o.threads;
    joust_dedup_scope_parse(o.scope, &dopts.scope); /* the option table checked it */
    if (!manifest && !o.allow_any_path && !o.n_allow_roots) {
        fprintf(stderr, "joust dedup: the workers read the store's images: give --allow-root DIR "
                        "(the folder they are in; repeatable) or --allow-any-path\n");
        return 2;
    }
    if ((manifest && cli_image_roots(&o, manifest) < 0) || cli_check_keys(&o) < 0)
        return 2;
    cli_install_signals();
    joust_store_t *st;
    if (cli_open_store(o.db, manifest != NULL, &st) < 0)
        return 1;
    cli_run r;
    joust_pipeline_config pc;
    joust_ingest_stats is = {0};
    Joust__RunRecord *run = NULL, *scope = NULL;
    int rc = cli_pipeline_setup(&o, manifest, &r, &pc);
    if (rc == 0 && manifest)
        rc = joust_pipeline_ingest(st, &pc, &is);
    if (rc == 0)
        rc = choose_images(st, &o, manifest, &is, &run, &scope);
    fflush(stdout);
    joust_pipeline_result res;
    int64_t t0 = joust_now_us();
    if (rc == 0)
        rc = joust_pipeline_sign(st, &pc, run ? run->name : NULL, scope, &res);
    double sign_s = (double)(joust_now_us() - t0) / 1e6;
    joust_dedup_result dr;
    char clusters[PATH_MAX], summary[PATH_MAX];
    snprintf(clusters, sizeof clusters, "%s/clusters.jsonl", o.out);
    snprintf(summary, sizeof summary, "%s/dedup_summary.json", o.out);
    if (rc == 0 && (rc = joust_dedup_find(st, run ? run : scope, &dopts, &dr)) == 0) {
        const joust_coord_summary *cs = &res.judged;
        dr.signed_now = cs->sign_ok;
        dr.sign_failed = cs->sign_failed;
        dr.sign_copied = cs->sign_copied;
        dr.sign_known = cs->sign_known;
        dr.sign_given_up = cs->sign_given_up;
        dr.sign_s = sign_s;
        mkdir(o.out, 0755);
        if ((rc = joust_dedup_write(st, &dr, clusters, summary)) == 0)
            print_summary(&dr, clusters, summary);
        if (rc == 0 && dr.unsigned_n) {
            fprintf(stderr, "joust dedup: %zu images have no signature (they could not be read: "
                            "see the log above, or an earlier dedup's); they are in no cluster\n",
                    dr.unsigned_n);
            rc = JOUST_ECORRUPT;
        }
        joust_dedup_result_free(&dr);
    }
    joust_rec_free(run);
    joust_rec_free(scope);
    free((char *)pc.spec.judge_options);
    cli_run_clear(&r);
    joust_store_destroy(&st);
    return cli_exit_status(rc);
}
