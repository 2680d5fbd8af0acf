/*
 * The ABI rules of common.h, applied the same way by every entry point:
 *
 *  - "Growing structs": each options and callbacks struct accepts an older
 *    caller's smaller struct (defaults for what it lacks) and a newer
 *    caller's larger one only while the part this library does not know
 *    is zero; struct_size 0 is refused. Value structs (ms_region, ms_round,
 *    ms_overlay) refuse non-zero reserved words.
 *  - "Handles": a constructor returns NULL only without memory; bad
 *    arguments give a handle in the failed state, with MS_EINVAL and a
 *    message naming what was wrong.
 */
#include <stddef.h>
#include <stdlib.h>

#include "helpers.h"

/* A newer caller's struct: this library's, then a field it does not know. */
#define NEWER(type)                                                                                \
    struct {                                                                                       \
        type known;                                                                                \
        uint64_t unknown;                                                                          \
    }

/* ------------------------------------------------------------ the writer */

static ms_writer *writer_with(const ms_writer_options *o, th_buf *out)
{
    return ms_writer_new(o, th_sink_write, out);
}

static void test_writer_options(void **state)
{
    (void)state;
    th_buf out = {0};
    NEWER(ms_writer_options) big;
    memset(&big, 0, sizeof big);
    ms_writer_options_init(&big.known);
    big.known.struct_size = sizeof big;
    big.known.writer_name = "newer";
    ms_writer *w = writer_with(&big.known, &out);
    assert_status(ms_writer_status(w), 0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    assert_true(out.len > 0);

    big.unknown = 7; /* the newer program asks for something this library lacks */
    out.len = 0;
    w = writer_with(&big.known, &out);
    assert_status(ms_writer_status(w), MS_EINVAL);
    assert_contains(ms_writer_errmsg(w), "invalid writer options");
    assert_contains(ms_writer_errmsg(w), "newer");
    assert_status(ms_writer_finish(w, NULL), MS_EINVAL);
    ms_writer_free(w);
    assert_int_equal(out.len, 0); /* nothing was written */

    /* An older caller's struct, cut after page_size: the rest defaults
     * (no compression, so the page goes out raw and the stream reads). */
    ms_writer_options old;
    ms_writer_options_init(&old);
    old.compress_level = 19; /* past the older struct's end: not read */
    old.page_size = 8192;
    old.struct_size = offsetof(ms_writer_options, page_size) + sizeof old.page_size;
    w = writer_with(&old, &out);
    assert_status(ms_writer_status(w), 0);
    uint8_t page[8192];
    memset(page, 0x5a, sizeof page);
    ms_region r = {.id = 0, .name = "ram", .size = sizeof page, .page_size = 8192};
    assert_status(ms_writer_add_region(w, &r), 0);
    assert_status(ms_writer_pages(w, 0, 0, 1, page), 0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    ms_reader *rd = ms_reader_new_memory(NULL, out.data, out.len);
    const ms_header *h;
    assert_status(ms_reader_header(rd, &h), 0);
    assert_int_equal(h->page_size, 8192);
    const ms_record *rec;
    int rc;
    while ((rc = ms_reader_next(rd, &rec)) > 0)
        if (rec->type == MS_REC_PAGES)
            assert_int_equal(rec->pages.encoding, MS_ENCODING_RAW);
    assert_status(rc, 0);
    ms_reader_free(rd);

    ms_writer_options zero;
    memset(&zero, 0, sizeof zero);
    w = writer_with(&zero, &out);
    assert_status(ms_writer_status(w), MS_EINVAL);
    assert_contains(ms_writer_errmsg(w), "_init");
    ms_writer_free(w);
    th_buf_free(&out);
}

/* ------------------------------------------------------------ the reader */

static void test_reader_options(void **state)
{
    (void)state;
    th_buf s = {0};
    th_write_small_stream(&s, NULL);

    NEWER(ms_reader_options) big;
    memset(&big, 0, sizeof big);
    ms_reader_options_init(&big.known);
    big.known.struct_size = sizeof big;
    ms_reader *r = ms_reader_new_memory(&big.known, s.data, s.len);
    assert_status(th_read_all(r, NULL), 0);
    ms_reader_free(r);

    big.unknown = 1;
    r = ms_reader_new_memory(&big.known, s.data, s.len);
    assert_status(ms_reader_status(r), MS_EINVAL);
    assert_contains(ms_reader_errmsg(r), "invalid reader options");
    assert_status(th_read_all(r, NULL), MS_EINVAL);
    ms_reader_free(r);

    /* Older: cut before max_overlays, which then defaults. */
    ms_reader_options old;
    ms_reader_options_init(&old);
    old.max_overlays = 1; /* not read */
    old.struct_size = offsetof(ms_reader_options, max_overlays);
    r = ms_reader_new_memory(&old, s.data, s.len);
    assert_status(ms_reader_status(r), 0);
    assert_status(th_read_all(r, NULL), 0);
    ms_reader_free(r);
    th_buf_free(&s);
}

/* ---------------------------------------------------- replay callbacks */

static int count_region(void *ctx, const ms_region *r)
{
    (void)r;
    ++*(int *)ctx;
    return 0;
}

static void test_replay_callbacks(void **state)
{
    (void)state;
    th_buf s = {0};
    th_write_small_stream(&s, NULL);
    NEWER(ms_replay_callbacks) big;
    memset(&big, 0, sizeof big);
    big.known.struct_size = sizeof big;
    big.known.region = count_region;
    int regions = 0;
    ms_reader *r = ms_reader_new_memory(NULL, s.data, s.len);
    assert_status(ms_replay(r, &big.known, &regions), 0);
    assert_true(regions > 0);
    ms_reader_free(r);

    big.unknown = 1; /* a callback this library would never call */
    regions = 0;
    r = ms_reader_new_memory(NULL, s.data, s.len);
    assert_status(ms_replay(r, &big.known, &regions), MS_EINVAL);
    assert_int_equal(regions, 0);
    ms_reader_free(r);

    ms_replay_callbacks none;
    memset(&none, 0, sizeof none); /* struct_size 0 */
    r = ms_reader_new_memory(NULL, s.data, s.len);
    assert_status(ms_replay(r, &none, NULL), MS_EINVAL);
    ms_reader_free(r);
    th_buf_free(&s);
}

/* ---------------------------------------------------------- value structs */

static void test_reserved_words(void **state)
{
    (void)state;
    th_buf out = {0};
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.features = MS_FEATURE_OVERLAYS;
    for (int which = 0; which < 3; which++) {
        out.len = 0;
        ms_writer *w = writer_with(&o, &out);
        ms_region r = {.id = 0, .name = "ram", .has_gpa = true, .size = 1 << 20, .page_size = 4096};
        ms_round round = {.number = 0};
        ms_overlay ov = {.gfn = 1, .kind = MS_OVERLAY_HYPERCALL};
        int rc;
        if (which == 0) {
            r.reserved[3] = 1;
            rc = ms_writer_add_region(w, &r);
        } else {
            assert_status(ms_writer_add_region(w, &r), 0);
            if (which == 1) {
                round.reserved[0] = 1;
                rc = ms_writer_round(w, &round);
            } else {
                char why[256];
                ov.reserved[1] = 1;
                assert_status(ms_overlay_check(&ov, why, sizeof why), MS_EINVAL);
                assert_non_null(strstr(why, "reserved"));
                rc = ms_writer_overlay(w, &ov);
            }
        }
        assert_status(rc, MS_EINVAL);
        assert_contains(ms_writer_errmsg(w), "reserved");
        ms_writer_free(w);
    }

    /* What the reader hands out has them zero: a reader's region can be
     * given straight back to a writer. */
    th_write_small_stream(&out, NULL);
    ms_reader *rd = ms_reader_new_memory(NULL, out.data, out.len);
    const ms_record *rec;
    int rc, regions = 0;
    while ((rc = ms_reader_next(rd, &rec)) > 0)
        for (size_t i = 0; rec->type == MS_REC_REGIONS && i < rec->region_count; i++, regions++)
            for (size_t k = 0; k < 4; k++)
                assert_int_equal(rec->regions[i].reserved[k], 0);
    assert_status(rc, 0);
    assert_true(regions > 0);
    ms_reader_free(rd);
    th_buf_free(&out);
}

/* ------------------------------------------------------ optional modules */

static void test_module_options(void **state)
{
    (void)state;
#if MS_HAVE_SCHEMA
    NEWER(ms_schema_options) so;
    memset(&so, 0, sizeof so);
    ms_schema_options_init(&so.known);
    so.known.struct_size = sizeof so;
    ms_schema_set *s = ms_schema_set_new(&so.known);
    assert_status(ms_schema_set_status(s), 0);
    ms_schema_set_free(s);
    so.unknown = 1;
    s = ms_schema_set_new(&so.known);
    assert_status(ms_schema_set_status(s), MS_EINVAL);
    assert_contains(ms_schema_set_errmsg(s), "newer");
    ms_schema_set_free(s);
#endif
#if MS_HAVE_QEMU
    NEWER(ms_qemu_import_options) io;
    memset(&io, 0, sizeof io);
    ms_qemu_import_options_init(&io.known);
    io.known.struct_size = sizeof io;
    ms_qemu_import *imp = ms_qemu_import_new(&io.known);
    assert_status(ms_qemu_import_status(imp), 0);
    ms_qemu_import_free(imp);
    io.unknown = 1;
    imp = ms_qemu_import_new(&io.known);
    assert_status(ms_qemu_import_status(imp), MS_EINVAL);
    assert_contains(ms_qemu_import_errmsg(imp), "invalid import options");
    assert_status(ms_qemu_import_run_fd(imp, 0, 1), MS_EINVAL);
    ms_qemu_import_free(imp);

    /* The writer options nested in them follow the same rule. */
    NEWER(ms_writer_options) wo;
    memset(&wo, 0, sizeof wo);
    ms_writer_options_init(&wo.known);
    wo.known.struct_size = sizeof wo;
    wo.unknown = 1;
    io.unknown = 0;
    io.known.writer = &wo.known;
    imp = ms_qemu_import_new(&io.known);
    assert_status(ms_qemu_import_status(imp), MS_EINVAL);
    assert_contains(ms_qemu_import_errmsg(imp), "writer");
    ms_qemu_import_free(imp);

    NEWER(ms_reader_options) ro;
    memset(&ro, 0, sizeof ro);
    ms_reader_options_init(&ro.known);
    ro.known.struct_size = sizeof ro;
    ro.unknown = 1;
    ms_qemu_export_options eo;
    ms_qemu_export_options_init(&eo);
    eo.reader = &ro.known;
    ms_qemu_export *exp = ms_qemu_export_new(&eo);
    assert_status(ms_qemu_export_status(exp), MS_EINVAL);
    assert_contains(ms_qemu_export_errmsg(exp), "reader");
    ms_qemu_export_free(exp);
#endif
#if MS_HAVE_XEN
    NEWER(ms_xen_import_options) xo;
    memset(&xo, 0, sizeof xo);
    ms_xen_import_options_init(&xo.known);
    xo.known.struct_size = sizeof xo;
    ms_xen_import *ximp = ms_xen_import_new(&xo.known);
    assert_status(ms_xen_import_status(ximp), 0);
    ms_xen_import_free(ximp);
    xo.unknown = 1;
    ximp = ms_xen_import_new(&xo.known);
    assert_status(ms_xen_import_status(ximp), MS_EINVAL);
    assert_contains(ms_xen_import_errmsg(ximp), "invalid import options");
    assert_status(ms_xen_import_run_fd(ximp, 0, 1), MS_EINVAL);
    ms_xen_import_free(ximp);
    /* The writer options nested in them follow the same rule. */
    NEWER(ms_writer_options) xwo;
    memset(&xwo, 0, sizeof xwo);
    ms_writer_options_init(&xwo.known);
    xwo.known.struct_size = sizeof xwo;
    xwo.unknown = 1;
    xo.unknown = 0;
    xo.known.writer = &xwo.known;
    ximp = ms_xen_import_new(&xo.known);
    assert_status(ms_xen_import_status(ximp), MS_EINVAL);
    assert_contains(ms_xen_import_errmsg(ximp), "writer");
    ms_xen_import_free(ximp);

    NEWER(ms_xen_export_options) xe;
    memset(&xe, 0, sizeof xe);
    ms_xen_export_options_init(&xe.known);
    xe.known.struct_size = sizeof xe;
    ms_xen_export *xexp = ms_xen_export_new(&xe.known);
    assert_status(ms_xen_export_status(xexp), 0);
    ms_xen_export_free(xexp);
    xe.unknown = 1;
    xexp = ms_xen_export_new(&xe.known);
    assert_status(ms_xen_export_status(xexp), MS_EINVAL);
    assert_contains(ms_xen_export_errmsg(xexp), "invalid export options");
    ms_xen_export_free(xexp);
    NEWER(ms_reader_options) xro;
    memset(&xro, 0, sizeof xro);
    ms_reader_options_init(&xro.known);
    xro.known.struct_size = sizeof xro;
    xro.unknown = 1;
    xe.unknown = 0;
    xe.known.reader = &xro.known;
    xexp = ms_xen_export_new(&xe.known);
    assert_status(ms_xen_export_status(xexp), MS_EINVAL);
    assert_contains(ms_xen_export_errmsg(xexp), "reader");
    ms_xen_export_free(xexp);
#endif
}

/* The state layer's handles (pagemap.h, diff.h, replay_dir.h). */
static void test_state_options(void **state)
{
    (void)state;
    NEWER(ms_pagemap_options) po;
    memset(&po, 0, sizeof po);
    ms_pagemap_options_init(&po.known);
    po.known.struct_size = sizeof po;
    ms_pagemap *m = ms_pagemap_new(&po.known);
    assert_status(ms_pagemap_status(m), 0);
    ms_pagemap_free(m);
    ms_in_place *l = ms_in_place_new(&po.known);
    assert_status(ms_in_place_status(l), 0);
    ms_in_place_free(l);
    po.unknown = 1;
    m = ms_pagemap_new(&po.known);
    assert_status(ms_pagemap_status(m), MS_EINVAL);
    assert_contains(ms_pagemap_errmsg(m), "newer");
    ms_region r = {.id = 0, .name = "ram", .size = 4096, .page_size = 4096};
    assert_status(ms_pagemap_add_region(m, &r), MS_EINVAL);
    ms_pagemap_free(m);
    l = ms_in_place_new(&po.known);
    assert_status(ms_in_place_status(l), MS_EINVAL);
    ms_extent x = {.first = 0, .count = 1, .state = MS_PAGE_IN_PLACE, .arg = 4096};
    assert_status(ms_in_place_add(l, &r, &x), MS_EINVAL);
    ms_in_place_free(l);
    assert_status(ms_pagemap_status(NULL), MS_ENOMEM);
    assert_status(ms_in_place_status(NULL), MS_ENOMEM);

    NEWER(ms_diff_options) dopt;
    memset(&dopt, 0, sizeof dopt);
    ms_diff_options_init(&dopt.known);
    dopt.known.struct_size = sizeof dopt;
    dopt.unknown = 1;
    ms_diff *d = ms_diff_new(&dopt.known);
    assert_status(ms_diff_status(d), MS_EINVAL);
    assert_contains(ms_diff_errmsg(d), "invalid diff options");
    assert_status(ms_diff_compare(d, NULL, NULL), MS_EINVAL);
    ms_diff_free(d);
    assert_status(ms_diff_status(NULL), MS_ENOMEM);

    NEWER(ms_replay_dir_options) ropt;
    memset(&ropt, 0, sizeof ropt);
    ms_replay_dir_options_init(&ropt.known);
    ropt.known.struct_size = sizeof ropt;
    ms_replay_dir *rd = ms_replay_dir_new(&ropt.known);
    assert_status(ms_replay_dir_status(rd), 0);
    ms_replay_dir_free(rd);
    ropt.unknown = 1;
    rd = ms_replay_dir_new(&ropt.known);
    assert_status(ms_replay_dir_status(rd), MS_EINVAL);
    assert_contains(ms_replay_dir_errmsg(rd), "invalid replay options");
    ms_reader *rr = ms_reader_new_memory(NULL, "", 0);
    assert_status(ms_replay_dir_write(rd, rr, NULL, "/nonexistent/never"), MS_EINVAL);
    ms_reader_free(rr);
    ms_replay_dir_free(rd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_options),   cmocka_unit_test(test_reader_options),
        cmocka_unit_test(test_replay_callbacks), cmocka_unit_test(test_reserved_words),
        cmocka_unit_test(test_module_options),   cmocka_unit_test(test_state_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
