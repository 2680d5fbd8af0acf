/*
 * Fuzz target: the Xen importer and exporter (xen.h) over an arbitrary Xen
 * stream, as it would arrive from a pipe, with small limits so that the
 * fuzzer reaches them. What the importer accepts must be a stream the
 * strict reader accepts, and one the exporter writes back as Xen's stream,
 * which the importer then takes again. The input's last byte picks the
 * size of the reads (1 to 255 bytes, or any when it is 0), so that records
 * straddle them.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <migstream/migstream.h>

#include "fuzz_common.h"

typedef struct src {
    const uint8_t *p;
    size_t len, pos, chunk;
} src;

static ssize_t read_src(void *ctx, void *buf, size_t len)
{
    src *s = ctx;
    size_t n = s->len - s->pos;
    if (n > len)
        n = len;
    if (s->chunk && n > s->chunk)
        n = s->chunk;
    memcpy(buf, s->p + s->pos, n);
    s->pos += n;
    return (ssize_t)n;
}

typedef struct sink {
    uint8_t *p;
    size_t len, cap;
} sink;

static int write_sink(void *ctx, const struct iovec *iov, int iovcnt)
{
    sink *s = ctx;
    for (int i = 0; i < iovcnt; i++) {
        size_t n = iov[i].iov_len;
        if (n > s->cap - s->len) {
            size_t cap = s->cap ? s->cap : 4096;
            while (cap - s->len < n)
                cap *= 2;
            uint8_t *p = realloc(s->p, cap);
            if (!p)
                return -1;
            s->p = p;
            s->cap = cap;
        }
        memcpy(s->p + s->len, iov[i].iov_base, n);
        s->len += n;
    }
    return 0;
}

/* Imports @p: the status; the libmigstream stream in @out. */
static int import(const uint8_t *p, size_t len, size_t chunk, sink *out)
{
    ms_xen_import_options o;
    ms_xen_import_options_init(&o);
    o.max_guest_bytes = 1ull << 30;
    o.max_record_size = 1u << 20;
    o.max_batch_pfns = 4096;
    ms_xen_import *imp = ms_xen_import_new(&o);
    if (!imp)
        return MS_ENOMEM;
    src in = {p, len, 0, chunk};
    int rc = ms_xen_import_run(imp, read_src, &in, write_sink, out);
    if ((rc != 0) != (ms_xen_import_errmsg(imp)[0] != 0))
        abort(); /* a failure always says why, a success never complains */
    ms_xen_import_free(imp);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t chunk = size ? data[size - 1] : 0;
    sink lm = {NULL, 0, 0}, xen = {NULL, 0, 0}, again = {NULL, 0, 0};
    if (import(data, size, chunk, &lm) == 0) {
        ms_reader *r = ms_reader_new_memory(NULL, lm.p, lm.len);
        const ms_record *rec;
        while (r && ms_reader_next(r, &rec) > 0)
            ;
        if (r && ms_reader_status(r) != 0)
            abort(); /* the importer wrote a stream the reader refuses */
        ms_reader_free(r);
        /* Whatever came from Xen goes back to Xen, and comes back. */
        ms_xen_export *exp = ms_xen_export_new(NULL);
        src in = {lm.p, lm.len, 0, 0};
        if (exp && ms_xen_export_run(exp, read_src, &in, write_sink, &xen) != 0)
            abort();
        ms_xen_export_free(exp);
        if (exp && import(xen.p, xen.len, 0, &again) != 0)
            abort();
    }
    free(lm.p);
    free(xen.p);
    free(again.p);
    return 0;
}
