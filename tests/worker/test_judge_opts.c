/* The judge registry and the option tables (common/opt.h, worker/judge.c):
 * - every judge is found by name, an unknown one is an error listing them;
 * - defaults come from the tables and equal the documented values;
 * - values are range-checked with a reason naming the option;
 * - a configuration written as argv (what `joust run` hands its workers)
 *   parses back to the same values, for every judge;
 * - a judge's required options are checked (openai without --endpoint). */
#include <math.h>
#include <string.h>

#include "check.h"
#include "err.h"
#include "judge.h"
#include "opt.h"

static const joust_opt *find(const char *judge, const char *name)
{
    const joust_judge_info *j = joust_judge_find(judge);
    const joust_opt *o = j ? joust_opt_find(j->opts, j->n_opts, name) : NULL;
    return o ? o : joust_opt_find(joust_judge_image_opts, joust_judge_n_image_opts, name);
}

/* Parses argv pairs produced by joust_judge_to_argv into a fresh config. */
static int parse_back(const char *judge, const joust_argv *a, joust_judge_config *out)
{
    joust_judge_config_defaults(out);
    char err[256];
    for (size_t i = 0; i < a->n; i++) {
        const joust_opt *o = strncmp(a->v[i], "--", 2) ? NULL : find(judge, a->v[i] + 2);
        if (!o)
            return JOUST_EINVAL;
        int flag = o->type == JOUST_OPT_FLAG || o->type == JOUST_OPT_UNFLAG;
        if (joust_opt_set(o, out, flag ? NULL : a->v[++i], err, sizeof err) < 0)
            return JOUST_EINVAL;
    }
    return 0;
}

int main(void)
{
    char err[256];
    /* registry */
    CHECK(joust_judge_info_at(0) && !strcmp(joust_judge_info_at(0)->name, "quality"));
    CHECK(joust_judge_find("sim") && joust_judge_find("openai") && joust_judge_find("quality"));
    CHECK(joust_judge_find("qualty") == NULL);
    joust_judge_config c;
    joust_judge_config_defaults(&c);
    CHECK(joust_judge_check("qualty", &c, err, sizeof err) == JOUST_ENOTFOUND);
    CHECK(strstr(err, "--judge: 'qualty'") && strstr(err, "quality | openai | sim"));
    joust_judge_t *j = NULL;
    CHECK(joust_judge_new("qualty", &c, &j) == JOUST_ENOTFOUND && !j);
    CHECK_RC(joust_judge_new("sim", &c, &j));
    CHECK(j && !strcmp(joust_judge_name(j), "sim"));
    joust_judge_destroy(&j);

    /* defaults from the tables */
    CHECK(c.max_pixels == 401408 && c.sim_temperature == 1.0 && c.sim_noise == 0);
    CHECK(c.top_logprobs == 10 && c.inflight == 64 && c.timeout_ms == 120000);
    CHECK(c.max_retries == 5 && c.max_unparseable == 2 && c.hard_fallback == 1);
    CHECK(!strcmp(c.mode, "reason") && !strcmp(c.api_key_env, "OPENAI_API_KEY"));
    CHECK(c.model && strstr(c.model, "qwen2.5vl"));
    CHECK(c.seed == 1 && c.cache_entries == 4096 && c.n_endpoints == 0 && !c.image_root);

    /* ranges and reasons */
    CHECK(joust_opt_set(find("openai", "inflight"), &c, "0", err, sizeof err) == JOUST_EINVAL);
    CHECK(strstr(err, "--inflight: '0'") && strstr(err, "1..4096"));
    CHECK(joust_opt_set(find("openai", "inflight"), &c, "12x", err, sizeof err) == JOUST_EINVAL);
    CHECK(joust_opt_set(find("openai", "mode"), &c, "think", err, sizeof err) == JOUST_EINVAL);
    CHECK(strstr(err, "--mode: 'think' is not reason or direct"));
    CHECK(joust_opt_set(find("sim", "sim-noise"), &c, "-1", err, sizeof err) == JOUST_EINVAL);
    CHECK(joust_opt_set(find("sim", "sim-noise"), &c, "nan", err, sizeof err) == JOUST_EINVAL);
    CHECK(joust_opt_set(find("sim", "sim-temperature"), &c, "0", err, sizeof err) == JOUST_EINVAL);
    CHECK(joust_opt_set(find("sim", "sim-latency-ms"), &c, "-5", err, sizeof err) == JOUST_EINVAL);
    CHECK(joust_opt_set(find("quality", "max-pixels"), &c, "99999999999", err, sizeof err) ==
          JOUST_EINVAL);
    CHECK(c.inflight == 64 && !strcmp(c.mode, "reason") && c.sim_noise == 0); /* unchanged */

    /* required options */
    CHECK(joust_judge_check("openai", &c, err, sizeof err) == JOUST_EINVAL);
    CHECK(strstr(err, "openai judge needs --endpoint"));
    CHECK_RC(joust_opt_set(find("openai", "endpoint"), &c, "http://a:1/v1", err, sizeof err));
    CHECK_RC(joust_judge_check("openai", &c, err, sizeof err));

    /* every value round-trips through argv, for every judge */
    CHECK_RC(joust_opt_set(find("openai", "endpoint"), &c, "http://b:2/v1", err, sizeof err));
    CHECK_RC(joust_opt_set(find("openai", "temperature"), &c, "0.1", err, sizeof err));
    CHECK_RC(joust_opt_set(find("openai", "mode"), &c, "direct", err, sizeof err));
    CHECK_RC(joust_opt_set(find("openai", "no-hard-fallback"), &c, NULL, err, sizeof err));
    CHECK_RC(joust_opt_set(find("openai", "judge-stats"), &c, "/tmp/s.json", err, sizeof err));
    CHECK_RC(joust_opt_set(find("sim", "sim-bias"), &c, "-0.3", err, sizeof err));
    CHECK_RC(joust_opt_set(find("sim", "sim-noise"), &c, "0.7", err, sizeof err));
    CHECK_RC(joust_opt_set(find("quality", "image-root"), &c, "/data", err, sizeof err));
    CHECK_RC(joust_opt_set(find("quality", "max-pixels"), &c, "1000", err, sizeof err));
    joust_argv a = {0};
    joust_judge_config back;
    joust_judge_to_argv("openai", &c, &a);
    CHECK(a.v[a.n] == NULL);
    CHECK_RC(parse_back("openai", &a, &back));
    CHECK(back.n_endpoints == 2 && !strcmp(back.endpoints[1], "http://b:2/v1"));
    CHECK(back.temperature == 0.1 && !strcmp(back.mode, "direct") && back.hard_fallback == 0);
    CHECK(back.max_pixels == 1000 && !strcmp(back.image_root, "/data"));
    CHECK(back.stats_path == NULL); /* LOCAL: each worker gets its own file */
    CHECK(back.sim_bias == 0);      /* sim's options are not the openai judge's */
    joust_argv_free(&a);
    joust_judge_to_argv("sim", &c, &a);
    CHECK_RC(parse_back("sim", &a, &back));
    CHECK(back.sim_bias == -0.3 && back.sim_noise == 0.7 && back.sim_temperature == 1.0);
    CHECK(back.max_pixels == 401408); /* sim reads no images */
    joust_argv_free(&a);
    joust_judge_to_argv("quality", &c, &a);
    CHECK_RC(parse_back("quality", &a, &back)); /* the image options only */
    CHECK(back.max_pixels == 1000 && !strcmp(back.image_root, "/data") && back.sim_noise == 0 &&
          back.n_endpoints == 0);
    joust_argv_free(&a);
    /* an exact double survives */
    CHECK_RC(joust_opt_set(find("sim", "sim-bias"), &c, "0.1234567890123456789", err, sizeof err));
    joust_judge_to_argv("sim", &c, &a);
    CHECK_RC(parse_back("sim", &a, &back));
    CHECK(back.sim_bias == c.sim_bias);
    joust_argv_free(&a);
    return test_report();
}
