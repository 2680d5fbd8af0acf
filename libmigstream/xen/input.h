/*
 * Reading Xen's streams: the error every part of libmigstream/xen/ fails
 * into, and the buffered cursor the source reads the stream through, with
 * Xen's integers (big-endian headers, little-endian records).
 *
 * Owns: mx_error, mx_in. Calls: common/ only (and wire.h). Every other
 * part of the module sits above it.
 */
#ifndef MSI_XEN_INPUT_H
#define MSI_XEN_INPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/util.h"
#include "migstream/reader.h"

/* ------------------------------------------------------------------ errors */

/*
 * The first failure of an import or export (docs/XEN.md section 5).
 * Messages read "WHAT at offset OFF: DETAIL", WHAT naming Xen's record
 * ("libxc record 7 (PAGE_DATA)") or header, OFF its byte offset.
 */
typedef struct mx_error {
    int status; /* 0, or the failure that stopped the run */
    uint64_t offset;
    char msg[512];
} mx_error;

/* Records the failure (the first one wins) and returns the status kept. */
int mx_fail(mx_error *e, int status, uint64_t off, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ------------------------------------------------------------- integers */

static inline uint32_t mx_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t mx_be64(const uint8_t *p)
{
    return ((uint64_t)mx_be32(p) << 32) | mx_be32(p + 4);
}
static inline uint16_t mx_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline void mx_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void mx_put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static inline void mx_put_be64(uint8_t *p, uint64_t v)
{
    mx_put_be32(p, (uint32_t)(v >> 32));
    mx_put_be32(p + 4, (uint32_t)v);
}

/* ------------------------------------------------------------------ cursor */

/* Buffered sequential input: unread bytes are buf[pos, end), and buf[0]
 * lies at byte @base of the input. */
typedef struct mx_in {
    ms_read_fn read;
    void *ctx;
    uint8_t *buf;
    size_t cap;
    size_t pos, end;
    uint64_t base;
    bool eof;
    mx_error *err;
} mx_in;

#define MX_IN_CAP (64u * 1024)

/* Allocates the buffer: 0 or MS_ENOMEM (no message: the caller names it). */
int mx_in_open(mx_in *in, const ms_allocator *a, ms_read_fn read, void *ctx, mx_error *err);
void mx_in_close(mx_in *in, const ms_allocator *a);

static inline uint64_t mx_in_offset(const mx_in *in)
{
    return in->base + in->pos;
}
static inline const uint8_t *mx_in_peek(const mx_in *in)
{
    return in->buf + in->pos;
}
static inline size_t mx_in_avail(const mx_in *in)
{
    return in->end - in->pos;
}

/* Reads until @n bytes (at most the capacity) are buffered or the input
 * ends: 0, or MS_EIO (failure set, naming @what at @off). */
int mx_in_fill(mx_in *in, size_t n, uint64_t off, const char *what);
/* Makes @n bytes (at most the capacity) available at mx_in_peek():
 * MS_ETRUNCATED or MS_EIO, naming @what at @off, when it cannot. */
int mx_in_need(mx_in *in, size_t n, uint64_t off, const char *what);
/* Copies the next @n bytes (any number) to @dst and consumes them. */
int mx_in_read(mx_in *in, void *dst, size_t n, uint64_t off, const char *what);
/* Consumes the next @n bytes (any number). */
int mx_in_skip(mx_in *in, uint64_t n, uint64_t off, const char *what);
/* Whether the input holds no byte more: 0 with *@end set, or MS_EIO. */
int mx_in_at_end(mx_in *in, bool *end, uint64_t off, const char *what);

#endif /* MSI_XEN_INPUT_H */
