/*
 * File-descriptor I/O: the one implementation behind every _fd entry point
 * of the library (ms_reader_new_fd, ms_writer_new_fd, the QEMU importer's
 * and exporter's _run_fd, multifd channels given as descriptors). Each
 * function has the signature of a public callback type and follows the
 * callback convention of common.h: EINTR is retried, a short write is
 * continued, and a failure returns -errno, so that the caller can say why.
 * The context is the descriptor itself (msi_fd_ctx), which is never closed.
 */
#ifndef MSI_FDIO_H
#define MSI_FDIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

static inline void *msi_fd_ctx(int fd)
{
    return (void *)(intptr_t)fd;
}

/* ms_read_fn: up to @len bytes; 0 at the end of input; -errno on failure. */
ssize_t msi_fd_read(void *ctx, void *buf, size_t len);

/* Positional read (ms_qemu_pread_fn): up to @len bytes at @offset; 0 at the
 * end of the file or past INT64_MAX; -errno on failure. */
ssize_t msi_fd_pread(void *ctx, void *buf, size_t len, uint64_t offset);

/* ms_write_fn: every byte of @iov, in order (writev, continued after short
 * writes); 0, or -errno on failure (-EIO when the descriptor takes no
 * bytes). */
int msi_fd_writev(void *ctx, const struct iovec *iov, int iovcnt);

#endif /* MSI_FDIO_H */
