/* The only file-system access of the runtime. A firmware build replaces this file. */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* madvise */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mipr_runtime.h"

mipr_status mipr_file_map(mipr_mapped_file *out, const char *path, mipr_error *err)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return mipr_error_set(err, MIPR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mipr_error_set(err, MIPR_ERR_IO, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return MIPR_OK;
    }
    if ((unsigned long long)st.st_size > (unsigned long long)SIZE_MAX) {
        close(fd);
        return mipr_error_set(err, MIPR_ERR_IO, "%s: too large to map", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int saved = errno;
    close(fd);
    if (p == MAP_FAILED)
        return mipr_error_set(err, MIPR_ERR_IO, "%s: cannot map: %s", path, strerror(saved));
    out->data = p;
    out->size = (size_t)st.st_size;
    out->handle_ = p;
    return MIPR_OK;
}

void mipr_file_unmap(mipr_mapped_file *f)
{
    if (f && f->handle_)
        munmap(f->handle_, f->size);
    if (f)
        memset(f, 0, sizeof *f);
}

void mipr_file_release(const mipr_mapped_file *f, const void *p, size_t n)
{
    /* only whole pages inside [p, p + n) of this mapping: the rest may still be in use */
    const uint8_t *lo = p, *hi = lo + n, *base = f ? f->data : NULL;
    long page = sysconf(_SC_PAGESIZE);
    if (!base || page <= 0 || lo < base || hi > base + f->size)
        return;
    uintptr_t a = ((uintptr_t)lo + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
    uintptr_t b = (uintptr_t)hi / (uintptr_t)page * (uintptr_t)page;
    if (b > a)
        (void)madvise((void *)a, b - a, MADV_DONTNEED);
}
