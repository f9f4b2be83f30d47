/* The worker's signing stage (signature jobs, docs/protocol.md §11): an
 * image reference in, its signature out, through the same image stage the
 * judges use (worker/imgsrc.h: resolve, confine to the allowed roots,
 * fetch local or remote bytes), which hands the encoded bytes to
 * worker/signature.h (a JPEG decoded straight to luma at the smallest
 * scale whose sides stay >= 32 px, by a decoder the signer keeps).
 *
 *   joust_signer_t *s = joust_signer_new(&judge_cfg);  // roots, fetch options
 *   joust_signer_out o;
 *   joust_signer_sign(s, image_id, uri, &o);           // o.status, o.sig / o.error
 *   joust_signer_destroy(&s);
 *
 * Ownership: the config's strings are copied or borrowed as imgsrc and
 * fetch say (the allow-list roots are copied); o.error is a buffer in o.
 * Threads: one signer per thread. Errors: new returns NULL (logged) when
 * the allowed roots cannot be resolved; sign never fails as a call: the
 * outcome is in o.status (JOUST_STATUS_OK, _IMAGE_ERROR, or _INFRA_ERROR
 * when the remote store was unreachable). Each image is signed once per
 * signer (a small LRU keyed by image id, failures included). */
#ifndef JOUST_SIGNER_H
#define JOUST_SIGNER_H
#include <stddef.h>
#include <stdint.h>

#include "judge.h"
#include "signature.h"

typedef struct {
    joust_status status;
    joust_signature sig; /* with OK: hash and the image's own size */
    uint64_t bytes;      /* with OK: the encoded size */
    char error[512];     /* otherwise: why, naming the file */
} joust_signer_out;

typedef struct joust_signer joust_signer_t;

joust_signer_t *joust_signer_new(const joust_judge_config *cfg);
void joust_signer_destroy(joust_signer_t **self_p);
void joust_signer_sign(joust_signer_t *s, uint64_t image_id, const char *uri, joust_signer_out *out);

#endif
