/*
 * The Xen module as a foreign-format source (libmigstream/xen/source.h,
 * format/source.h): its bid, the records it hands out (INFO first, the
 * headers' DEVICE records, regions before pages, PAGES within their bounds,
 * END with totals that count what came before), the bounded work and
 * memory of each next(), msi_source_copy() giving the importer's stream
 * byte for byte, its export op, and failures of the output named by the
 * Xen record they came from.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "format/source.h"
#include "xen/pages.h"
#include "xen/source.h"
#include "xen_fixture.h"

typedef struct counting {
    size_t now, peak;
} counting;

static void *count_alloc(void *o, size_t n)
{
    counting *c = o;
    size_t *p = malloc(n + 16);
    if (!p)
        return NULL;
    p[0] = n;
    c->now += n;
    if (c->now > c->peak)
        c->peak = c->now;
    return (char *)p + 16;
}

static void count_free(void *o, void *q)
{
    counting *c = o;
    if (!q)
        return;
    size_t *p = (size_t *)((char *)q - 16);
    c->now -= p[0];
    free(p);
}

static void *count_realloc(void *o, void *q, size_t n)
{
    if (!q)
        return count_alloc(o, n);
    counting *c = o;
    size_t *p = (size_t *)((char *)q - 16), old = p[0];
    size_t *r = realloc(p, n + 16);
    if (!r)
        return NULL;
    r[0] = n;
    c->now = c->now - old + n;
    if (c->now > c->peak)
        c->peak = c->now;
    return (char *)r + 16;
}

static void test_bid(void **state)
{
    (void)state;
    uint8_t head[MSI_SOURCE_BID_BYTES] = {0};
    assert_string_equal(mx_source_ops.name, "xen");
    assert_non_null(mx_source_ops.title);
    assert_non_null(mx_source_ops.export);
    memcpy(head, "LibxlFmt\0\0\0\2", 12);
    assert_int_equal(mx_source_ops.bid(head, sizeof head), 100);
    assert_int_equal(mx_source_ops.bid(head, 8), 100);
    head[11] = 3;
    assert_int_equal(mx_source_ops.bid(head, sizeof head), 10); /* libxl's, not read */
    memset(head, 0xff, 8);
    memcpy(head + 8, "XENF\0\0\0\3", 8);
    assert_int_equal(mx_source_ops.bid(head, sizeof head), 100);
    head[15] = 2;
    assert_int_equal(mx_source_ops.bid(head, sizeof head), 100);
    head[15] = 4;
    assert_int_equal(mx_source_ops.bid(head, sizeof head), 10);
    assert_int_equal(mx_source_ops.bid(head, 8), 50); /* the marker alone */
    memcpy(head + 8, "QEVM", 4);
    assert_int_equal(mx_source_ops.bid(head, sizeof head), 0);
    memcpy(head, "Xen saved domain, xl format\n \0 \r", 32);
    assert_int_equal(mx_source_ops.bid(head, sizeof head), 10);
    memcpy(head, "QEVM\0\0\0\3", 8);
    assert_int_equal(mx_source_ops.bid(head, sizeof head), 0);
    memcpy(head, "\x89MIGS\r\n\x1a", 8);
    assert_int_equal(mx_source_ops.bid(head, sizeof head), 0);
    assert_int_equal(mx_source_ops.bid(head, 0), 0);
}

typedef struct run {
    uint64_t records, max_advance, max_data, max_extents, max_pages;
    size_t peak;
    char first_paths[3][64];
} run;

/* Every record the source hands out for @name, checked as a reader would
 * check it. */
static void run_source(const char *name, run *res)
{
    char file[96];
    size_t len;
    snprintf(file, sizeof file, "%s.xen", name);
    uint8_t *xen = tx_load(file, &len);
    memset(res, 0, sizeof *res);
    tx_in in = {.p = xen, .len = len, .chunk = 4093};
    const msi_source_io io = {.read = tx_read, .read_ctx = &in};
    counting cnt = {0, 0};
    const ms_allocator a = {count_alloc, count_realloc, count_free, &cnt};
    msi_source s;
    msi_source_init(&s, &mx_source_ops, &a, &io, NULL);
    assert_int_equal(msi_source_open(&s), 0);
    assert_int_equal(s.header.page_size, 4096);
    assert_string_equal(s.header.writer_name, "xen");
    assert_true(s.header.required_features & MS_FEATURE_DISCARDED);
    const ms_record *rec;
    int rc, devices = 0;
    bool regions = false, ended = false;
    uint64_t before = mx_source_offset(&s), last_off = 0, pages[MS_PAGE_STATE_SLOTS] = {0};
    uint64_t ndev = 0, nround = 0;
    while ((rc = msi_source_next(&s, &rec)) > 0) {
        assert_false(ended);
        uint64_t now = mx_source_offset(&s);
        if (now - before > res->max_advance)
            res->max_advance = now - before;
        before = now;
        assert_int_equal(rec->index, res->records);
        assert_true(rec->known);
        assert_null(rec->payload);
        assert_true(rec->offset >= last_off);
        last_off = rec->offset;
        if (res->records == 0)
            assert_int_equal(rec->type, MS_REC_INFO);
        res->records++;
        switch (rec->type) {
        case MS_REC_DEVICE:
            if (devices < 3)
                snprintf(res->first_paths[devices], sizeof res->first_paths[0], "%s",
                         rec->device.path);
            devices++;
            ndev++;
            break;
        case MS_REC_REGIONS:
            regions = true;
            break;
        case MS_REC_ROUND:
            nround++;
            break;
        case MS_REC_PAGES: {
            assert_true(regions);
            const ms_pages *p = &rec->pages;
            uint64_t n = 0, data = 0;
            assert_true(p->extent_count > 0);
            for (size_t i = 0; i < p->extent_count; i++) {
                const ms_extent *x = &p->extents[i];
                if (i)
                    assert_true(x->first >= p->extents[i - 1].first + p->extents[i - 1].count);
                n += x->count;
                pages[x->state] += x->count;
                data += x->state == MS_PAGE_DATA ? x->count : 0;
            }
            assert_int_equal(p->data_size, data * 4096);
            if (p->data_size > res->max_data)
                res->max_data = p->data_size;
            if (p->extent_count > res->max_extents)
                res->max_extents = p->extent_count;
            if (n > res->max_pages)
                res->max_pages = n;
            break;
        }
        case MS_REC_END:
            ended = true;
            assert_int_equal(rec->totals.records, rec->index);
            assert_int_equal(rec->totals.bytes, len);
            assert_int_equal(rec->totals.devices, ndev);
            assert_int_equal(rec->totals.rounds, nround);
            assert_memory_equal(rec->totals.pages, pages, sizeof pages);
            break;
        default:
            break;
        }
    }
    assert_int_equal(rc, 0);
    assert_true(ended);
    assert_int_equal(msi_source_next(&s, &rec), 0);
    msi_source_close(&s);
    res->peak = cnt.peak;
    assert_int_equal(cnt.now, 0);
    free(xen);
}

static void test_records(void **state)
{
    (void)state;
    run r;
    run_source("hvm-libxl", &r);
    assert_string_equal(r.first_paths[0], "xen/libxl/header");
    assert_string_equal(r.first_paths[1], "xen/header");
    assert_string_equal(r.first_paths[2], "xen/x86_cpuid_policy");
    /* One PAGE_DATA step at a time: at most a PAGES record's data, its
     * record's pfns and headers between two records. */
    assert_true(r.max_advance <= MX_PAGES_DATA_MAX + 8 * 1024 + 64);
    assert_true(r.max_data <= MX_PAGES_DATA_MAX);
    assert_true(r.max_extents <= MX_PAGES_EXTENTS_MAX);
    assert_true(r.max_pages <= MX_PAGES_MAX);
    /* Two page slots, the input buffer, a record: not the 8 MiB stream. */
    assert_true(r.peak < (3u << 20));

    size_t n;
    const tx_fixture *f = tx_fixtures(&n);
    for (size_t i = 0; i < n; i++) {
        run_source(f[i].name, &r);
        assert_true(r.max_data <= MX_PAGES_DATA_MAX);
        assert_true(r.peak < (3u << 20));
    }
}

/* msi_source_copy() writes what ms_xen_import_run() writes. */
static void test_copy_is_the_import(void **state)
{
    (void)state;
    size_t len;
    uint8_t *xen = tx_load("pv64-libxc.xen", &len);
    tx_out imported = {0}, copied = {0};
    assert_int_equal(tx_import(xen, len, NULL, &imported, NULL, 0), 0);

    tx_in in = {.p = xen, .len = len};
    const msi_source_io io = {.read = tx_read, .read_ctx = &in};
    msi_source s;
    msi_source_init(&s, &mx_source_ops, NULL, &io, NULL);
    assert_int_equal(msi_source_open(&s), 0);
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.writer_name = s.header.writer_name;
    o.writer_version = s.header.writer_version;
    o.machine = s.info.machine;
    o.features = s.header.required_features;
    ms_writer *w = ms_writer_new(&o, tx_write, &copied);
    msi_copy_stop stop;
    assert_int_equal(msi_source_copy(&s, w, &stop), 0);
    assert_int_equal(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    msi_source_close(&s);
    assert_int_equal(copied.len, imported.len);
    assert_memory_equal(copied.p, imported.p, copied.len);

    /* The export op, with its defaults: the original stream again. */
    tx_out back = {0};
    tx_in lm = {.p = copied.p, .len = copied.len};
    char err[256] = "";
    assert_int_equal(mx_source_ops.export(tx_read, &lm, tx_write, &back, err, sizeof err), 0);
    assert_int_equal(back.len, len);
    assert_memory_equal(back.p, xen, len);
    /* ... and its failure, said in @err. */
    uint8_t junk[200] = {1};
    tx_in bad = {.p = junk, .len = sizeof junk};
    tx_out none = {0};
    assert_int_equal(mx_source_ops.export(tx_read, &bad, tx_write, &none, err, sizeof err),
                     MS_EMAGIC);
    assert_true(err[0] != 0);
    tx_out_free(&none);
    tx_out_free(&back);
    tx_out_free(&imported);
    tx_out_free(&copied);
    free(xen);
}

/* A failing output is named by the Xen record whose item was being
 * written. */
static void test_output_failure(void **state)
{
    (void)state;
    size_t len;
    uint8_t *xen = tx_load("hvm-libxl.xen", &len);
    tx_out full = {0};
    assert_int_equal(tx_import(xen, len, NULL, &full, NULL, 0), 0);
    size_t limits[] = {100, full.len / 4, full.len / 2, full.len - 10};
    tx_out_free(&full);
    for (size_t i = 0; i < 4; i++) {
        ms_xen_import *imp = ms_xen_import_new(NULL);
        tx_in in = {.p = xen, .len = len};
        tx_out out = {.fail_after = limits[i]};
        assert_int_equal(ms_xen_import_run(imp, tx_read, &in, tx_write, &out), MS_EIO);
        const char *msg = ms_xen_import_errmsg(imp);
        if (!strstr(msg, "writing the output") || !strstr(msg, " at offset "))
            print_error("%s\n", msg);
        assert_non_null(strstr(msg, "writing the output"));
        assert_non_null(strstr(msg, " at offset "));
        if (i == 1 || i == 2) { /* among the pages */
            if (!strstr(msg, "(PAGE_DATA) at offset") || !strstr(msg, ": pfn 0x"))
                print_error("%s\n", msg);
            assert_non_null(strstr(msg, "(PAGE_DATA) at offset"));
            assert_non_null(strstr(msg, ": pfn 0x"));
        }
        assert_true(ms_xen_import_error_offset(imp) <= len);
        ms_xen_import_free(imp);
        tx_out_free(&out);
    }
    free(xen);
}

static void test_refusals(void **state)
{
    (void)state;
    uint8_t junk[64] = "not a Xen stream at all";
    tx_in in = {.p = junk, .len = sizeof junk};
    const msi_source_io io = {.read = tx_read, .read_ctx = &in};
    msi_source s;
    msi_source_init(&s, &mx_source_ops, NULL, &io, NULL);
    assert_int_equal(msi_source_open(&s), MS_EMAGIC);
    assert_non_null(strstr(s.msg, "neither a libxl stream"));
    const ms_record *rec;
    assert_int_equal(msi_source_next(&s, &rec), MS_EMAGIC);
    msi_source_close(&s);

    /* Options the source cannot take. */
    ms_xen_import_options o;
    ms_xen_import_options_init(&o);
    o.max_record_size = 25u << 20;
    in.pos = 0;
    msi_source_init(&s, &mx_source_ops, NULL, &io, &o);
    assert_int_equal(msi_source_open(&s), MS_EINVAL);
    assert_non_null(strstr(s.msg, "max_record_size is at most 24 MiB"));
    msi_source_close(&s);
    ms_xen_import *imp = ms_xen_import_new(&o);
    assert_int_equal(ms_xen_import_status(imp), MS_EINVAL);
    assert_non_null(strstr(ms_xen_import_errmsg(imp), "invalid import options"));
    assert_int_equal(ms_xen_import_run_fd(imp, 0, 1), MS_EINVAL);
    ms_xen_import_free(imp);
    ms_xen_import_options_init(&o);
    o.max_guest_bytes = 4097;
    imp = ms_xen_import_new(&o);
    assert_non_null(strstr(ms_xen_import_errmsg(imp), "max_guest_bytes must be a multiple"));
    ms_xen_import_free(imp);
    assert_int_equal(ms_xen_import_status(NULL), MS_ENOMEM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bid),
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_copy_is_the_import),
        cmocka_unit_test(test_output_failure),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
