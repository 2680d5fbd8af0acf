/*
 * Importing Xen streams (xen.h, docs/XEN.md sections 2 to 4): every stream
 * tests/xen/mkxen.py writes from Xen's specs imports to the state its
 * .expect file names (regions, rounds, every page, every device's raw
 * bytes), whatever the size of the reads; the headers, INFO, statistics and
 * decoded fields say what the spec defines; page types come just before
 * their pages. The fixtures themselves are first checked with Xen's own
 * verify-stream-v2, so that they are Xen streams and not only ours.
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

static void import_fixture(const char *name, size_t chunk, tx_out *out)
{
    char file[96], msg[512];
    size_t len;
    snprintf(file, sizeof file, "%s.xen", name);
    uint8_t *xen = tx_load(file, &len);
    ms_xen_import *imp = ms_xen_import_new(NULL);
    tx_in in = {.p = xen, .len = len, .chunk = chunk};
    int rc = ms_xen_import_run(imp, tx_read, &in, tx_write, out);
    snprintf(msg, sizeof msg, "%s", ms_xen_import_errmsg(imp));
    if (rc)
        print_error("%s: %s\n", name, msg);
    assert_int_equal(rc, 0);
    assert_int_equal(ms_xen_import_get_stats(imp)->bytes_read, len);
    ms_xen_import_free(imp);
    free(xen);
}

/* Xen's checker says of each fixture what fixtures.txt says it does. */
static void test_fixtures_are_xen_streams(void **state)
{
    (void)state;
    size_t n;
    const tx_fixture *f = tx_fixtures(&n);
    assert_true(n >= 10);
    for (size_t i = 0; i < n; i++) {
        char file[96], out[4096];
        size_t len;
        snprintf(file, sizeof file, "%s.xen", f[i].name);
        uint8_t *xen = tx_load(file, &len);
        int real = tx_verify(xen, len, f[i].format, false, out, sizeof out);
        if (real == 77) {
            free(xen);
            skip(); /* xen-utils-4.17 is not installed */
        }
        if (strcmp(f[i].verdict, "pass") == 0) {
            if (real)
                print_error("%s: %s\n", f[i].name, out);
            assert_int_equal(real, 0);
        } else if (strcmp(f[i].verdict, "fixed") == 0) {
            /* Its Python 3 port refuses every xenstore record with data. */
            assert_int_equal(real, 1);
            assert_non_null(strstr(out, "Data not NUL terminated"));
            int fixed = tx_verify(xen, len, f[i].format, true, out, sizeof out);
            if (fixed)
                print_error("%s: %s\n", f[i].name, out);
            assert_int_equal(fixed, 0);
        } else {
            assert_int_not_equal(real, 0);
        }
        free(xen);
    }
}

static void test_imports_match_expectations(void **state)
{
    (void)state;
    size_t n;
    const tx_fixture *f = tx_fixtures(&n);
    for (size_t i = 0; i < n; i++) {
        char file[96], buf[512];
        size_t len;
        tx_out out = {0};
        import_fixture(f[i].name, 0, &out);
        tx_state got, want;
        tx_state_read(out.p, out.len, &got);
        snprintf(file, sizeof file, "%s.expect", f[i].name);
        char *text = (char *)tx_load(file, &len);
        tx_state_expect(text, &want);
        const char *diff = tx_state_diff(&got, &want, true, buf, sizeof buf);
        if (diff)
            print_error("%s: %s\n", f[i].name, diff);
        assert_null(diff);
        tx_state_free(&got);
        tx_state_free(&want);
        free(text);
        tx_out_free(&out);
    }
}

/* Records and pages that straddle reads: the same output byte for byte. */
static void test_small_reads(void **state)
{
    (void)state;
    const char *names[] = {"hvm-libxl", "pv64-libxc", "remus-libxl"};
    for (size_t i = 0; i < 3; i++) {
        tx_out a = {0}, b = {0};
        import_fixture(names[i], 0, &a);
        import_fixture(names[i], 7, &b);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.p, b.p, a.len);
        tx_out_free(&a);
        tx_out_free(&b);
    }
}

static void test_header_and_info(void **state)
{
    (void)state;
    tx_out out = {0};
    tx_state st;
    import_fixture("hvm-libxl", 0, &out);
    tx_state_read(out.p, out.len, &st);
    assert_string_equal(st.header.writer_name, "xen");
    assert_string_equal(st.header.writer_version, "4.17");
    assert_string_equal(st.machine, "x86 HVM");
    assert_int_equal(st.header.page_size, 4096);
    /* XTAB pages are DISCARDED: the feature is in the preamble. */
    assert_true(st.header.required_features & MS_FEATURE_DISCARDED);
    tx_state_free(&st);
    tx_out_free(&out);

    import_fixture("v2-libxc", 0, &out);
    tx_state_read(out.p, out.len, &st);
    assert_string_equal(st.header.writer_version, "4.11");
    tx_state_free(&st);
    tx_out_free(&out);

    import_fixture("pv32-libxc", 0, &out);
    tx_state_read(out.p, out.len, &st);
    assert_string_equal(st.machine, "x86 PV");
    tx_state_free(&st);
    tx_out_free(&out);

    /* The caller's writer options win where they name something. */
    ms_writer_options wo;
    ms_writer_options_init(&wo);
    wo.writer_name = "mine";
    wo.machine = "xen-hvm";
    ms_xen_import_options o;
    ms_xen_import_options_init(&o);
    o.writer = &wo;
    size_t len;
    uint8_t *xen = tx_load("hvm-libxc.xen", &len);
    assert_int_equal(tx_import(xen, len, &o, &out, NULL, 0), 0);
    tx_state_read(out.p, out.len, &st);
    assert_string_equal(st.header.writer_name, "mine");
    assert_string_equal(st.header.writer_version, "");
    assert_string_equal(st.machine, "xen-hvm");
    assert_true(st.header.required_features & MS_FEATURE_DISCARDED);
    tx_state_free(&st);
    tx_out_free(&out);
    free(xen);
}

static void test_stats(void **state)
{
    (void)state;
    struct {
        const char *name;
        bool libxl;
        uint32_t version, domain, major, minor;
        uint64_t records, page_data, checkpoints, optional;
    } want[] = {
        /* libxl: LIBXC_CONTEXT, the emulator's two records, END; libxc:
         * policies, STATIC_DATA_END, 5 PAGE_DATA (2060 pfns, then 6, then
         * 4), TSC, PARAMS, CONTEXT, END */
        {"hvm-libxl", true, 3, MS_XEN_DOMAIN_HVM, 4, 17, 4 + 12, 5, 0, 0},
        {"pv64-libxc", false, 3, MS_XEN_DOMAIN_PV, 4, 17, 19, 2, 0, 0},
        {"remus-libxl", true, 3, MS_XEN_DOMAIN_HVM, 4, 17, 8 + 19, 3, 3, 0},
        {"extras-libxl", true, 3, MS_XEN_DOMAIN_HVM, 4, 17, 6 + 13, 1, 0, 3},
        {"v2-libxc", false, 2, MS_XEN_DOMAIN_HVM, 4, 11, 5, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        char file[96];
        size_t len;
        snprintf(file, sizeof file, "%s.xen", want[i].name);
        uint8_t *xen = tx_load(file, &len);
        ms_xen_import *imp = ms_xen_import_new(NULL);
        tx_in in = {.p = xen, .len = len};
        tx_out out = {0};
        assert_int_equal(ms_xen_import_run(imp, tx_read, &in, tx_write, &out), 0);
        const ms_xen_import_stats *s = ms_xen_import_get_stats(imp);
        assert_int_equal(s->libxl, want[i].libxl);
        assert_int_equal(s->version, want[i].version);
        assert_int_equal(s->domain_type, want[i].domain);
        assert_int_equal(s->xen_major, want[i].major);
        assert_int_equal(s->xen_minor, want[i].minor);
        if (s->records != want[i].records)
            print_error("%s: %llu records\n", want[i].name, (unsigned long long)s->records);
        assert_int_equal(s->records, want[i].records);
        assert_int_equal(s->page_data, want[i].page_data);
        assert_int_equal(s->checkpoints, want[i].checkpoints);
        assert_int_equal(s->optional, want[i].optional);
        assert_int_equal(s->bytes_read, len);
        /* A second run is refused. */
        assert_int_equal(ms_xen_import_run(imp, tx_read, &in, tx_write, &out), MS_ESTATE);
        ms_xen_import_free(imp);
        tx_out_free(&out);
        free(xen);
    }

    /* Page types counted as the entries say: pv64's first pass. */
    size_t len;
    uint8_t *xen = tx_load("pv64-libxc.xen", &len);
    ms_xen_import *imp = ms_xen_import_new(NULL);
    tx_in in = {.p = xen, .len = len};
    tx_out out = {0};
    assert_int_equal(ms_xen_import_run(imp, tx_read, &in, tx_write, &out), 0);
    const ms_xen_import_stats *s = ms_xen_import_get_stats(imp);
    assert_int_equal(s->pages[MS_XEN_PAGE_XALLOC], 11);
    assert_int_equal(s->pages[MS_XEN_PAGE_BROKEN], 1);
    assert_int_equal(s->pages[MS_XEN_PAGE_XTAB], 20);
    assert_int_equal(s->pages[0x4 + 8], 1); /* L4TAB, pinned */
    assert_int_equal(s->pages[0x1] + s->pages[0x9], 16 + 1);
    ms_xen_import_free(imp);
    tx_out_free(&out);
    free(xen);
}

static void expect_json(const uint8_t *lm, size_t len, const char *path, uint32_t instance,
                        const char *needle)
{
    char *js = tx_device_json(lm, len, path, instance);
    if (!js || !strstr(js, needle))
        print_error("%s %u: %s lacks %s\n", path, instance, js ? js : "(none)", needle);
    assert_non_null(js);
    assert_non_null(strstr(js, needle));
    free(js);
}

/* What the spec defines in a record goes into "fields". */
static void test_decoded_fields(void **state)
{
    (void)state;
    tx_out out = {0};
    import_fixture("hvm-libxl", 0, &out);
    expect_json(out.p, out.len, "xen/libxl/header", 0,
                "\"fields\":{\"version\":2,\"options\":0,\"legacy\":false}");
    expect_json(out.p, out.len, "xen/header", 0,
                "\"fields\":{\"version\":3,\"options\":0,\"type\":2,\"domain\":\"x86 HVM\","
                "\"page_shift\":12,\"xen_major\":4,\"xen_minor\":17}");
    expect_json(out.p, out.len, "xen/hvm_params", 0,
                "\"params\":[[1,1044476],[5,1044464],[6,1044465],[9,31],[17,1044477],[33,8]]");
    expect_json(out.p, out.len, "xen/x86_tsc_info", 0,
                "{\"mode\":0,\"khz\":2400000,\"nsec\":123456789,\"incarnation\":1}");
    expect_json(out.p, out.len, "xen/x86_cpuid_policy", 0,
                "\"leaves\":[[0,4294967295,13,1970169159,1818588270,1231384169]");
    expect_json(out.p, out.len, "xen/x86_msr_policy", 0,
                "\"msrs\":[[206,0,2147483648],[266,0,33554432]]");
    expect_json(out.p, out.len, "xen/emulator/qemu-upstream/xenstore", 0,
                "\"entries\":[[\"physmap/f0000000/start_addr\",\"f0000000\"]");
    expect_json(out.p, out.len, "xen/emulator/qemu-upstream/context", 0,
                "{\"emulator_id\":2,\"emulator\":\"qemu-upstream\",\"index\":0}");
    tx_out_free(&out);

    import_fixture("pv64-libxc", 0, &out);
    expect_json(out.p, out.len, "xen/x86_pv_info", 0, "{\"guest_width\":8,\"pt_levels\":4}");
    expect_json(out.p, out.len, "xen/x86_pv_p2m_frames", 0,
                "{\"p2m_start_pfn\":0,\"p2m_end_pfn\":1023,\"p2m_pfns\":[4096,4097]}");
    expect_json(out.p, out.len, "xen/x86_pv_p2m_frames", 1,
                "{\"p2m_start_pfn\":0,\"p2m_end_pfn\":1535,\"p2m_pfns\":[4096,4097,4098]}");
    expect_json(out.p, out.len, "xen/vcpu/1/msrs", 0, "\"fields\":{\"vcpu_id\":1}");
    /* Block 0 as the second pass left it: pfn 5 a normal page again, pfn
     * 8 pinned, pfn 1200 XALLOC. */
    expect_json(out.p, out.len, "xen/page_types", 0,
                "\"pages\":[[1,12],[2,3],[3,3],[4,2],[6,2],[7,2],[8,9],[9,9],[10,1]");
    expect_json(out.p, out.len, "xen/page_types", 0, "[909,14],[910,13],[1200,14]]");
    tx_out_free(&out);

    import_fixture("extras-libxl", 0, &out);
    expect_json(out.p, out.len, "xen/checkpoint_dirty_pfn_list", 0,
                "\"pfns\":[[1],[2],[3],[1048576]]");
    expect_json(out.p, out.len, "xen/optional/0x80000123", 0, "\"fields\":{\"type\":2147483939}");
    expect_json(out.p, out.len, "xen/libxl/optional/0x80000042", 0, "\"type\":2147483714");
    expect_json(out.p, out.len, "xen/libxl/checkpoint_state", 0,
                "{\"control_id\":1,\"control\":\"CHECKPOINT_SVM_SUSPENDED\"}");
    expect_json(out.p, out.len, "xen/emulator/qemu-traditional/xenstore", 1, "\"entries\":[]");
    tx_out_free(&out);
}

/* The pfn entries of a bare libxc stream's PAGE_DATA records, in order,
 * each as on the wire (type << 60 | pfn): read with the spec's framing. */
static uint64_t *xen_entries(const uint8_t *p, size_t len, size_t *n)
{
    size_t cap = 1024, at = 40;
    uint64_t *e = malloc(cap * sizeof *e);
    assert_non_null(e);
    *n = 0;
    while (at + 8 <= len) {
        uint32_t type = (uint32_t)p[at] | (uint32_t)p[at + 1] << 8 | (uint32_t)p[at + 2] << 16 |
                        (uint32_t)p[at + 3] << 24;
        uint32_t blen = (uint32_t)p[at + 4] | (uint32_t)p[at + 5] << 8 | (uint32_t)p[at + 6] << 16 |
                        (uint32_t)p[at + 7] << 24;
        if (type == 1) {
            uint32_t count = blen ? (uint32_t)p[at + 8] | (uint32_t)p[at + 9] << 8 : 0;
            count |= (uint32_t)p[at + 10] << 16 | (uint32_t)p[at + 11] << 24;
            for (uint32_t i = 0; i < count; i++) {
                uint64_t v = 0;
                for (int b = 7; b >= 0; b--)
                    v = v << 8 | p[at + 16 + 8 * i + (size_t)b];
                if (*n == cap) {
                    cap *= 2;
                    e = realloc(e, cap * sizeof *e);
                    assert_non_null(e);
                }
                e[(*n)++] = v;
            }
        }
        at += 8 + ((blen + 7) & ~7u);
    }
    return e;
}

/* Every page's type, as the "xen/page_types" records before it give it
 * (its state otherwise), is its PAGE_DATA entry's type, page after page. */
static void test_page_types_follow_the_stream(void **state)
{
    (void)state;
    const char *names[] = {"pv64-libxc", "pv32-libxc"};
    for (size_t f = 0; f < 2; f++) {
        char file[64];
        size_t len, n;
        snprintf(file, sizeof file, "%s.xen", names[f]);
        uint8_t *xen = tx_load(file, &len);
        uint64_t *want = xen_entries(xen, len, &n);
        tx_out out = {0};
        import_fixture(names[f], 0, &out);
        /* The types per pfn, from the records so far (the fixtures' pfns
         * are below 2048). */
        uint8_t types[2048] = {0};
        ms_reader *r = ms_reader_new_memory(NULL, out.p, out.len);
        const ms_record *rec;
        size_t k = 0, records = 0;
        while (ms_reader_next(r, &rec) > 0) {
            if (rec->type == MS_REC_DEVICE && strcmp(rec->device.path, "xen/page_types") == 0) {
                uint32_t block = rec->device.instance;
                assert_int_equal(block, 0);
                memset(types, 0, sizeof types);
                /* {"raw": h'...', "fields": ...}: raw comes first. */
                const uint8_t *st = rec->device.state;
                assert_int_equal(st[0], 0xa2);
                size_t at = 5, rl;
                assert_true(st[at] >= 0x40 && st[at] <= 0x5a);
                if (st[at] < 0x58) {
                    rl = st[at] - 0x40u;
                    at += 1;
                } else if (st[at] == 0x58) {
                    rl = st[at + 1];
                    at += 2;
                } else {
                    rl = (size_t)st[at + 1] << 8 | st[at + 2];
                    at += 3;
                }
                for (size_t i = 0; i < rl; i += 8) {
                    uint64_t v = 0;
                    for (int b = 7; b >= 0; b--)
                        v = v << 8 | st[at + i + (size_t)b];
                    assert_true((v & 0xfffffffffffffull) < 2048);
                    types[v & 0xfffffffffffffull] = (uint8_t)(v >> 60);
                }
                records++;
            } else if (rec->type == MS_REC_PAGES) {
                const ms_pages *pg = &rec->pages;
                for (size_t e = 0; e < pg->extent_count; e++)
                    for (uint32_t c = 0; c < pg->extents[e].count; c++) {
                        uint64_t pfn = pg->region->gpa / 4096 + pg->extents[e].first + c;
                        unsigned t = types[pfn];
                        if (!t)
                            t = pg->extents[e].state == MS_PAGE_DISCARDED ? 0xf : 0x0;
                        assert_true(k < n);
                        if (want[k] != ((uint64_t)t << 60 | pfn))
                            print_error("%s: page %zu: 0x%016llx, the stream has 0x%016llx\n",
                                        names[f], k, (unsigned long long)((uint64_t)t << 60 | pfn),
                                        (unsigned long long)want[k]);
                        assert_int_equal(want[k], (uint64_t)t << 60 | pfn);
                        k++;
                    }
            }
        }
        assert_int_equal(ms_reader_status(r), 0);
        assert_int_equal(k, n);
        /* Two records of block 0: one per PAGE_DATA that changed types. */
        assert_int_equal(records, 2);
        ms_reader_free(r);
        tx_out_free(&out);
        free(want);
        free(xen);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_are_xen_streams),
        cmocka_unit_test(test_imports_match_expectations),
        cmocka_unit_test(test_small_reads),
        cmocka_unit_test(test_header_and_info),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_decoded_fields),
        cmocka_unit_test(test_page_types_follow_the_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
