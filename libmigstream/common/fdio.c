/*
 * File-descriptor callbacks (fdio.h).
 *
 * Output to a socket goes through sendmsg() with MSG_NOSIGNAL: a peer that
 * has closed the connection then gives EPIPE, never SIGPIPE, which would
 * kill a VMM that did not expect it. Other descriptors (files, pipes) take
 * writev(); a pipe without a reader still raises SIGPIPE there, as POSIX
 * has it (common.h, "Callbacks").
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
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

/* How a descriptor takes output: not known yet, writev() or sendmsg(). */
enum { OUT_PROBE, OUT_WRITEV, OUT_SEND };

static ssize_t out_once(int fd, int *how, const struct iovec *iov, int n)
{
    if (*how != OUT_WRITEV) {
        struct msghdr m = {.msg_iov = (struct iovec *)(uintptr_t)iov, .msg_iovlen = (size_t)n};
        ssize_t k = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (k >= 0 || errno != ENOTSOCK || *how == OUT_SEND)
            return k;
        *how = OUT_WRITEV; /* not a socket: writev() from now on */
    }
    return writev(fd, iov, n);
}

/* Writes @iov in order until every byte is taken, the descriptor would
 * block or it fails: returns the bytes taken, and in *err 0 or the errno
 * that stopped it (EINTR is retried). */
static size_t out_some(int fd, int how, const struct iovec *iov, int iovcnt, int *err)
{
    struct iovec local[64];
    int i = 0;
    size_t skip = 0; /* bytes of iov[i] already written */
    size_t done = 0;
    *err = 0;
    while (i < iovcnt) {
        int n = 0;
        for (int k = i; k < iovcnt && n < 64; k++, n++) {
            local[n] = iov[k];
            if (k == i) {
                local[n].iov_base = (uint8_t *)local[n].iov_base + skip;
                local[n].iov_len -= skip;
            }
        }
        ssize_t got = out_once(fd, &how, local, n);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            *err = errno;
            break;
        }
        if (got == 0 && local[0].iov_len > 0) {
            *err = EIO;
            break;
        }
        done += (size_t)got;
        size_t left = (size_t)got;
        while (i < iovcnt && left >= iov[i].iov_len - skip) {
            left -= iov[i].iov_len - skip;
            skip = 0;
            i++;
        }
        skip += left;
    }
    return done;
}

int msi_fd_writev(void *ctx, const struct iovec *iov, int iovcnt)
{
    int err;
    out_some(fd_of(ctx), OUT_PROBE, iov, iovcnt, &err);
    return err ? -err : 0;
}

static ssize_t some_result(size_t done, int err)
{
    /* Bytes taken come first; an error after them shows on the next call. */
    if (done)
        return (ssize_t)done;
    return err ? -err : 0;
}

ssize_t msi_fd_writev_some(void *ctx, const struct iovec *iov, int iovcnt)
{
    int err;
    size_t done = out_some(fd_of(ctx), OUT_WRITEV, iov, iovcnt, &err);
    return some_result(done, err);
}

ssize_t msi_fd_send_some(void *ctx, const struct iovec *iov, int iovcnt)
{
    int err;
    size_t done = out_some(fd_of(ctx), OUT_SEND, iov, iovcnt, &err);
    return some_result(done, err);
}

bool msi_fd_is_socket(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

bool msi_fd_is_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK);
}
