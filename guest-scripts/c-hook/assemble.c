/*
 * An S2I `assemble` hook in plain C (wasi-libc, no SDK): proof that the hook
 * contract in docs/hooks.md is language-neutral.
 *
 * It copies $DESTINATION/src (default /tmp/src) into /opt/app-root/src,
 * keeping symlinks as symlinks and permission bits (read with ws2i.mode, set
 * with ws2i.chmod), then marks /opt/app-root/src/start executable if present.
 *
 * Build: clang-14 --target=wasm32-wasi -O2 -o assemble.wasm assemble.c
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The ws2i host imports: strings are (ptr, len), results are WASI errnos. */
__attribute__((import_module("ws2i"), import_name("chmod")))
int32_t ws2i_chmod(const char *path, int32_t path_len, int32_t mode);
__attribute__((import_module("ws2i"), import_name("mode")))
int32_t ws2i_mode(const char *path, int32_t path_len, uint32_t *mode_out);

static int failed = 0;

static void fail(const char *what, const char *path, int err) {
    fprintf(stderr, "error: %s %s: %s\n", what, path, strerror(err));
    failed = 1;
}

static void copy_mode(const char *from, const char *to) {
    uint32_t mode = 0;
    int32_t rc = ws2i_mode(from, (int32_t)strlen(from), &mode);
    if (rc != 0) { fail("ws2i.mode", from, rc); return; }
    rc = ws2i_chmod(to, (int32_t)strlen(to), (int32_t)mode);
    if (rc != 0) fail("ws2i.chmod", to, rc);
}

static void copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb");
    if (!in) { fail("open", from, errno); return; }
    unlink(to); /* cp -f: replace whatever is there */
    FILE *out = fopen(to, "wb");
    if (!out) { fail("create", to, errno); fclose(in); return; }
    /* Static: wasm-ld gives a C program a 64 KiB stack by default. */
    static char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        if (fwrite(buf, 1, n, out) != n) { fail("write", to, errno); break; }
    }
    fclose(in);
    if (fclose(out) != 0) fail("close", to, errno);
    copy_mode(from, to);
}

static void copy_tree(const char *from, const char *to) {
    if (mkdir(to, 0755) != 0 && errno != EEXIST) { fail("mkdir", to, errno); return; }
    DIR *dir = opendir(from);
    if (!dir) { fail("opendir", from, errno); return; }
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        /* On the heap: this recurses, and the stack is small (see above). */
        char *src = malloc(2 * PATH_MAX), *dst = src ? src + PATH_MAX : NULL;
        if (!src) { fail("malloc", from, ENOMEM); break; }
        snprintf(src, PATH_MAX, "%s/%s", from, e->d_name);
        snprintf(dst, PATH_MAX, "%s/%s", to, e->d_name);
        struct stat st;
        if (lstat(src, &st) != 0) {
            fail("lstat", src, errno);
        } else if (S_ISLNK(st.st_mode)) {
            static char target[PATH_MAX];
            ssize_t len = readlink(src, target, sizeof target - 1);
            if (len < 0) {
                fail("readlink", src, errno);
            } else {
                target[len] = '\0';
                unlink(dst);
                if (symlink(target, dst) != 0) fail("symlink", dst, errno);
            }
        } else if (S_ISDIR(st.st_mode)) {
            copy_tree(src, dst);
        } else if (S_ISREG(st.st_mode)) {
            copy_file(src, dst);
        }
        free(src);
    }
    closedir(dir);
    copy_mode(from, to);
}

int main(void) {
    const char *dest = getenv("DESTINATION");
    if (!dest || !*dest) dest = "/tmp";
    char src[PATH_MAX];
    snprintf(src, sizeof src, "%s/src", dest);

    printf("---> Installing application source (C hook)...\n");
    fflush(stdout);
    mkdir("/opt", 0755);
    mkdir("/opt/app-root", 0755);
    copy_tree(src, "/opt/app-root/src");

    const char *start = "/opt/app-root/src/start";
    if (access(start, F_OK) == 0) {
        int32_t rc = ws2i_chmod(start, (int32_t)strlen(start), 0755);
        if (rc != 0) fail("ws2i.chmod", start, rc);
        else printf("---> Marked %s executable\n", start);
    }
    return failed ? 1 : 0;
}
