/*
 * Round trips (docs/XEN.md section 6): Xen -> libmigstream -> Xen ->
 * libmigstream leaves the same final state as the first import (every
 * page, every device's raw bytes, regions, rounds), in either wrapper; and
 * libmigstream -> Xen -> libmigstream keeps every page of a stream the
 * libmigstream writer wrote, at the same guest frames.
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

static void import_ok(const uint8_t *xen, size_t len, tx_out *lm)
{
    char msg[512];
    int rc = tx_import(xen, len, NULL, lm, msg, sizeof msg);
    if (rc)
        print_error("import: %s\n", msg);
    assert_int_equal(rc, 0);
}

static void export_ok(const uint8_t *lm, size_t len, const ms_xen_export_options *o, tx_out *xen)
{
    char msg[512];
    int rc = tx_export(lm, len, o, xen, msg, sizeof msg);
    if (rc)
        print_error("export: %s\n", msg);
    assert_int_equal(rc, 0);
}

static void test_xen_lm_xen_lm(void **state)
{
    (void)state;
    size_t n;
    const tx_fixture *f = tx_fixtures(&n);
    for (size_t i = 0; i < n; i++) {
        char file[96], buf[512];
        size_t len;
        snprintf(file, sizeof file, "%s.xen", f[i].name);
        uint8_t *xen = tx_load(file, &len);
        tx_out lm1 = {0}, xen2 = {0}, lm2 = {0};
        import_ok(xen, len, &lm1);
        /* With small PAGE_DATA records, so that the second stream is not
         * the first one again byte for byte. */
        ms_xen_export_options o;
        ms_xen_export_options_init(&o);
        o.batch_pfns = 7;
        export_ok(lm1.p, lm1.len, &o, &xen2);
        assert_true(xen2.len != len || memcmp(xen2.p, xen, len) != 0);
        import_ok(xen2.p, xen2.len, &lm2);
        tx_state a, b;
        tx_state_read(lm1.p, lm1.len, &a);
        tx_state_read(lm2.p, lm2.len, &b);
        const char *diff = tx_state_diff(&b, &a, true, buf, sizeof buf);
        if (diff)
            print_error("%s: %s\n", f[i].name, diff);
        assert_null(diff);
        tx_state_free(&a);
        tx_state_free(&b);
        tx_out_free(&lm1);
        tx_out_free(&xen2);
        tx_out_free(&lm2);
        free(xen);
    }
}

/* A guest written through the libmigstream writer, as a VMM sends it. */
static void write_guest(tx_out *out)
{
    ms_writer_options wo;
    ms_writer_options_init(&wo);
    wo.features = MS_FEATURE_FILL | MS_FEATURE_DISCARDED;
    ms_writer *w = ms_writer_new(&wo, tx_write, out);
    ms_region low = {
        .id = 1, .name = "low", .has_gpa = true, .gpa = 0, .size = 1 << 20, .page_size = 4096};
    ms_region high = {.id = 2,
                      .name = "high",
                      .has_gpa = true,
                      .gpa = 1ull << 32,
                      .size = 1 << 21,
                      .page_size = 1 << 21};
    assert_int_equal(ms_writer_add_region(w, &low), 0);
    assert_int_equal(ms_writer_add_region(w, &high), 0);
    uint8_t *mem = calloc(1, 1 << 21);
    assert_non_null(mem);
    uint64_t rng = 42;
    for (size_t p = 0; p < 256; p++)
        if (p % 5)
            for (size_t b = 0; b < 64; b++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                mem[p * 4096 + b * 64] = (uint8_t)(rng >> 56);
            }
    assert_int_equal(ms_writer_round(w, &(ms_round){.number = 0}), 0);
    assert_int_equal(ms_writer_pages(w, 1, 0, 256, mem), 0);
    assert_int_equal(ms_writer_pages(w, 2, 0, 1, mem), 0);
    assert_int_equal(ms_writer_discard(w, 1, 100, 10), 0);
    assert_int_equal(
        ms_writer_round(
            w, &(ms_round){.number = 1, .tracker = MS_TRACKER_BITMAP, .granularity = 4096}),
        0);
    assert_int_equal(ms_writer_fill_pages(w, 1, 3, 2, 0x0101010101010101ull), 0);
    assert_int_equal(ms_writer_pages(w, 1, 104, 1, mem + 7 * 4096), 0);
    assert_int_equal(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    free(mem);
}

static void test_lm_xen_lm(void **state)
{
    (void)state;
    tx_out lm = {0};
    write_guest(&lm);
    for (uint32_t fmt = MS_XEN_FORMAT_LIBXL; fmt <= MS_XEN_FORMAT_LIBXC; fmt++) {
        tx_out xen = {0}, back = {0};
        ms_xen_export_options o;
        ms_xen_export_options_init(&o);
        o.format = fmt;
        export_ok(lm.p, lm.len, &o, &xen);
        import_ok(xen.p, xen.len, &back);
        tx_state a, b;
        char buf[512];
        tx_state_read(lm.p, lm.len, &a);
        tx_state_read(back.p, back.len, &b);
        /* Pages by guest frame; the import's devices are Xen's headers. */
        a.ndevs = 0;
        b.ndevs = 0;
        const char *diff = tx_state_diff(&b, &a, false, buf, sizeof buf);
        if (diff)
            print_error("format %u: %s\n", fmt, diff);
        assert_null(diff);
        assert_int_equal(b.npages, 256 + 512);
        assert_int_equal(tx_state_page(&b, 104)->state, TX_DATA);
        assert_int_equal(tx_state_page(&b, 105)->state, TX_DISCARDED);
        assert_int_equal(tx_state_page(&b, (1ull << 20) + 511)->state, TX_ZERO);
        tx_state_free(&a);
        tx_state_free(&b);

        /* And once more: the second Xen stream is the first one. */
        tx_out xen2 = {0};
        export_ok(back.p, back.len, &o, &xen2);
        assert_int_equal(xen2.len, xen.len);
        assert_memory_equal(xen2.p, xen.p, xen.len);
        tx_out_free(&xen2);
        tx_out_free(&xen);
        tx_out_free(&back);
    }
    tx_out_free(&lm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xen_lm_xen_lm),
        cmocka_unit_test(test_lm_xen_lm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
