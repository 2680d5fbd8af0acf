/*
 * Reading Xen's streams (input.h): the error object and the buffered
 * cursor. The lowest part of libmigstream/xen/ with code: it calls only
 * common/.
 */
#include <stdarg.h>
#include <stdio.h>

#include "xen/input.h"

int mx_fail(mx_error *e, int status, uint64_t off, const char *what, const char *fmt, ...)
{
    if (e->status)
        return e->status;
    e->status = status;
    e->offset = off;
    int k = snprintf(e->msg, sizeof e->msg, "%s at offset %llu: ", what, (unsigned long long)off);
    size_t n = k < 0 ? 0 : (size_t)k < sizeof e->msg ? (size_t)k : sizeof e->msg - 1;
    va_list ap;
    va_start(ap, fmt);
    msi_vformat(e->msg + n, sizeof e->msg - n, fmt, ap);
    va_end(ap);
    return status;
}

int mx_in_open(mx_in *in, const ms_allocator *a, ms_read_fn read, void *ctx, mx_error *err)
{
    memset(in, 0, sizeof *in);
    in->read = read;
    in->ctx = ctx;
    in->err = err;
    in->cap = MX_IN_CAP;
    in->buf = msi_alloc(a, in->cap);
    return in->buf ? 0 : MS_ENOMEM;
}

void mx_in_close(mx_in *in, const ms_allocator *a)
{
    msi_free(a, in->buf);
    in->buf = NULL;
}

int mx_in_fill(mx_in *in, size_t n, uint64_t off, const char *what)
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
        ssize_t k = in->read(in->ctx, in->buf + in->end, in->cap - in->end);
        if (k < 0 || (size_t)k > in->cap - in->end)
            return mx_fail(in->err, MS_EIO, off, what, "reading the input failed%s",
                           k < 0 ? "" : " (the callback claims more bytes than it was given)");
        if (k == 0)
            in->eof = true;
        in->end += (size_t)k;
    }
    return 0;
}

int mx_in_need(mx_in *in, size_t n, uint64_t off, const char *what)
{
    if (in->end - in->pos >= n)
        return 0;
    int rc = mx_in_fill(in, n, off, what);
    if (rc)
        return rc;
    if (in->end - in->pos < n)
        return mx_fail(in->err, MS_ETRUNCATED, off, what,
                       "the stream ends after %llu bytes, %zu more were expected",
                       (unsigned long long)(in->base + in->end), n - (in->end - in->pos));
    return 0;
}

int mx_in_read(mx_in *in, void *dst, size_t n, uint64_t off, const char *what)
{
    uint8_t *d = dst;
    while (n) {
        size_t k = n < in->cap ? n : in->cap;
        int rc = mx_in_need(in, k, off, what);
        if (rc)
            return rc;
        memcpy(d, in->buf + in->pos, k);
        in->pos += k;
        d += k;
        n -= k;
    }
    return 0;
}

int mx_in_skip(mx_in *in, uint64_t n, uint64_t off, const char *what)
{
    while (n) {
        size_t k = n < in->cap ? (size_t)n : in->cap;
        int rc = mx_in_need(in, k, off, what);
        if (rc)
            return rc;
        in->pos += k;
        n -= k;
    }
    return 0;
}

int mx_in_at_end(mx_in *in, bool *end, uint64_t off, const char *what)
{
    int rc = mx_in_fill(in, 1, off, what);
    if (!rc)
        *end = in->pos == in->end;
    return rc;
}
