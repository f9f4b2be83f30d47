/* Signing through the image stage; see signer.h. */
#include "signer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "confine.h"
#include "err.h"
#include "fetch.h"
#include "imgsrc.h"
#include "log.h"
#include "xalloc.h"

typedef struct {
    joust_signature sig;
    uint64_t bytes;
} signed_value;

struct joust_signer {
    joust_path_roots roots;
    joust_fetch_t *fetch;
    joust_imgsrc_t *src;
    joust_signature_ctx_t *sig; /* the kept decoder (one signer per thread) */
};

/* The signature straight from the encoded bytes: a JPEG decoded to luma at
 * the smallest scale that covers the hash's grid (signature.h). */
static int prepare(void *ctx, const unsigned char *data, size_t len, const joust_image_limits *lim,
                   void **value, size_t *bytes, char *err, size_t errlen)
{
    joust_signer_t *s = ctx;
    signed_value *v = xmalloc(sizeof *v);
    int rc = joust_signature_of_bytes(s->sig, data, len, lim, &v->sig, err, errlen);
    if (rc < 0) {
        free(v);
        return rc;
    }
    v->bytes = len;
    *value = v;
    *bytes = sizeof *v;
    return 0;
}

joust_signer_t *joust_signer_new(const joust_judge_config *cfg)
{
    joust_signer_t *s = xcalloc(1, sizeof *s);
    char err[512];
    if (joust_path_roots_init(&s->roots, cfg->allow_roots, cfg->n_allow_roots, err, sizeof err) < 0) {
        log_error("signing: %s", err);
        free(s);
        return NULL;
    }
    joust_fetch_config fc = {.s3_endpoint = cfg->s3_endpoint, .cache_dir = cfg->fetch_cache_dir,
                             .cache_mb = cfg->fetch_cache_mb};
    s->fetch = joust_fetch_new(&fc);
    joust_imgsrc_config sc = {.image_root = cfg->image_root, .roots = &s->roots,
                              .max_entries = 256,
                              .use = {.prepare_encoded = prepare, .ctx = s},
                              .fetch_remote = joust_fetch_remote, .fetch_ctx = s->fetch,
                              .log_name = "signing"};
    s->src = joust_imgsrc_new(&sc);
    s->sig = joust_signature_ctx_new();
    return s;
}

void joust_signer_destroy(joust_signer_t **self_p)
{
    joust_signer_t *s = *self_p;
    if (!s)
        return;
    joust_imgsrc_destroy(&s->src);
    joust_signature_ctx_destroy(&s->sig);
    joust_fetch_destroy(&s->fetch);
    joust_path_roots_free(&s->roots);
    free(s);
    *self_p = NULL;
}

void joust_signer_sign(joust_signer_t *s, uint64_t image_id, const char *uri, joust_signer_out *out)
{
    memset(out, 0, sizeof *out);
    const void *v = NULL;
    int rc = joust_imgsrc_get(s->src, image_id, uri, &v, out->error, sizeof out->error);
    if (rc == 0) {
        const signed_value *sv = v;
        out->status = JOUST_STATUS_OK;
        out->sig = sv->sig;
        out->bytes = sv->bytes;
        return;
    }
    out->status = joust_imgsrc_outage(rc) ? JOUST_STATUS_INFRA_ERROR : JOUST_STATUS_IMAGE_ERROR;
    if (!out->error[0])
        snprintf(out->error, sizeof out->error, "%s: %s", uri, joust_strerror(rc));
}
