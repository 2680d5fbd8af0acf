/*
 * Rules of docs/FORMAT.md that an independent reader, written from the
 * document alone, found unclear or saw the library apply unevenly: each is
 * now one sentence in FORMAT.md, and each is checked here against streams
 * built by the tests' own framing (helpers.c), not by the library's writer.
 */
#include <stdlib.h>

#include "helpers.h"

/* Reads @s to its end: the status, and the message in @msg. */
static int read_to_end(const th_buf *s, char *msg, size_t size)
{
    ms_reader *r = ms_reader_new_memory(NULL, s->data, s->len);
    int rc = th_read_all(r, NULL);
    snprintf(msg, size, "%s", ms_reader_errmsg(r));
    ms_reader_free(r);
    return rc;
}

static void expect(const th_buf *s, int status, const char *frag)
{
    char msg[512];
    int rc = read_to_end(s, msg, sizeof msg);
    if (rc != status || (frag && !strstr(msg, frag)))
        print_error("status %d (%s), message \"%s\"\n", rc, ms_strerror(rc), msg);
    assert_status(rc, status);
    if (frag)
        assert_contains(msg, frag);
}

/* A small stream with the features @features (0: none), parsed for editing. */
static void base(th_stream *ts, uint64_t features)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.features = features;
    th_buf s = {0};
    th_write_small_stream(&s, &o);
    th_stream_parse(ts, s.data, s.len);
    th_buf_free(&s);
}

static void build(th_stream *ts, th_buf *out)
{
    th_stream_fix_end(ts);
    out->len = 0;
    th_stream_build(ts, out);
}

/* Appends to the map of @p (a payload that is one small map, head A0..B6)
 * the pair 20: @value. */
static void add_key(th_buf *p, const uint8_t *value, size_t n)
{
    assert_true(p->data[0] >= 0xa0 && p->data[0] < 0xb7);
    p->data[0]++;
    th_cbor_uint(p, 20);
    th_buf_append(p, value, n);
}

/* ------------------------------------------ 1. floats in unknown keys */

/* The values tried: a double, a half and a float nested in an array. */
static const struct {
    const uint8_t *v;
    size_t n;
} floats[] = {
    {(const uint8_t *)"\xfb\x3f\xf8\x00\x00\x00\x00\x00\x00", 9},
    {(const uint8_t *)"\xf9\x3c\x00", 3},
    {(const uint8_t *)"\x82\x01\xfa\x3f\xc0\x00\x00", 7},
};

/* Section 10: floats only inside a DEVICE state item, so a float in the
 * value of any map key a reader does not know is refused, whatever the map
 * (INFO, region, DEVICE, END, ROUND, OVERLAY). */
static void test_floats_in_unknown_keys(void **state)
{
    (void)state;
    enum { INFO, REGION, DEVICE, END, ROUND, OVERLAY, MAPS };
    for (int map = 0; map < MAPS; map++) {
        for (size_t f = 0; f < sizeof floats / sizeof floats[0]; f++) {
            th_stream ts;
            base(&ts, map == OVERLAY ? MS_FEATURE_OVERLAYS : 0);
            th_buf p = {0}, out = {0};
            size_t at;
            switch (map) {
            case INFO:
                th_cbor_head(&p, 5, 1);
                th_cbor_uint(&p, 0);
                th_cbor_text(&p, "pc");
                add_key(&p, floats[f].v, floats[f].n);
                th_stream_insert(&ts, 0, MS_REC_INFO, 0, p.data, p.len);
                break;
            case REGION:
                at = th_stream_find(&ts, MS_REC_REGIONS, 0);
                th_cbor_head(&p, 4, 2);
                th_cbor_region(&p, 1, "ram", true, 0, 16 * 4096, 4096);
                th_buf r2 = {0};
                th_cbor_region(&r2, 2, "vram", false, 0, 4 * 8192, 8192);
                add_key(&r2, floats[f].v, floats[f].n);
                th_buf_append(&p, r2.data, r2.len);
                th_buf_free(&r2);
                th_stream_set(&ts, at, p.data, p.len);
                break;
            case DEVICE:
                at = th_stream_find(&ts, MS_REC_DEVICE, 0);
                th_buf_append(&p, ts.rec[at].payload.data, ts.rec[at].payload.len);
                add_key(&p, floats[f].v, floats[f].n);
                th_stream_set(&ts, at, p.data, p.len);
                break;
            case ROUND: {
                ms_round rd = {.number = 0};
                th_cbor_round(&p, &rd);
                add_key(&p, floats[f].v, floats[f].n);
                th_stream_insert(&ts, th_stream_find(&ts, MS_REC_PAGES, 0), MS_REC_ROUND, 0, p.data,
                                 p.len);
                break;
            }
            case OVERLAY: {
                ms_overlay ov = {.gfn = 1, .kind = MS_OVERLAY_HYPERCALL};
                th_cbor_head(&p, 4, 1);
                th_buf m = {0};
                th_cbor_overlay(&m, &ov);
                add_key(&m, floats[f].v, floats[f].n);
                th_buf_append(&p, m.data, m.len);
                th_buf_free(&m);
                th_stream_insert(&ts, th_stream_find(&ts, MS_REC_DEVICE, 0), MS_REC_OVERLAY,
                                 MS_RECORD_MUST_UNDERSTAND, p.data, p.len);
                break;
            }
            default: /* END: after the totals are fixed */
                break;
            }
            build(&ts, &out);
            if (map == END) {
                at = th_stream_find(&ts, MS_REC_END, 0);
                p.len = 0;
                th_buf_append(&p, ts.rec[at].payload.data, ts.rec[at].payload.len);
                add_key(&p, floats[f].v, floats[f].n);
                th_stream_set(&ts, at, p.data, p.len);
                out.len = 0;
                th_stream_build(&ts, &out);
            }
            expect(&out, MS_ECBOR, "floating-point");
            th_buf_free(&p);
            th_buf_free(&out);
            th_stream_free(&ts);
        }
    }
}

/* ------------------------------- 2. a zstd PAGES record without DATA */

/* Section 6.3: encoding MUST be 0 when no extent is DATA; encoding 1 with
 * D = 0 is refused, whether its data section is empty or holds a frame. */
static void test_zstd_without_data(void **state)
{
    (void)state;
    /* The writer never writes one: a compressed batch of zero pages. */
    ms_writer_options o;
    ms_writer_options_init(&o);
    o.compress_level = 3;
    th_buf s = {0};
    ms_writer *w = ms_writer_new(&o, th_sink_write, &s);
    ms_region r = {.id = 0, .name = "ram", .size = 64 * 4096, .page_size = 4096};
    assert_status(ms_writer_add_region(w, &r), 0);
    assert_status(ms_writer_zero_pages(w, 0, 0, 64), 0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
    ms_reader *rd = ms_reader_new_memory(NULL, s.data, s.len);
    const ms_record *rec;
    int rc, pages = 0;
    while ((rc = ms_reader_next(rd, &rec)) > 0)
        if (rec->type == MS_REC_PAGES) {
            assert_int_equal(rec->pages.encoding, MS_ENCODING_RAW);
            pages++;
        }
    assert_status(rc, 0);
    assert_int_equal(pages, 1);
    ms_reader_free(rd);

    /* Read: both forms are refused. A zstd frame of no content is 9 bytes:
     * magic, a frame header declaring size 0, one empty last raw block. */
    static const uint8_t empty_frame[] = {0x28, 0xb5, 0x2f, 0xfd, 0x20, 0x00, 0x01, 0x00, 0x00};
    for (int form = 0; form < 2; form++) {
        th_stream ts;
        base(&ts, 0);
        th_buf p = {0}, out = {0};
        th_pages_head(&p, 1, 1, MS_ENCODING_ZSTD);
        th_pages_extent(&p, 0, 16, MS_PAGE_ZERO);
        if (form == 1)
            th_buf_append(&p, empty_frame, sizeof empty_frame);
        th_stream_set(&ts, th_stream_find(&ts, MS_REC_PAGES, 0), p.data, p.len);
        build(&ts, &out);
        expect(&out, MS_ECORRUPT, "no DATA extent, which must use encoding 0");
        th_buf_free(&p);
        th_buf_free(&out);
        th_stream_free(&ts);
    }
    th_buf_free(&s);
}

/* ------------------------------------------------ 5. smaller points */

/* Section 6.2: arg MUST be 0 for DATA, ZERO and DISCARDED. */
static void test_arg_must_be_zero(void **state)
{
    (void)state;
    static const uint8_t states[] = {MS_PAGE_DATA, MS_PAGE_ZERO, MS_PAGE_DISCARDED};
    for (size_t i = 0; i < sizeof states; i++) {
        th_stream ts;
        base(&ts, MS_FEATURE_DISCARDED);
        th_buf p = {0}, out = {0};
        th_pages_head(&p, 1, 1, MS_ENCODING_RAW);
        th_pages_extent_arg(&p, 0, 1, states[i], 1);
        if (states[i] == MS_PAGE_DATA)
            for (int k = 0; k < 4096; k++)
                th_buf_u8(&p, 0x5a);
        th_stream_set(&ts, th_stream_find(&ts, MS_REC_PAGES, 0), p.data, p.len);
        build(&ts, &out);
        expect(&out, MS_ECORRUPT, "argument must be zero");
        th_buf_free(&p);
        th_buf_free(&out);
        th_stream_free(&ts);
    }
}

/* Section 6.4: granularity is absent when the tracker is 0, even as 0. */
static void test_granularity_without_tracker(void **state)
{
    (void)state;
    for (uint64_t g = 0; g < 2; g++) {
        th_stream ts;
        base(&ts, 0);
        th_buf p = {0}, out = {0};
        th_cbor_head(&p, 5, 3);
        th_cbor_uint(&p, 0);
        th_cbor_uint(&p, 0);
        th_cbor_uint(&p, 1);
        th_cbor_uint(&p, 0); /* tracker 0: none */
        th_cbor_uint(&p, 2);
        th_cbor_uint(&p, g ? 4096 : 0);
        th_stream_insert(&ts, th_stream_find(&ts, MS_REC_PAGES, 0), MS_REC_ROUND, 0, p.data, p.len);
        build(&ts, &out);
        expect(&out, MS_ECORRUPT, "granularity");
        th_buf_free(&p);
        th_buf_free(&out);
        th_stream_free(&ts);
    }
}

/* Section 8: a pages key that is not a page state, 0 included, is refused. */
static void test_end_pages_key_zero(void **state)
{
    (void)state;
    th_stream ts;
    base(&ts, 0);
    th_buf out = {0}, p = {0};
    build(&ts, &out);
    ms_totals t;
    th_stream_totals(&ts, ts.n - 1, &t);
    /* END {0: records, 1: bytes, 2: {0: 0, states...}, 3: devices} */
    th_cbor_head(&p, 5, 4);
    th_cbor_uint(&p, 0);
    th_cbor_uint(&p, t.records);
    th_cbor_uint(&p, 1);
    th_cbor_uint(&p, t.bytes);
    th_cbor_uint(&p, 2);
    size_t n = 1;
    for (unsigned st = 1; st < MS_PAGE_STATE_SLOTS; st++)
        n += t.pages[st] != 0;
    th_cbor_head(&p, 5, n);
    th_cbor_uint(&p, 0);
    th_cbor_uint(&p, 0);
    for (unsigned st = 1; st < MS_PAGE_STATE_SLOTS; st++)
        if (t.pages[st]) {
            th_cbor_uint(&p, st);
            th_cbor_uint(&p, t.pages[st]);
        }
    th_cbor_uint(&p, 3);
    th_cbor_uint(&p, t.devices);
    th_stream_set(&ts, ts.n - 1, p.data, p.len);
    out.len = 0;
    th_stream_build(&ts, &out);
    expect(&out, MS_ECORRUPT, "unknown state 0");
    th_buf_free(&p);
    th_buf_free(&out);
    th_stream_free(&ts);
}

/* Section 11.1: what a stream may hold follows from its feature bits and
 * record types, not from its minor version: a stream that says minor 0
 * and holds ROUND records, a DISCARDED extent and END's rounds key reads. */
static void test_minor_zero_with_later_records(void **state)
{
    (void)state;
    th_stream ts;
    base(&ts, MS_FEATURE_DISCARDED);
    th_buf p = {0}, out = {0};
    ms_round rd = {.number = 0};
    th_cbor_round(&p, &rd);
    th_stream_insert(&ts, th_stream_find(&ts, MS_REC_PAGES, 0), MS_REC_ROUND, 0, p.data, p.len);
    p.len = 0;
    th_pages_head(&p, 1, 1, MS_ENCODING_RAW);
    th_pages_extent(&p, 4, 2, MS_PAGE_DISCARDED);
    th_stream_insert(&ts, th_stream_find(&ts, MS_REC_DEVICE, 0), MS_REC_PAGES,
                     MS_RECORD_MUST_UNDERSTAND, p.data, p.len);
    th_put16(ts.pre.data + 10, 0); /* minor 0 */
    th_stream_fix_preamble(&ts);
    build(&ts, &out);
    expect(&out, 0, NULL);
    th_buf_free(&p);
    th_buf_free(&out);
    th_stream_free(&ts);
}

/* Section 10: map keys are any unsigned integer; a reader's unknown keys
 * may be large. */
static void test_large_unknown_key(void **state)
{
    (void)state;
    th_stream ts;
    base(&ts, 0);
    th_buf p = {0}, out = {0};
    th_cbor_head(&p, 5, 2);
    th_cbor_uint(&p, 0);
    th_cbor_text(&p, "pc");
    th_cbor_uint(&p, UINT64_MAX);
    th_cbor_uint(&p, 1);
    th_stream_insert(&ts, 0, MS_REC_INFO, 0, p.data, p.len);
    build(&ts, &out);
    ms_reader *r = ms_reader_new_memory(NULL, out.data, out.len);
    const ms_record *rec;
    assert_int_equal(ms_reader_next(r, &rec), 1);
    assert_int_equal(rec->unknown_key_count, 1);
    assert_string_equal(rec->unknown_keys[0], "/18446744073709551615");
    assert_status(th_read_all(r, NULL), 0);
    ms_reader_free(r);
    th_buf_free(&p);
    th_buf_free(&out);
    th_stream_free(&ts);
}

/* Section 10: nesting counts containers from the item itself; the value of
 * an unknown key may nest 16 deep, not 17. A scalar nests 0 deep. */
static void test_unknown_key_nesting(void **state)
{
    (void)state;
    for (int depth = 16; depth <= 17; depth++) {
        th_stream ts;
        base(&ts, 0);
        th_buf p = {0}, out = {0};
        th_cbor_head(&p, 5, 2);
        th_cbor_uint(&p, 0);
        th_cbor_text(&p, "pc");
        th_cbor_uint(&p, 20);
        for (int k = 0; k < depth; k++)
            th_cbor_head(&p, 4, 1);
        th_cbor_uint(&p, 7);
        th_stream_insert(&ts, 0, MS_REC_INFO, 0, p.data, p.len);
        build(&ts, &out);
        if (depth == 16)
            expect(&out, 0, NULL);
        else
            expect(&out, MS_ECBOR, "nest");
        th_buf_free(&p);
        th_buf_free(&out);
        th_stream_free(&ts);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_floats_in_unknown_keys),
        cmocka_unit_test(test_zstd_without_data),
        cmocka_unit_test(test_arg_must_be_zero),
        cmocka_unit_test(test_granularity_without_tracker),
        cmocka_unit_test(test_end_pages_key_zero),
        cmocka_unit_test(test_minor_zero_with_later_records),
        cmocka_unit_test(test_large_unknown_key),
        cmocka_unit_test(test_unknown_key_nesting),
    };
    return th_run_tests(tests);
}
