/*
 * File-descriptor I/O: the one implementation behind every _fd entry point
 * of the library (ms_reader_new_fd, ms_writer_new_fd, the QEMU importer's
 * and exporter's _run_fd, multifd channels given as descriptors). Each
 * function has the signature of a public callback type and follows the
 * callback convention of common.h: EINTR is retried, a short write is
 * continued, and a failure returns -errno, so that the caller can say why
 * (-EAGAIN: a non-blocking descriptor would block). The context is the
 * descriptor itself (msi_fd_ctx), which is never closed. Output to a socket
 * uses MSG_NOSIGNAL: a closed peer is -EPIPE, not SIGPIPE.
 */
#ifndef MSI_FDIO_H
#define MSI_FDIO_H

#include <stdbool.h>
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

/* ms_write_fn: every byte of @iov, in order (sendmsg on a socket, writev
 * otherwise: the first call tells them apart, continued after short
 * writes); 0, or -errno on failure (-EIO when the descriptor takes no
 * bytes). */
int msi_fd_writev(void *ctx, const struct iovec *iov, int iovcnt);

/* ms_write_some_fn: as many bytes of @iov as the descriptor takes now (all
 * of them on a blocking one), in order; or -errno when it takes none
 * (-EAGAIN: it would block). _send_some is for sockets, _writev_some for
 * anything else (msi_fd_is_socket). */
ssize_t msi_fd_writev_some(void *ctx, const struct iovec *iov, int iovcnt);
ssize_t msi_fd_send_some(void *ctx, const struct iovec *iov, int iovcnt);

/* What an fd writer asks once about its descriptor. */
bool msi_fd_is_socket(int fd);
bool msi_fd_is_nonblocking(int fd);

#endif /* MSI_FDIO_H */
