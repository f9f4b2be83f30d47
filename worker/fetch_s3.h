/* s3://bucket/key references: where they are fetched from and with which
 * credentials (the request itself is signed by libcurl, fetch_http.h).
 *
 * Credentials, first found wins (the AWS CLI's order for these sources):
 *   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN);
 *   2. the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, else
 *      ~/.aws/credentials), section [AWS_PROFILE] (else [default]):
 *      aws_access_key_id, aws_secret_access_key, aws_session_token.
 * None found: requests go unsigned (public buckets). Region: AWS_REGION,
 * else AWS_DEFAULT_REGION, else us-east-1.
 *
 * Addressing: with an endpoint (`--s3-endpoint URL`, else AWS_ENDPOINT_URL)
 * path-style, ENDPOINT/bucket/key, which S3-compatible stores (MinIO, Ceph,
 * R2, GCS's interoperability endpoint https://storage.googleapis.com)
 * accept; without one virtual-hosted AWS, https://bucket.s3.REGION.amazonaws.com/key.
 * The key is percent-encoded except for '/' (what SigV4 signs for S3).
 *
 * Ownership: a joust_s3_config owns its strings (joust_s3_config_clear).
 * Threads: reentrant. */
#ifndef JOUST_FETCH_S3_H
#define JOUST_FETCH_S3_H
#include <stddef.h>

typedef struct {
    char *endpoint;      /* NULL: AWS virtual-hosted */
    char *region;
    char *sigv4;         /* "aws:amz:REGION:s3", NULL without credentials */
    char *userpwd;       /* "KEY:SECRET", NULL without credentials */
    char *session_token; /* may be NULL */
    char *source;        /* where the credentials came from, for logs */
} joust_s3_config;

/* Reads the environment and the credentials file. endpoint (may be NULL)
 * overrides AWS_ENDPOINT_URL. @return 0, or JOUST_EINVAL with the reason
 * in err for a credentials file or profile that is named but unusable. */
int joust_s3_config_load(joust_s3_config *c, const char *endpoint, char *err, size_t errlen);
void joust_s3_config_clear(joust_s3_config *c);

/* The https URL of ref ("s3://bucket/key"), malloc'd into *url.
 * @return 0, or JOUST_EINVAL (no bucket or no key) with the reason. */
int joust_s3_url(const joust_s3_config *c, const char *ref, char **url, char *err, size_t errlen);

#endif
