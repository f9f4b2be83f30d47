/* `joust keygen NAME`: a CURVE keypair for a coordinator or a worker.
 * Writes NAME.key (the secret key, mode 0600, never overwritten) and
 * NAME.pub (the public key) under --out (default .; created with mode 0700
 * when missing), and prints the allow-list line "NAME PUBLIC-KEY" on
 * stdout. The secret key is never printed. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "curve.h"
#include "err.h"

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > JOUST_CURVE_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("._@:-", *s)))
            return 0;
    return 1;
}

/* mkdir -p: missing parents 0755, the key directory itself 0700. An
 * existing directory keeps its mode. */
static int make_key_dir(const char *dir)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s", dir);
    if (n >= (int)sizeof path)
        return -ENAMETOOLONG;
    while (n > 1 && path[n - 1] == '/') /* "keys/" is the key directory, not a parent */
        path[--n] = '\0';
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -errno;
    struct stat sb;
    if (stat(path, &sb) != 0)
        return -errno;
    return S_ISDIR(sb.st_mode) ? 0 : -ENOTDIR;
}

int cmd_keygen(int argc, char **argv)
{
    cli_opts o;
    if (cli_parse(argc, argv, &o) < 0)
        return 2;
    if (o.help) {
        printf("usage: joust keygen NAME [--out DIR]\n"
               "Writes DIR/NAME.key (CURVE secret key, mode 0600) and DIR/NAME.pub, and prints\n"
               "the allow-list line \"NAME PUBLIC-KEY\" for the coordinator's --allow file.\n"
               "DIR (default .) is created with mode 0700 when missing.\n"
               "NAME: 1..64 of [A-Za-z0-9._@:-]. Existing files are never overwritten.\n");
        return 0;
    }
    if (o.argc != 1 || !valid_name(o.argv[0])) {
        fprintf(stderr, "usage: joust keygen NAME [--out DIR]   (NAME: 1..64 of [A-Za-z0-9._@:-])\n");
        return 2;
    }
    const char *name = o.argv[0];
    int derr = make_key_dir(o.out);
    if (derr < 0) {
        fprintf(stderr, "joust keygen: --out %s: %s\n", o.out, strerror(-derr));
        return 1;
    }
    char base[PATH_MAX];
    snprintf(base, sizeof base, "%s/%s", o.out, name);
    joust_curve_keypair kp;
    if (joust_curve_keygen(&kp) < 0) {
        fprintf(stderr, "joust keygen: this libzmq has no CURVE support\n");
        return 1;
    }
    char err[PATH_MAX + 64];
    int rc = joust_curve_write_keys(base, name, &kp, err, sizeof err);
    if (rc == 0) {
        fprintf(stderr, "wrote %s.key (secret, mode 0600) and %s.pub\n", base, base);
        printf("%s %s\n", name, kp.public_z85);
    } else {
        fprintf(stderr, "joust keygen: %s\n", err);
    }
    joust_curve_wipe(&kp, sizeof kp);
    return rc == 0 ? 0 : 1;
}
