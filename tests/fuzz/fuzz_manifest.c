/* libFuzzer target: manifest_parse_line (coordinator/manifest.h) on one
 * line of arbitrary bytes, handed over without a terminating NUL so any
 * read past `len` is an ASan finding.
 * Properties checked (abort = finding): success fills a non-empty image,
 * a prompt and a group key, within the documented lengths, a finite
 * latent, and metadata that is a JSON object; failure leaves the item
 * empty and gives a reason. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = malloc(size ? size : 1);
    if (size)
        memcpy(line, data, size);
    manifest_item it;
    char err[256] = "";
    int rc = manifest_parse_line(line, size, &it, err, sizeof err);
    if (rc == 0) {
        if (!it.image || !it.image[0] || strlen(it.image) > MANIFEST_MAX_URI || !it.prompt ||
            strlen(it.prompt) > MANIFEST_MAX_PROMPT || !it.group_key ||
            (it.prompt_id && strlen(it.prompt_id) > MANIFEST_MAX_NAME) ||
            (it.model && strlen(it.model) > MANIFEST_MAX_NAME) ||
            (it.id && strlen(it.id) > MANIFEST_MAX_NAME) || (it.has_latent && !isfinite(it.latent)))
            abort();
        if (it.meta_json) {
            cJSON *meta = cJSON_Parse(it.meta_json);
            if (!cJSON_IsObject(meta))
                abort();
            cJSON_Delete(meta);
        }
    } else {
        if (rc != JOUST_EINVAL || !err[0] || it.image || it.prompt || it.group_key || it.meta_json)
            abort();
    }
    manifest_item_clear(&it);
    free(line);
    return 0;
}
