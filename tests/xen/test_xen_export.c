/*
 * Exporting to Xen's stream (xen.h, docs/XEN.md section 6): the export of
 * an import is the original stream byte for byte; Xen's verify-stream-v2
 * accepts every export it can check (streams written by the libmigstream
 * writer too, libxl-wrapped and bare); `verifiable` leaves out what the
 * checker refuses although the spec allows it; and what a Xen stream
 * cannot carry is refused, naming the record.
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

static uint8_t *import_file(const char *name, size_t *xen_len, tx_out *lm)
{
    char file[96], msg[512];
    snprintf(file, sizeof file, "%s.xen", name);
    uint8_t *xen = tx_load(file, xen_len);
    int rc = tx_import(xen, *xen_len, NULL, lm, msg, sizeof msg);
    if (rc)
        print_error("%s: %s\n", name, msg);
    assert_int_equal(rc, 0);
    return xen;
}

static void export_ok(const uint8_t *lm, size_t len, const ms_xen_export_options *o, tx_out *out)
{
    char msg[512];
    int rc = tx_export(lm, len, o, out, msg, sizeof msg);
    if (rc)
        print_error("export: %s\n", msg);
    assert_int_equal(rc, 0);
}

/* Xen's checker on @p; false when it is not installed. */
static bool checked(const uint8_t *p, size_t len, const char *fmt, const char *verdict)
{
    char out[4096];
    int real = tx_verify(p, len, fmt, false, out, sizeof out);
    if (real == 77)
        return false;
    if (strcmp(verdict, "pass") == 0) {
        if (real)
            print_error("verify-stream-v2 -f %s: %s\n", fmt, out);
        assert_int_equal(real, 0);
    } else if (strcmp(verdict, "fixed") == 0) {
        assert_int_equal(real, 1);
        assert_non_null(strstr(out, "Data not NUL terminated"));
        int fixed = tx_verify(p, len, fmt, true, out, sizeof out);
        if (fixed)
            print_error("verify.py %s: %s\n", fmt, out);
        assert_int_equal(fixed, 0);
    } else {
        assert_int_not_equal(real, 0);
    }
    return true;
}

/* The exporter writes what Xen's saver wrote: same batches, same order. */
static void test_export_of_import_is_the_original(void **state)
{
    (void)state;
    size_t n;
    const tx_fixture *f = tx_fixtures(&n);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        tx_out lm = {0}, xen = {0};
        uint8_t *orig = import_file(f[i].name, &len, &lm);
        ms_xen_export *exp = ms_xen_export_new(NULL);
        tx_in in = {.p = lm.p, .len = lm.len};
        assert_int_equal(ms_xen_export_run(exp, tx_read, &in, tx_write, &xen), 0);
        const ms_xen_export_stats *s = ms_xen_export_get_stats(exp);
        assert_int_equal(s->libxl, strcmp(f[i].format, "libxl") == 0);
        assert_int_equal(s->bytes_written, len);
        assert_int_equal(s->bytes_read, lm.len);
        assert_int_equal(s->dropped, 0);
        if (xen.len != len || memcmp(xen.p, orig, len)) {
            size_t k = 0;
            while (k < len && k < xen.len && xen.p[k] == orig[k])
                k++;
            print_error("%s: export differs from the original at byte %zu (%zu and %zu bytes)\n",
                        f[i].name, k, xen.len, len);
            fail();
        }
        ms_xen_export_free(exp);
        /* The Xen stream itself, read through ms_open() and exported as it
         * is read: the original again, the reader left to its caller. */
        tx_in xin = {.p = orig, .len = len};
        ms_input input = {.read = tx_read, .read_ctx = &xin, .name = f[i].name};
        ms_reader *r = ms_open(NULL, &input, 1);
        tx_out direct = {0};
        exp = ms_xen_export_new(NULL);
        int rc = ms_xen_export_run_reader(exp, r, tx_write, &direct);
        if (rc)
            print_error("%s, from its reader: %s\n", f[i].name, ms_xen_export_errmsg(exp));
        assert_int_equal(rc, 0);
        assert_int_equal(direct.len, len);
        assert_memory_equal(direct.p, orig, len);
        assert_int_equal(ms_xen_export_run_reader(exp, r, tx_write, &direct), MS_ESTATE);
        ms_xen_export_free(exp);
        ms_reader_free(r);
        tx_out_free(&direct);
        tx_out_free(&lm);
        tx_out_free(&xen);
        free(orig);
    }
}

/* Every export, checked by verify-stream-v2 as its fixture is. */
static void test_exports_pass_xens_checker(void **state)
{
    (void)state;
    size_t n;
    const tx_fixture *f = tx_fixtures(&n);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        tx_out lm = {0}, xen = {0};
        uint8_t *orig = import_file(f[i].name, &len, &lm);
        export_ok(lm.p, lm.len, NULL, &xen);
        bool ran = checked(xen.p, xen.len, f[i].format, f[i].verdict);
        tx_out_free(&lm);
        tx_out_free(&xen);
        free(orig);
        if (!ran)
            skip(); /* xen-utils-4.17 is not installed */
    }
}

/* A bare stream wrapped in libxl's format, and the other way round. */
static void test_format_option(void **state)
{
    (void)state;
    const char *bare[] = {"hvm-libxc",   "pv64-libxc",   "pv32-libxc",
                          "remus-libxc", "verify-libxc", "v2-libxc"};
    bool have_checker = true;
    for (size_t i = 0; i < sizeof bare / sizeof *bare; i++) {
        size_t len;
        tx_out lm = {0}, xen = {0}, back = {0};
        uint8_t *orig = import_file(bare[i], &len, &lm);
        ms_xen_export_options o;
        ms_xen_export_options_init(&o);
        o.format = MS_XEN_FORMAT_LIBXL;
        export_ok(lm.p, lm.len, &o, &xen);
        assert_int_equal(memcmp(xen.p, "LibxlFmt", 8), 0);
        /* The checker reads a libxl stream's libxc part to its END: it
         * cannot follow the CHECKPOINT_END records of a checkpointed one. */
        have_checker =
            checked(xen.p, xen.len, "libxl", strncmp(bare[i], "remus", 5) ? "pass" : "no") &&
            have_checker;
        /* Imported again: the same guest, plus the libxl header and a
         * CHECKPOINT_END after each checkpoint (libxl reads its own records
         * there, up to that one). */
        assert_int_equal(tx_import(xen.p, xen.len, NULL, &back, NULL, 0), 0);
        tx_state a, b;
        char buf[512];
        tx_state_read(lm.p, lm.len, &a);
        tx_state_read(back.p, back.len, &b);
        assert_non_null(tx_state_dev(&b, "xen/libxl/header", 0));
        assert_null(tx_state_dev(&a, "xen/libxl/header", 0));
        for (size_t k = b.ndevs; k-- > 0;)
            if (strncmp(b.devs[k].path, "xen/libxl/", 10) == 0)
                b.devs[k] = b.devs[--b.ndevs];
        const char *diff = tx_state_diff(&a, &b, true, buf, sizeof buf);
        if (diff)
            print_error("%s wrapped and read back: %s\n", bare[i], diff);
        assert_null(diff);
        tx_state_free(&a);
        tx_state_free(&b);
        tx_out_free(&lm);
        tx_out_free(&xen);
        tx_out_free(&back);
        free(orig);
    }

    /* libxl's records have no place in a bare stream. */
    size_t len;
    tx_out lm = {0}, xen = {0};
    char msg[512];
    uint8_t *orig = import_file("hvm-libxl", &len, &lm);
    ms_xen_export_options o;
    ms_xen_export_options_init(&o);
    o.format = MS_XEN_FORMAT_LIBXC;
    assert_int_equal(tx_export(lm.p, lm.len, &o, &xen, msg, sizeof msg), MS_EFEATURE);
    assert_non_null(strstr(msg, "EMULATOR_XENSTORE_DATA is a libxl record, and the export "
                                "writes a bare libxc stream"));
    assert_non_null(strstr(msg, "(DEVICE)"));
    tx_out_free(&lm);
    tx_out_free(&xen);
    free(orig);
    if (!have_checker)
        skip();
}

/* verifiable: the records verify-stream-v2 refuses stay out. */
static void test_verifiable(void **state)
{
    (void)state;
    struct {
        const char *name, *fmt;
        uint64_t dropped;
    } cases[] = {{"extras-libxc", "libxc", 4}, {"extras-libxl", "libxl", 5}};
    bool have_checker = true;
    for (size_t i = 0; i < 2; i++) {
        size_t len;
        tx_out lm = {0}, xen = {0}, plain = {0};
        uint8_t *orig = import_file(cases[i].name, &len, &lm);
        ms_xen_export_options o;
        ms_xen_export_options_init(&o);
        o.verifiable = true;
        ms_xen_export *exp = ms_xen_export_new(&o);
        tx_in in = {.p = lm.p, .len = lm.len};
        assert_int_equal(ms_xen_export_run(exp, tx_read, &in, tx_write, &xen), 0);
        assert_int_equal(ms_xen_export_get_stats(exp)->dropped, cases[i].dropped);
        ms_xen_export_free(exp);
        have_checker = checked(xen.p, xen.len, cases[i].fmt, "pass") && have_checker;
        /* By default they go out, and the checker stops at the first. */
        export_ok(lm.p, lm.len, NULL, &plain);
        char out[4096];
        int real = tx_verify(plain.p, plain.len, cases[i].fmt, false, out, sizeof out);
        if (real != 77) {
            assert_int_equal(real, 1);
            assert_non_null(strstr(out, "Unrecognised record type 0x80000123"));
        }
        tx_out_free(&lm);
        tx_out_free(&xen);
        tx_out_free(&plain);
        free(orig);
    }
    if (!have_checker)
        skip();
}

/* ------------------------------------------------ streams of the writer */

static ms_writer *new_writer(tx_out *out, uint64_t features)
{
    ms_writer_options wo;
    ms_writer_options_init(&wo);
    wo.writer_name = "test";
    wo.features = features;
    ms_writer *w = ms_writer_new(&wo, tx_write, out);
    assert_int_equal(ms_writer_status(w), 0);
    return w;
}

static void finish(ms_writer *w)
{
    assert_int_equal(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

/* A stream no Xen wrote: regions at guest-physical addresses, one with
 * 8 KiB pages, every page state but IN_PLACE, rounds. */
static void write_plain(tx_out *out)
{
    ms_writer *w = new_writer(out, MS_FEATURE_FILL | MS_FEATURE_DISCARDED);
    ms_region ram = {
        .id = 0, .name = "ram", .has_gpa = true, .gpa = 0, .size = 64 * 4096, .page_size = 4096};
    ms_region big = {.id = 7,
                     .name = "big",
                     .has_gpa = true,
                     .gpa = 0x100000,
                     .size = 4 * 8192,
                     .page_size = 8192};
    assert_int_equal(ms_writer_add_region(w, &ram), 0);
    assert_int_equal(ms_writer_add_region(w, &big), 0);
    static uint8_t mem[64 * 4096];
    for (size_t i = 0; i < sizeof mem; i++)
        mem[i] = (uint8_t)(i % 4096 < 8 * (i / 4096 % 3) ? i * 13 : 0);
    assert_int_equal(ms_writer_round(w, &(ms_round){.number = 0}), 0);
    assert_int_equal(ms_writer_pages(w, 0, 0, 64, mem), 0);
    assert_int_equal(ms_writer_fill_pages(w, 0, 10, 3, 0xcccccccccccccccc), 0);
    assert_int_equal(ms_writer_discard(w, 0, 20, 2), 0);
    assert_int_equal(ms_writer_pages(w, 7, 0, 4, mem + 4096), 0);
    assert_int_equal(
        ms_writer_round(
            w, &(ms_round){.number = 1, .tracker = MS_TRACKER_BITMAP, .granularity = 4096}),
        0);
    assert_int_equal(ms_writer_pages(w, 0, 5, 1, mem + 2 * 4096), 0);
    assert_int_equal(ms_writer_zero_pages(w, 7, 1, 1), 0);
    finish(w);
}

static void test_writer_streams(void **state)
{
    (void)state;
    tx_out lm = {0};
    write_plain(&lm);
    bool have_checker = true;
    for (int f = 0; f < 3; f++) {
        tx_out xen = {0}, back = {0};
        ms_xen_export_options o;
        ms_xen_export_options_init(&o);
        o.format = (uint32_t)f;
        o.batch_pfns = 16;
        ms_xen_export *exp = ms_xen_export_new(&o);
        tx_in in = {.p = lm.p, .len = lm.len};
        assert_int_equal(ms_xen_export_run(exp, tx_read, &in, tx_write, &xen), 0);
        const ms_xen_export_stats *s = ms_xen_export_get_stats(exp);
        /* 64 + 8 pfns in round 0 by 16, then 3 pfns: 5 + 1 records. */
        assert_int_equal(s->page_data, 6);
        assert_int_equal(s->pages[MS_XEN_PAGE_XTAB], 2);
        /* 64, 3 FILL and 8 (4 pages of 8 KiB) in round 0, then 1 and 2. */
        assert_int_equal(s->pages[MS_XEN_PAGE_NOTAB], 64 + 3 + 8 + 1 + 2);
        assert_int_equal(s->domain_type, MS_XEN_DOMAIN_HVM);
        bool libxl = f != MS_XEN_FORMAT_LIBXC;
        assert_int_equal(s->libxl, libxl);
        ms_xen_export_free(exp);
        have_checker = checked(xen.p, xen.len, libxl ? "libxl" : "libxc", "pass") && have_checker;
        /* Read back: the same pages at the same guest frames; FILL pages
         * carry their bytes. */
        assert_int_equal(tx_import(xen.p, xen.len, NULL, &back, NULL, 0), 0);
        tx_state a, b;
        char buf[512];
        tx_state_read(lm.p, lm.len, &a);
        tx_state_read(back.p, back.len, &b);
        a.ndevs = b.ndevs = 0; /* the headers only */
        const char *diff = tx_state_diff(&b, &a, false, buf, sizeof buf);
        if (diff)
            print_error("format %d: %s\n", f, diff);
        assert_null(diff);
        /* The FILL pages written after all 64 look like a new pass. */
        assert_int_equal(b.rounds, 3);
        assert_int_equal(tx_state_page(&b, 21)->state, TX_DISCARDED);
        tx_state_free(&a);
        tx_state_free(&b);
        tx_out_free(&xen);
        tx_out_free(&back);
    }
    tx_out_free(&lm);

    /* A stream with no page at all still has its STATIC_DATA_END. */
    tx_out empty = {0}, xen = {0};
    finish(new_writer(&empty, 0));
    export_ok(empty.p, empty.len, NULL, &xen);
    /* libxl header, LIBXC_CONTEXT, headers, STATIC_DATA_END, END, END */
    assert_int_equal(xen.len, 16 + 8 + 40 + 8 + 8 + 8);
    have_checker = checked(xen.p, xen.len, "libxl", "pass") && have_checker;
    tx_out_free(&empty);
    tx_out_free(&xen);
    if (!have_checker)
        skip();
}

/* ------------------------------------------------ refusals */

/* A CBOR state {"raw": @raw} for a DEVICE. */
static size_t raw_state(uint8_t *buf, const void *raw, size_t len)
{
    size_t n = 0;
    buf[n++] = 0xa1;
    buf[n++] = 0x63;
    memcpy(buf + n, "raw", 3);
    n += 3;
    assert_true(len < 65536);
    buf[n++] = 0x59;
    buf[n++] = (uint8_t)(len >> 8);
    buf[n++] = (uint8_t)len;
    if (len)
        memcpy(buf + n, raw, len);
    return n + len;
}

static void device(ms_writer *w, const char *path, uint32_t instance, const void *raw, size_t len)
{
    static uint8_t st[70000];
    size_t n = raw_state(st, raw, len);
    assert_int_equal(ms_writer_device(w, path, instance, "X", 1, st, n), 0);
}

static void expect_refusal(const tx_out *lm, const ms_xen_export_options *o, int status,
                           const char *needle)
{
    tx_out xen = {0};
    char msg[512];
    int rc = tx_export(lm->p, lm->len, o, &xen, msg, sizeof msg);
    if (rc != status || !strstr(msg, needle))
        print_error("status %d (%s), message: %s; expected %s\n", rc, ms_strerror(rc), msg, needle);
    assert_int_equal(rc, status);
    assert_non_null(strstr(msg, needle));
    /* The message names the input record. */
    assert_non_null(strstr(msg, "record "));
    tx_out_free(&xen);
}

static void test_refusals(void **state)
{
    (void)state;
    ms_region ram = {.id = 0, .name = "ram", .has_gpa = true, .size = 16 * 4096, .page_size = 4096};
    uint8_t page[4096];
    memset(page, 0x5a, sizeof page);
    tx_out lm = {0};
    ms_writer *w;

    w = new_writer(&lm, MS_FEATURE_IN_PLACE);
    ms_writer_add_region(w, &ram);
    ms_writer_in_place(w, 0, 2, 2, 0x40000000);
    finish(w);
    expect_refusal(&lm, NULL, MS_EFEATURE, "pages 2..3 are IN_PLACE");
    tx_out_free(&lm);

    w = new_writer(&lm, MS_FEATURE_OVERLAYS);
    ms_writer_add_region(w, &ram);
    ms_writer_overlay(w, &(ms_overlay){.gfn = 3, .kind = MS_OVERLAY_HYPERCALL});
    finish(w);
    expect_refusal(&lm, NULL, MS_EFEATURE, "overlay pages (first at gfn 0x3)");
    tx_out_free(&lm);

    w = new_writer(&lm, 0);
    ms_region nogpa = ram;
    nogpa.has_gpa = false;
    ms_writer_add_region(w, &nogpa);
    ms_writer_pages(w, 0, 0, 1, page);
    finish(w);
    expect_refusal(&lm, NULL, MS_EFEATURE, "region 0 'ram' has no guest-physical address");
    tx_out_free(&lm);

    w = new_writer(&lm, 0);
    device(w, "cpu/0", 0, "x", 1);
    finish(w);
    expect_refusal(&lm, NULL, MS_EFEATURE, "device 'cpu/0' instance 0 is not a Xen record");
    tx_out_free(&lm);

    w = new_writer(&lm, 0);
    assert_int_equal(ms_writer_device(w, "xen/hvm_context", 0, "X", 1, "\xa0", 1), 0);
    finish(w);
    expect_refusal(&lm, NULL, MS_EFEATURE, "the state has no \"raw\" bytes");
    tx_out_free(&lm);

    w = new_writer(&lm, 0);
    device(w, "xen/x86_tsc_info", 0, page, 20);
    finish(w);
    expect_refusal(&lm, NULL, MS_EFEATURE, "a body of 20 bytes; X86_TSC_INFO has exactly 24");
    tx_out_free(&lm);

    w = new_writer(&lm, 0);
    device(w, "xen/hvm_context", 0, page, 100);
    finish(w);
    expect_refusal(&lm, NULL, MS_EFEATURE, "HVM_CONTEXT before any HVM_PARAMS");
    tx_out_free(&lm);

    uint8_t info[8] = {8, 4};
    w = new_writer(&lm, 0);
    device(w, "xen/x86_pv_info", 0, info, 8);
    finish(w);
    expect_refusal(&lm, NULL, MS_EFEATURE,
                   "X86_PV_INFO belongs to x86 PV guests, and this is an x86 HVM stream");
    /* As PV, the same record goes out; PAGE_DATA would need its p2m. */
    ms_xen_export_options o;
    ms_xen_export_options_init(&o);
    o.domain_type = MS_XEN_DOMAIN_PV;
    tx_out xen = {0};
    export_ok(lm.p, lm.len, &o, &xen);
    tx_out_free(&xen);
    tx_out_free(&lm);
    w = new_writer(&lm, 0);
    device(w, "xen/x86_pv_info", 0, info, 8);
    ms_writer_add_region(w, &ram);
    ms_writer_pages(w, 0, 0, 1, page);
    finish(w);
    expect_refusal(&lm, &o, MS_EFEATURE, "PAGE_DATA before X86_PV_P2M_FRAMES in a PV stream");
    tx_out_free(&lm);

    uint8_t vcpu[16] = {1};
    w = new_writer(&lm, 0);
    device(w, "xen/vcpu/0/basic", 0, vcpu, sizeof vcpu);
    finish(w);
    expect_refusal(&lm, &o, MS_EFEATURE, "its raw bytes are for vcpu 1, its path for vcpu 0");
    tx_out_free(&lm);

    w = new_writer(&lm, 0);
    device(w, "xen/libxl/checkpoint_end", 0, NULL, 0);
    finish(w);
    expect_refusal(&lm, NULL, MS_EFEATURE, "CHECKPOINT_END outside a checkpoint");
    tx_out_free(&lm);

    /* A libxc record after libxl's records that follow the libxc END. */
    uint8_t emu[12] = {2};
    w = new_writer(&lm, 0);
    device(w, "xen/emulator/qemu-upstream/context", 0, emu, sizeof emu);
    device(w, "xen/static_data_end", 0, NULL, 0);
    ms_writer_add_region(w, &ram);
    ms_writer_pages(w, 0, 0, 1, page);
    device(w, "xen/emulator/qemu-upstream/context", 0, emu, sizeof emu);
    device(w, "xen/x86_tsc_info", 0, page, 24);
    finish(w);
    expect_refusal(&lm, NULL, MS_EFEATURE,
                   "a libxc record after the libxl records that follow the libxc stream's END");
    tx_out_free(&lm);

    /* A page type that contradicts its page. */
    uint8_t types[8];
    for (int i = 0; i < 8; i++)
        types[i] = (uint8_t)((0xe000000000000005ull >> (8 * i)) & 0xff); /* XALLOC pfn 5 */
    w = new_writer(&lm, 0);
    ms_writer_add_region(w, &ram);
    device(w, "xen/page_types", 0, types, 8);
    ms_writer_pages(w, 0, 5, 1, page);
    finish(w);
    expect_refusal(&lm, NULL, MS_EFEATURE,
                   "pfn 0x5: \"xen/page_types\" instance 0 gives it page type 0xe, but it is a "
                   "page with data");
    tx_out_free(&lm);
    /* Types of another block than the record's instance. */
    w = new_writer(&lm, 0);
    device(w, "xen/page_types", 1, types, 8);
    finish(w);
    expect_refusal(&lm, NULL, MS_EFEATURE,
                   "\"xen/page_types\" instance 1: entry 0 (0xe000000000000005) is not a page "
                   "table, XALLOC or BROKEN entry above the one before in pfns 0x1000 to 0x1fff");
    tx_out_free(&lm);

    /* The header comes before the libxc stream it describes. */
    size_t len;
    tx_out full = {0};
    uint8_t *orig = import_file("v2-libxc", &len, &full);
    uint8_t hdr[40];
    memcpy(hdr, orig, 40);
    w = new_writer(&lm, 0);
    device(w, "xen/static_data_end", 0, NULL, 0);
    device(w, "xen/header", 0, hdr, 40);
    finish(w);
    expect_refusal(&lm, NULL, MS_EFEATURE, "\"xen/header\" comes after the libxc stream's start");
    tx_out_free(&lm);
    /* ... and it must be one. */
    hdr[0] = 0;
    w = new_writer(&lm, 0);
    device(w, "xen/header", 0, hdr, 40);
    finish(w);
    expect_refusal(&lm, NULL, MS_EFEATURE, "the raw bytes are not a libxc image header");
    tx_out_free(&lm);
    /* A version 2 stream has no STATIC_DATA_END. */
    w = new_writer(&lm, 0);
    device(w, "xen/header", 0, orig, 40);
    device(w, "xen/static_data_end", 0, NULL, 0);
    finish(w);
    expect_refusal(&lm, NULL, MS_EFEATURE,
                   "STATIC_DATA_END came with version 3 of the libxc format; this stream is "
                   "version 2");
    tx_out_free(&lm);
    tx_out_free(&full);
    free(orig);

    /* Bytes after END: the reader's refusal. */
    w = new_writer(&lm, 0);
    finish(w);
    uint8_t extra = 0;
    tx_write(&lm, &(struct iovec){.iov_base = &extra, .iov_len = 1}, 1);
    tx_out out = {0};
    char msg[512];
    assert_int_equal(tx_export(lm.p, lm.len, NULL, &out, msg, sizeof msg), MS_ECORRUPT);
    tx_out_free(&out);
    tx_out_free(&lm);
}

static void test_options_and_output(void **state)
{
    (void)state;
    ms_xen_export_options o;
    struct {
        uint32_t format, domain, batch;
        const char *why;
    } bad[] = {
        {3, 0, 0, "format must be"},
        {0, 3, 0, "domain_type must be"},
        {0, 0, 16385, "batch_pfns must be 1 to 16384"},
    };
    for (size_t i = 0; i < 3; i++) {
        ms_xen_export_options_init(&o);
        o.format = bad[i].format;
        if (bad[i].domain)
            o.domain_type = bad[i].domain;
        if (bad[i].batch)
            o.batch_pfns = bad[i].batch;
        ms_xen_export *exp = ms_xen_export_new(&o);
        assert_int_equal(ms_xen_export_status(exp), MS_EINVAL);
        assert_non_null(strstr(ms_xen_export_errmsg(exp), bad[i].why));
        assert_int_equal(ms_xen_export_run_fd(exp, 0, 1), MS_EINVAL);
        ms_xen_export_free(exp);
    }
    assert_int_equal(ms_xen_export_status(NULL), MS_ENOMEM);
    assert_int_equal(ms_xen_export_error_record(NULL), -1);

    /* The output fails: MS_EIO, and the Xen stream has no END. */
    size_t len;
    tx_out lm = {0}, xen = {.fail_after = 100000};
    uint8_t *orig = import_file("hvm-libxl", &len, &lm);
    ms_xen_export *exp = ms_xen_export_new(NULL);
    tx_in in = {.p = lm.p, .len = lm.len};
    assert_int_equal(ms_xen_export_run(exp, tx_read, &in, tx_write, &xen), MS_EIO);
    assert_non_null(strstr(ms_xen_export_errmsg(exp), "writing the Xen stream failed"));
    assert_int_equal(ms_xen_export_run(exp, tx_read, &in, tx_write, &xen), MS_EIO);
    ms_xen_export_free(exp);
    tx_out_free(&xen);

    /* A damaged input: the reader's message, with its record. */
    lm.p[lm.len / 2] ^= 1;
    exp = ms_xen_export_new(NULL);
    in = (tx_in){.p = lm.p, .len = lm.len};
    int rc = ms_xen_export_run(exp, tx_read, &in, tx_write, &xen);
    assert_true(rc == MS_ECHECKSUM || rc == MS_ECORRUPT);
    assert_true(ms_xen_export_error_record(exp) >= 0);
    ms_xen_export_free(exp);
    tx_out_free(&xen);
    tx_out_free(&lm);
    free(orig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_of_import_is_the_original),
        cmocka_unit_test(test_exports_pass_xens_checker),
        cmocka_unit_test(test_format_option),
        cmocka_unit_test(test_verifiable),
        cmocka_unit_test(test_writer_streams),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_options_and_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
