/* The judge factory and the calls that dispatch through a judge's ops. */
#include "judge.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

void joust_judge_config_defaults(joust_judge_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->sim_temperature = 1.0;
    cfg->seed = 1;
    cfg->max_pixels = 401408; /* 512 Qwen2.5-VL tokens of 28x28 px */
    cfg->cache_entries = 4096;
    cfg->api_key_env = "OPENAI_API_KEY";
    cfg->mode = "reason";
    cfg->model = "alexgambashidze/qwen2.5vl_image_preference_reasoner";
    cfg->top_logprobs = 10; /* docs/benchmarks.md: 400-token reason replies */
    cfg->inflight = 64;
    cfg->timeout_ms = 120000;
    cfg->max_retries = 5;
    cfg->max_unparseable = 2;
    cfg->hard_fallback = 1;
}

int joust_judge_new(const char *name, const joust_judge_config *cfg, joust_judge_t **out)
{
    if (!strcmp(name, "sim"))
        return joust_judge_sim_new(cfg, out);
    if (!strcmp(name, "quality"))
        return joust_judge_quality_new(cfg, out);
    if (!strcmp(name, "openai"))
        return joust_judge_openai_new(cfg, out);
    return JOUST_ENOTFOUND;
}

void joust_judge_destroy(joust_judge_t **self_p)
{
    if (!*self_p)
        return;
    (*self_p)->ops->destroy((*self_p)->impl);
    free(*self_p);
    *self_p = NULL;
}

int joust_judge_submit(joust_judge_t *j, const joust_judge_req *req)
{
    return j->ops->submit(j->impl, req);
}

int joust_judge_poll(joust_judge_t *j, joust_judge_res *out, int max, int timeout_ms)
{
    return j->ops->poll(j->impl, out, max, timeout_ms);
}

size_t joust_judge_inflight(joust_judge_t *j) { return j->ops->inflight(j->impl); }

int joust_judge_health(joust_judge_t *j, char *why, size_t whylen)
{
    if (whylen)
        why[0] = '\0';
    return j->ops->health ? j->ops->health(j->impl, why, whylen) : 0;
}

int joust_judge_set_wake_fd(joust_judge_t *j, int fd)
{
    if (!j->ops->set_wake_fd)
        return JOUST_EUNSUPPORTED;
    j->ops->set_wake_fd(j->impl, fd);
    return 0;
}

const char *joust_judge_name(const joust_judge_t *j) { return j->ops->name; }

void joust_judge_res_clear(joust_judge_res *res)
{
    free(res->reason);
    free(res->error);
    res->reason = res->error = NULL;
}
