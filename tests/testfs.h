/* File helpers for tests that work in a temporary folder. */
#ifndef JOUST_TEST_FS_H
#define JOUST_TEST_FS_H
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Removes path and everything below it (symlinks are removed, not followed). */
static inline void rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlink(path);
        return;
    }
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[PATH_MAX];
            int n = snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            if (n > 0 && (size_t)n < sizeof sub)
                rm_rf(sub);
        }
        closedir(d);
    }
    rmdir(path);
}

/* Writes the string s to path; a test that cannot is broken (exit 2). */
static inline void write_str(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    if (!f || fputs(s, f) < 0) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

/* Makes the folder tmpl (a mkdtemp template, changed in place) and puts
 * its real path in root[cap]; 0, or -1 after perror. */
static inline int make_test_root(char *tmpl, char *root, size_t cap)
{
    char resolved[PATH_MAX];
    if (!mkdtemp(tmpl) || !realpath(tmpl, resolved) || strlen(resolved) >= cap) {
        perror("mkdtemp");
        return -1;
    }
    memcpy(root, resolved, strlen(resolved) + 1);
    return 0;
}

/* dir/name in one of 8 rotating buffers (valid for the next 7 calls). */
static inline char *path_under(const char *dir, const char *name)
{
    static char buf[8][PATH_MAX];
    static int slot;
    char *p = buf[slot++ % 8];
    snprintf(p, sizeof buf[0], "%s/%s", dir, name);
    return p;
}

/* Makes the special files of the hostile set in dir, each name ending in
 * ext: fifo, dir, sock (a bound socket) and the links to-fifo, to-zero
 * (/dev/zero), to-dir, to-sock. Returns the socket's descriptor (close it
 * when done), or -1 when something could not be made. */
static inline int make_special_files(const char *dir, const char *ext)
{
    char p[6][PATH_MAX / 2], l[PATH_MAX / 2];
    const char *name[] = {"fifo", "dir", "sock", "to-fifo", "to-dir", "to-sock"};
    for (int i = 0; i < 6; i++)
        snprintf(p[i], sizeof p[i], "%s/%s%s", dir, name[i], ext);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t n = strlen(p[2]);
    if (n >= sizeof addr.sun_path)
        n = sizeof addr.sun_path - 1;
    memcpy(addr.sun_path, p[2], n);
    snprintf(l, sizeof l, "%s/to-zero%s", dir, ext);
    int ok = mkfifo(p[0], 0600) == 0 && mkdir(p[1], 0700) == 0 && s >= 0 &&
             bind(s, (struct sockaddr *)&addr, sizeof addr) == 0 && symlink(p[0], p[3]) == 0 &&
             symlink(p[1], p[4]) == 0 && symlink(p[2], p[5]) == 0 && symlink("/dev/zero", l) == 0;
    if (!ok && s >= 0)
        close(s);
    return ok ? s : -1;
}

#endif
