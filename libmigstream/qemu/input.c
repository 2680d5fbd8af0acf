/*
 * Reading QEMU's streams (input.h): the error object and the buffered
 * cursor shared by the main stream and the multifd channels. The lowest
 * part of libmigstream/qemu/ with code: it calls only common/.
 */
#include <stdarg.h>
#include <stdio.h>

#include "qemu/input.h"

/* ------------------------------------------------------------------ errors */

int mq_fail(mq_error *e, int status, uint64_t off, const char *what, const char *fmt, ...)
{
    if (e->status)
        return e->status;
    e->status = status;
    e->offset = off;
    size_t n = (size_t)snprintf(e->msg, sizeof e->msg, "%s", e->context);
    if (n >= sizeof e->msg)
        n = sizeof e->msg - 1;
    int k = snprintf(e->msg + n, sizeof e->msg - n, "%s at offset %llu: ", what,
                     (unsigned long long)off);
    if (k > 0)
        n += (size_t)k < sizeof e->msg - n ? (size_t)k : sizeof e->msg - n - 1;
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(e->msg + n, sizeof e->msg - n, fmt, ap);
    va_end(ap);
    return status;
}

void mq_error_context(mq_error *e, const char *fmt, ...)
{
    e->context[0] = 0;
    if (!fmt)
        return;
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(e->context, sizeof e->context, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------ cursor */

int mq_in_open(mq_in *in, const ms_allocator *a, size_t cap, mq_error *err, bool channel)
{
    in->cap = cap;
    in->pos = in->end = 0;
    in->base = 0;
    in->eof = false;
    in->err = err;
    in->channel = channel;
    in->buf = msi_alloc(a, cap);
    return in->buf ? 0 : MS_ENOMEM;
}

void mq_in_close(mq_in *in, const ms_allocator *a)
{
    msi_free(a, in->buf);
    in->buf = NULL;
}

int mq_in_fill(mq_in *in, size_t n)
{
    if (in->end - in->pos >= n || in->eof)
        return 0;
    if (in->pos > 0) {
        memmove(in->buf, in->buf + in->pos, in->end - in->pos);
        in->base += in->pos;
        in->end -= in->pos;
        in->pos = 0;
    }
    while (in->end < n && !in->eof) {
        ssize_t k = in->pread ? in->pread(in->pread_ctx, in->buf + in->end, in->cap - in->end,
                                          in->base + in->end)
                              : in->read(in->read_ctx, in->buf + in->end, in->cap - in->end);
        if (k < 0)
            return MS_EIO;
        if (k == 0)
            in->eof = true;
        else if ((size_t)k > in->cap - in->end)
            return MS_EIO; /* a callback that claims more than it was given */
        else
            in->end += (size_t)k;
    }
    return 0;
}

int mq_in_need_slow(mq_in *in, size_t n, uint64_t off, const char *what)
{
    const char *noun = in->channel ? "channel" : "stream";
    if (mq_in_fill(in, n))
        return mq_fail(in->err, MS_EIO, off, what, "reading the %s failed",
                       in->channel ? "channel" : "input");
    if (in->end - in->pos < n)
        return mq_fail(in->err, MS_ETRUNCATED, off, what,
                       "the %s ends after %llu bytes, %zu more were expected", noun,
                       (unsigned long long)(in->base + in->end), n - (in->end - in->pos));
    return 0;
}

int mq_name(mq_in *in, char out[256], uint64_t off, const char *what)
{
    uint8_t len;
    int rc = mq_u8(in, &len, off, what);
    if (rc)
        return rc;
    if (len == 0)
        return mq_fail(in->err, MS_ECORRUPT, off, what, "empty name (length byte 0)");
    if ((rc = mq_bytes(in, out, len, off, what)))
        return rc;
    out[len] = 0;
    if (memchr(out, 0, len))
        return mq_fail(in->err, MS_ECORRUPT, off, what, "name holds a NUL byte");
    return 0;
}

int mq_in_at_end(mq_in *in, bool *end, uint64_t off, const char *what)
{
    if (mq_in_fill(in, 1))
        return mq_fail(in->err, MS_EIO, off, what, "reading the %s failed",
                       in->channel ? "channel" : "input");
    *end = in->pos == in->end;
    return 0;
}

int mq_in_seek(mq_in *in, uint64_t to, uint64_t off, const char *what)
{
    if (!in->pread)
        return mq_fail(in->err, MS_EFEATURE, off, what,
                       "mapped-ram streams need positional reads of the main stream (a "
                       "file, not a pipe)");
    if (to < mq_in_offset(in))
        return mq_fail(in->err, MS_ECORRUPT, off, what,
                       "offset 0x%llx lies behind the stream's 0x%llx", (unsigned long long)to,
                       (unsigned long long)mq_in_offset(in));
    if (to - in->base <= in->end) {
        in->pos = (size_t)(to - in->base);
        return 0;
    }
    in->base = to;
    in->pos = in->end = 0;
    in->eof = false;
    return 0;
}

int mq_in_pread(mq_in *in, void *buf, size_t len, uint64_t at, const char *what, const char *obj)
{
    size_t done = 0;
    while (done < len) {
        ssize_t k = in->pread(in->pread_ctx, (uint8_t *)buf + done, len - done, at + done);
        if (k < 0)
            return mq_fail(in->err, MS_EIO, at, what, "reading %s failed", obj);
        if (k == 0)
            return mq_fail(in->err, MS_ETRUNCATED, at, what,
                           "%s (%zu bytes at file offset 0x%llx) lies past the end of the file",
                           obj, len, (unsigned long long)at);
        if ((size_t)k > len - done)
            return mq_fail(in->err, MS_EIO, at, what, "reading %s: the callback claims too much",
                           obj);
        done += (size_t)k;
    }
    return 0;
}
