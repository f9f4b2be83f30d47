/* `joust show MATCH...`: one match of a run as stored — its prompt and
 * images in presentation order, the outcome (status, p_first, kind,
 * answer, attempt, worker, latency, tokens, error) and the judge's reasoning from
 * the rationales column family. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "grouping.h"
#include "log.h"
#include "records.h"
#include "run.h"
#include "scoring.h"

static const char *status_name(int s)
{
    switch (s) {
    case JOUST__OUTCOME_STATUS__OK: return "OK";
    case JOUST__OUTCOME_STATUS__IMAGE_ERROR: return "IMAGE_ERROR";
    case JOUST__OUTCOME_STATUS__JUDGE_ERROR: return "JUDGE_ERROR";
    case JOUST__OUTCOME_STATUS__UNPARSEABLE: return "UNPARSEABLE";
    case JOUST__OUTCOME_STATUS__ABANDONED: return "ABANDONED";
    case JOUST__OUTCOME_STATUS__INFRA_ERROR: return "INFRA_ERROR";
    case JOUST__OUTCOME_STATUS__CONFIG_ERROR: return "CONFIG_ERROR";
    default: return "UNSPECIFIED";
    }
}

/* In a grouped run each image shows its caption (its own prompt). */
static void print_image(joust_store_t *st, const char *label, uint64_t id, int grouped)
{
    Joust__ImageRecord *img = NULL;
    Joust__PromptRecord *p = NULL;
    if (joust_rec_image_get(st, id, &img) == 0) {
        printf("  %s image %" PRIu64 "%s%s%s: %s\n", label, id, img->caller_id ? " (id " : "",
               img->caller_id ? img->caller_id : "", img->caller_id ? ")" : "", img->uri);
        if (grouped && joust_rec_prompt_get(st, img->prompt_id, &p) == 0)
            printf("           caption: %s\n", p->text);
        joust_rec_free(p);
        joust_rec_free(img);
    } else {
        printf("  %s image %" PRIu64 " (not in the store)\n", label, id);
    }
}

static int show_match(joust_store_t *st, const Joust__RunRecord *run, uint64_t match_id)
{
    Joust__MatchRecord *m = NULL;
    Joust__OutcomeRecord *o = NULL;
    int rc = joust_rec_match_get(st, run->run_id, match_id, &m);
    if (rc == JOUST_ENOTFOUND) {
        fprintf(stderr, "joust show: run '%s' has no match %" PRIu64 "\n", run->name, match_id);
        return 1;
    }
    if (rc < 0) {
        log_error("match %" PRIu64 ": %s", match_id, joust_strerror(rc));
        return 1;
    }
    Joust__PromptRecord *p = NULL;
    printf("match %" PRIu64 " of run '%s' (judge %s)\n", match_id, run->name, run->judge);
    int grouped = joust_run_grouped(run);
    char how[160];
    if (grouped) {
        printf("  group %" PRIu64 " (groups: %s)\n", m->prompt_id,
               joust_run_grouping(run, how, sizeof how));
    } else if (joust_rec_prompt_get(st, m->prompt_id, &p) == 0) {
        printf("  prompt %" PRIu64 ": %s\n", m->prompt_id, p->text);
        joust_rec_free(p);
    }
    print_image(st, "first: ", m->first, grouped);
    print_image(st, "second:", m->second, grouped);
    rc = joust_rec_outcome_get(st, run->run_id, match_id, &o);
    if (rc == JOUST_ENOTFOUND) {
        printf("  outcome: not judged yet\n");
    } else if (rc < 0) {
        printf("  outcome: unreadable (%s)\n", joust_strerror(rc));
    } else {
        printf("  status: %s\n", status_name(o->status));
        if (o->has_p_first)
            printf("  p_first: %.6f\n", o->p_first);
        if (o->status == JOUST__OUTCOME_STATUS__OK)
            printf("  kind: %s%s\n", joust_kind_name(o->has_kind && o->kind ? (int)o->kind
                                                                     : JOUST__OUTCOME_KIND__SOFT),
                   o->has_kind && o->kind ? "" : " (not recorded: soft)");
        if (o->has_answer && o->answer)
            printf("  answer: %u\n", o->answer);
        if (o->has_attempt)
            printf("  attempt: %u\n", o->attempt);
        if (o->worker && o->worker[0])
            printf("  worker: %s\n", o->worker);
        if (o->has_latency_us)
            printf("  latency: %.1f ms\n", (double)o->latency_us / 1000.0);
        if (o->has_tokens)
            printf("  tokens: %u\n", o->tokens);
        if (o->error && o->error[0])
            printf("  error: %s\n", o->error);
        if (o->has_failed_image_id && o->failed_image_id)
            printf("  failed image: %" PRIu64 "\n", o->failed_image_id);
        joust_rec_free(o);
    }
    joust_rec_free(m);
    char *text = NULL;
    size_t len = 0;
    rc = joust_rec_rationale_get(st, run->run_id, match_id, &text, &len);
    if (rc == 0) {
        printf("reasoning:\n%.*s\n", (int)len, (const char *)text);
        free(text);
    } else {
        printf("reasoning: (none stored)\n");
    }
    return 0;
}

int cmd_show(int argc, char **argv)
{
    cli_opts o;
    if (cli_parse(argc, argv, &o) < 0)
        return 2;
    const char *usage = "usage: joust show MATCH... [--db PATH] [--run NAME]\n"
                        "Prints a match of a run as stored: its prompt, its images in\n"
                        "presentation order, the outcome (status, p_first, kind of outcome: soft,\n"
                        "bounded or hard, answer, attempt, worker, latency, tokens, error) and the\n"
                        "judge's reasoning.\n";
    if (o.help) {
        fputs(usage, stdout);
        return 0;
    }
    if (o.argc < 1) {
        fputs(usage, stderr);
        return 2;
    }
    uint64_t *ids = calloc((size_t)o.argc, sizeof *ids);
    for (int i = 0; i < o.argc; i++) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(o.argv[i], &end, 10);
        if (errno || end == o.argv[i] || *end || v == 0 || o.argv[i][0] == '-') {
            fprintf(stderr, "joust show: '%s' is not a match id (a positive integer)\n", o.argv[i]);
            free(ids);
            return 2;
        }
        ids[i] = v;
    }
    joust_store_t *st;
    if (cli_open_store(o.db, 0, &st) < 0) {
        free(ids);
        return 1;
    }
    Joust__RunRecord *run = NULL;
    int rc = joust_run_open(st, o.run, NULL, &run), bad = 0;
    if (rc < 0) {
        log_error("run '%s': %s", o.run, joust_strerror(rc));
        bad = 1;
    }
    for (int i = 0; !bad && i < o.argc; i++) {
        if (i)
            printf("\n");
        bad |= show_match(st, run, ids[i]);
    }
    joust_rec_free(run);
    joust_store_destroy(&st);
    free(ids);
    return bad ? 1 : 0;
}
