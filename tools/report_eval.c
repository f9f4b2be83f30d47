/* The judge evaluation section of a report (`joust report --eval FILE`):
 * reads an eval.json that `joust eval` wrote and shows, per judge
 * configuration, its agreement with the human labels beside the night's
 * numbers, so a reader sees what the judge behind the scores is worth
 * (issue 15.4; docs/report.md). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "report.h"
#include "safe_open.h"

/* An eval.json holds at most a few thousand numbers per judge. */
#define EVAL_MAX_BYTES (64u << 20)

static double num_at(const cJSON *o, const char *a, const char *b)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static const char *str_at(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

int rep_eval_load(const char *path, cJSON **out)
{
    unsigned char *data = NULL;
    size_t len = 0;
    char err[512];
    *out = NULL;
    int rc = joust_read_regular(path, 0, EVAL_MAX_BYTES, &data, &len, err, sizeof err);
    if (rc < 0) {
        log_error("--eval %s", err);
        return rc;
    }
    cJSON *ev = cJSON_ParseWithLength((const char *)data, len);
    free(data);
    const cJSON *judges = cJSON_GetObjectItemCaseSensitive(ev, "judges");
    const char *why = !ev                                       ? "not JSON"
                      : !cJSON_IsArray(judges)                  ? "no \"judges\" list"
                      : !str_at(ev, "protocol")                 ? "no \"protocol\""
                      : cJSON_GetArraySize(judges) == 0         ? "an empty \"judges\" list"
                                                                : NULL;
    for (const cJSON *j = judges ? judges->child : NULL; !why && j; j = j->next)
        if (!cJSON_IsObject(j) || !str_at(j, "config"))
            why = "a judge without its \"config\"";
    if (why) {
        log_error("--eval %s: %s; expected the eval.json that `joust eval` writes", path, why);
        cJSON_Delete(ev);
        return JOUST_EINVAL;
    }
    *out = ev;
    return 0;
}

/* "64.9 % [61.2, 68.0]" or a dash. */
static void pct_ci(joust_buf_t *b, const cJSON *o, const char *k)
{
    double v = num_at(o, k, "value"), lo = num_at(o, k, "lo"), hi = num_at(o, k, "hi");
    if (isnan(v))
        joust_buf_puts(b, "&ndash;");
    else if (isnan(lo))
        joust_buf_printf(b, "%.1f%%", 100 * v);
    else
        joust_buf_printf(b, "%.1f%% [%.1f, %.1f]", 100 * v, 100 * lo, 100 * hi);
}

/* A table cell: v with `digits` decimals and the suffix, or a dash. */
static void cell_num(joust_buf_t *b, double v, int digits, const char *suffix)
{
    if (isnan(v))
        joust_buf_puts(b, "<td>&ndash;</td>");
    else
        joust_buf_printf(b, "<td>%.*f%s</td>", digits, v, suffix);
}

void rep_eval_html(joust_buf_t *b, const cJSON *ev, const char *path)
{
    joust_buf_puts(b, "<section id=\"eval\"><h2>Judge evaluation against human labels</h2>\n"
                      "<p class=\"note\">From ");
    rep_html_esc(b, path);
    joust_buf_puts(b, " (<code>joust eval</code>): labels ");
    rep_html_esc(b, str_at(ev, "labels"));
    joust_buf_puts(b, ", protocol ");
    rep_html_esc(b, str_at(ev, "protocol"));
    joust_buf_printf(b, ", %.0f prompts, %.0f labelled pairs (%.0f tied by the humans). Accuracy "
                        "with a 95%% bootstrap interval over prompts.</p>\n<table><tr><th>judge "
                        "configuration</th><th>accuracy</th><th>vs first</th><th>ECE</th><th>log "
                        "loss</th><th>order consistency</th><th>calls</th><th>failed</th><th>tokens"
                        "</th></tr>\n",
                     num_at(ev, "prompts", NULL), num_at(ev, "pairs", NULL),
                     num_at(ev, "pairs_tied_by_humans", NULL));
    const cJSON *judges = cJSON_GetObjectItemCaseSensitive(ev, "judges");
    for (const cJSON *j = judges->child; j; j = j->next) {
        joust_buf_puts(b, "<tr><td>");
        rep_html_esc(b, str_at(j, "config"));
        const char *e = str_at(j, "error");
        if (e) {
            joust_buf_puts(b, " <span class=\"bad\">");
            rep_html_esc(b, e);
            joust_buf_puts(b, "</span>");
        }
        joust_buf_puts(b, "</td><td>");
        pct_ci(b, j, "accuracy");
        joust_buf_puts(b, "</td><td>");
        if (cJSON_GetObjectItemCaseSensitive(j, "difference_to_first")) {
            double v = num_at(j, "difference_to_first", "value");
            double lo = num_at(j, "difference_to_first", "lo"), hi = num_at(j, "difference_to_first", "hi");
            if (isnan(v))
                joust_buf_puts(b, "&ndash;");
            else
                joust_buf_printf(b, "%+.1f [%+.1f, %+.1f] points", 100 * v, 100 * lo, 100 * hi);
        }
        joust_buf_puts(b, "</td>");
        cell_num(b, num_at(j, "calibration", "ece"), 3, "");
        cell_num(b, num_at(j, "calibration", "log_loss"), 3, "");
        double cons = num_at(j, "order", "consistency");
        cell_num(b, 100 * cons, 1, "%");
        cell_num(b, num_at(j, "counts", "calls"), 0, "");
        cell_num(b, num_at(j, "counts", "failed"), 0, "");
        cell_num(b, num_at(j, "counts", "tokens"), 0, "");
        joust_buf_puts(b, "</tr>\n");
    }
    joust_buf_puts(b, "</table></section>\n");
}

void rep_eval_md(joust_buf_t *b, const cJSON *ev)
{
    joust_buf_printf(b, "\nJudge evaluation (%s protocol, %.0f labelled pairs):", str_at(ev, "protocol"),
                     num_at(ev, "pairs", NULL));
    const cJSON *judges = cJSON_GetObjectItemCaseSensitive(ev, "judges");
    for (const cJSON *j = judges->child; j; j = j->next) {
        double v = num_at(j, "accuracy", "value"), lo = num_at(j, "accuracy", "lo"),
               hi = num_at(j, "accuracy", "hi");
        if (isnan(v))
            joust_buf_printf(b, "\n- `%s`: no accuracy (%s)", str_at(j, "config"),
                             str_at(j, "error") ? str_at(j, "error") : "no judged pair");
        else
            joust_buf_printf(b, "\n- `%s`: %.1f %% [%.1f, %.1f] agreement with the humans",
                             str_at(j, "config"), 100 * v, 100 * lo, 100 * hi);
    }
    joust_buf_puts(b, "\n");
}
