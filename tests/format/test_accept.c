/*
 * ms_reader_options.accept_features: a receiver names the required features
 * it handles, and a stream that needs any other one is refused at its
 * preamble with MS_EFEATURE, before any record, the feature named by name
 * and bit. Each feature this library implements is refused on its own and
 * with others; a bit no version defines yet is refused whatever the mask;
 * the default (and an older caller's struct, which lacks the field) takes
 * everything the library implements.
 */
#include <stddef.h>
#include <stdlib.h>

#include "helpers.h"

#define PS 4096u

/* A stream whose preamble requires @features and whose records use none
 * of them (so that only the preamble can refuse it). */
static void stream_requiring(th_buf *out, uint64_t features)
{
    ms_writer_options o;
    ms_writer_options_init(&o);
    /* PARTS comes with the PART record a part starts with, and its pages
     * go in a round. */
    ms_part part = {.index = 0, .count = 1};
    o.features = features & ~(uint64_t)MS_FEATURE_PARTS;
    o.part = features & MS_FEATURE_PARTS ? &part : NULL;
    ms_writer *w = ms_writer_new(&o, th_sink_write, out);
    ms_region r = {.id = 0, .name = "ram", .has_gpa = true, .size = 16 * PS, .page_size = PS};
    assert_status(ms_writer_add_region(w, &r), 0);
    if (o.part)
        assert_status(ms_writer_round(w, &(ms_round){.number = 0}), 0);
    assert_status(ms_writer_zero_pages(w, 0, 0, 16), 0);
    assert_status(ms_writer_finish(w, NULL), 0);
    ms_writer_free(w);
}

static int read_with_mask(const th_buf *s, uint64_t accept, ms_reader **out)
{
    ms_reader_options o;
    ms_reader_options_init(&o);
    o.accept_features = accept;
    ms_reader *r = ms_reader_new_memory(&o, s->data, s->len);
    *out = r;
    return th_read_all(r, NULL);
}

static void test_each_feature(void **state)
{
    (void)state;
    uint64_t known;
    ms_known_features(&known, NULL);
    for (unsigned bit = 0; bit < 64; bit++) {
        uint64_t f = UINT64_C(1) << bit;
        if (!(known & f))
            continue;
        const char *name = ms_feature_name(bit);
        assert_non_null(name);
        th_buf s = {0};
        stream_requiring(&s, f);

        /* Every other feature accepted, this one not. */
        ms_reader *r;
        assert_status(read_with_mask(&s, ~f, &r), MS_EFEATURE);
        char want[128];
        snprintf(want, sizeof want,
                 "requires feature %s (bit %u), which accept_features "
                 "leaves out",
                 name, bit);
        assert_contains(ms_reader_errmsg(r), want);
        assert_int_equal(ms_reader_error_record(r), -1);
        assert_int_equal(ms_reader_error_offset(r), 16); /* the required bits */
        assert_int_equal(ms_reader_region_count(r), 0);  /* no record was read */
        const ms_header *h;
        assert_status(ms_reader_header(r, &h), MS_EFEATURE); /* sticky */
        ms_reader_free(r);

        /* Exactly this one accepted; and the default. */
        assert_status(read_with_mask(&s, f, &r), 0);
        ms_reader_free(r);
        r = ms_reader_new_memory(NULL, s.data, s.len);
        assert_status(th_read_all(r, NULL), 0);
        ms_reader_free(r);
        th_buf_free(&s);
    }
}

/* Several refused at once: each named, in bit order. */
static void test_several(void **state)
{
    (void)state;
    th_buf s = {0};
    stream_requiring(&s, MS_FEATURE_DISCARDED | MS_FEATURE_FILL | MS_FEATURE_IN_PLACE |
                             MS_FEATURE_OVERLAYS);
    ms_reader *r;
    assert_status(read_with_mask(&s, MS_FEATURE_FILL, &r), MS_EFEATURE);
    assert_contains(ms_reader_errmsg(r), "requires features DISCARDED (bit 0), IN_PLACE (bit 2) "
                                         "and OVERLAYS (bit 3), which accept_features leaves out");
    ms_reader_free(r);
    /* 0: only streams that need no feature. */
    assert_status(read_with_mask(&s, 0, &r), MS_EFEATURE);
    assert_contains(ms_reader_errmsg(r), "FILL (bit 1)");
    ms_reader_free(r);
    th_buf_free(&s);
    stream_requiring(&s, 0);
    assert_status(read_with_mask(&s, 0, &r), 0);
    ms_reader_free(r);
    th_buf_free(&s);
}

/* A required bit that no library version defines yet: refused whatever the
 * mask says, named by its bit. */
static void test_unknown_bit(void **state)
{
    (void)state;
    th_buf s = {0};
    stream_requiring(&s, MS_FEATURE_FILL);
    th_stream ts;
    th_stream_parse(&ts, s.data, s.len);
    th_put64(ts.pre.data + 16, MS_FEATURE_FILL | UINT64_C(1) << 40);
    th_stream_fix_preamble(&ts);
    s.len = 0;
    th_stream_build(&ts, &s);
    th_stream_free(&ts);
    static const uint64_t masks[] = {UINT64_MAX, MS_FEATURE_FILL, UINT64_C(1) << 40};
    for (size_t i = 0; i < sizeof masks / sizeof masks[0]; i++) {
        ms_reader *r;
        assert_status(read_with_mask(&s, masks[i], &r), MS_EFEATURE);
        assert_contains(ms_reader_errmsg(r), "bit 40");
        ms_reader_free(r);
    }
    th_buf_free(&s);
}

/* A caller built against a version without accept_features: its struct
 * ends before the field, which then takes the default. */
static void test_older_struct(void **state)
{
    (void)state;
    th_buf s = {0};
    stream_requiring(&s, MS_FEATURE_IN_PLACE | MS_FEATURE_OVERLAYS);
    ms_reader_options o;
    ms_reader_options_init(&o);
    o.accept_features = 0; /* past the older struct's end: not read */
    o.struct_size = offsetof(ms_reader_options, accept_features);
    ms_reader *r = ms_reader_new_memory(&o, s.data, s.len);
    assert_status(ms_reader_status(r), 0);
    assert_status(th_read_all(r, NULL), 0);
    ms_reader_free(r);
    th_buf_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_feature),
        cmocka_unit_test(test_several),
        cmocka_unit_test(test_unknown_bit),
        cmocka_unit_test(test_older_struct),
    };
    return th_run_tests(tests);
}
