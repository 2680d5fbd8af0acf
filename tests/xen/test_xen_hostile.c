/*
 * Hostile Xen streams (docs/XEN.md section 5): truncation at every record
 * boundary and inside records, bad headers, lengths and counts, page types
 * and pfns out of range, records out of the order Xen's spec requires, all
 * refused with the status and a message naming the record and its offset;
 * memory stays bounded whatever a length claims; reserved fields and
 * padding are ignored on import and written as zeros on export; and every
 * allocation that fails gives MS_ENOMEM, without a leak.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "xen_fixture.h"

/* ------------------------------------------------------------ allocator */

typedef struct counting {
    size_t live, bytes, peak, calls, fail_at; /* fail_at: SIZE_MAX never */
    bool failed;
} counting;

/* Each block carries its size in front. */
static void *c_alloc(void *o, size_t n)
{
    counting *c = o;
    if (c->calls++ == c->fail_at) {
        c->failed = true;
        return NULL;
    }
    size_t *p = malloc(n + 16);
    if (!p)
        return NULL;
    p[0] = n;
    c->live++;
    c->bytes += n;
    if (c->bytes > c->peak)
        c->peak = c->bytes;
    return (char *)p + 16;
}

static void c_free(void *o, void *q)
{
    counting *c = o;
    if (!q)
        return;
    size_t *p = (size_t *)((char *)q - 16);
    c->live--;
    c->bytes -= p[0];
    free(p);
}

static void *c_realloc(void *o, void *q, size_t n)
{
    if (!q)
        return c_alloc(o, n);
    counting *c = o;
    if (c->calls++ == c->fail_at) {
        c->failed = true;
        return NULL;
    }
    size_t *p = (size_t *)((char *)q - 16), old = p[0];
    size_t *r = realloc(p, n + 16);
    if (!r)
        return NULL;
    r[0] = n;
    c->bytes = c->bytes - old + n;
    if (c->bytes > c->peak)
        c->peak = c->bytes;
    return (char *)r + 16;
}

/* Imports @p with every allocation (importer and writer) counted: the
 * status, the message, the error offset. */
static int import_counted(const uint8_t *p, size_t len, ms_xen_import_options *o, counting *c,
                          char *msg, size_t msg_size, uint64_t *err_off)
{
    ms_xen_import_options local;
    if (!o) {
        ms_xen_import_options_init(&local);
        o = &local;
    }
    ms_allocator a = {.alloc = c_alloc, .realloc = c_realloc, .free = c_free, .opaque = c};
    ms_writer_options wo;
    ms_writer_options_init(&wo);
    wo.allocator = a;
    o->allocator = a;
    o->writer = &wo;
    ms_xen_import *imp = ms_xen_import_new(o);
    if (!imp) {
        snprintf(msg, msg_size, "out of memory creating the importer");
        return MS_ENOMEM;
    }
    tx_in in = {.p = p, .len = len};
    tx_out out = {0};
    int rc = ms_xen_import_run(imp, tx_read, &in, tx_write, &out);
    snprintf(msg, msg_size, "%s", ms_xen_import_errmsg(imp));
    if (err_off)
        *err_off = ms_xen_import_error_offset(imp);
    assert_int_equal(rc != 0, msg[0] != 0);
    ms_xen_import_free(imp);
    tx_out_free(&out);
    assert_int_equal(c->live, 0); /* nothing left behind */
    return rc;
}

/* Memory a refused stream may cost: the two PAGES slots, the input buffer,
 * the writer's batch, and what arrived. */
#define PEAK_MAX (8u << 20)

static void expect(const uint8_t *p, size_t len, ms_xen_import_options *o, int status,
                   const char *needle)
{
    counting c = {.fail_at = SIZE_MAX};
    char msg[512];
    int rc = import_counted(p, len, o, &c, msg, sizeof msg, NULL);
    if (rc != status || !strstr(msg, needle))
        print_error("status %d (%s): %s\nexpected %s: %s\n", rc, ms_strerror(rc), msg,
                    ms_strerror(status), needle);
    assert_int_equal(rc, status);
    assert_non_null(strstr(msg, needle));
    assert_non_null(strstr(msg, " at offset "));
    assert_true(c.peak < PEAK_MAX);
}

/* ------------------------------------------------------------ builder */

static void put(tx_out *b, const void *p, size_t n)
{
    tx_write(b, &(struct iovec){.iov_base = (void *)p, .iov_len = n}, 1);
}

static void le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void libxl_hdr(tx_out *b, uint32_t version, uint32_t options)
{
    uint8_t h[16];
    memcpy(h, "LibxlFmt", 8);
    be32(h + 8, version);
    be32(h + 12, options);
    put(b, h, 16);
}

static void libxc_hdr(tx_out *b, uint32_t version, uint32_t domain)
{
    uint8_t h[40] = {0};
    memset(h, 0xff, 8);
    be32(h + 8, 0x58454e46);
    be32(h + 12, version);
    le32(h + 24, domain);
    h[28] = 12;
    le32(h + 32, 4);
    le32(h + 36, 17);
    put(b, h, 40);
}

static void rec(tx_out *b, uint32_t type, const void *body, uint32_t len)
{
    uint8_t h[8];
    static const uint8_t zeros[8];
    le32(h, type);
    le32(h + 4, len);
    put(b, h, 8);
    if (len)
        put(b, body, len);
    put(b, zeros, (8 - len % 8) % 8);
}

/* PAGE_DATA: entries (type << 60 | pfn), a page for each with data. */
static void page_data(tx_out *b, const uint64_t *e, uint32_t n)
{
    uint32_t data = 0;
    for (uint32_t i = 0; i < n; i++) {
        unsigned t = (unsigned)(e[i] >> 60);
        data += t <= 4 || (t >= 9 && t <= 12);
    }
    size_t len = 8 + 8 * (size_t)n + 4096 * (size_t)data;
    uint8_t *body = calloc(1, len);
    assert_non_null(body);
    le32(body, n);
    for (uint32_t i = 0; i < n; i++)
        le64(body + 8 + 8 * i, e[i]);
    memset(body + 8 + 8 * (size_t)n, 0x42, 4096 * (size_t)data);
    rec(b, 1, body, (uint32_t)len);
    free(body);
}

/* A bare HVM stream, version 3: SDE, @pages pfns from 0, the HVM state. */
static void hvm(tx_out *b, uint32_t pages)
{
    libxc_hdr(b, 3, 2);
    rec(b, 0x10, NULL, 0);
    uint64_t e[64];
    assert_true(pages <= 64);
    for (uint32_t i = 0; i < pages; i++)
        e[i] = i;
    if (pages)
        page_data(b, e, pages);
    uint8_t tsc[24] = {0}, params[24] = {1}, ctx[16] = {1, 2, 3};
    rec(b, 0x08, tsc, 24);
    rec(b, 0x0a, params, 24);
    rec(b, 0x09, ctx, 16);
}

/* ------------------------------------------------------------ framing */

typedef struct xrec {
    size_t off; /* of the header */
    size_t end; /* after the padding */
    bool libxl; /* a libxl record */
    uint32_t type;
} xrec;

/* The records of a Xen stream, by the specs' framing alone; *n of them. */
static xrec *walk(const uint8_t *p, size_t len, size_t *n)
{
    xrec *r = malloc(4096 * sizeof *r);
    assert_non_null(r);
    *n = 0;
    bool libxl = memcmp(p, "LibxlFmt", 8) == 0, in_libxc = !libxl, ckpt = false;
    size_t at = libxl ? 16 : 40;
    while (at + 8 <= len) {
        uint32_t type = (uint32_t)p[at] | (uint32_t)p[at + 1] << 8 | (uint32_t)p[at + 2] << 16 |
                        (uint32_t)p[at + 3] << 24;
        uint32_t blen = (uint32_t)p[at + 4] | (uint32_t)p[at + 5] << 8 | (uint32_t)p[at + 6] << 16 |
                        (uint32_t)p[at + 7] << 24;
        assert_true(*n < 4096);
        r[*n] =
            (xrec){.off = at, .end = at + 8 + ((blen + 7) & ~7u), .libxl = !in_libxc, .type = type};
        at = r[(*n)++].end;
        if (!in_libxc && type == 1) { /* LIBXC_CONTEXT: the libxc headers */
            at += 40;
            in_libxc = true;
        } else if (in_libxc && libxl && type == 0x0e) { /* CHECKPOINT */
            in_libxc = false;
            ckpt = true;
        } else if (!in_libxc && ckpt && type == 4) { /* CHECKPOINT_END */
            in_libxc = true;
            ckpt = false;
        } else if (in_libxc && libxl && type == 0) {
            in_libxc = false;
        }
    }
    assert_int_equal(at, len);
    return r;
}

/* ------------------------------------------------------------ tests */

static void test_truncation(void **state)
{
    (void)state;
    size_t nf;
    const tx_fixture *f = tx_fixtures(&nf);
    for (size_t i = 0; i < nf; i++) {
        char file[96];
        size_t len, nr;
        snprintf(file, sizeof file, "%s.xen", f[i].name);
        uint8_t *p = tx_load(file, &len);
        xrec *r = walk(p, len, &nr);
        /* Every record boundary, and inside each record: after its header,
         * in its body, at its last byte; and inside the headers. */
        size_t cuts[4096 * 4 + 8], ncut = 0;
        cuts[ncut++] = 0;
        cuts[ncut++] = 7;
        cuts[ncut++] = r[0].off - 1;
        for (size_t k = 0; k < nr; k++) {
            cuts[ncut++] = r[k].off;
            cuts[ncut++] = r[k].off + 4;
            if (r[k].end > r[k].off + 8) {
                cuts[ncut++] = r[k].off + 8 + (r[k].end - r[k].off - 8) / 2;
                cuts[ncut++] = r[k].end - 1;
            }
        }
        for (size_t c = 0; c < ncut; c++) {
            counting cnt = {.fail_at = SIZE_MAX};
            char msg[512];
            uint64_t off = 0;
            int rc = import_counted(p, cuts[c], NULL, &cnt, msg, sizeof msg, &off);
            if (rc != MS_ETRUNCATED || !strstr(msg, "the stream ends after"))
                print_error("%s cut at %zu: %d %s\n", f[i].name, cuts[c], rc, msg);
            assert_int_equal(rc, MS_ETRUNCATED);
            assert_non_null(strstr(msg, "the stream ends after"));
            assert_true(off <= cuts[c]);
            assert_true(cnt.peak < PEAK_MAX);
        }
        free(r);
        free(p);
    }
}

static void test_headers(void **state)
{
    (void)state;
    tx_out b = {0};
    size_t len;
    uint8_t *v2 = tx_load("v2-libxc.xen", &len);
    uint8_t *p = malloc(len);
    assert_non_null(p);
    struct {
        size_t at;
        uint8_t xor ;
        int status;
        const char *needle;
    } cases[] = {
        {3, 0x01, MS_EMAGIC, "libxc image header at offset 0: marker 0xffffff"},
        {9, 0x01, MS_EMAGIC, "is not 0x58454e46 (\"XENF\")"},
        {15, 0x06, MS_EVERSION, "version 4 (versions 2 and 3 of the libxc format are read)"},
        {17, 0x01, MS_EFEATURE, "a big-endian stream (options bit 0)"},
        {24, 0x01, MS_EFEATURE, "domain type 0x3 (x86 PV 0x1 and x86 HVM 0x2 are read)"},
        {28, 0x01, MS_EFEATURE, "page_shift 13: pages of 4096 bytes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        memcpy(p, v2, len);
        p[cases[i].at] ^= cases[i].xor ;
        /* A marker with a zero bit: no longer a bid for libxc at all. */
        expect(p, len, NULL, cases[i].status, i == 0 ? "neither a libxl stream" : cases[i].needle);
    }
    free(p);
    free(v2);

    libxl_hdr(&b, 3, 0);
    expect(b.p, b.len, NULL, MS_EVERSION, "libxl header at offset 8: version 3");
    tx_out_free(&b);
    libxl_hdr(&b, 2, 1);
    expect(b.p, b.len, NULL, MS_EFEATURE, "a big-endian stream");
    tx_out_free(&b);
    put(&b, "Xen saved domain, xl format\n \0 \r", 32);
    put(&b, "\0\0\0\0\2\0\0\0\0\0\0\0\0\0\0\0", 16);
    expect(b.p, b.len, NULL, MS_EMAGIC, "an `xl save` file");
    tx_out_free(&b);
    put(&b, "QEVM\0\0\0\3", 8);
    expect(b.p, b.len, NULL, MS_EMAGIC, "neither a libxl stream");
    tx_out_free(&b);
    put(&b, "Libx", 4);
    expect(b.p, b.len, NULL, MS_ETRUNCATED, "the stream ends after 4 bytes");
    tx_out_free(&b);

    /* A legacy stream (Xen 4.5 and older) starts with a p2m size. */
    uint8_t legacy[48] = {0, 0, 1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
    expect(legacy, sizeof legacy, NULL, MS_EMAGIC, "neither a libxl stream");
    uint8_t almost[48];
    memset(almost, 0xff, 8);
    memset(almost + 8, 0, 40);
    expect(almost, sizeof almost, NULL, MS_EMAGIC, "is not 0x58454e46");
}

static void test_records(void **state)
{
    (void)state;
    tx_out b = {0};
    uint8_t z[4096] = {0};

    /* Unknown types: optional kept, mandatory refused by name. */
    libxc_hdr(&b, 3, 2);
    rec(&b, 0x13, NULL, 0);
    expect(b.p, b.len, NULL, MS_EUNKNOWN,
           "libxc record 0 (type 0x00000013) at offset 40: a mandatory record type");
    tx_out_free(&b);
    libxl_hdr(&b, 2, 0);
    rec(&b, 1, NULL, 0);
    libxc_hdr(&b, 3, 2);
    rec(&b, 0, NULL, 0);
    rec(&b, 6, NULL, 0);
    expect(b.p, b.len, NULL, MS_EUNKNOWN, "libxl record 1 (type 0x00000006) at offset 72");
    tx_out_free(&b);

    /* Lengths. */
    struct {
        uint32_t type, len;
        const char *needle;
        int status;
    } bad[] = {
        {0x08, 16,
         "libxc record 1 (X86_TSC_INFO) at offset 48: a body of 16 bytes; X86_TSC_INFO "
         "has exactly 24",
         MS_ECORRUPT},
        {0x09, 0, "an empty body; HVM_CONTEXT is never empty", MS_ECORRUPT},
        {0x0a, 16, "count 0 needs a body of 8 bytes, not 16", MS_ECORRUPT},
        {0x11, 25, "a body of 25 bytes; X86_CPUID_POLICY holds one or more 24-byte entries",
         MS_ECORRUPT},
        {0x12, 0, "X86_MSR_POLICY holds one or more 16-byte entries", MS_ECORRUPT},
        {0x0d, 8, "a body of 8 bytes; VERIFY has exactly 0", MS_ECORRUPT},
        {0x0f, 12, "a body of 12 bytes; CHECKPOINT_DIRTY_PFN_LIST holds 8-byte entries",
         MS_ECORRUPT},
        {0x09, 0xfffffff8u, "a body of 4294967288 bytes exceeds max_record_size (16777216)",
         MS_ELIMIT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        libxc_hdr(&b, 3, 2);
        rec(&b, 0x10, NULL, 0);
        if (bad[i].len > sizeof z) {
            uint8_t h[8];
            le32(h, bad[i].type);
            le32(h + 4, bad[i].len);
            put(&b, h, 8);
            put(&b, z, 64);
        } else {
            rec(&b, bad[i].type, z, bad[i].len);
        }
        expect(b.p, b.len, NULL, bad[i].status, bad[i].needle);
        tx_out_free(&b);
    }

    /* Bytes after END. */
    hvm(&b, 2);
    rec(&b, 0, NULL, 0);
    put(&b, "x", 1);
    expect(b.p, b.len, NULL, MS_ECORRUPT, "the stream at offset");
    tx_out_free(&b);
}

static void test_page_data(void **state)
{
    (void)state;
    tx_out b = {0};
    uint8_t body[64] = {0};

    struct {
        uint32_t count, len;
        uint64_t entry;
        int status;
        const char *needle;
    } bad[] = {
        {0, 16, 0, MS_ECORRUPT, "count 0 (a PAGE_DATA record describes at least one page)"},
        {0xffffffffu, 16, 0, MS_ELIMIT, "count 4294967295 exceeds max_batch_pfns (65536)"},
        {2, 16, 0, MS_ECORRUPT, "count 2 needs 16 bytes of pfns, the body holds 16"},
        {1, 8, 0, MS_ECORRUPT, "a body of 8 bytes; PAGE_DATA holds its count"},
        {1, 16, 0x5ull << 60, MS_ECORRUPT, "pfn[0] 0x0 has page type 0x5, which is reserved"},
        {1, 16, 0, MS_ECORRUPT, "count 1 with 1 pages of data needs a body of 4112 bytes, not 16"},
        {1, 16, 0xf000000000123456ull, MS_ELIMIT,
         "pfn[0] 0x123456 lies beyond max_guest_bytes (16777216: pfns below 0x1000)"},
    };
    ms_xen_import_options o;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        libxc_hdr(&b, 3, 2);
        rec(&b, 0x10, NULL, 0);
        le32(body, bad[i].count);
        le64(body + 8, bad[i].entry);
        rec(&b, 1, body, bad[i].len);
        ms_xen_import_options_init(&o);
        o.max_guest_bytes = 16 << 20;
        expect(b.p, b.len, &o, bad[i].status, bad[i].needle);
        tx_out_free(&b);
    }

    /* A typed pfn where types are not kept. */
    libxc_hdr(&b, 3, 2);
    rec(&b, 0x10, NULL, 0);
    uint64_t e = 0xeull << 60 | (1ull << 44);
    page_data(&b, &e, 1);
    ms_xen_import_options_init(&o);
    o.max_guest_bytes = UINT64_MAX - 4095;
    expect(b.p, b.len, &o, MS_ELIMIT, "types are kept for pfns below 2^44 only");
    tx_out_free(&b);

    /* A PV pfn beyond the p2m, a p2m beyond the guest. */
    uint8_t info[8] = {8, 4}, p2m[16] = {0};
    le32(p2m + 4, 511);
    libxc_hdr(&b, 3, 1);
    rec(&b, 0x02, info, 8);
    rec(&b, 0x10, NULL, 0);
    rec(&b, 0x03, p2m, 16);
    e = 0xfull << 60 | 512;
    page_data(&b, &e, 1);
    expect(b.p, b.len, NULL, MS_ECORRUPT,
           "pfn[0] 0x200 lies beyond the guest's last pfn 0x1ff (X86_PV_P2M_FRAMES)");
    tx_out_free(&b);
    libxc_hdr(&b, 3, 1);
    rec(&b, 0x02, info, 8);
    rec(&b, 0x10, NULL, 0);
    rec(&b, 0x03, p2m, 16);
    ms_xen_import_options_init(&o);
    o.max_guest_bytes = 1 << 20;
    expect(b.p, b.len, &o, MS_ELIMIT, "p2m_end_pfn 0x1ff lies beyond max_guest_bytes (1048576");
    tx_out_free(&b);

    /* Huge counts cost what arrives, not what they claim. */
    libxc_hdr(&b, 3, 2);
    rec(&b, 0x10, NULL, 0);
    uint8_t h[16] = {1, 0, 0, 0, 0xf8, 0xff, 0xff, 0xff, 0, 0, 1, 0};
    put(&b, h, 16);
    put(&b, body, 64);
    ms_xen_import_options_init(&o);
    o.max_batch_pfns = 1u << 20;
    expect(b.p, b.len, &o, MS_ETRUNCATED, "libxc record 1 (PAGE_DATA) at offset 48: the stream");
    tx_out_free(&b);
}

static void test_order(void **state)
{
    (void)state;
    tx_out b = {0};
    uint8_t z[64] = {0}, info[8] = {8, 4}, p2m[16] = {0}, cpuid[24] = {0};
    uint64_t e = 0;

    /* Version 3: STATIC_DATA_END, once, before memory; policies before it. */
    libxc_hdr(&b, 3, 2);
    page_data(&b, &e, 1);
    expect(b.p, b.len, NULL, MS_ECORRUPT, "memory and register content before STATIC_DATA_END");
    tx_out_free(&b);
    libxc_hdr(&b, 3, 2);
    rec(&b, 0x10, NULL, 0);
    rec(&b, 0x10, NULL, 0);
    expect(b.p, b.len, NULL, MS_ECORRUPT,
           "libxc record 1 (STATIC_DATA_END) at offset 48: a "
           "second STATIC_DATA_END");
    tx_out_free(&b);
    libxc_hdr(&b, 3, 2);
    rec(&b, 0x10, NULL, 0);
    rec(&b, 0x11, cpuid, 24);
    expect(b.p, b.len, NULL, MS_ECORRUPT, "a CPU policy after STATIC_DATA_END");
    tx_out_free(&b);
    libxc_hdr(&b, 2, 2);
    rec(&b, 0x10, NULL, 0);
    expect(b.p, b.len, NULL, MS_ECORRUPT,
           "STATIC_DATA_END came with version 3 of the libxc format; this stream is version 2");
    tx_out_free(&b);

    /* HVM: params before the context; no PV records. */
    libxc_hdr(&b, 3, 2);
    rec(&b, 0x10, NULL, 0);
    rec(&b, 0x09, z, 8);
    expect(b.p, b.len, NULL, MS_ECORRUPT, "HVM_CONTEXT before any HVM_PARAMS");
    tx_out_free(&b);
    libxc_hdr(&b, 3, 2);
    rec(&b, 0x02, info, 8);
    expect(b.p, b.len, NULL, MS_ECORRUPT,
           "X86_PV_INFO belongs to x86 PV guests, and this is an x86 HVM stream");
    tx_out_free(&b);

    /* PV: X86_PV_INFO, X86_PV_P2M_FRAMES, PAGE_DATA, vCPUs. */
    libxc_hdr(&b, 3, 1);
    rec(&b, 0x02, info, 8);
    rec(&b, 0x02, info, 8);
    expect(b.p, b.len, NULL, MS_ECORRUPT, "a second X86_PV_INFO");
    tx_out_free(&b);
    uint8_t odd[8] = {8, 3};
    libxc_hdr(&b, 3, 1);
    rec(&b, 0x02, odd, 8);
    expect(b.p, b.len, NULL, MS_ECORRUPT, "guest width 8 with 3 page-table levels");
    tx_out_free(&b);
    libxc_hdr(&b, 3, 1);
    rec(&b, 0x10, NULL, 0);
    rec(&b, 0x03, p2m, 16);
    expect(b.p, b.len, NULL, MS_ECORRUPT, "X86_PV_P2M_FRAMES before X86_PV_INFO");
    tx_out_free(&b);
    le32(p2m + 4, 512); /* two frames: 24 bytes */
    libxc_hdr(&b, 3, 1);
    rec(&b, 0x02, info, 8);
    rec(&b, 0x10, NULL, 0);
    rec(&b, 0x03, p2m, 16);
    expect(b.p, b.len, NULL, MS_ECORRUPT,
           "pfns 0x0 to 0x200 need 2 p2m frames (24 bytes), the body holds 16 bytes");
    tx_out_free(&b);
    libxc_hdr(&b, 3, 1);
    rec(&b, 0x02, info, 8);
    rec(&b, 0x10, NULL, 0);
    page_data(&b, &e, 1);
    expect(b.p, b.len, NULL, MS_ECORRUPT, "PAGE_DATA before X86_PV_P2M_FRAMES in a PV stream");
    tx_out_free(&b);
    libxc_hdr(&b, 3, 1);
    rec(&b, 0x02, info, 8);
    rec(&b, 0x10, NULL, 0);
    rec(&b, 0x04, z, 16);
    expect(b.p, b.len, NULL, MS_ECORRUPT, "a vCPU record before any PAGE_DATA");
    tx_out_free(&b);

    /* libxl: one LIBXC_CONTEXT, checkpoints closed by CHECKPOINT_END. */
    libxl_hdr(&b, 2, 0);
    rec(&b, 0, NULL, 0);
    expect(b.p, b.len, NULL, MS_ECORRUPT, "END without a LIBXC_CONTEXT");
    tx_out_free(&b);
    libxl_hdr(&b, 2, 0);
    rec(&b, 1, NULL, 0);
    hvm(&b, 1);
    rec(&b, 0, NULL, 0);
    rec(&b, 1, NULL, 0);
    expect(b.p, b.len, NULL, MS_ECORRUPT, "a second LIBXC_CONTEXT");
    tx_out_free(&b);
    libxl_hdr(&b, 2, 0);
    rec(&b, 1, NULL, 0);
    hvm(&b, 1);
    rec(&b, 0, NULL, 0);
    rec(&b, 4, NULL, 0);
    expect(b.p, b.len, NULL, MS_ECORRUPT, "CHECKPOINT_END outside a checkpoint");
    tx_out_free(&b);
    libxl_hdr(&b, 2, 0);
    rec(&b, 1, NULL, 0);
    hvm(&b, 1);
    rec(&b, 0x0e, NULL, 0);
    rec(&b, 0, NULL, 0);
    expect(b.p, b.len, NULL, MS_ECORRUPT, "END inside a checkpoint (after the libxc CHECKPOINT");
    tx_out_free(&b);

    /* Emulator records. */
    uint8_t emu[16] = {7};
    libxl_hdr(&b, 2, 0);
    rec(&b, 3, emu, 16);
    expect(b.p, b.len, NULL, MS_ECORRUPT, "emulator_id 0x7 is reserved");
    tx_out_free(&b);
    uint8_t xs[14] = {2, 0, 0, 0, 0, 0, 0, 0, 'k', 0, 'v', 0, 'x', 0};
    libxl_hdr(&b, 2, 0);
    rec(&b, 2, xs, 14);
    expect(b.p, b.len, NULL, MS_ECORRUPT, "xenstore data holds 3 strings, not key/value pairs");
    tx_out_free(&b);
    libxl_hdr(&b, 2, 0);
    rec(&b, 2, xs, 13);
    expect(b.p, b.len, NULL, MS_ECORRUPT, "xenstore data of 5 bytes does not end with a NUL");
    tx_out_free(&b);
}

/* "Padding and reserved fields are set to zero on save and must be
 * ignored during restore": read as if they were zero, written as zeros. */
static void test_reserved_ignored(void **state)
{
    (void)state;
    size_t len;
    uint8_t *orig = tx_load("pv64-libxc.xen", &len);
    uint8_t *p = malloc(len);
    assert_non_null(p);
    memcpy(p, orig, len);
    size_t nr;
    xrec *r = walk(p, len, &nr);
    p[17] |= 0x20; /* an image option bit */
    p[23] = 1;     /* the image header's reserved word */
    p[30] = 1;     /* the domain header's */
    for (size_t k = 0; k < nr; k++) {
        size_t body = r[k].off + 8;
        uint32_t blen = (uint32_t)p[r[k].off + 4] | (uint32_t)p[r[k].off + 5] << 8 |
                        (uint32_t)p[r[k].off + 6] << 16 | (uint32_t)p[r[k].off + 7] << 24;
        if (body + blen < r[k].end)
            p[r[k].end - 1] = 0xaa; /* padding */
        if (r[k].type == 0x01) {
            p[body + 4] = 1;         /* PAGE_DATA's reserved word */
            p[body + 8 + 6] |= 0x30; /* reserved bits of pfn[0] */
        } else if (r[k].type >= 0x04 && r[k].type <= 0x06) {
            p[body + 5] = 1; /* a vCPU record's reserved word */
        } else if (r[k].type == 0x02) {
            p[body + 3] = 1;
        } else if (r[k].type == 0x08) {
            p[body + 22] = 1;
        }
    }
    free(r);
    tx_out a = {0}, b = {0}, xa = {0}, xb = {0};
    assert_int_equal(tx_import(orig, len, NULL, &a, NULL, 0), 0);
    assert_int_equal(tx_import(p, len, NULL, &b, NULL, 0), 0);
    /* The same guest, but the raw bytes of the records keep what came. */
    tx_state sa, sb;
    char buf[512];
    tx_state_read(a.p, a.len, &sa);
    tx_state_read(b.p, b.len, &sb);
    sa.ndevs = sb.ndevs = 0;
    assert_null(tx_state_diff(&sa, &sb, true, buf, sizeof buf));
    tx_state_free(&sa);
    tx_state_free(&sb);
    /* Exported: zeros again, the original byte for byte. */
    assert_int_equal(tx_export(b.p, b.len, NULL, &xb, NULL, 0), 0);
    assert_int_equal(tx_export(a.p, a.len, NULL, &xa, NULL, 0), 0);
    assert_int_equal(xb.len, len);
    assert_memory_equal(xb.p, orig, len);
    assert_memory_equal(xa.p, orig, len);
    tx_out_free(&a);
    tx_out_free(&b);
    tx_out_free(&xa);
    tx_out_free(&xb);
    free(p);
    free(orig);
}

/* Every allocation failing in turn: MS_ENOMEM, nothing left behind. */
static void test_allocation_failures(void **state)
{
    (void)state;
    const char *names[] = {"v2-libxc", "extras-libxl"};
    for (size_t f = 0; f < 2; f++) {
        char file[64], msg[512];
        size_t len;
        snprintf(file, sizeof file, "%s.xen", names[f]);
        uint8_t *p = tx_load(file, &len);
        counting c = {.fail_at = SIZE_MAX};
        assert_int_equal(import_counted(p, len, NULL, &c, msg, sizeof msg, NULL), 0);
        size_t total = c.calls;
        for (size_t k = 0; k < total; k++) {
            counting d = {.fail_at = k};
            int rc = import_counted(p, len, NULL, &d, msg, sizeof msg, NULL);
            if (rc != MS_ENOMEM)
                print_error("%s, allocation %zu failing: %d %s\n", names[f], k, rc, msg);
            assert_int_equal(rc, MS_ENOMEM);
            assert_true(d.failed);
        }
        free(p);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_page_data),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_reserved_ignored),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
