/* CURVE encryption and ZAP authentication for the coordinator <-> worker
 * transport (docs/protocol.md §1.1, docs/operations.md "Keys").
 *
 * What it promises:
 * - Key files hold one Z85 key (40 characters) on their first line that is
 *   not a '#' comment. A secret key file is created with mode 0600 and is
 *   refused when it is readable or writable by group or others; the public
 *   key is always derived from the secret one, never trusted from a file.
 * - The allow-list maps worker public keys to worker names; a ZAP handler
 *   thread answers the coordinator's ZeroMQ context: 200 with the worker's
 *   name as User-Id for a listed CURVE key, 400 for anything else. Keys are
 *   compared in constant time (no early exit, every entry compared).
 * - Secret keys never leave this module except into zmq_setsockopt; they are
 *   wiped from the stack after use and never logged. Public keys are logged
 *   (they are not secrets: a denied key is logged so an operator can add it).
 *
 * Errors: functions return 0 or a negative JOUST_E* code and, where an err
 * buffer is given, a reason naming the file and line.
 * Threads: everything but the ZAP handler runs in the caller's thread. */
#ifndef JOUST_CURVE_H
#define JOUST_CURVE_H
#include <stddef.h>

#define JOUST_CURVE_Z85_LEN 40           /* characters of a Z85 key */
#define JOUST_CURVE_NAME_MAX 64          /* bytes of a worker name in the allow-list */
#define JOUST_CURVE_ZAP_DOMAIN "joust"   /* ZAP_DOMAIN of the coordinator's ROUTER */

typedef struct {
    char public_z85[JOUST_CURVE_Z85_LEN + 1];
    char secret_z85[JOUST_CURVE_Z85_LEN + 1];
} joust_curve_keypair;

/* Wipes a keypair (or any buffer holding a secret) so the compiler keeps it. */
void joust_curve_wipe(void *p, size_t n);

/* A fresh keypair. JOUST_EUNSUPPORTED when libzmq lacks CURVE. */
int joust_curve_keygen(joust_curve_keypair *kp);

/* Writes base.key (the secret key, mode 0600, created exclusively: an
 * existing file is never overwritten) and base.pub (the public key, 0644).
 * @return 0, JOUST_EEXIST (base.key or base.pub exists), JOUST_EIO. */
int joust_curve_write_keys(const char *base, const char *name, const joust_curve_keypair *kp,
                           char *err, size_t errlen);

/* Reads a secret key file and derives its public key into kp.
 * @return 0, JOUST_ENOTFOUND, JOUST_EDENIED (group/other may read or write
 *         it: chmod 600), JOUST_EINVAL (no valid Z85 key), JOUST_EIO. */
int joust_curve_read_secret(const char *path, joust_curve_keypair *kp, char *err, size_t errlen);

/* A public key given as the path of a file holding one (e.g. a .pub
 * file), or else, when nothing exists at that path, as 40 Z85 characters.
 * An existing path is always read as a file, never as a key (a 40-character
 * path may also be valid Z85). out gets the Z85 key.
 * @return 0, JOUST_ENOTFOUND (no such file and not a Z85 key), JOUST_EINVAL
 *   (the file holds no key), JOUST_EIO. */
int joust_curve_read_public(const char *z85_or_path, char out[JOUST_CURVE_Z85_LEN + 1], char *err,
                            size_t errlen);

/* ---- the allow-list ---- */

typedef struct joust_curve_allow joust_curve_allow_t;

/* Parses an allow-list file: lines "name public-key-z85", '#' comments and
 * blank lines ignored. Names are 1..64 of [A-Za-z0-9._@:-]; one name may
 * have several keys (rotation); a key may appear once.
 * @return 0, JOUST_ENOTFOUND, JOUST_EINVAL (bad line, reason names it; an
 *         empty list is invalid too), JOUST_EIO. */
int joust_curve_allow_load(const char *path, joust_curve_allow_t **out, char *err, size_t errlen);
/* Same from text in memory (tests). */
int joust_curve_allow_parse(const char *text, joust_curve_allow_t **out, char *err, size_t errlen);
size_t joust_curve_allow_count(const joust_curve_allow_t *a);
/* The name for a 32-byte public key, or NULL. Constant time in the key and
 * in which entry matches: every entry is compared in full. The string is
 * borrowed from the list. */
const char *joust_curve_allow_lookup(const joust_curve_allow_t *a, const unsigned char key[32]);
void joust_curve_allow_destroy(joust_curve_allow_t **self_p);

/* ---- sockets ---- */

/* Starts the ZAP handler for ctx (a REP socket bound at
 * inproc://zeromq.zap.01 before this returns, served by a detached thread).
 * Call it before binding any CURVE server socket in ctx. Takes ownership of
 * *allow_p and sets it to NULL, also on failure. The thread ends, closing
 * its socket and freeing the list, when ctx is terminated (zmq_ctx_term).
 * @return 0, JOUST_EEXIST (ctx already has a ZAP handler), JOUST_EIO. */
int joust_zap_start(void *ctx, joust_curve_allow_t **allow_p);

/* Makes sock a CURVE server with the secret key and a non-empty ZAP_DOMAIN
 * (so every handshake goes to the ZAP handler). Before zmq_bind.
 * @return 0 or JOUST_EIO. */
int joust_curve_server_setup(void *sock, const joust_curve_keypair *kp);
/* Makes sock a CURVE client of the server with that public key. Before
 * zmq_connect. @return 0 or JOUST_EIO. */
int joust_curve_client_setup(void *sock, const joust_curve_keypair *kp,
                             const char server_public_z85[JOUST_CURVE_Z85_LEN + 1]);

#endif
