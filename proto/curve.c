/* CURVE keys, the worker allow-list and the ZAP handler. See curve.h for
 * what this promises; ZeroMQ's side is RFC 26 (CurveZMQ) and RFC 27 (ZAP). */
#include "curve.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "err.h"
#include "log.h"
#include "safe_open.h"
#include "xalloc.h"

#define KEY_FILE_MAX 4096 /* a key file is one line and a comment or two */
#define ALLOW_FILE_MAX (4 << 20)  /* ~40 000 workers */

void joust_curve_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

static int z85_valid(const char *s, size_t len)
{
    if (len != JOUST_CURVE_Z85_LEN)
        return 0;
    char z[JOUST_CURVE_Z85_LEN + 1];
    unsigned char bin[32];
    memcpy(z, s, JOUST_CURVE_Z85_LEN);
    z[JOUST_CURVE_Z85_LEN] = '\0';
    int ok = zmq_z85_decode(bin, z) != NULL;
    joust_curve_wipe(bin, sizeof bin);
    joust_curve_wipe(z, sizeof z);
    return ok;
}

int joust_curve_keygen(joust_curve_keypair *kp)
{
    memset(kp, 0, sizeof *kp);
    if (!zmq_has("curve") || zmq_curve_keypair(kp->public_z85, kp->secret_z85) != 0)
        return JOUST_EUNSUPPORTED;
    return 0;
}

/* ---- key files ---- */

static int write_file_excl(const char *path, int mode, const char *text, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return joust_errf(err, errlen, errno == EEXIST ? JOUST_EEXIST : JOUST_EIO,
                       "%s: %s", path, errno == EEXIST ? "exists; not overwritten" : strerror(errno));
    size_t len = strlen(text);
    /* fchmod: the umask may only have narrowed the mode, never widened it,
     * but state the intent explicitly. */
    int ok = fchmod(fd, (mode_t)mode) == 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    int e = errno;
    if (close(fd) != 0)
        ok = 0;
    if (!ok) {
        unlink(path);
        return joust_errf(err, errlen, JOUST_EIO, "%s: %s", path, strerror(e));
    }
    return 0;
}

int joust_curve_write_keys(const char *base, const char *name, const joust_curve_keypair *kp,
                           char *err, size_t errlen)
{
    size_t n = strlen(base) + 8;
    char *key_path = xmalloc(n), *pub_path = xmalloc(n);
    snprintf(key_path, n, "%s.key", base);
    snprintf(pub_path, n, "%s.pub", base);
    char text[512];
    int rc;
    struct stat sb;
    if (stat(pub_path, &sb) == 0) {
        rc = joust_errf(err, errlen, JOUST_EEXIST, "%s: %s", pub_path, "exists; not overwritten");
        goto done;
    }
    snprintf(text, sizeof text,
             "# joust CURVE secret key of '%s'. Keep it private: mode 0600, never copy it\n"
             "# to the coordinator (give it %s.pub or the allow-list line instead).\n%s\n",
             name, name, kp->secret_z85);
    rc = write_file_excl(key_path, 0600, text, err, errlen);
    joust_curve_wipe(text, sizeof text);
    if (rc < 0)
        goto done;
    snprintf(text, sizeof text, "# joust CURVE public key of '%s'; allow-list line:\n# %s %s\n%s\n",
             name, name, kp->public_z85, kp->public_z85);
    if ((rc = write_file_excl(pub_path, 0644, text, err, errlen)) < 0)
        unlink(key_path);
done:
    free(key_path);
    free(pub_path);
    return rc;
}

/* Reads a small file into buf (NUL-terminated); *st gets its status. */
static int read_small(const char *path, char *buf, size_t cap, struct stat *st, char *err,
                      size_t errlen)
{
    int fd;
    int rc = joust_open_regular(path, 0, 0, &fd, NULL, err, errlen);
    if (rc)
        return rc;
    if (fstat(fd, st) != 0 || !S_ISREG(st->st_mode)) {
        rc = joust_errf(err, errlen, JOUST_EIO, "%s: %s", path, "not a regular file");
    } else if ((size_t)st->st_size >= cap) {
        rc = joust_errf(err, errlen, JOUST_EINVAL, "%s: %s", path, "too large for a key file");
    } else {
        size_t n = 0;
        ssize_t r;
        while (n < cap - 1 && (r = read(fd, buf + n, cap - 1 - n)) > 0)
            n += (size_t)r;
        buf[n] = '\0';
    }
    close(fd);
    return rc;
}

/* The first line that is neither blank nor a '#' comment, trimmed, must be
 * exactly one Z85 key. '#' is a Z85 character: a line that is a whole
 * valid key is a key even when it starts with '#'. */
static int key_from_text(const char *text, char out[JOUST_CURVE_Z85_LEN + 1])
{
    const char *s = text;
    while (*s) {
        const char *eol = strchr(s, '\n');
        size_t len = eol ? (size_t)(eol - s) : strlen(s);
        const char *b = s, *e = s + len;
        while (b < e && (*b == ' ' || *b == '\t' || *b == '\r'))
            b++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        int is_key = z85_valid(b, (size_t)(e - b));
        if (b < e && (is_key || *b != '#')) {
            if (!is_key)
                return JOUST_EINVAL;
            memcpy(out, b, JOUST_CURVE_Z85_LEN);
            out[JOUST_CURVE_Z85_LEN] = '\0';
            return 0;
        }
        s = eol ? eol + 1 : s + len;
    }
    return JOUST_EINVAL;
}

int joust_curve_read_secret(const char *path, joust_curve_keypair *kp, char *err, size_t errlen)
{
    memset(kp, 0, sizeof *kp);
    char buf[KEY_FILE_MAX];
    struct stat st;
    int rc = read_small(path, buf, sizeof buf, &st, err, errlen);
    if (rc == 0 && (st.st_mode & 077))
        rc = joust_errf(err, errlen, JOUST_EDENIED, "%s: %s", path,
                     "secret key file is accessible by group or others (chmod 600 it)");
    if (rc == 0 && key_from_text(buf, kp->secret_z85) < 0)
        rc = joust_errf(err, errlen, JOUST_EINVAL, "%s: %s", path, "no valid Z85 secret key in it");
    if (rc == 0 && zmq_curve_public(kp->public_z85, kp->secret_z85) != 0)
        rc = joust_errf(err, errlen, JOUST_EINVAL, "%s: %s", path, "cannot derive the public key");
    joust_curve_wipe(buf, sizeof buf);
    if (rc < 0)
        joust_curve_wipe(kp, sizeof *kp);
    return rc;
}

int joust_curve_read_public(const char *z85_or_path, char out[JOUST_CURVE_Z85_LEN + 1], char *err,
                            size_t errlen)
{
    out[0] = '\0';
    /* A path first: many paths are 40 Z85 characters too ('/', '.', '-'
     * are in the alphabet), e.g. keys-for-the-nightly-run/coordinator.pub.
     * The literal is taken only when no such file (or anything) exists. */
    struct stat st;
    if (lstat(z85_or_path, &st) != 0 && errno == ENOENT) {
        if (z85_valid(z85_or_path, strlen(z85_or_path))) {
            memcpy(out, z85_or_path, JOUST_CURVE_Z85_LEN + 1);
            return 0;
        }
        return joust_errf(err, errlen, JOUST_ENOTFOUND, "%s: %s", z85_or_path,
                       "neither an existing file nor a Z85 public key (40 characters)");
    }
    char buf[KEY_FILE_MAX];
    int rc = read_small(z85_or_path, buf, sizeof buf, &st, err, errlen);
    if (rc == 0 && key_from_text(buf, out) < 0)
        rc = joust_errf(err, errlen, JOUST_EINVAL, "%s: %s", z85_or_path,
                     "a file without a Z85 public key in it");
    return rc;
}

/* ---- the allow-list ---- */

typedef struct {
    char name[JOUST_CURVE_NAME_MAX + 1];
    unsigned char key[32];
} allow_entry;

struct joust_curve_allow {
    allow_entry *e;
    size_t n, cap;
};

static int name_char(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == '@' || c == ':';
}

size_t joust_curve_allow_count(const joust_curve_allow_t *a)
{
    return a ? a->n : 0;
}

const char *joust_curve_allow_lookup(const joust_curve_allow_t *a, const unsigned char key[32])
{
    uintptr_t found = 0;
    for (size_t i = 0; i < a->n; i++) {
        unsigned diff = 0;
        for (int b = 0; b < 32; b++)
            diff |= (unsigned)(a->e[i].key[b] ^ key[b]);
        /* diff is 0..255: (diff - 1) >> 8 is all ones exactly when diff == 0 */
        uintptr_t mask = (uintptr_t)0 - (uintptr_t)(((diff - 1u) >> 8) & 1u);
        found |= mask & (uintptr_t)a->e[i].name;
    }
    return (const char *)found;
}

int joust_curve_allow_parse(const char *text, joust_curve_allow_t **out, char *err, size_t errlen)
{
    *out = NULL;
    joust_curve_allow_t *a = xcalloc(1, sizeof *a);
    const char *s = text;
    int line = 0;
    char where[32];
    while (*s) {
        line++;
        snprintf(where, sizeof where, "line %d", line);
        const char *eol = strchr(s, '\n');
        size_t len = eol ? (size_t)(eol - s) : strlen(s);
        const char *p = s, *e = s + len;
        s = eol ? eol + 1 : s + len;
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
            e--;
        if (p == e || *p == '#')
            continue;
        const char *name = p;
        while (p < e && name_char((unsigned char)*p))
            p++;
        size_t nlen = (size_t)(p - name);
        if (nlen == 0 || nlen > JOUST_CURVE_NAME_MAX || p == e || (*p != ' ' && *p != '\t')) {
            joust_errf(err, errlen, 0, "%s: %s", where,
                    "expected 'name public-key' with a name of 1..64 of [A-Za-z0-9._@:-]");
            goto bad;
        }
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        if (!z85_valid(p, (size_t)(e - p))) {
            joust_errf(err, errlen, 0, "%s: %s", where, "the public key is not 40 Z85 characters");
            goto bad;
        }
        xgrow((void **)&a->e, &a->cap, a->n + 1, sizeof *a->e);
        allow_entry *ent = &a->e[a->n];
        memcpy(ent->name, name, nlen);
        ent->name[nlen] = '\0';
        char z[JOUST_CURVE_Z85_LEN + 1];
        memcpy(z, p, JOUST_CURVE_Z85_LEN);
        z[JOUST_CURVE_Z85_LEN] = '\0';
        zmq_z85_decode(ent->key, z);
        if (joust_curve_allow_lookup(a, ent->key)) {
            joust_errf(err, errlen, 0, "%s: %s", where, "this key is already listed");
            goto bad;
        }
        a->n++;
    }
    if (a->n == 0) {
        joust_errf(err, errlen, 0, "the allow-list names no worker key");
        goto bad;
    }
    *out = a;
    return 0;
bad:
    joust_curve_allow_destroy(&a);
    return JOUST_EINVAL;
}

int joust_curve_allow_load(const char *path, joust_curve_allow_t **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f;
    int orc = joust_fopen_regular(path, 0, 0, &f, NULL, err, errlen);
    if (orc)
        return orc;
    char *text = xmalloc(ALLOW_FILE_MAX + 1);
    size_t n = fread(text, 1, ALLOW_FILE_MAX + 1, f);
    int rc = ferror(f) ? JOUST_EIO : n > ALLOW_FILE_MAX ? JOUST_ETOOBIG : 0;
    fclose(f);
    if (rc < 0) {
        free(text);
        return joust_errf(err, errlen, rc, "%s: %s", path, rc == JOUST_EIO ? "read error" : "too large");
    }
    text[n] = '\0';
    char why[160] = "";
    if (memchr(text, '\0', n)) {
        rc = JOUST_EINVAL;
        snprintf(why, sizeof why, "contains a NUL byte");
    } else {
        rc = joust_curve_allow_parse(text, out, why, sizeof why);
    }
    free(text);
    if (rc < 0)
        joust_errf(err, errlen, rc, "%s: %s", path, why);
    return rc;
}

void joust_curve_allow_destroy(joust_curve_allow_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->e);
    free(*self_p);
    *self_p = NULL;
}

/* ---- the ZAP handler (RFC 27) ---- */

typedef struct {
    void *rep;
    joust_curve_allow_t *allow;
    time_t last_denial_log;
    unsigned long denials_unlogged;
} zap_t;

static int send_str(void *sock, const void *data, size_t len, int more)
{
    return zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0) < 0 ? -1 : 0;
}

/* One request: [version "1.0"] [request id] [domain] [address] [routing id]
 * [mechanism] [credentials...]; CURVE has exactly one 32-byte credential. */
static int zap_serve_one(zap_t *z)
{
    enum { MAXF = 8 };
    zmq_msg_t f[MAXF];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, z->rep, 0) < 0) {
            int e = errno;
            zmq_msg_close(&part);
            for (int i = 0; i < n; i++)
                zmq_msg_close(&f[i]);
            return e == ETERM ? -1 : 0;
        }
        more = zmq_msg_more(&part);
        if (n < MAXF)
            f[n++] = part;
        else
            zmq_msg_close(&part);
    }
    const char *user = NULL;
    char address[64] = "?";
    if (n >= 4) {
        size_t al = zmq_msg_size(&f[3]) < sizeof address - 1 ? zmq_msg_size(&f[3]) : sizeof address - 1;
        memcpy(address, zmq_msg_data(&f[3]), al);
        address[al] = '\0';
    }
    int curve = n == 7 && zmq_msg_size(&f[0]) == 3 && !memcmp(zmq_msg_data(&f[0]), "1.0", 3) &&
                zmq_msg_size(&f[5]) == 5 && !memcmp(zmq_msg_data(&f[5]), "CURVE", 5) &&
                zmq_msg_size(&f[6]) == 32;
    if (curve)
        user = joust_curve_allow_lookup(z->allow, zmq_msg_data(&f[6]));
    if (user) {
        log_info("CURVE: worker '%s' authenticated from %s", user, address);
    } else {
        time_t now = time(NULL);
        if (now != z->last_denial_log) { /* at most one line a second */
            char pub[JOUST_CURVE_Z85_LEN + 1] = "(not a CURVE key)";
            if (curve)
                zmq_z85_encode(pub, zmq_msg_data(&f[6]), 32);
            log_warn("CURVE: denied a client from %s: public key %s is not in the allow-list"
                     " (%lu more denials not logged)", address, pub, z->denials_unlogged);
            z->last_denial_log = now;
            z->denials_unlogged = 0;
        } else {
            z->denials_unlogged++;
        }
    }
    const char *status = user ? "200" : "400", *text = user ? "OK" : "key not allowed";
    int rc = send_str(z->rep, "1.0", 3, 1);
    if (rc == 0)
        rc = n >= 2 ? (zmq_send(z->rep, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE) < 0 ? -1 : 0)
                    : send_str(z->rep, "", 0, 1);
    if (rc == 0) rc = send_str(z->rep, status, 3, 1);
    if (rc == 0) rc = send_str(z->rep, text, strlen(text), 1);
    if (rc == 0) rc = send_str(z->rep, user ? user : "", user ? strlen(user) : 0, 1);
    if (rc == 0) rc = send_str(z->rep, "", 0, 0); /* metadata */
    int e = errno;
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
    return rc < 0 && e == ETERM ? -1 : 0;
}

static void *zap_main(void *arg)
{
    zap_t *z = arg;
    while (zap_serve_one(z) == 0)
        ;
    /* The context is terminating: zmq_ctx_term waits for this close. */
    zmq_close(z->rep);
    joust_curve_allow_destroy(&z->allow);
    free(z);
    return NULL;
}

int joust_zap_start(void *ctx, joust_curve_allow_t **allow_p)
{
    joust_curve_allow_t *allow = *allow_p;
    *allow_p = NULL;
    void *rep = zmq_socket(ctx, ZMQ_REP);
    if (!rep) {
        joust_curve_allow_destroy(&allow);
        return JOUST_EIO;
    }
    int zero = 0;
    zmq_setsockopt(rep, ZMQ_LINGER, &zero, sizeof zero);
    /* Bound here, before any server socket exists, so no handshake can
     * find the context without its handler (libzmq then lets CURVE
     * clients in unauthenticated). */
    if (zmq_bind(rep, "inproc://zeromq.zap.01") != 0) {
        int e = errno;
        zmq_close(rep);
        joust_curve_allow_destroy(&allow);
        return e == EADDRINUSE ? JOUST_EEXIST : JOUST_EIO;
    }
    zap_t *z = xcalloc(1, sizeof *z);
    z->rep = rep;
    z->allow = allow;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* pthread_create is a full memory barrier: the socket migrates to the
     * new thread, which alone uses it from now on. */
    int err = pthread_create(&t, &attr, zap_main, z);
    pthread_attr_destroy(&attr);
    if (err) {
        zmq_close(rep);
        joust_curve_allow_destroy(&z->allow);
        free(z);
        return JOUST_EIO;
    }
    return 0;
}

int joust_curve_server_setup(void *sock, const joust_curve_keypair *kp)
{
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, kp->secret_z85, JOUST_CURVE_Z85_LEN + 1) != 0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, JOUST_CURVE_ZAP_DOMAIN, strlen(JOUST_CURVE_ZAP_DOMAIN)) != 0)
        return JOUST_EIO;
    return 0;
}

int joust_curve_client_setup(void *sock, const joust_curve_keypair *kp,
                             const char server_public_z85[JOUST_CURVE_Z85_LEN + 1])
{
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_public_z85, JOUST_CURVE_Z85_LEN + 1) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, kp->public_z85, JOUST_CURVE_Z85_LEN + 1) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, kp->secret_z85, JOUST_CURVE_Z85_LEN + 1) != 0)
        return JOUST_EIO;
    return 0;
}
