/*
 * File-descriptor callbacks (fdio.h).
 */
#include <errno.h>
#include <unistd.h>

#include "common/fdio.h"

static int fd_of(void *ctx)
{
    return (int)(intptr_t)ctx;
}

ssize_t msi_fd_read(void *ctx, void *buf, size_t len)
{
    for (;;) {
        ssize_t k = read(fd_of(ctx), buf, len);
        if (k >= 0)
            return k;
        if (errno != EINTR)
            return -errno;
    }
}

ssize_t msi_fd_pread(void *ctx, void *buf, size_t len, uint64_t offset)
{
    if (offset > (uint64_t)INT64_MAX)
        return 0;
    for (;;) {
        ssize_t k = pread(fd_of(ctx), buf, len, (off_t)offset);
        if (k >= 0)
            return k;
        if (errno != EINTR)
            return -errno;
    }
}

int msi_fd_writev(void *ctx, const struct iovec *iov, int iovcnt)
{
    struct iovec local[64];
    int i = 0;
    size_t skip = 0; /* bytes of iov[i] already written */
    while (i < iovcnt) {
        int n = 0;
        for (int k = i; k < iovcnt && n < 64; k++, n++) {
            local[n] = iov[k];
            if (k == i) {
                local[n].iov_base = (uint8_t *)local[n].iov_base + skip;
                local[n].iov_len -= skip;
            }
        }
        ssize_t got = writev(fd_of(ctx), local, n);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (got == 0 && local[0].iov_len > 0)
            return -EIO;
        size_t left = (size_t)got;
        while (i < iovcnt && left >= iov[i].iov_len - skip) {
            left -= iov[i].iov_len - skip;
            skip = 0;
            i++;
        }
        skip += left;
    }
    return 0;
}
