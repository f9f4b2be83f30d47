/* Tests of proto/curve.h and of what the wire does with it:
 * - key files: joust_curve_write_keys makes NAME.key mode 0600 and NAME.pub,
 *   never overwrites, reads back to the same keypair; a group-readable
 *   secret key is refused; comments and blanks around the key are skipped;
 *   garbage is rejected;
 * - the allow-list parser: comments, several keys per name, bad lines,
 *   duplicate keys, empty lists; constant-time lookup finds exactly the
 *   listed keys;
 * - ZAP allow/deny over tcp://127.0.0.1 with the real handler: an allowed
 *   key's messages arrive carrying its allow-list name as user_id; an
 *   unknown key and a plain (NULL mechanism) client get nothing through; a
 *   second handler on the same context is refused;
 * - joust_wire_header / joust_wire_decode work without sockets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "check.h"
#include "curve.h"
#include "err.h"
#include "wire.h"

static char dir[] = "/tmp/joust-curve-XXXXXX";

static void write_text(const char *path, const char *text, int mode)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, (mode_t)mode);
}

static void test_key_files(void)
{
    char base[256], path[300], err[512];
    joust_curve_keypair kp, back;
    CHECK_RC(joust_curve_keygen(&kp));
    CHECK(strlen(kp.public_z85) == 40 && strlen(kp.secret_z85) == 40);
    snprintf(base, sizeof base, "%s/w1", dir);
    CHECK_RC(joust_curve_write_keys(base, "w1", &kp, err, sizeof err));
    struct stat st;
    snprintf(path, sizeof path, "%s.key", base);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK_RC(joust_curve_read_secret(path, &back, err, sizeof err));
    CHECK(!strcmp(back.secret_z85, kp.secret_z85) && !strcmp(back.public_z85, kp.public_z85));
    char pub[41];
    snprintf(path, sizeof path, "%s.pub", base);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0644);
    CHECK_RC(joust_curve_read_public(path, pub, err, sizeof err));
    CHECK(!strcmp(pub, kp.public_z85));
    CHECK_RC(joust_curve_read_public(kp.public_z85, pub, err, sizeof err));
    CHECK(!strcmp(pub, kp.public_z85));
    /* the .pub file does not hold the secret */
    FILE *f = fopen(path, "r");
    char text[512] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    CHECK(!strstr(text, kp.secret_z85));

    /* never overwritten */
    joust_curve_keypair other;
    CHECK_RC(joust_curve_keygen(&other));
    CHECK(joust_curve_write_keys(base, "w1", &other, err, sizeof err) == JOUST_EEXIST);
    snprintf(path, sizeof path, "%s.key", base);
    CHECK_RC(joust_curve_read_secret(path, &back, err, sizeof err));
    CHECK(!strcmp(back.secret_z85, kp.secret_z85));

    /* group- or world-accessible secret keys are refused */
    chmod(path, 0640);
    CHECK(joust_curve_read_secret(path, &back, err, sizeof err) == JOUST_EDENIED);
    CHECK(strstr(err, "chmod 600") != NULL && !strstr(err, kp.secret_z85));
    chmod(path, 0600);

    /* comments, blank lines, CRLF and surrounding blanks around the key */
    snprintf(path, sizeof path, "%s/crlf.key", dir);
    snprintf(text, sizeof text, "# comment\r\n\r\n  %s \r\n# trailing\n", kp.secret_z85);
    write_text(path, text, 0600);
    CHECK_RC(joust_curve_read_secret(path, &back, err, sizeof err));
    CHECK(!strcmp(back.public_z85, kp.public_z85));

    /* garbage, missing files */
    snprintf(path, sizeof path, "%s/garbage.key", dir);
    write_text(path, "# a comment\nnot a key at all\n", 0600);
    CHECK(joust_curve_read_secret(path, &back, err, sizeof err) == JOUST_EINVAL);
    write_text(path, "# only comments\n", 0600);
    CHECK(joust_curve_read_secret(path, &back, err, sizeof err) == JOUST_EINVAL);
    snprintf(path, sizeof path, "%s/missing.key", dir);
    CHECK(joust_curve_read_secret(path, &back, err, sizeof err) == JOUST_ENOTFOUND);
    CHECK(joust_curve_read_public("tooshort", pub, err, sizeof err) == JOUST_ENOTFOUND);
}

static void test_allow_list(void)
{
    joust_curve_keypair a, b, c;
    joust_curve_keygen(&a);
    joust_curve_keygen(&b);
    joust_curve_keygen(&c);
    char text[1024], err[256];
    snprintf(text, sizeof text,
             "# workers\n\n  alice %s\nbob\t%s  \r\nalice %s\n", a.public_z85, b.public_z85, c.public_z85);
    joust_curve_allow_t *al;
    CHECK_RC(joust_curve_allow_parse(text, &al, err, sizeof err));
    CHECK(joust_curve_allow_count(al) == 3);
    unsigned char key[32];
    zmq_z85_decode(key, a.public_z85);
    const char *who = joust_curve_allow_lookup(al, key);
    CHECK(who && !strcmp(who, "alice"));
    zmq_z85_decode(key, b.public_z85);
    who = joust_curve_allow_lookup(al, key);
    CHECK(who && !strcmp(who, "bob"));
    zmq_z85_decode(key, c.public_z85); /* rotation: a second key for alice */
    who = joust_curve_allow_lookup(al, key);
    CHECK(who && !strcmp(who, "alice"));
    key[31] ^= 1;
    CHECK(joust_curve_allow_lookup(al, key) == NULL);
    memset(key, 0, sizeof key);
    CHECK(joust_curve_allow_lookup(al, key) == NULL);
    joust_curve_allow_destroy(&al);
    CHECK(al == NULL);

    /* prefix, then the key (0: none, 1: once, 2: "KEY\nbob KEY": listed twice), suffix */
    const struct { const char *pre; int key; const char *post; } bad[] = {
        {"alice\n", 0, ""}, {"al ice ", 1, "\n"}, {"alice notakey\n", 0, ""},
        {"bad/name ", 1, "\n"}, {"# nothing\n", 0, ""}, {"", 0, ""}, {"alice ", 2, "\n"},
        {"a-name-that-is-much-longer-than-sixty-four-characters-is-refused-here ", 1, "\n"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(text, sizeof text, "%s%s%s%s%s", bad[i].pre, bad[i].key ? a.public_z85 : "",
                 bad[i].key == 2 ? "\nbob " : "", bad[i].key == 2 ? a.public_z85 : "", bad[i].post);
        err[0] = '\0';
        int rc = joust_curve_allow_parse(text, &al, err, sizeof err);
        CHECK(rc == JOUST_EINVAL && !al && err[0]);
        if (rc != JOUST_EINVAL)
            fprintf(stderr, "accepted bad allow-list %zu: %s\n", i, text);
    }
    snprintf(text, sizeof text, "%s/allow.txt", dir);
    CHECK(joust_curve_allow_load(text, &al, err, sizeof err) == JOUST_ENOTFOUND);
}

/* ---- ZAP over tcp ---- */

static void *client(void *ctx, const char *ep, const joust_curve_keypair *kp, const char *server)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    joust_wire_socket_setup(s, 0);
    if (kp)
        joust_curve_client_setup(s, kp, server);
    zmq_connect(s, ep);
    return s;
}

static void send_ready(void *s, const char *claimed)
{
    Joust__Ready r = JOUST__READY__INIT;
    r.worker_name = (char *)claimed;
    r.slots = 1;
    r.judge = "sim";
    joust_wire_send(s, NULL, 0, JOUST_CMD_READY, &r.base);
}

/* Collects READY messages at the server for ms milliseconds; returns the
 * user_ids seen, joined by ','. */
static void collect(void *server, int ms, char *seen, size_t cap)
{
    seen[0] = '\0';
    for (int t = 0; t < ms; t += 50) {
        zmq_pollitem_t it = {server, 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 50);
        joust_wire_msg m;
        while (joust_wire_recv(server, 1, &m) == 0) {
            const Joust__Ready *r = (const Joust__Ready *)m.body;
            size_t n = strlen(seen);
            snprintf(seen + n, cap - n, "%s%s/%s", n ? "," : "", m.user_id, r ? r->worker_name : "?");
            joust_wire_msg_clear(&m);
        }
    }
}

static void test_zap(void)
{
    joust_curve_keypair srv, good, unknown;
    joust_curve_keygen(&srv);
    joust_curve_keygen(&good);
    joust_curve_keygen(&unknown);
    char text[256], err[256];
    snprintf(text, sizeof text, "gpu-7 %s\n", good.public_z85);
    joust_curve_allow_t *al;
    CHECK_RC(joust_curve_allow_parse(text, &al, err, sizeof err));

    void *sctx = zmq_ctx_new();
    CHECK_RC(joust_zap_start(sctx, &al));
    CHECK(al == NULL);
    joust_curve_allow_t *again;
    joust_curve_allow_parse(text, &again, err, sizeof err);
    CHECK(joust_zap_start(sctx, &again) == JOUST_EEXIST);
    CHECK(again == NULL);
    void *server = zmq_socket(sctx, ZMQ_ROUTER);
    joust_wire_socket_setup(server, 1);
    CHECK_RC(joust_curve_server_setup(server, &srv));
    CHECK(zmq_bind(server, "tcp://127.0.0.1:*") == 0);
    char ep[128];
    size_t len = sizeof ep;
    zmq_getsockopt(server, ZMQ_LAST_ENDPOINT, ep, &len);

    void *cctx = zmq_ctx_new();
    void *bad = client(cctx, ep, &unknown, srv.public_z85);
    void *plain = client(cctx, ep, NULL, NULL);
    void *wrong_server = client(cctx, ep, &good, unknown.public_z85); /* wrong server key */
    send_ready(bad, "gpu-7");
    send_ready(plain, "gpu-7");
    send_ready(wrong_server, "gpu-7");
    char seen[512];
    collect(server, 1000, seen, sizeof seen);
    CHECK(seen[0] == '\0');
    if (seen[0])
        fprintf(stderr, "unexpected messages: %s\n", seen);

    void *ok = client(cctx, ep, &good, srv.public_z85);
    send_ready(ok, "i-claim-to-be-someone-else");
    collect(server, 1000, seen, sizeof seen);
    CHECK(!strcmp(seen, "gpu-7/i-claim-to-be-someone-else"));
    if (strcmp(seen, "gpu-7/i-claim-to-be-someone-else"))
        fprintf(stderr, "seen: '%s'\n", seen);

    zmq_close(bad);
    zmq_close(plain);
    zmq_close(wrong_server);
    zmq_close(ok);
    zmq_ctx_term(cctx);
    zmq_close(server);
    zmq_ctx_term(sctx); /* ends the ZAP thread, which frees the list */
    joust_curve_wipe(&srv, sizeof srv);
    CHECK(srv.secret_z85[0] == '\0' && srv.secret_z85[39] == '\0');
}

static void test_decode(void)
{
    const char *why = NULL;
    unsigned char hdr[5] = {'J', 'S', 'T', JOUST_WIRE_VERSION, JOUST_CMD_READY};
    CHECK(joust_wire_header(hdr, 5, &why) == JOUST_CMD_READY);
    CHECK(joust_wire_header(hdr, 4, &why) == JOUST_EPROTO && !strcmp(why, "bad header frame"));
    hdr[3] = 9;
    CHECK(joust_wire_header(hdr, 5, &why) == JOUST_EPROTO && !strcmp(why, "unsupported protocol version"));
    hdr[3] = JOUST_WIRE_VERSION;
    hdr[4] = 7;
    CHECK(joust_wire_header(hdr, 5, &why) == JOUST_EPROTO && !strcmp(why, "unknown command"));

    Joust__Ready r = JOUST__READY__INIT;
    r.worker_name = "w";
    r.slots = 4;
    r.judge = "sim";
    unsigned char buf[256];
    size_t n = joust__ready__pack(&r, buf);
    joust_wire_msg m;
    memset(&m, 0, sizeof m);
    CHECK_RC(joust_wire_decode(JOUST_CMD_READY, buf, n, &m));
    CHECK(m.body && ((Joust__Ready *)m.body)->slots == 4);
    joust_wire_msg_clear(&m);
    r.slots = 0;
    n = joust__ready__pack(&r, buf);
    CHECK(joust_wire_decode(JOUST_CMD_READY, buf, n, &m) == JOUST_EPROTO && !m.body &&
          strstr(m.error, "slots"));
    CHECK(joust_wire_decode(JOUST_CMD_JOB, "\xff\xff", 2, &m) == JOUST_EPROTO && !m.body);
    CHECK(joust_wire_decode(0, buf, n, &m) == JOUST_EPROTO);
}

int main(void)
{
    if (!zmq_has("curve")) {
        printf("libzmq without CURVE: skipped\n");
        return 77;
    }
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_key_files();
    test_allow_list();
    test_zap();
    test_decode();
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return test_report();
}
