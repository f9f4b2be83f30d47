/* The openai judge in the `joust` command: the statistics the local workers
 * of `joust run` leave behind for the run summary (request and retry
 * counts, in-flight high-water mark, image cache hit rate, the share of
 * images sent to an endpoint that had just seen them). Its options are in
 * the judge registry (worker/judge.c). */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "judge_openai.h"
#include "log.h"

void cli_openai_stats_dir(char *out, size_t outlen)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, outlen, "%s/joust-stats.XXXXXX", tmp && *tmp && strlen(tmp) < outlen - 24 ? tmp : "/tmp");
    if (!mkdtemp(out)) {
        log_warn("cannot make a directory for the workers' statistics (%s)", out);
        out[0] = '\0';
    }
}

void cli_openai_report(const cli_opts *o, const char *dir, int nworkers, int print)
{
    joust_oa_stats sum = {0};
    int found = 0;
    char path[512];
    for (int i = 0; i < nworkers; i++) {
        snprintf(path, sizeof path, "%s/worker-%d.json", dir, i + 1);
        if (joust_oa_stats_add_file(&sum, path) == 0)
            found++;
        unlink(path);
    }
    /* Anything else left there (a .tmp of a killed worker) goes too. */
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL)
        if (de->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
    rmdir(dir);
    if (!found)
        return;
    if (print)
        joust_oa_stats_print(&sum, stdout);
    if (o->jcfg.stats_path && joust_oa_stats_write(&sum, o->jcfg.stats_path) < 0)
        log_warn("cannot write the judge statistics to %s", o->jcfg.stats_path);
}
