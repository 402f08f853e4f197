/* Atomic output (core/io/outfile.c): a complete file or the previous one, never a torn one,
 * and no temporary left behind, also when the writes go through stdio (fprintf) and the
 * disk fills up half way. The disk is "full" through RLIMIT_FSIZE, with SIGXFSZ ignored. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static const char previous[] = "the previous file\n";

static void write_previous(const char *path)
{
    FILE *f = fopen(path, "wb");
    CHECK(f && fputs(previous, f) >= 0);
    if (f)
        fclose(f);
}

static int holds_previous(const char *path)
{
    size_t len;
    char *d = mipr_test_read_file(path, &len);
    int same = len == strlen(previous) && memcmp(d, previous, len) == 0;
    free(d);
    return same;
}

/* Temporaries of base ("." + base + ".tmp.") in the test folder. */
static int temporaries(const char *dir, const char *base)
{
    char prefix[512];
    snprintf(prefix, sizeof prefix, ".%s.tmp.", base);
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    if (d)
        closedir(d);
    return n;
}

static void split(const char *path, char *dir, size_t cap, const char **base)
{
    const char *slash = strrchr(path, '/');
    snprintf(dir, cap, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    *base = slash ? slash + 1 : path;
}

/* Writes past a 16 KiB file-size limit: with stdio, fprintf's errors are ignored on the way
 * (as callers do) and the stream's error flag must fail the commit; through
 * mipr_outfile_write, the failing write itself reports. Either way the previous file stays
 * and no temporary is left. */
static mipr_status write_past_limit(mipr_outfile *o, int stdio, mipr_error *err)
{
    static char block[65536];
    mipr_status st = MIPR_OK;
    if (stdio) {
        for (int i = 0; i < 4000; i++) /* 160 KB */
            fprintf(o->fp, "{\"line\": %6d, \"pad\": \"0123456789\"},\n", i);
        return mipr_outfile_commit(o, err);
    }
    for (int i = 0; i < 4 && st == MIPR_OK; i++)
        st = mipr_outfile_write(o, block, sizeof block, err);
    if (st == MIPR_OK)
        return mipr_outfile_commit(o, err);
    mipr_outfile_abort(o);
    return st;
}

static void test_full_disk(const char *name, int stdio)
{
    const char *path = mipr_test_tmp(name);
    char dir[4096];
    const char *base;
    split(path, dir, sizeof dir, &base);
    write_previous(path);
    struct rlimit old, small;
    CHECK(getrlimit(RLIMIT_FSIZE, &old) == 0);
    small = old;
    small.rlim_cur = 16384;
    mipr_outfile o;
    mipr_error err = {0};
    CHECK_OK(mipr_outfile_open(&o, path, &err), &err);
    CHECK(setrlimit(RLIMIT_FSIZE, &small) == 0);
    mipr_status st = write_past_limit(&o, stdio, &err);
    CHECK(setrlimit(RLIMIT_FSIZE, &old) == 0);
    CHECK(st == MIPR_ERR_IO && strstr(err.msg, path) != NULL);
    fprintf(stderr, "full disk (%s): %s\n", stdio ? "stdio" : "write", err.msg);
    CHECK(holds_previous(path));
    CHECK(temporaries(dir, base) == 0);
    unlink(path);
}

/* Abort leaves the previous file; commit replaces it and keeps its permissions. */
static void test_abort_and_commit(void)
{
    const char *path = mipr_test_tmp("out.bin");
    char dir[4096];
    const char *base;
    split(path, dir, sizeof dir, &base);
    write_previous(path);
    CHECK(chmod(path, 0640) == 0);
    mipr_outfile o;
    mipr_error err = {0};
    CHECK_OK(mipr_outfile_open(&o, path, &err), &err);
    CHECK_OK(mipr_outfile_write(&o, "new", 3, &err), &err);
    CHECK(temporaries(dir, base) == 1);
    mipr_outfile_abort(&o);
    CHECK(holds_previous(path) && temporaries(dir, base) == 0);
    CHECK_OK(mipr_outfile_open(&o, path, &err), &err);
    CHECK_OK(mipr_outfile_write(&o, "new", 3, &err), &err);
    CHECK_OK(mipr_outfile_commit(&o, &err), &err);
    mipr_outfile_abort(&o); /* after commit: nothing to do */
    size_t len;
    char *d = mipr_test_read_file(path, &len);
    CHECK(len == 3 && memcmp(d, "new", 3) == 0);
    free(d);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0640);
    CHECK(temporaries(dir, base) == 0);
    unlink(path);
}

int main(void)
{
    signal(SIGXFSZ, SIG_IGN); /* the limit then fails writes with EFBIG */
    test_abort_and_commit();
    test_full_disk("model.gguf", 0);
    test_full_disk("report.json", 1);
    return mipr_test_finish("outfile");
}
