/*
 * Fuzz target: the QEMU importer (qemu.h) over an arbitrary QEMU stream, as
 * it would arrive from a pipe. Limits are small so that the fuzzer reaches
 * them; no page file is kept (an XBZRLE page is then refused), so a run
 * touches no file system. The output goes through the strict reader, which
 * checks that whatever the importer accepted is a valid stream.
 *
 * An input holding the marker "MSFZCHAN" is split there: the bytes before
 * it are the main stream, each part after a marker one multifd channel. An
 * odd-sized input's main stream is read by offset (as a file is, which
 * mapped-ram needs), an even-sized one through the sequential callback.
 */
#define _GNU_SOURCE /* memmem */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <migstream/migstream.h>

#include "fuzz_common.h"

typedef struct src {
    const uint8_t *p;
    size_t len, pos;
} src;

#define MARKER "MSFZCHAN"
#define MAX_CHANNELS 4

/* Odd-sized reads, so that items straddle the importer's refills. */
static ssize_t pread_src(void *ctx, void *buf, size_t len, uint64_t offset)
{
    src *s = ctx;
    if (offset >= s->len)
        return 0;
    size_t n = s->len - (size_t)offset;
    if (n > len)
        n = len;
    if (n > 4093)
        n = 4093;
    memcpy(buf, s->p + offset, n);
    return (ssize_t)n;
}

static ssize_t read_src(void *ctx, void *buf, size_t len)
{
    src *s = ctx;
    size_t n = s->len - s->pos;
    if (n > len)
        n = len;
    if (n > 4093)
        n = 4093;
    memcpy(buf, s->p + s->pos, n);
    s->pos += n;
    return (ssize_t)n;
}

typedef struct sink {
    uint8_t *p;
    size_t len, cap;
    int failed;
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ms_qemu_import_options o;
    ms_qemu_import_options_init(&o);
    o.max_section_size = 1u << 20;
    o.max_device_bytes = 4u << 20;
    o.max_vmdesc_size = 1u << 20;
    o.max_ram_bytes = 1ull << 30;
    o.max_ram_blocks = 64;
    o.no_page_cache = true;
    ms_qemu_import *imp = ms_qemu_import_new(&o);
    if (!imp)
        return 0;
    src parts[1 + MAX_CHANNELS];
    size_t nparts = 0;
    const uint8_t *p = data, *end = data + size;
    while (nparts < MAX_CHANNELS) {
        const uint8_t *m = memmem(p, (size_t)(end - p), MARKER, sizeof MARKER - 1);
        if (!m)
            break;
        parts[nparts++] = (src){p, (size_t)(m - p), 0};
        p = m + sizeof MARKER - 1;
    }
    parts[nparts++] = (src){p, (size_t)(end - p), 0};
    for (size_t i = 1; i < nparts; i++)
        if (ms_qemu_import_add_channel(imp, read_src, &parts[i], NULL))
            abort(); /* within MS_QEMU_MAX_CHANNELS, before the run */
    if ((size & 1) && ms_qemu_import_set_pread(imp, pread_src, &parts[0]))
        abort();
    sink out = {NULL, 0, 0, 0};
    int rc = ms_qemu_import_run(imp, read_src, &parts[0], write_sink, &out);
    const char *msg = ms_qemu_import_errmsg(imp);
    if ((rc != 0) != (msg[0] != 0))
        abort(); /* a failure always says why, a success never complains */
    if (rc == 0) {
        ms_reader *r = ms_reader_new_memory(NULL, out.p, out.len);
        const ms_record *rec;
        int n;
        while (r && (n = ms_reader_next(r, &rec)) > 0)
            ;
        if (r && ms_reader_status(r) != 0)
            abort(); /* the importer wrote a stream the reader refuses */
        ms_reader_free(r);
    }
    ms_qemu_import_free(imp);
    free(out.p);
    return 0;
}
