/* Atomic output files: everything is written to a temporary beside the target, which is
 * renamed over it only once complete and synced. A reader of the target therefore sees the
 * old file or the new one, never a torn mix, and a failed write leaves nothing behind. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mipr.h"

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* "dir/.name.tmp.XXXXXX" for "dir/name": same directory so that rename stays atomic. */
static char *tmp_template(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dir_len;
    size_t n = dir_len + 1 + strlen(base) + sizeof ".tmp.XXXXXX";
    char *t = malloc(n);
    if (t)
        snprintf(t, n, "%.*s.%s.tmp.XXXXXX", (int)dir_len, path, base);
    return t;
}

/* mkstemp makes the file 0600; a model file should be as readable as the one it replaces,
 * or 0644 when new (the umask cannot be read without changing it, which is racy). */
static void set_mode(int fd, const char *final_path)
{
    struct stat st;
    mode_t mode = 0644;
    if (stat(final_path, &st) == 0 && S_ISREG(st.st_mode))
        mode = st.st_mode & 07777;
    (void)fchmod(fd, mode);
}

static void outfile_clear(mipr_outfile *o)
{
    free(o->final_path);
    free(o->tmp_path);
    memset(o, 0, sizeof *o);
}

static const char *kind_of(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISSOCK(m) ? "a socket"
                         : "not a regular file";
}

/* Before any work: what the final rename would replace must be a regular file, and none of
 * the inputs. A path that does not exist yet (or a dangling link) is fine. */
static mipr_status check_target(const char *path, const char *const *inputs, size_t n,
                                mipr_error *err)
{
    struct stat out, in;
    if (stat(path, &out) != 0)
        return MIPR_OK;
    if (!S_ISREG(out.st_mode))
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: is %s, not a regular file: refusing to "
                              "replace it with the output", path, kind_of(out.st_mode));
    for (size_t i = 0; i < n; i++)
        if (inputs[i] && stat(inputs[i], &in) == 0 && in.st_dev == out.st_dev &&
            in.st_ino == out.st_ino)
            return mipr_error_set(err, MIPR_ERR_ARG, "%s: is the same file as the input %s: "
                                  "refusing to overwrite an input (choose another output)",
                                  path, inputs[i]);
    return MIPR_OK;
}

mipr_status mipr_outfile_open(mipr_outfile *o, const char *path, mipr_error *err)
{
    return mipr_outfile_open_from(o, path, NULL, 0, err);
}

mipr_status mipr_outfile_open_from(mipr_outfile *o, const char *path, const char *const *inputs,
                                   size_t n, mipr_error *err)
{
    memset(o, 0, sizeof *o);
    if (!path || !*path)
        return mipr_error_set(err, MIPR_ERR_ARG, "output path is empty");
    mipr_status st = check_target(path, inputs, n, err);
    if (st)
        return st;
    o->final_path = dup_str(path);
    o->tmp_path = tmp_template(path);
    if (!o->final_path || !o->tmp_path) {
        outfile_clear(o);
        return mipr_error_set(err, MIPR_ERR_NOMEM, "%s: out of memory", path);
    }
    int fd = mkstemp(o->tmp_path);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            mipr_error_set(err, MIPR_ERR_IO, "%s: the folder it would go in does not exist",
                           path);
        else
            mipr_error_set(err, MIPR_ERR_IO, "%s: cannot create a temporary file beside it: %s",
                           path, strerror(e));
        outfile_clear(o);
        return MIPR_ERR_IO;
    }
    set_mode(fd, path);
    o->fp = fdopen(fd, "wb");
    if (!o->fp) {
        int e = errno;
        close(fd);
        unlink(o->tmp_path);
        outfile_clear(o);
        return mipr_error_set(err, MIPR_ERR_IO, "%s: cannot open a stream: %s", path,
                              strerror(e));
    }
    return MIPR_OK;
}

mipr_status mipr_outfile_write(mipr_outfile *o, const void *p, size_t n, mipr_error *err)
{
    if (!o->fp)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: write to a closed output",
                              o->final_path ? o->final_path : "(output)");
    if (n == 0 || fwrite(p, 1, n, o->fp) == n)
        return MIPR_OK;
    int e = errno;
    return mipr_error_set(err, MIPR_ERR_IO, "%s: write failed: %s", o->final_path,
                          strerror(e ? e : EIO));
}

/* Makes the rename itself durable; failure here is not worth failing the write for. */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? malloc((size_t)(slash - path) + 2) : dup_str(".");
    if (!dir)
        return;
    if (slash) {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

mipr_status mipr_outfile_commit(mipr_outfile *o, mipr_error *err)
{
    if (!o->fp)
        return mipr_error_set(err, MIPR_ERR_ARG, "%s: commit of a closed output",
                              o->final_path ? o->final_path : "(output)");
    /* A stream error from any earlier write (e.g. fprintf into a full disk) leaves the
     * buffer discarded, and a later fflush may then succeed: check the sticky flag too. */
    const char *step = "write";
    int bad = ferror(o->fp) != 0;
    int e = 0;
    if (!bad) {
        step = "flush";
        bad = fflush(o->fp) != 0;
        e = errno;
    }
    if (!bad) {
        step = "sync";
        bad = fsync(fileno(o->fp)) != 0;
        e = errno;
    }
    if (fclose(o->fp) != 0 && !bad) {
        step = "close";
        bad = 1;
        e = errno;
    }
    o->fp = NULL;
    if (!bad && rename(o->tmp_path, o->final_path) != 0) {
        step = "rename";
        bad = 1;
        e = errno;
    }
    if (bad) {
        if (e == 0 && strcmp(step, "write") == 0) /* stdio keeps the flag, not the errno */
            mipr_error_set(err, MIPR_ERR_IO, "%s: write failed (disk full, or an I/O error)",
                           o->final_path);
        else
            mipr_error_set(err, MIPR_ERR_IO, "%s: %s failed: %s", o->final_path, step,
                           strerror(e));
        unlink(o->tmp_path);
        outfile_clear(o);
        return MIPR_ERR_IO;
    }
    sync_dir(o->final_path);
    outfile_clear(o);
    return MIPR_OK;
}

void mipr_outfile_abort(mipr_outfile *o)
{
    if (!o)
        return;
    if (o->fp) {
        fclose(o->fp);
        o->fp = NULL;
    }
    if (o->tmp_path)
        unlink(o->tmp_path);
    outfile_clear(o);
}
