/*
 * Reading QEMU's streams: the error object every part of the module fails
 * into, and the buffered cursor over a sequential read callback or
 * positional reads that the main stream and each multifd channel are read
 * through, with QEMU's big-endian integers.
 *
 * Owns: mq_error, mq_in. Calls: common/ only (and wire.h). Every other
 * part of libmigstream/qemu/ sits above it.
 */
#ifndef MSI_QEMU_INPUT_H
#define MSI_QEMU_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/util.h"
#include "migstream/reader.h"

/* ------------------------------------------------------------------ errors */

/*
 * The first failure of an import (docs/QEMU.md section 4). Messages read
 * "[CONTEXT]WHAT at offset OFF: DETAIL": the context is what the driver is
 * reading ("section 2 'ram' instance 0: "), so that a lower part names
 * only its item and the message still says where it lies.
 */
typedef struct mq_error {
    int status; /* 0, or the failure that stopped the import */
    uint64_t offset;
    char context[320]; /* set by the driver; "" outside sections */
    char msg[512];
} mq_error;

/* Records the failure (the first one wins) and returns the status kept. */
int mq_fail(mq_error *e, int status, uint64_t off, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Sets the context of later failures; NULL clears it. */
void mq_error_context(mq_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------ big-endian */

static inline uint16_t mq_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t mq_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t mq_be64(const uint8_t *p)
{
    return ((uint64_t)mq_be32(p) << 32) | mq_be32(p + 4);
}

/* ------------------------------------------------------------------ cursor */

/* Buffered input with look-ahead: unread bytes are buf[pos, end), and
 * buf[0] lies at byte @base of the input. */
typedef struct mq_in {
    ms_read_fn read;
    void *read_ctx;
    ms_pread_fn pread; /* when set, the input is read by offset only */
    void *pread_ctx;
    uint8_t *buf;
    size_t cap;
    size_t pos, end;
    uint64_t base;
    bool eof;
    mq_error *err;
    bool channel; /* a multifd channel: messages say "channel", not "stream" */
} mq_in;

/* The main stream's buffer; a channel's holds a packet header with its
 * offsets (1344 bytes with 4 KiB pages) and a page of up to 64 KiB. */
#define MQ_IN_CAP (256u * 1024)
#define MQ_CHANNEL_IN_CAP (96u * 1024)

/* Allocates the buffer: 0 or MS_ENOMEM (no message: the caller names it). */
int mq_in_open(mq_in *in, const ms_allocator *a, size_t cap, mq_error *err, bool channel);
void mq_in_close(mq_in *in, const ms_allocator *a);

static inline uint64_t mq_in_offset(const mq_in *in)
{
    return in->base + in->pos;
}
static inline size_t mq_in_avail(const mq_in *in)
{
    return in->end - in->pos;
}
static inline const uint8_t *mq_in_peek(const mq_in *in)
{
    return in->buf + in->pos;
}

/* Reads until @n bytes are buffered or the input ends: 0, or MS_EIO when the
 * callback failed (no message). */
int mq_in_fill(mq_in *in, size_t n);
/* Makes @n bytes (at most the buffer's capacity) available at
 * mq_in_peek(); MS_EIO or MS_ETRUNCATED, naming @what at @off, otherwise. */
int mq_in_need_slow(mq_in *in, size_t n, uint64_t off, const char *what);
static inline int mq_in_need(mq_in *in, size_t n, uint64_t off, const char *what)
{
    return in->end - in->pos >= n ? 0 : mq_in_need_slow(in, n, off, what);
}

static inline int mq_u8(mq_in *in, uint8_t *v, uint64_t off, const char *what)
{
    int rc = mq_in_need(in, 1, off, what);
    if (!rc)
        *v = in->buf[in->pos++];
    return rc;
}
static inline int mq_u16(mq_in *in, uint16_t *v, uint64_t off, const char *what)
{
    int rc = mq_in_need(in, 2, off, what);
    if (!rc) {
        *v = mq_be16(in->buf + in->pos);
        in->pos += 2;
    }
    return rc;
}
static inline int mq_u32(mq_in *in, uint32_t *v, uint64_t off, const char *what)
{
    int rc = mq_in_need(in, 4, off, what);
    if (!rc) {
        *v = mq_be32(in->buf + in->pos);
        in->pos += 4;
    }
    return rc;
}
static inline int mq_u64(mq_in *in, uint64_t *v, uint64_t off, const char *what)
{
    int rc = mq_in_need(in, 8, off, what);
    if (!rc) {
        *v = mq_be64(in->buf + in->pos);
        in->pos += 8;
    }
    return rc;
}
/* Copies @n bytes (at most the buffer's capacity) to @dst. */
static inline int mq_bytes(mq_in *in, void *dst, size_t n, uint64_t off, const char *what)
{
    int rc = mq_in_need(in, n, off, what);
    if (!rc) {
        memcpy(dst, in->buf + in->pos, n);
        in->pos += n;
    }
    return rc;
}
/* A u8 length and that many bytes, as a NUL-terminated string; a length of
 * 0 or a NUL byte in the name is refused. */
int mq_name(mq_in *in, char out[256], uint64_t off, const char *what);

/* Whether the input holds no byte more: 0 with *@end set, or MS_EIO. */
int mq_in_at_end(mq_in *in, bool *end, uint64_t off, const char *what);

/* Moves to byte @to of the input, at or after the current offset
 * (positional input only: MS_EFEATURE otherwise, as mapped-ram needs). */
int mq_in_seek(mq_in *in, uint64_t to, uint64_t off, const char *what);

/* Reads exactly @len bytes at byte @at of a positional input, outside the
 * buffer; failures name @what at @at and the object read (@obj). */
int mq_in_pread(mq_in *in, void *buf, size_t len, uint64_t at, const char *what, const char *obj);

#endif /* MSI_QEMU_INPUT_H */
